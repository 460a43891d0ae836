//! [`FakeRuntime`]: an in-memory [`ContainerRuntime`] whose containers act
//! out their own command line, for agent and controller tests without root
//! or containerd (Nomad's mock driver, in spirit).
//!
//! A container's final args (entryPoint/command over the image's, by Docker's
//! rules) are split into words at whitespace and `;`, and read left to right:
//! - `sleep <secs>`: wait (tokio time, so paused test clocks apply);
//! - `exit <code>`: exit with that code;
//! - `ignore-sigterm`: from now on SIGTERM is ignored (only Kill ends it);
//! - `oom`: exit 137 with `oom_killed`;
//! - `fail-start`: `start` fails with [`RuntimeError::Start`];
//! - anything else (`sh`, `-c`, ...) is skipped.
//!
//! `exec` (health checks) acts its args out the same way, alone: `sleep`
//! waits (past the timeout it is [`ExecStatus::TimedOut`]), `exit <code>`
//! ends it, running out of words exits 0; its output is `ran: <args>`.
//! [`FakeRuntime::set_exec_exit`] overrides that per container (a check
//! that starts passing or failing), [`FakeRuntime::exec_count`] counts.
//!
//! `exec_session` acts its args out as [`crate::fake_exec`] describes
//! (`cat` echoes stdin, signals end it with 128 + the signal); the
//! terminal sizes a session was given are kept ([`FakeRuntime::exec_sizes`]).
//!
//! When the words run out without an exit the process runs until signalled:
//! Term exits 143, Kill exits 137. So `sh -c 'sleep 1; exit 3'` behaves as in
//! a real container.
//!
//! Images: [`FakeRuntime::add_image`] puts an image "in the registry"; the
//! first `ensure_image` of it counts as a pull, later ones are local. A
//! reference that contains `missing` or was never added fails with
//! [`RuntimeError::Pull`] ("manifest unknown").
//!
//! Like containerd, the state outlives the agent using it: a test that
//! drops an agent and starts another on the same `FakeRuntime` sees its
//! containers as a restarted agent would. Faults: [`FakeRuntime::set_unavailable`]
//! (containerd down: every call fails with [`RuntimeError::Unavailable`]),
//! [`FakeRuntime::exit_now`] (a process dies on its own),
//! [`FakeRuntime::lose_task`] (containerd loses a task), and delays for
//! pulls and creates.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::containerd::spec::process_args;
use crate::{
    ContainerExit, ContainerListing, ContainerRuntime, ContainerSpec, ExecOutcome, ExecStatus,
    ImageConfig, ImageInfo, ImageListing, ProcessState, RegistryAuth, RuntimeError, StopSignal,
};

/// The in-memory runtime. Cheap to clone; clones share state.
#[derive(Clone)]
pub struct FakeRuntime {
    state: Arc<Mutex<State>>,
    /// Moves on every change a containerd event would announce.
    changes: Arc<watch::Sender<u64>>,
}

impl Default for FakeRuntime {
    fn default() -> Self {
        FakeRuntime {
            state: Arc::default(),
            changes: Arc::new(watch::channel(0).0),
        }
    }
}

#[derive(Default)]
struct State {
    /// Images "in the registry", by reference.
    remote: HashMap<String, ImageInfo>,
    /// References pulled already (present locally).
    local: HashMap<String, ImageInfo>,
    /// Pull attempts by reference (failed ones included).
    pulls: HashMap<String, u64>,
    /// How long a pull takes (tokio time).
    pull_delay: Duration,
    /// How long a create takes (tokio time).
    create_delay: Duration,
    /// How long a start waits before it does anything (tokio time).
    start_delay: Duration,
    /// containerd is "down": every call fails with Unavailable.
    unavailable: bool,
    /// Image records: when each local image was "pulled" (tokio-free wall
    /// time) and its size.
    image_meta: HashMap<String, (SystemTime, u64)>,
    /// One lock per reference, so concurrent pulls share one.
    pull_locks: HashMap<String, Arc<tokio::sync::Mutex<()>>>,
    containers: BTreeMap<String, Container>,
    /// Every start, in order, with its (tokio) time.
    starts: Vec<(String, Instant)>,
    /// Scripted exec exit codes by container (overriding the exec's args).
    exec_exits: HashMap<String, i32>,
    /// Execs run, by container.
    exec_counts: HashMap<String, u64>,
    /// Terminal sizes exec sessions were given (initial and resizes), by
    /// container.
    exec_sizes: HashMap<String, Vec<crate::TtySize>>,
    next_pid: u32,
}

impl State {
    fn check_available(&self) -> Result<(), RuntimeError> {
        if self.unavailable {
            Err(RuntimeError::Unavailable(
                "the fake containerd is down".to_string(),
            ))
        } else {
            Ok(())
        }
    }
}

struct Container {
    spec: ContainerSpec,
    words: Vec<String>,
    running: bool,
    pid: Option<u32>,
    /// The exit has been reaped (recorded, task deleted).
    recorded: bool,
    /// The task was lost after it started: no exit will ever be known.
    lost: bool,
    /// Signals to the running script.
    signals: Option<mpsc::UnboundedSender<StopSignal>>,
    /// Every signal `kill` delivered, for assertions.
    signal_log: Vec<StopSignal>,
    exit_tx: watch::Sender<Option<ContainerExit>>,
    /// How many times it was started, and when the latest run began.
    run_starts: u32,
    started_at: Option<SystemTime>,
}

impl FakeRuntime {
    /// A runtime that knows no images.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes `reference` pullable with this config; its digest is derived
    /// from the reference.
    pub fn add_image(&self, reference: &str, config: ImageConfig) {
        let digest = format!("sha256:{:064x}", fnv(reference));
        self.lock().remote.insert(
            reference.to_string(),
            ImageInfo {
                reference: reference.to_string(),
                digest,
                config,
            },
        );
    }

    /// Makes every pull take this long (tokio time).
    pub fn set_pull_delay(&self, delay: Duration) {
        self.lock().pull_delay = delay;
    }

    /// Makes every create take this long (tokio time).
    pub fn set_create_delay(&self, delay: Duration) {
        self.lock().create_delay = delay;
    }

    /// Makes every start wait this long before it does anything (tokio
    /// time): a caller that goes away meanwhile never started it.
    pub fn set_start_delay(&self, delay: Duration) {
        self.lock().start_delay = delay;
    }

    /// Takes the "containerd" down (every call fails with
    /// [`RuntimeError::Unavailable`]; processes keep running) or back up.
    pub fn set_unavailable(&self, down: bool) {
        self.lock().unavailable = down;
        self.bump();
    }

    /// The process of a running container exits with `code` on its own (as
    /// if killed from outside).
    pub fn exit_now(&self, id: &str, code: i32) {
        Self::finish(&self.state, &self.changes, id, code, false);
    }

    /// containerd loses the container's task (its shim died with it): no
    /// exit is known, and the container must never run again.
    pub fn lose_task(&self, id: &str) {
        let mut st = self.lock();
        if let Some(c) = st.containers.get_mut(id) {
            c.running = false;
            c.signals = None;
            c.lost = true;
        }
        drop(st);
        self.bump();
    }

    /// From now on every exec in container `id` exits with `code` at once
    /// (None: execs act out their args again).
    pub fn set_exec_exit(&self, id: &str, code: Option<i32>) {
        let mut st = self.lock();
        match code {
            Some(code) => st.exec_exits.insert(id.to_string(), code),
            None => st.exec_exits.remove(id),
        };
    }

    /// How many execs ran in container `id`.
    pub fn exec_count(&self, id: &str) -> u64 {
        self.lock().exec_counts.get(id).copied().unwrap_or(0)
    }

    /// The terminal sizes exec sessions in container `id` were given
    /// (each session's initial size, then its resizes), in order.
    pub fn exec_sizes(&self, id: &str) -> Vec<crate::TtySize> {
        self.lock().exec_sizes.get(id).cloned().unwrap_or_default()
    }

    /// Images present locally, by reference.
    pub fn local_images(&self) -> Vec<String> {
        let mut v: Vec<String> = self.lock().local.keys().cloned().collect();
        v.sort();
        v
    }

    /// Sets the size an image is listed with (default 1 MiB).
    pub fn set_image_size(&self, reference: &str, size: u64) {
        if let Some(meta) = self.lock().image_meta.get_mut(reference) {
            meta.1 = size;
        }
    }

    fn bump(&self) {
        self.changes.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Pull attempts for `reference` (a local image costs none).
    pub fn pull_count(&self, reference: &str) -> u64 {
        self.lock().pulls.get(reference).copied().unwrap_or(0)
    }

    /// Ids of the containers that exist now (created and not removed).
    pub fn container_ids(&self) -> Vec<String> {
        self.lock().containers.keys().cloned().collect()
    }

    /// Ids of the containers whose process runs now.
    pub fn running_ids(&self) -> Vec<String> {
        let st = self.lock();
        st.containers
            .iter()
            .filter(|(_, c)| c.running)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Every successful start so far, in order, with its tokio time.
    pub fn starts(&self) -> Vec<(String, Instant)> {
        self.lock().starts.clone()
    }

    /// The spec a container was created with.
    pub fn spec(&self, id: &str) -> Option<ContainerSpec> {
        self.lock().containers.get(id).map(|c| c.spec.clone())
    }

    /// The signals delivered to a container, in order.
    pub fn signals(&self, id: &str) -> Vec<StopSignal> {
        self.lock()
            .containers
            .get(id)
            .map(|c| c.signal_log.clone())
            .unwrap_or_default()
    }

    fn finish(
        state: &Arc<Mutex<State>>,
        changes: &watch::Sender<u64>,
        id: &str,
        code: i32,
        oom: bool,
    ) {
        let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(c) = st.containers.get_mut(id) {
            if !c.running {
                return;
            }
            c.running = false;
            c.signals = None;
            c.exit_tx.send_replace(Some(ContainerExit {
                exit_code: code,
                oom_killed: oom,
                exited_at: SystemTime::now(),
            }));
        }
        drop(st);
        changes.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// A stable fake digest.
fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn words(args: &[String]) -> Vec<String> {
    args.iter()
        .flat_map(|a| a.split(|c: char| c.is_whitespace() || c == ';'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Acts out a container's words; returns (exit code, oom killed).
async fn run_script(
    words: Vec<String>,
    mut signals: mpsc::UnboundedReceiver<StopSignal>,
) -> (i32, bool) {
    let mut ignore_term = false;
    let mut i = 0;
    // Waits until `deadline` (None: forever) or a signal that ends the
    // process; returns its exit code if one did.
    async fn until(
        deadline: Option<Instant>,
        ignore_term: bool,
        signals: &mut mpsc::UnboundedReceiver<StopSignal>,
    ) -> Option<i32> {
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                _ = sleep => return None,
                sig = signals.recv() => match sig {
                    Some(StopSignal::Kill) => return Some(137),
                    Some(StopSignal::Term) if !ignore_term => return Some(143),
                    Some(StopSignal::Term) => continue,
                    // The runtime dropped the container: stop acting.
                    None => return Some(137),
                },
            }
        }
    }
    while i < words.len() {
        match words[i].as_str() {
            "sleep" => {
                let secs: f64 = words.get(i + 1).and_then(|w| w.parse().ok()).unwrap_or(0.0);
                i += 1;
                let deadline = Instant::now() + Duration::from_secs_f64(secs.max(0.0));
                if let Some(code) = until(Some(deadline), ignore_term, &mut signals).await {
                    return (code, false);
                }
            }
            "exit" => {
                let code = words.get(i + 1).and_then(|w| w.parse().ok()).unwrap_or(0);
                return (code, false);
            }
            "ignore-sigterm" => ignore_term = true,
            "oom" => return (137, true),
            _ => {}
        }
        i += 1;
    }
    let code = until(None, ignore_term, &mut signals).await.unwrap_or(137);
    (code, false)
}

#[async_trait::async_trait]
impl ContainerRuntime for FakeRuntime {
    async fn ensure_image(
        &self,
        reference: &str,
        _auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let lock = {
            let mut st = self.lock();
            st.check_available()?;
            if let Some(info) = st.local.get(reference) {
                return Ok(info.clone());
            }
            st.pull_locks
                .entry(reference.to_string())
                .or_default()
                .clone()
        };
        let _one_pull = lock.lock().await;
        let delay = {
            let mut st = self.lock();
            if let Some(info) = st.local.get(reference) {
                return Ok(info.clone());
            }
            *st.pulls.entry(reference.to_string()).or_default() += 1;
            st.pull_delay
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut st = self.lock();
        st.check_available()?;
        match st.remote.get(reference).cloned() {
            Some(info) if !reference.contains("missing") => {
                st.local.insert(reference.to_string(), info.clone());
                st.image_meta
                    .insert(reference.to_string(), (SystemTime::now(), 1 << 20));
                Ok(info)
            }
            _ => Err(RuntimeError::Pull {
                reference: reference.to_string(),
                message: "manifest unknown".to_string(),
            }),
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let args = process_args(spec)?;
        let delay = self.lock().create_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut st = self.lock();
        st.check_available()?;
        if !st.local.contains_key(&spec.image.reference) {
            return Err(RuntimeError::Create {
                id: spec.id.clone(),
                message: format!("image {} is not present", spec.image.reference),
            });
        }
        if st.containers.contains_key(&spec.id) {
            return Err(RuntimeError::Create {
                id: spec.id.clone(),
                message: format!("container {} already exists", spec.id),
            });
        }
        let (exit_tx, _) = watch::channel(None);
        st.containers.insert(
            spec.id.clone(),
            Container {
                spec: spec.clone(),
                words: words(&args),
                running: false,
                pid: None,
                recorded: false,
                lost: false,
                signals: None,
                signal_log: Vec::new(),
                exit_tx,
                run_starts: 0,
                started_at: None,
            },
        );
        drop(st);
        self.bump();
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<u32, RuntimeError> {
        let delay = self.lock().start_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut st = self.lock();
        st.check_available()?;
        st.next_pid += 1;
        let pid = 1000 + st.next_pid;
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
        let restart = !c.running && c.recorded && c.exit_tx.borrow().is_some();
        if !restart && (c.running || c.pid.is_some() || c.lost) {
            return Err(RuntimeError::AlreadyStarted { id: id.to_string() });
        }
        if restart {
            c.exit_tx.send_replace(None);
            c.recorded = false;
        }
        c.run_starts += 1;
        c.started_at = Some(SystemTime::now());
        if c.words.iter().any(|w| w == "fail-start") {
            return Err(RuntimeError::Start {
                id: id.to_string(),
                message: "scripted start failure (fail-start)".to_string(),
            });
        }
        let (tx, rx) = mpsc::unbounded_channel();
        c.running = true;
        c.pid = Some(pid);
        c.signals = Some(tx);
        let words = c.words.clone();
        st.starts.push((id.to_string(), Instant::now()));
        drop(st);
        self.bump();
        let state = self.state.clone();
        let changes = self.changes.clone();
        let id_owned = id.to_string();
        tokio::spawn(async move {
            let (code, oom) = run_script(words, rx).await;
            FakeRuntime::finish(&state, &changes, &id_owned, code, oom);
        });
        Ok(pid)
    }

    async fn wait(&self, id: &str) -> Result<ContainerExit, RuntimeError> {
        let mut rx = {
            let st = self.lock();
            st.containers
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?
                .exit_tx
                .subscribe()
        };
        let exit = rx
            .wait_for(|e| e.is_some())
            .await
            .map_err(|_| RuntimeError::NotFound { id: id.to_string() })?;
        exit.clone()
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })
    }

    async fn kill(&self, id: &str, signal: StopSignal) -> Result<(), RuntimeError> {
        let mut st = self.lock();
        st.check_available()?;
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
        c.signal_log.push(signal);
        if let Some(tx) = &c.signals {
            // A send error means the script just ended: already exited.
            let _ = tx.send(signal);
        }
        Ok(())
    }

    async fn reap(&self, id: &str) -> Result<ContainerExit, RuntimeError> {
        let mut st = self.lock();
        st.check_available()?;
        let c = st
            .containers
            .get_mut(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
        if c.running {
            return Err(RuntimeError::Running { id: id.to_string() });
        }
        let exit = c
            .exit_tx
            .borrow()
            .clone()
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
        c.recorded = true;
        Ok(exit)
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        let removed = {
            let mut st = self.lock();
            st.check_available()?;
            st.containers.remove(id)
        };
        if let Some(c) = removed {
            if c.running {
                if let Some(tx) = &c.signals {
                    let _ = tx.send(StopSignal::Kill);
                }
            }
            c.exit_tx.send_if_modified(|e| {
                if e.is_none() {
                    *e = Some(ContainerExit {
                        exit_code: 137,
                        oom_killed: false,
                        exited_at: SystemTime::now(),
                    });
                    true
                } else {
                    false
                }
            });
            self.bump();
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContainerListing>, RuntimeError> {
        let st = self.lock();
        st.check_available()?;
        Ok(st
            .containers
            .iter()
            .map(|(id, c)| {
                let exit = c.exit_tx.borrow().clone();
                let state = match (c.running, c.pid, exit) {
                    (true, Some(pid), _) => ProcessState::Running { pid },
                    (_, _, _) if c.lost => ProcessState::Lost,
                    (false, Some(_), Some(exit)) => ProcessState::Exited {
                        exit,
                        recorded: c.recorded,
                    },
                    (false, Some(_), None) => ProcessState::Lost,
                    _ => ProcessState::NotStarted,
                };
                ContainerListing {
                    id: id.clone(),
                    labels: c.spec.labels.clone(),
                    image: c.spec.image.reference.clone(),
                    state,
                    starts: c.run_starts,
                    started_at: c.started_at,
                }
            })
            .collect())
    }

    async fn exec(
        &self,
        id: &str,
        args: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutcome, RuntimeError> {
        let scripted = {
            let mut st = self.lock();
            st.check_available()?;
            let running = st.containers.get(id).is_some_and(|c| c.running);
            if !running {
                return Err(RuntimeError::NotFound { id: id.to_string() });
            }
            *st.exec_counts.entry(id.to_string()).or_default() += 1;
            st.exec_exits.get(id).copied()
        };
        let output = format!("ran: {}", args.join(" "));
        if let Some(code) = scripted {
            return Ok(ExecOutcome {
                status: ExecStatus::Exited(code),
                output,
            });
        }
        let acted = async {
            let w = words(&args);
            let mut i = 0;
            while i < w.len() {
                match w[i].as_str() {
                    "sleep" => {
                        let secs: f64 = w.get(i + 1).and_then(|x| x.parse().ok()).unwrap_or(0.0);
                        tokio::time::sleep(Duration::from_secs_f64(secs.max(0.0))).await;
                        i += 1;
                    }
                    "exit" => return w.get(i + 1).and_then(|x| x.parse().ok()).unwrap_or(0),
                    _ => {}
                }
                i += 1;
            }
            0
        };
        let status = match tokio::time::timeout(timeout, acted).await {
            Ok(code) => ExecStatus::Exited(code),
            Err(_) => ExecStatus::TimedOut,
        };
        Ok(ExecOutcome { status, output })
    }

    async fn exec_session(
        &self,
        id: &str,
        request: crate::ExecRequest,
    ) -> Result<crate::ExecSession, RuntimeError> {
        let exec_id = {
            let mut st = self.lock();
            st.check_available()?;
            let running = st.containers.get(id).is_some_and(|c| c.running);
            if !running {
                return Err(RuntimeError::NotFound { id: id.to_string() });
            }
            if request.args.is_empty() {
                return Err(RuntimeError::Exec {
                    id: id.to_string(),
                    message: "no command".into(),
                });
            }
            let count = st.exec_counts.entry(id.to_string()).or_default();
            *count += 1;
            let exec_id = format!("fake-exec-{count}");
            if let (true, Some(size)) = (request.tty, request.size) {
                st.exec_sizes.entry(id.to_string()).or_default().push(size);
            }
            exec_id
        };
        let state = self.state.clone();
        let container = id.to_string();
        let on_resize = Box::new(move |size| {
            let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
            st.exec_sizes
                .entry(container.clone())
                .or_default()
                .push(size);
        });
        Ok(crate::fake_exec::start(
            id,
            &exec_id,
            request.args,
            on_resize,
        ))
    }

    async fn list_images(&self) -> Result<Vec<ImageListing>, RuntimeError> {
        let st = self.lock();
        st.check_available()?;
        Ok(st
            .local
            .iter()
            .map(|(reference, info)| {
                let (created_at, size) = st
                    .image_meta
                    .get(reference)
                    .copied()
                    .unwrap_or((SystemTime::UNIX_EPOCH, 0));
                ImageListing {
                    reference: reference.clone(),
                    digest: info.digest.clone(),
                    size,
                    created_at,
                }
            })
            .collect())
    }

    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        let mut st = self.lock();
        st.check_available()?;
        st.local.remove(reference);
        st.image_meta.remove(reference);
        Ok(())
    }

    async fn remove_stray_snapshots(&self) -> Result<Vec<String>, RuntimeError> {
        // The fake keeps no snapshots apart from its containers.
        self.lock().check_available()?;
        Ok(Vec::new())
    }

    fn changes(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

#[cfg(test)]
#[path = "fake_tests.rs"]
mod tests;

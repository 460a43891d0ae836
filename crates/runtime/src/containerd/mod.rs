//! [`ContainerdRuntime`]: the [`ContainerRuntime`] over containerd 1.6's gRPC
//! API, in one containerd namespace per agent.
//!
//! Reading order: [`client`] (connection, namespace header, errors),
//! [`registry_config`] (mirrors, plain HTTP, credentials), [`image`] (pull,
//! unpack, archives, single-flight), [`spec`], [`spec_defaults`] and
//! [`user`]/[`rootfs`] (the OCI spec), [`container`] (create, start),
//! [`logdriver`] (container output into log files through `orca-log-driver`,
//! run by containerd's shim) and its fallback [`logio`] (through FIFOs this
//! process drains), [`task`] (wait, reap, kill, remove, list), [`exec`]
//! (a command inside a running container: health checks), [`exec_session`]
//! (one run interactively: ECS Exec), [`exec_orphans`] (those an earlier
//! process left), [`oom`] (OOM
//! attribution), [`events`] (the event stream as hints), [`cleanup`]
//! (emptying a namespace, stray snapshots, image removal).
//!
//! When containerd is down or restarting, calls fail with
//! [`RuntimeError::Unavailable`] (never a made-up outcome); the channel dials
//! the socket again on the next call, and the event subscription comes back
//! by itself.
//!
//! Every record this runtime creates lives in its namespace: image records,
//! containers (id = the agent's container id), their rootfs snapshots (key =
//! container id) and short-lived leases. Committed layer snapshots (named by
//! chain id) are shared within the namespace.

pub mod cleanup;
pub mod client;
pub mod container;
pub mod content;
pub mod events;
pub mod exec;
pub mod exec_orphans;
pub mod exec_session;
pub mod image;
pub mod logdriver;
pub mod logio;
pub mod oom;
pub mod registry_config;
pub mod rootfs;
pub mod seccomp;
pub mod spec;
pub mod spec_defaults;
pub mod task;
pub mod user;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tracing::Instrument;

pub use registry_config::{RegistriesConfig, RegistryHostConfig};

use crate::{
    ContainerExit, ContainerListing, ContainerRuntime, ContainerSpec, ExecOutcome, ExecRequest,
    ExecSession, ImageInfo, ImageListing, RegistryAuth, RuntimeError, StopSignal,
};

/// How to reach containerd and where this agent's records live.
#[derive(Debug, Clone)]
pub struct ContainerdConfig {
    /// containerd's gRPC socket (`/run/containerd/containerd.sock`).
    pub socket: PathBuf,
    /// The containerd namespace for everything this agent creates: agents
    /// sharing one containerd must use different ones.
    pub namespace: String,
    /// Per-registry mirrors, plain-HTTP permission and credentials.
    pub registries: RegistriesConfig,
    /// The agent's state directory; created at connect. The runtime keeps
    /// its output FIFOs under `io/` there and, at connect, resumes draining
    /// those of running containers: two live runtimes must not share one
    /// (a one-shot tool like `orca image load` uses a scratch directory).
    pub state_dir: PathBuf,
    /// `orca-log-driver`: when set, containerd's shim runs it per container
    /// to append the output to the log file ([`logdriver`]), so containers
    /// never depend on this process. `None` falls back to FIFOs this
    /// process drains ([`logio`]): a container then blocks once ~128 KiB of
    /// output are waiting while the agent is down. Checked at connect (it
    /// must exist; a relative path is resolved then).
    pub log_driver: Option<PathBuf>,
}

/// A suffix that makes scratch names (leases, write refs, extraction keys)
/// unique within this process and across agents sharing containerd.
pub(crate) fn unique_suffix() -> String {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{nanos:09}-{n}", std::process::id())
}

/// The driver binary as an absolute path, if it is an executable file.
fn check_log_driver(path: &Path) -> Result<PathBuf, RuntimeError> {
    use std::os::unix::fs::PermissionsExt;
    let err = |m: String| RuntimeError::Containerd(format!("log driver {}: {m}", path.display()));
    let abs = std::fs::canonicalize(path).map_err(|e| err(e.to_string()))?;
    let meta = std::fs::metadata(&abs).map_err(|e| err(e.to_string()))?;
    if !meta.is_file() || meta.permissions().mode() & 0o111 == 0 {
        return Err(err("not an executable file".into()));
    }
    Ok(abs)
}

/// The containerd-backed runtime.
pub struct ContainerdRuntime {
    /// The connection, scoped to the namespace.
    ctrd: client::Ctrd,
    /// Images: single-flight pulls and local lookups.
    images: image::ImageStore,
    /// Containers containerd reported as OOM-killed.
    oom: Arc<oom::OomWatch>,
    /// Moves on every containerd event of this namespace ([`events`]).
    changes: tokio::sync::watch::Receiver<u64>,
    /// Exits seen, so `wait` answers after the task is deleted.
    exits: task::ExitCache,
    /// FIFOs and copiers carrying container output into log files.
    logs: logio::LogPipes,
    /// The event subscription; aborted on drop.
    events_task: tokio::task::JoinHandle<()>,
    /// Where `logs` keeps its FIFOs.
    state_dir: PathBuf,
    /// The logging driver binary (absolute), if containers use one.
    log_driver: Option<PathBuf>,
    /// Serializes the after-exit work of `wait` and `remove` per container.
    reaps: task::ReapLocks,
}

impl Drop for ContainerdRuntime {
    fn drop(&mut self) {
        self.events_task.abort();
    }
}

impl ContainerdRuntime {
    /// Connects to containerd and starts watching this namespace's OOM events.
    pub async fn connect(config: ContainerdConfig) -> Result<Self, RuntimeError> {
        std::fs::create_dir_all(&config.state_dir).map_err(|e| {
            RuntimeError::Containerd(format!(
                "create state directory {}: {e}",
                config.state_dir.display()
            ))
        })?;
        // reqwest (under oci-client) needs a process-wide TLS provider; an
        // error only means one is installed already.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let log_driver = config
            .log_driver
            .as_deref()
            .map(check_log_driver)
            .transpose()?;
        let ctrd = client::Ctrd::connect(&config.socket, &config.namespace).await?;
        // FIFOs of execs an earlier process was running when it stopped
        // (their processes go with their containers' tasks).
        let _ = std::fs::remove_dir_all(config.state_dir.join("exec"));
        let oom = Arc::new(oom::OomWatch::default());
        let (changes_tx, changes) = tokio::sync::watch::channel(0);
        let events_task = events::watch(ctrd.clone(), oom.clone(), changes_tx);
        let logs = logio::LogPipes::new(&config.state_dir);
        container::reattach_logs(&ctrd, &logs, &oom).await?;
        Ok(Self {
            logs,
            images: image::ImageStore::new(ctrd.clone(), config.registries),
            ctrd,
            oom,
            changes,
            exits: task::ExitCache::default(),
            events_task,
            state_dir: config.state_dir,
            log_driver,
            reaps: task::ReapLocks::default(),
        })
    }

    /// The logging driver containers are started with (see [`logdriver`]);
    /// `None` when output goes through this process's FIFOs.
    pub fn log_driver(&self) -> Option<&Path> {
        self.log_driver.as_deref()
    }

    /// Kills and deletes the exec processes (sessions, health checks) an
    /// earlier runtime in this namespace left running ([`exec_orphans`]).
    /// For the agent at startup, before it runs any exec of its own; never
    /// for a one-shot tool next to a live agent (`orca image load`), which
    /// would end that agent's sessions.
    pub async fn end_orphaned_execs(&self) {
        exec_orphans::end_orphans(&self.ctrd).await
    }

    /// The containerd namespace this runtime works in.
    pub fn namespace(&self) -> &str {
        self.ctrd.namespace()
    }

    /// The state directory given at connect.
    pub fn state_dir(&self) -> &Path {
        &self.state_dir
    }

    /// How many registry pulls were started for `reference` (a present image
    /// and a joined concurrent pull count none).
    pub fn pull_count(&self, reference: &str) -> u64 {
        self.images.pull_count(reference)
    }

    /// Names of every snapshot in this namespace (layers by chain id,
    /// container rootfs by container id): lets callers check cleanup.
    pub async fn snapshot_keys(&self) -> Result<Vec<String>, RuntimeError> {
        cleanup::snapshot_keys(&self.ctrd).await
    }

    /// Removes every container, image, snapshot, lease and blob in this
    /// namespace, then the namespace: for an agent leaving the machine, and
    /// for tests.
    pub async fn purge_namespace(&self) -> Result<(), RuntimeError> {
        cleanup::purge(&self.ctrd, self).await
    }

    /// `err` as [`RuntimeError::Unavailable`] if containerd does not answer
    /// now: an operation that failed because containerd went away must not
    /// be taken for one containerd refused (a pull, create or start failure
    /// ends a task).
    async fn unless_unavailable(&self, err: RuntimeError) -> RuntimeError {
        if err.is_unavailable() {
            return err;
        }
        match self.ctrd.version().version(tonic::Request::new(())).await {
            Err(s) if client::is_unavailable(&s) => RuntimeError::Unavailable(err.to_string()),
            _ => err,
        }
    }

    fn task_state(&self) -> task::State<'_> {
        task::State {
            logs: &self.logs,
            oom: &self.oom,
            exits: &self.exits,
            reaps: &self.reaps,
        }
    }

    /// Loads an OCI image-layout archive (`skopeo copy ... oci-archive:X.tar:REF`)
    /// without a registry; see [`image::archive`] for how images are named.
    pub async fn load_archive(&self, path: &Path) -> Result<Vec<ImageInfo>, RuntimeError> {
        self.images
            .load_archive(path)
            .instrument(tracing::info_span!("load_archive", path = %path.display()))
            .await
    }
}

#[async_trait::async_trait]
impl ContainerRuntime for ContainerdRuntime {
    async fn ensure_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let result = self
            .images
            .ensure(reference, auth)
            .instrument(tracing::info_span!("ensure_image", reference))
            .await;
        match result {
            Err(e) => Err(self.unless_unavailable(e).await),
            ok => ok,
        }
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError> {
        let result = container::create(&self.ctrd, &self.images, spec)
            .instrument(tracing::info_span!("create", container = %spec.id))
            .await;
        match result {
            Err(e) => Err(self.unless_unavailable(e).await),
            ok => ok,
        }
    }

    async fn start(&self, id: &str) -> Result<u32, RuntimeError> {
        self.exits.forget(id);
        self.oom.forget(id);
        let result = container::start(&self.ctrd, &self.logs, self.log_driver.as_deref(), id)
            .instrument(tracing::info_span!("start", container = id))
            .await;
        match result {
            Err(e) => Err(self.unless_unavailable(e).await),
            ok => ok,
        }
    }

    async fn wait(&self, id: &str) -> Result<ContainerExit, RuntimeError> {
        task::wait(&self.ctrd, &self.task_state(), id)
            .instrument(tracing::info_span!("wait", container = id))
            .await
    }

    async fn kill(&self, id: &str, signal: StopSignal) -> Result<(), RuntimeError> {
        task::kill(&self.ctrd, id, signal)
            .instrument(tracing::info_span!("kill", container = id, ?signal))
            .await
    }

    async fn reap(&self, id: &str) -> Result<ContainerExit, RuntimeError> {
        task::reap(&self.ctrd, &self.task_state(), id)
            .instrument(tracing::info_span!("reap", container = id))
            .await
    }

    async fn remove(&self, id: &str) -> Result<(), RuntimeError> {
        task::remove(&self.ctrd, &self.task_state(), id)
            .instrument(tracing::info_span!("remove", container = id))
            .await
    }

    async fn list(&self) -> Result<Vec<ContainerListing>, RuntimeError> {
        task::list(&self.ctrd, &self.oom).await
    }

    async fn exec(
        &self,
        id: &str,
        args: Vec<String>,
        timeout: std::time::Duration,
    ) -> Result<ExecOutcome, RuntimeError> {
        exec::exec(&self.ctrd, &self.state_dir, id, args, timeout)
            .instrument(tracing::debug_span!("exec", container = id))
            .await
    }

    async fn exec_session(
        &self,
        id: &str,
        request: ExecRequest,
    ) -> Result<ExecSession, RuntimeError> {
        exec_session::open(&self.ctrd, &self.state_dir, id, request)
            .instrument(tracing::debug_span!("exec_session", container = id))
            .await
    }

    async fn list_images(&self) -> Result<Vec<ImageListing>, RuntimeError> {
        image::list(&self.ctrd).await
    }

    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError> {
        cleanup::remove_image(&self.ctrd, reference)
            .instrument(tracing::info_span!("remove_image", reference))
            .await
    }

    async fn remove_stray_snapshots(&self) -> Result<Vec<String>, RuntimeError> {
        cleanup::remove_stray_snapshots(&self.ctrd).await
    }

    fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.clone()
    }
}

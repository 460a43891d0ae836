//! Running a command inside a running container (health checks): Tasks
//! `Exec` with a process spec taken from the container's own OCI spec
//! (same user, environment, working directory, capabilities and rlimits;
//! only the args differ), then `Start`, `Wait` on the exec process (killed
//! past its timeout), and `DeleteProcess`.
//!
//! Output comes back through two FIFOs under `<state_dir>/exec/<exec id>/`,
//! read by this process into one bounded buffer. The shim opens their write
//! ends when it starts the process, possibly after `Start` returned, so a
//! read that finds no writer means "not yet" until the process has exited;
//! after the exit the writer has been opened (before the process ran) and
//! EOF is real. A background child that keeps stdout open does not hold the
//! check up: the readers get [`DRAIN_LIMIT`] after the exit.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use containerd_client::services::v1::{
    DeleteProcessRequest, ExecProcessRequest, GetContainerRequest, KillRequest, StartRequest,
    WaitRequest,
};
use tokio::io::AsyncReadExt;
use tokio::sync::watch;

use super::client::{is_not_found, status_error, status_message, Ctrd};
use super::logio;
use crate::{truncate_output, ExecOutcome, ExecStatus, RuntimeError, EXEC_OUTPUT_LIMIT};

/// What containerd calls an OCI process spec inside an `Any`.
pub const PROCESS_TYPE_URL: &str = "types.containerd.io/opencontainers/runtime-spec/1/Process";

/// How every exec id this runtime makes begins: a restarted agent ends the
/// ones its predecessor left ([`super::exec_orphans`]).
pub const EXEC_ID_PREFIX: &str = "orca-exec-";

/// How long the output readers may take after the exit.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// How long a killed exec process may take to be reaped.
const KILL_WAIT_LIMIT: Duration = Duration::from_secs(5);

/// The exec process spec: the container's process with `args`, no terminal.
pub fn process_spec(container_spec: &[u8], args: &[String]) -> Result<serde_json::Value, String> {
    let spec: serde_json::Value =
        serde_json::from_slice(container_spec).map_err(|e| format!("decode the spec: {e}"))?;
    let mut process = spec
        .get("process")
        .cloned()
        .ok_or_else(|| "the container's spec has no process".to_string())?;
    let obj = process
        .as_object_mut()
        .ok_or_else(|| "the container's process is not an object".to_string())?;
    obj.insert("args".into(), serde_json::json!(args));
    obj.insert("terminal".into(), serde_json::Value::Bool(false));
    // A console size only goes with a terminal.
    obj.remove("consoleSize");
    Ok(process)
}

/// Runs `args` in container `id` (see [`crate::ContainerRuntime::exec`]).
pub async fn exec(
    ctrd: &Ctrd,
    state_dir: &Path,
    id: &str,
    args: Vec<String>,
    timeout: Duration,
) -> Result<ExecOutcome, RuntimeError> {
    let exec_err = |message: String| RuntimeError::Exec {
        id: id.to_string(),
        message,
    };
    if args.is_empty() {
        return Err(exec_err("no command".into()));
    }
    let spec = container_spec(ctrd, id).await?;
    let process = process_spec(&spec, &args).map_err(exec_err)?;
    let exec_id = format!("{EXEC_ID_PREFIX}{}", super::unique_suffix());
    let dir = state_dir.join("exec").join(&exec_id);
    let fifos = Fifos::make(&dir).map_err(exec_err)?;
    let outcome = run(ctrd, id, &exec_id, process, fifos, timeout).await;
    // The process is deleted whatever happened (closing the shim's side of
    // the FIFOs); a process never created is not an error here.
    match ctrd
        .tasks()
        .delete_process(ctrd.req(DeleteProcessRequest {
            container_id: id.to_string(),
            exec_id: exec_id.clone(),
        }))
        .await
    {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) => {
            tracing::warn!(container = id, exec = %exec_id, error = %status_message(&s), "could not delete an exec process")
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

/// The OCI spec container `id` was created with (its JSON bytes).
pub(super) async fn container_spec(ctrd: &Ctrd, id: &str) -> Result<Vec<u8>, RuntimeError> {
    let container = ctrd
        .containers()
        .get(ctrd.req(GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(|s| {
            if is_not_found(&s) {
                RuntimeError::NotFound { id: id.to_string() }
            } else {
                status_error(&format!("get container {id}"), s)
            }
        })?
        .into_inner()
        .container
        .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
    container
        .spec
        .map(|spec| spec.value)
        .ok_or_else(|| RuntimeError::Exec {
            id: id.to_string(),
            message: "the container record has no spec".into(),
        })
}

/// The two FIFOs of one exec, read ends open.
struct Fifos {
    stdout: PathBuf,
    stderr: PathBuf,
    receivers: Vec<tokio::net::unix::pipe::Receiver>,
}

impl Fifos {
    fn make(dir: &Path) -> Result<Fifos, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
        let mut receivers = Vec::new();
        for fifo in [&stdout, &stderr] {
            logio::mkfifo(fifo).map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
            receivers.push(logio::open(fifo)?);
        }
        Ok(Fifos {
            stdout,
            stderr,
            receivers,
        })
    }
}

async fn run(
    ctrd: &Ctrd,
    id: &str,
    exec_id: &str,
    process: serde_json::Value,
    fifos: Fifos,
    timeout: Duration,
) -> Result<ExecOutcome, RuntimeError> {
    let exec_err = |message: String| RuntimeError::Exec {
        id: id.to_string(),
        message,
    };
    let classify = |what: &str, s: tonic::Status| {
        if is_not_found(&s) {
            RuntimeError::NotFound { id: id.to_string() }
        } else if super::client::is_unavailable(&s) {
            RuntimeError::Unavailable(format!("{what}: {}", status_message(&s)))
        } else {
            exec_err(format!("{what}: {}", status_message(&s)))
        }
    };
    let value = serde_json::to_vec(&process).map_err(|e| exec_err(format!("encode: {e}")))?;
    ctrd.tasks()
        .exec(ctrd.req(ExecProcessRequest {
            container_id: id.to_string(),
            stdin: String::new(),
            stdout: fifos.stdout.display().to_string(),
            stderr: fifos.stderr.display().to_string(),
            terminal: false,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.to_string(),
                value,
            }),
            exec_id: exec_id.to_string(),
        }))
        .await
        .map_err(|s| classify("exec", s))?;
    let buffer = Arc::new(Mutex::new(Vec::new()));
    let (exited_tx, exited_rx) = watch::channel(false);
    let readers: Vec<_> = fifos
        .receivers
        .into_iter()
        .map(|r| tokio::spawn(read_into(r, buffer.clone(), exited_rx.clone())))
        .collect();
    let started = ctrd
        .tasks()
        .start(ctrd.req(StartRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        }))
        .await;
    if let Err(s) = started {
        for r in &readers {
            r.abort();
        }
        return Err(classify("start", s));
    }
    let wait = || {
        let request = ctrd.req(WaitRequest {
            container_id: id.to_string(),
            exec_id: exec_id.to_string(),
        });
        let mut tasks = ctrd.tasks();
        async move { tasks.wait(request).await }
    };
    let status = match tokio::time::timeout(timeout, wait()).await {
        Ok(Ok(r)) => ExecStatus::Exited(i32::try_from(r.into_inner().exit_status).unwrap_or(-1)),
        Ok(Err(s)) => {
            for r in &readers {
                r.abort();
            }
            return Err(classify("wait", s));
        }
        Err(_) => {
            tracing::debug!(
                container = id,
                exec = exec_id,
                ?timeout,
                "exec timed out; killing it"
            );
            let killed = ctrd
                .tasks()
                .kill(ctrd.req(KillRequest {
                    container_id: id.to_string(),
                    exec_id: exec_id.to_string(),
                    signal: u32::try_from(libc::SIGKILL).unwrap_or(9),
                    all: false,
                }))
                .await;
            if let Err(s) = killed {
                tracing::warn!(container = id, exec = exec_id, error = %status_message(&s), "could not kill a timed-out exec");
            }
            // Reaped before it is deleted (delete refuses a running one).
            let _ = tokio::time::timeout(KILL_WAIT_LIMIT, wait()).await;
            ExecStatus::TimedOut
        }
    };
    let _ = exited_tx.send(true);
    for r in readers {
        let abort = r.abort_handle();
        if tokio::time::timeout(DRAIN_LIMIT, r).await.is_err() {
            abort.abort();
        }
    }
    let bytes = buffer.lock().unwrap_or_else(|p| p.into_inner()).clone();
    Ok(ExecOutcome {
        status,
        output: truncate_output(&bytes, EXEC_OUTPUT_LIMIT),
    })
}

/// Appends what arrives on one FIFO to `buffer` (up to the limit; the rest
/// is read and dropped so the process never blocks on a full pipe).
async fn read_into(
    mut from: tokio::net::unix::pipe::Receiver,
    buffer: Arc<Mutex<Vec<u8>>>,
    mut exited: watch::Receiver<bool>,
) {
    let mut chunk = [0u8; 1024];
    loop {
        match from.read(&mut chunk).await {
            Ok(0) => {
                if *exited.borrow() {
                    return;
                }
                // No writer yet (or any more): look again shortly, or
                // once the exit is known.
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(10)) => {}
                    _ = exited.changed() => {}
                }
            }
            Ok(n) => {
                let mut b = buffer.lock().unwrap_or_else(|p| p.into_inner());
                let room = EXEC_OUTPUT_LIMIT.saturating_sub(b.len());
                b.extend_from_slice(&chunk[..n.min(room)]);
            }
            Err(_) => return,
        }
    }
}

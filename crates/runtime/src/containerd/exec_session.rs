//! Interactive exec sessions on containerd (see [`crate::exec_session`]):
//! Tasks `Exec` with FIFOs for stdin and output under
//! `<state_dir>/exec/<exec id>/`, then `Start`; a driver task per session
//! turns [`ExecInput`] into FIFO writes, `CloseIO`, `ResizePty` and `Kill`,
//! waits for the exit, drains the output, deletes the process and removes
//! the FIFOs.
//!
//! stdin: the shim holds a write end of the stdin FIFO itself (so a client
//! may come and go), hence EOF needs both our write end closed and
//! `CloseIO`. Ours is opened read-write so opening never fails for want of
//! a reader (the shim opens its read end at `Start`). Writes go through a
//! task of their own: a process that never reads its stdin blocks that
//! task, never the driver, so resizes, signals and the exit still get
//! through.
//!
//! Output: read as the health-check exec reads it ([`super::exec`]): a read
//! that finds no writer means "not yet" until the exit; after the exit, EOF
//! is real and the readers get [`DRAIN_LIMIT`] to finish.

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Bytes;
use containerd_client::services::v1::{
    CloseIoRequest, DeleteProcessRequest, ExecProcessRequest, KillRequest, ResizePtyRequest,
    StartRequest, WaitRequest,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

use super::client::{is_not_found, is_unavailable, status_message, Ctrd};
use super::exec::{container_spec, process_spec, EXEC_ID_PREFIX, PROCESS_TYPE_URL};
use super::logio;
use crate::exec_session::{channels, SessionEnds};
use crate::{ExecInput, ExecOutput, ExecRequest, ExecSession, RuntimeError, TtySize};

/// How long the output readers may take after the exit.
const DRAIN_LIMIT: Duration = Duration::from_secs(1);

/// How many stdin writes may wait for a process that does not read.
const STDIN_QUEUE: usize = 16;

/// The exec process spec of a session: the container's process with the
/// request's args, terminal, environment and user.
pub fn session_process(
    container_spec: &[u8],
    request: &ExecRequest,
) -> Result<serde_json::Value, String> {
    let mut process = process_spec(container_spec, &request.args)?;
    let obj = process
        .as_object_mut()
        .ok_or_else(|| "the container's process is not an object".to_string())?;
    obj.insert("terminal".into(), serde_json::Value::Bool(request.tty));
    if let (true, Some(size)) = (request.tty, request.size) {
        obj.insert(
            "consoleSize".into(),
            serde_json::json!({"height": size.rows, "width": size.cols}),
        );
    }
    let mut env: Vec<String> = obj
        .get("env")
        .and_then(|e| serde_json::from_value(e.clone()).ok())
        .unwrap_or_default();
    let mut extra = request.env.clone();
    let has_term =
        extra.iter().any(|(k, _)| k == "TERM") || env.iter().any(|e| e.starts_with("TERM="));
    if request.tty && !has_term {
        extra.push(("TERM".into(), "xterm".into()));
    }
    for (key, value) in extra {
        if key.is_empty() || key.contains('=') || key.contains('\0') || value.contains('\0') {
            return Err(format!("invalid environment variable name {key:?}"));
        }
        let prefix = format!("{key}=");
        env.retain(|e| !e.starts_with(&prefix));
        env.push(format!("{key}={value}"));
    }
    obj.insert("env".into(), serde_json::json!(env));
    if let Some(user) = &request.user {
        obj.insert("user".into(), numeric_user(user)?);
    }
    Ok(process)
}

/// `uid` or `uid:gid` as an OCI user (a name would need the image's
/// account files, which a running container's user already came from).
fn numeric_user(user: &str) -> Result<serde_json::Value, String> {
    let bad = || format!("exec user {user:?} is not uid or uid:gid");
    let (uid, gid) = match user.split_once(':') {
        Some((u, g)) => (u, g),
        None => (user, "0"),
    };
    let uid: u32 = uid.parse().map_err(|_| bad())?;
    let gid: u32 = gid.parse().map_err(|_| bad())?;
    Ok(serde_json::json!({"uid": uid, "gid": gid}))
}

/// Starts `request` in container `id` (see
/// [`crate::ContainerRuntime::exec_session`]).
pub async fn open(
    ctrd: &Ctrd,
    state_dir: &Path,
    id: &str,
    request: ExecRequest,
) -> Result<ExecSession, RuntimeError> {
    let exec_err = |message: String| RuntimeError::Exec {
        id: id.to_string(),
        message,
    };
    if request.args.is_empty() {
        return Err(exec_err("no command".into()));
    }
    let spec = container_spec(ctrd, id).await?;
    let process = session_process(&spec, &request).map_err(exec_err)?;
    let exec_id = format!("{EXEC_ID_PREFIX}{}", super::unique_suffix());
    let dir = state_dir.join("exec").join(&exec_id);
    let proc = Proc {
        ctrd: ctrd.clone(),
        id: id.to_string(),
        exec_id: exec_id.clone(),
        dir: Some(dir),
    };
    match start(&proc, process, &request).await {
        Ok(started) => {
            let (session, ends) = channels(id, &exec_id);
            tokio::spawn(drive(proc, request.tty, started, ends));
            Ok(session)
        }
        Err(e) => {
            proc.delete().await;
            Err(e)
        }
    }
}

/// One exec process: what every call about it names.
pub(super) struct Proc {
    pub ctrd: Ctrd,
    /// The container.
    pub id: String,
    pub exec_id: String,
    /// Its FIFOs' directory, if this process made them.
    pub dir: Option<PathBuf>,
}

/// An output FIFO and how its chunks are tagged.
type OutputPipe = (pipe::Receiver, fn(Bytes) -> ExecOutput);

/// A started process's pipes.
struct Started {
    stdin: pipe::Sender,
    /// stdout, then stderr when there is no terminal.
    outputs: Vec<OutputPipe>,
}

impl Proc {
    fn classify(&self, what: &str, s: tonic::Status) -> RuntimeError {
        if is_not_found(&s) {
            RuntimeError::NotFound {
                id: self.id.clone(),
            }
        } else if is_unavailable(&s) {
            RuntimeError::Unavailable(format!("{what}: {}", status_message(&s)))
        } else {
            RuntimeError::Exec {
                id: self.id.clone(),
                message: format!("{what}: {}", status_message(&s)),
            }
        }
    }

    pub async fn kill(&self, signal: i32) {
        let Ok(signal) = u32::try_from(signal) else {
            tracing::debug!(exec = %self.exec_id, signal, "not a signal number");
            return;
        };
        let killed = self
            .ctrd
            .tasks()
            .kill(self.ctrd.req(KillRequest {
                container_id: self.id.clone(),
                exec_id: self.exec_id.clone(),
                signal,
                all: false,
            }))
            .await;
        if let Err(s) = killed {
            tracing::debug!(container = %self.id, exec = %self.exec_id, signal, error = %status_message(&s), "could not signal an exec process");
        }
    }

    async fn resize(&self, size: TtySize) {
        let resized = self
            .ctrd
            .tasks()
            .resize_pty(self.ctrd.req(ResizePtyRequest {
                container_id: self.id.clone(),
                exec_id: self.exec_id.clone(),
                width: u32::from(size.cols),
                height: u32::from(size.rows),
            }))
            .await;
        if let Err(s) = resized {
            tracing::debug!(container = %self.id, exec = %self.exec_id, error = %status_message(&s), "could not resize an exec terminal");
        }
    }

    async fn close_stdin(&self) {
        let closed = self
            .ctrd
            .tasks()
            .close_io(self.ctrd.req(CloseIoRequest {
                container_id: self.id.clone(),
                exec_id: self.exec_id.clone(),
                stdin: true,
            }))
            .await;
        if let Err(s) = closed {
            tracing::debug!(container = %self.id, exec = %self.exec_id, error = %status_message(&s), "could not close an exec's stdin");
        }
    }

    /// Deletes the process (closing the shim's side of the FIFOs) and the
    /// FIFOs; a process never created is not an error here.
    pub async fn delete(&self) {
        let deleted = self
            .ctrd
            .tasks()
            .delete_process(self.ctrd.req(DeleteProcessRequest {
                container_id: self.id.clone(),
                exec_id: self.exec_id.clone(),
            }))
            .await;
        match deleted {
            Ok(_) => {}
            Err(s) if is_not_found(&s) => {}
            Err(s) => {
                tracing::warn!(container = %self.id, exec = %self.exec_id, error = %status_message(&s), "could not delete an exec process")
            }
        }
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// Makes the FIFOs, creates the process and starts it.
async fn start(
    proc: &Proc,
    process: serde_json::Value,
    request: &ExecRequest,
) -> Result<Started, RuntimeError> {
    let exec_err = |message: String| RuntimeError::Exec {
        id: proc.id.clone(),
        message,
    };
    let Some(dir) = &proc.dir else {
        return Err(exec_err("no directory for the FIFOs".into()));
    };
    std::fs::create_dir_all(dir).map_err(|e| exec_err(format!("create {}: {e}", dir.display())))?;
    let fifo = |name: &str| -> Result<PathBuf, RuntimeError> {
        let path = dir.join(name);
        logio::mkfifo(&path).map_err(|e| exec_err(format!("mkfifo {}: {e}", path.display())))?;
        Ok(path)
    };
    let stdin_path = fifo("stdin")?;
    let stdin = pipe::OpenOptions::new()
        .read_write(true)
        .open_sender(&stdin_path)
        .map_err(|e| exec_err(format!("open {}: {e}", stdin_path.display())))?;
    let stdout_path = fifo("stdout")?;
    let mut outputs: Vec<OutputPipe> = vec![(
        logio::open(&stdout_path).map_err(exec_err)?,
        ExecOutput::Stdout,
    )];
    // A terminal has one output; containerd refuses a stderr beside it.
    let stderr_path = if request.tty {
        String::new()
    } else {
        let path = fifo("stderr")?;
        outputs.push((logio::open(&path).map_err(exec_err)?, ExecOutput::Stderr));
        path.display().to_string()
    };
    let value = serde_json::to_vec(&process).map_err(|e| exec_err(format!("encode: {e}")))?;
    proc.ctrd
        .tasks()
        .exec(proc.ctrd.req(ExecProcessRequest {
            container_id: proc.id.clone(),
            stdin: stdin_path.display().to_string(),
            stdout: stdout_path.display().to_string(),
            stderr: stderr_path,
            terminal: request.tty,
            spec: Some(prost_types::Any {
                type_url: PROCESS_TYPE_URL.to_string(),
                value,
            }),
            exec_id: proc.exec_id.clone(),
        }))
        .await
        .map_err(|s| proc.classify("exec", s))?;
    proc.ctrd
        .tasks()
        .start(proc.ctrd.req(StartRequest {
            container_id: proc.id.clone(),
            exec_id: proc.exec_id.clone(),
        }))
        .await
        .map_err(|s| proc.classify("start", s))?;
    // runc may not apply consoleSize to an exec: set it again on the pty.
    if let (true, Some(size)) = (request.tty, request.size) {
        proc.resize(size).await;
    }
    Ok(Started { stdin, outputs })
}

/// What the stdin task is asked to do.
enum StdinOp {
    Write(Bytes),
    Close,
}

/// Runs one session from its start to its exit (see the module docs).
async fn drive(proc: Proc, tty: bool, started: Started, ends: SessionEnds) {
    let SessionEnds {
        mut input,
        output,
        exit: mut exit_tx,
    } = ends;
    let (exited_tx, exited_rx) = watch::channel(false);
    let readers: Vec<JoinHandle<()>> = started
        .outputs
        .into_iter()
        .map(|(from, tag)| tokio::spawn(forward(from, tag, output.clone(), exited_rx.clone())))
        .collect();
    // Only the readers hold the output channel: it ends when they do.
    drop(output);
    let (stdin_tx, stdin_rx) = mpsc::channel(STDIN_QUEUE);
    let stdin_task = tokio::spawn(write_stdin(
        proc.ctrd.clone(),
        proc.id.clone(),
        proc.exec_id.clone(),
        started.stdin,
        stdin_rx,
    ));
    let mut wait = {
        let (tx, rx) = oneshot::channel();
        let request = proc.ctrd.req(WaitRequest {
            container_id: proc.id.clone(),
            exec_id: proc.exec_id.clone(),
        });
        let mut tasks = proc.ctrd.tasks();
        tokio::spawn(async move {
            let _ = tx.send(tasks.wait(request).await);
        });
        rx
    };
    let mut input_open = true;
    let mut abandoned = false;
    let waited = loop {
        tokio::select! {
            waited = &mut wait => break waited,
            msg = input.recv(), if input_open => {
                let op = match msg {
                    Some(ExecInput::Stdin(bytes)) => Some(StdinOp::Write(bytes)),
                    Some(ExecInput::CloseStdin) => Some(StdinOp::Close),
                    Some(ExecInput::Resize(size)) => {
                        if tty {
                            proc.resize(size).await;
                        }
                        None
                    }
                    Some(ExecInput::Signal(signal)) => {
                        proc.kill(signal).await;
                        None
                    }
                    // Every sender is gone: the client has no more input.
                    None => {
                        input_open = false;
                        Some(StdinOp::Close)
                    }
                };
                if let Some(op) = op {
                    // A full queue (the process does not read) must not
                    // keep the exit or an abandonment from being seen.
                    tokio::select! {
                        _ = stdin_tx.send(op) => {}
                        waited = &mut wait => break waited,
                        _ = exit_tx.closed(), if !abandoned => {
                            tracing::debug!(container = %proc.id, exec = %proc.exec_id, "exec session abandoned; killing it");
                            proc.kill(libc::SIGKILL).await;
                            break (&mut wait).await;
                        }
                    }
                }
            }
            _ = exit_tx.closed(), if !abandoned => {
                abandoned = true;
                tracing::debug!(container = %proc.id, exec = %proc.exec_id, "exec session abandoned; killing it");
                proc.kill(libc::SIGKILL).await;
            }
        }
    };
    let result = match waited {
        Ok(Ok(r)) => Ok(i32::try_from(r.into_inner().exit_status).unwrap_or(-1)),
        Ok(Err(s)) => Err(proc.classify("wait", s)),
        Err(_) => Err(RuntimeError::Exec {
            id: proc.id.clone(),
            message: "the wait for the exec process was dropped".into(),
        }),
    };
    stdin_task.abort();
    let _ = exited_tx.send(true);
    for reader in readers {
        let abort = reader.abort_handle();
        if tokio::time::timeout(DRAIN_LIMIT, reader).await.is_err() {
            abort.abort();
        }
    }
    proc.delete().await;
    let _ = exit_tx.send(result);
}

/// Writes stdin as asked; `Close` closes our write end, then has the shim
/// close its own (`CloseIO`), which the process reads as EOF after the
/// bytes already in the pipe.
async fn write_stdin(
    ctrd: Ctrd,
    id: String,
    exec_id: String,
    stdin: pipe::Sender,
    mut ops: mpsc::Receiver<StdinOp>,
) {
    let mut stdin = Some(stdin);
    while let Some(op) = ops.recv().await {
        match op {
            StdinOp::Write(bytes) => {
                if let Some(pipe) = stdin.as_mut() {
                    if pipe.write_all(&bytes).await.is_err() {
                        stdin = None;
                    }
                }
            }
            StdinOp::Close => {
                if stdin.take().is_some() {
                    let proc = Proc {
                        ctrd: ctrd.clone(),
                        id: id.clone(),
                        exec_id: exec_id.clone(),
                        dir: None,
                    };
                    proc.close_stdin().await;
                }
            }
        }
    }
}

/// Sends what arrives on one FIFO to `to`, tagged by `tag`. Keeps reading
/// (and dropping) if the receiver is gone, so the process never blocks on
/// a full pipe for want of a reader.
async fn forward(
    mut from: pipe::Receiver,
    tag: fn(Bytes) -> ExecOutput,
    to: mpsc::Sender<ExecOutput>,
    mut exited: watch::Receiver<bool>,
) {
    let mut chunk = vec![0u8; 16 * 1024];
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
                let _ = to.send(tag(Bytes::copy_from_slice(&chunk[..n]))).await;
            }
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "process": {
                "args": ["sleep", "100"],
                "env": ["PATH=/bin", "A=1"],
                "cwd": "/work",
                "user": {"uid": 1000, "gid": 1000, "additionalGids": [10]},
                "terminal": false,
            }
        }))
        .unwrap_or_default()
    }

    fn request(tty: bool) -> ExecRequest {
        ExecRequest {
            args: vec!["sh".into()],
            tty,
            ..ExecRequest::default()
        }
    }

    #[test]
    fn keeps_the_containers_process_but_the_args() -> Result<(), String> {
        let p = session_process(&spec(), &request(false))?;
        assert_eq!(p["args"], serde_json::json!(["sh"]));
        assert_eq!(p["cwd"], "/work");
        assert_eq!(p["user"]["uid"], 1000);
        assert_eq!(p["terminal"], false);
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "A=1"]));
        assert!(p.get("consoleSize").is_none());
        Ok(())
    }

    #[test]
    fn a_terminal_gets_its_size_and_a_term() -> Result<(), String> {
        let mut r = request(true);
        r.size = Some(TtySize {
            rows: 30,
            cols: 100,
        });
        let p = session_process(&spec(), &r)?;
        assert_eq!(p["terminal"], true);
        assert_eq!(
            p["consoleSize"],
            serde_json::json!({"height": 30, "width": 100})
        );
        assert_eq!(
            p["env"],
            serde_json::json!(["PATH=/bin", "A=1", "TERM=xterm"])
        );
        Ok(())
    }

    #[test]
    fn env_and_user_override() -> Result<(), String> {
        let mut r = request(false);
        r.env = vec![("A".into(), "2".into()), ("B".into(), "x=y".into())];
        r.user = Some("0:5".into());
        let p = session_process(&spec(), &r)?;
        assert_eq!(p["env"], serde_json::json!(["PATH=/bin", "A=2", "B=x=y"]));
        assert_eq!(p["user"], serde_json::json!({"uid": 0, "gid": 5}));
        r.user = Some("root".into());
        assert!(session_process(&spec(), &r).is_err());
        r.user = None;
        r.env = vec![("A=B".into(), "1".into())];
        assert!(session_process(&spec(), &r).is_err());
        Ok(())
    }
}

//! Interactive exec sessions (`orca execute-command`, ECS Exec): a command
//! run inside a running container with its stdin, stdout and stderr
//! streamed, optionally on a terminal, until it exits.
//!
//! [`crate::ContainerRuntime::exec_session`] starts the process and hands
//! back an [`ExecSession`] of three independent ends, so a caller can move
//! each into its own task (the agent's gRPC stream has one per direction):
//! - `input`: [`ExecInput`] messages (stdin bytes, stdin EOF, terminal
//!   resizes, signals). Dropping every sender counts as stdin EOF.
//! - `output`: [`ExecOutput`] chunks as they arrive; with a terminal there
//!   is only stdout (the terminal merges both streams, as `docker exec -t`).
//!   It ends (`None`) once the process has exited and its output is drained.
//! - `exit`: [`ExecExit::wait`] resolves after `output` has ended, with the
//!   exit code. Dropping it before the exit kills the process (SIGKILL): a
//!   session nobody waits for must not outlive its client.
//!
//! Exit codes follow `docker exec`: the process's own code, or 128 + the
//! signal number when a signal ended it (SIGINT 130, SIGKILL 137, SIGTERM
//! 143). A command that cannot be started at all (no such executable) is an
//! error of `exec_session` itself ([`RuntimeError::Exec`]), not an exit code.
//!
//! The output channel is bounded: a consumer that stops reading stops the
//! process at its next write once the pipes fill (backpressure, as a slow
//! terminal would).

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::RuntimeError;

/// How many input messages and output chunks may wait in each channel.
pub const EXEC_CHANNEL_CAPACITY: usize = 64;

/// A terminal's size in character cells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtySize {
    pub rows: u16,
    pub cols: u16,
}

/// What to run and how.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExecRequest {
    /// The command and its arguments (see `orca_core::command_line` for how
    /// ECS's `--command` string becomes these). Must not be empty.
    pub args: Vec<String>,
    /// Run on a pseudo-terminal: one merged output stream, line editing
    /// and job control in the container, Ctrl-C sent as a byte.
    pub tty: bool,
    /// `KEY=value` pairs added to the container's own environment (a key
    /// given here wins). With `tty`, `TERM=xterm` is added unless set, as
    /// `docker exec -t` does.
    pub env: Vec<(String, String)>,
    /// Run as `uid` or `uid:gid` instead of the container's user.
    pub user: Option<String>,
    /// The terminal's size at the start (only with `tty`).
    pub size: Option<TtySize>,
}

/// A message from the client to the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    /// Bytes for the process's stdin (or the terminal's input).
    Stdin(Bytes),
    /// No more stdin: the process reads EOF once it has read what was sent.
    CloseStdin,
    /// The client's terminal changed size (ignored without a terminal).
    Resize(TtySize),
    /// Deliver this signal (a Linux signal number) to the process: how
    /// Ctrl-C reaches a command that runs without a terminal.
    Signal(i32),
}

/// A chunk of the process's output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Bytes),
    Stderr(Bytes),
}

/// A running exec process (see the module documentation).
#[derive(Debug)]
pub struct ExecSession {
    /// The exec process's id within its container (for logs).
    pub exec_id: String,
    pub input: mpsc::Sender<ExecInput>,
    pub output: mpsc::Receiver<ExecOutput>,
    pub exit: ExecExit,
}

/// Resolves to the exec process's exit code.
#[derive(Debug)]
pub struct ExecExit {
    /// The container, for the error when the session is lost.
    container_id: String,
    rx: oneshot::Receiver<Result<i32, RuntimeError>>,
}

impl ExecExit {
    /// The exit code once the process has exited and its output has been
    /// delivered; an error if containerd failed to tell.
    pub async fn wait(self) -> Result<i32, RuntimeError> {
        match self.rx.await {
            Ok(result) => result,
            // The driver went away without an answer (its runtime shut down).
            Err(_) => Err(RuntimeError::Exec {
                id: self.container_id,
                message: "the exec session ended without an exit status".into(),
            }),
        }
    }
}

/// The runtime's ends of a new session's channels.
pub(crate) struct SessionEnds {
    pub input: mpsc::Receiver<ExecInput>,
    pub output: mpsc::Sender<ExecOutput>,
    pub exit: oneshot::Sender<Result<i32, RuntimeError>>,
}

/// A session for `exec_id` in `container_id` and the ends its driver keeps.
pub(crate) fn channels(container_id: &str, exec_id: &str) -> (ExecSession, SessionEnds) {
    let (input_tx, input_rx) = mpsc::channel(EXEC_CHANNEL_CAPACITY);
    let (output_tx, output_rx) = mpsc::channel(EXEC_CHANNEL_CAPACITY);
    let (exit_tx, exit_rx) = oneshot::channel();
    (
        ExecSession {
            exec_id: exec_id.to_string(),
            input: input_tx,
            output: output_rx,
            exit: ExecExit {
                container_id: container_id.to_string(),
                rx: exit_rx,
            },
        },
        SessionEnds {
            input: input_rx,
            output: output_tx,
            exit: exit_tx,
        },
    )
}

/// The exit code of a process that a signal ended, as Docker reports it.
pub fn signal_exit_code(signal: i32) -> i32 {
    128 + signal
}

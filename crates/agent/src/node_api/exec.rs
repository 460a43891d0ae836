//! `orca.v1.NodeExec/Exec`: a command in one of this node's running
//! containers, for a controller that checked the caller's request
//! (`orca execute-command`). The task must be assigned here and wanted
//! running; the container is the one the task's definition places at the
//! given index. The session is the runtime's (`exec_session`): input
//! forwarded as it comes, output streamed, the exit code last; the client
//! going away ends the process.

use std::pin::Pin;

use futures::Stream;
use orca_api::v1::{self, exec_client_message, exec_server_message};
use orca_core::task::TaskStatus;
use orca_runtime::{ExecInput, ExecOutput, ExecRequest, TtySize};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Status, Streaming};

use super::NodeState;

pub type ExecStream = Pin<Box<dyn Stream<Item = Result<v1::ExecServerMessage, Status>> + Send>>;

fn size(s: Option<v1::TtySize>) -> Option<TtySize> {
    s.map(|s| TtySize {
        rows: u16::try_from(s.rows).unwrap_or(u16::MAX),
        cols: u16::try_from(s.cols).unwrap_or(u16::MAX),
    })
}

fn input(m: v1::ExecClientMessage) -> Option<ExecInput> {
    use exec_client_message::Body;
    match m.body? {
        Body::Stdin(b) => Some(ExecInput::Stdin(b.into())),
        Body::CloseStdin(_) => Some(ExecInput::CloseStdin),
        Body::Resize(s) => size(Some(s)).map(ExecInput::Resize),
        Body::Signal(s) => Some(ExecInput::Signal(s)),
        Body::Start(_) => None,
    }
}

fn output(o: ExecOutput) -> v1::ExecServerMessage {
    let body = match o {
        ExecOutput::Stdout(b) => exec_server_message::Body::Stdout(b.to_vec()),
        ExecOutput::Stderr(b) => exec_server_message::Body::Stderr(b.to_vec()),
    };
    v1::ExecServerMessage { body: Some(body) }
}

pub async fn open(
    state: NodeState,
    mut inbound: Streaming<v1::ExecClientMessage>,
) -> Result<ExecStream, Status> {
    let start = match inbound.message().await? {
        Some(v1::ExecClientMessage {
            body: Some(exec_client_message::Body::Start(s)),
        }) => s,
        _ => {
            return Err(Status::invalid_argument(
                "the first message must start the session",
            ))
        }
    };
    let running_here = state.assignments.borrow().as_ref().is_some_and(|tasks| {
        tasks
            .iter()
            .any(|t| t.task_id == start.task && t.desired_status == TaskStatus::Running)
    });
    if !running_here {
        return Err(Status::failed_precondition(format!(
            "task {} is not running on this node",
            start.task
        )));
    }
    if start.argv.is_empty() {
        return Err(Status::invalid_argument("no command to run"));
    }
    let id = crate::runner::spec::runtime_id(
        &start.task,
        usize::try_from(start.container_index).unwrap_or(usize::MAX),
        &start.container,
    );
    let request = ExecRequest {
        args: start.argv,
        tty: start.tty,
        env: Vec::new(),
        user: None,
        size: size(start.size),
    };
    let session = state
        .runtime
        .exec_session(&id, request)
        .await
        .map_err(|e| {
            Status::failed_precondition(format!(
                "container {} of task {}: {e}",
                start.container, start.task
            ))
        })?;
    tracing::info!(task = %start.task, container = %start.container, exec = %session.exec_id, "exec session started");
    let to_process = session.input;
    tokio::spawn(async move {
        while let Ok(Some(m)) = inbound.message().await {
            if let Some(i) = input(m) {
                if to_process.send(i).await.is_err() {
                    return;
                }
            }
        }
        // The client's stream ended: dropping the input is EOF.
    });
    let (tx, rx) = mpsc::channel(64);
    let mut from_process = session.output;
    let exit = session.exit;
    tokio::spawn(async move {
        while let Some(o) = from_process.recv().await {
            if tx.send(Ok(output(o))).await.is_err() {
                // Nobody listens any more: dropping `exit` ends the process.
                return;
            }
        }
        let last = match exit.wait().await {
            Ok(code) => Ok(v1::ExecServerMessage {
                body: Some(exec_server_message::Body::ExitCode(code)),
            }),
            Err(e) => Err(Status::internal(e.to_string())),
        };
        let _ = tx.send(last).await;
    });
    Ok(Box::pin(ReceiverStream::new(rx)))
}

//! `orca execute-command --task T [--cluster C] [--container NAME]
//! --command "..." [--interactive]`: ECS Exec's analogue. The command runs
//! in the task's container through whichever controller answers (it
//! relays to the agent running the task); with `--interactive` and a
//! terminal, the local terminal is raw and the remote one sized like it.
//! The command's exit code is this process's.

use futures::StreamExt;
use orca_api::v1::exec_client::ExecClient;
use orca_api::v1::{self, exec_client_message, exec_server_message};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::Ctx;
use crate::exec_session::{self, ExecInput, ExecOutput};
use crate::exit::CliError;
use crate::terminal;

pub const OPERATION: &str = "ExecuteCommand";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The task's ID or ARN.
    #[arg(long)]
    pub task: String,
    /// The container's name; needed when the task has more than one.
    #[arg(long)]
    pub container: Option<String>,
    /// The command line, split as a POSIX shell would split it (no
    /// expansion: wrap pipes in `sh -c '...'`).
    #[arg(long)]
    pub command: String,
    /// Attach stdin, and a terminal when stdin is one (ECS requires it;
    /// orca also runs commands without it, stdin closed).
    #[arg(long)]
    pub interactive: bool,
    /// Run without stdin (the default; the aws CLI's flag, accepted).
    #[arg(long, conflicts_with = "interactive")]
    pub non_interactive: bool,
}

fn to_proto(input: ExecInput) -> v1::ExecClientMessage {
    use exec_client_message::Body;
    let body = match input {
        ExecInput::Stdin(bytes) => Body::Stdin(bytes),
        ExecInput::CloseStdin => Body::CloseStdin(true),
        ExecInput::Resize { rows, cols } => Body::Resize(v1::TtySize {
            rows: u32::from(rows),
            cols: u32::from(cols),
        }),
        ExecInput::Signal(s) => Body::Signal(s),
    };
    v1::ExecClientMessage { body: Some(body) }
}

fn from_proto(message: v1::ExecServerMessage) -> Option<ExecOutput> {
    use exec_server_message::Body;
    match message.body? {
        Body::Stdout(b) => Some(ExecOutput::Stdout(b)),
        Body::Stderr(b) => Some(ExecOutput::Stderr(b)),
        Body::ExitCode(c) => Some(ExecOutput::Exit(c)),
        Body::Started(_) => None,
    }
}

fn refused(status: &tonic::Status) -> CliError {
    let error = orca_api::error::from_status(status);
    CliError::Service {
        operation: OPERATION,
        exception: error.exception.name().to_string(),
        message: error.message,
    }
}

/// Runs the session; the remote command's exit code.
pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<u8> {
    if args.command.trim().is_empty() {
        return Err(CliError::usage("--command: must name a command").into());
    }
    let mode = exec_session::mode(args.interactive, terminal::is_tty(0));
    let size = terminal::initial_size(mode).map(|(rows, cols)| v1::TtySize {
        rows: u32::from(rows),
        cols: u32::from(cols),
    });
    let start = v1::ExecClientMessage {
        body: Some(exec_client_message::Body::Start(v1::ExecStart {
            cluster: args.cluster.clone().unwrap_or_default(),
            task: args.task.clone(),
            container: args.container.clone().unwrap_or_default(),
            command: args.command.clone(),
            tty: mode.tty,
            size,
            argv: Vec::new(),
            container_index: 0,
        })),
    };
    let (tx, rx) = mpsc::channel::<ExecInput>(64);
    let outbound =
        futures::stream::once(async move { start }).chain(ReceiverStream::new(rx).map(to_proto));
    let channel = ctx.connect_any().await?;
    let mut inbound = ExecClient::new(channel)
        .execute_command(outbound)
        .await
        .map_err(|s| refused(&s))?
        .into_inner();
    // The first message says the session started (or the call failed).
    // Ctrl-C is the session's from there on: its handler is in place
    // before the user is told the session started.
    let local = match inbound.message().await {
        Ok(Some(v1::ExecServerMessage {
            body: Some(exec_server_message::Body::Started(s)),
        })) => {
            let local = terminal::local_events(mode)?;
            eprintln!(
                "Starting session with SessionId: {} ({} in {})",
                s.session_id, s.container_name, s.task_arn
            );
            local
        }
        Ok(_) => anyhow::bail!("the controller ended the session before it started"),
        Err(status) => return Err(refused(&status).into()),
    };
    let output = inbound.filter_map(|m| async move {
        match m {
            Ok(m) => from_proto(m).map(Ok),
            Err(status) => Some(Err(status)),
        }
    });
    let code = terminal::run(mode, local, tx, Box::pin(output)).await?;
    Ok(exec_session::exit_status(code))
}

//! `orca logs --task T [--cluster C] [--container NAME] [--follow]
//! [--since 1h] [--tail N] [--timestamps]`: a task's container output,
//! streamed from the agent that ran it through whichever controller
//! answers (`Logs/GetTaskLogs`). Stdout lines go to stdout and stderr
//! lines to stderr, as `docker logs` does; with several containers each
//! line starts with its container's name. `orca logs tail GROUP` is
//! [`super::logs_tail`].

use std::io::Write;

use orca_api::v1::{GetTaskLogsRequest, LogChunk};
use tonic::Streaming;

use super::{log_time, logs_tail, Ctx};
use crate::exit::CliError;

pub const OPERATION: &str = "GetTaskLogs";

#[derive(clap::Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct Args {
    #[command(subcommand)]
    pub command: Option<LogsCommand>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The task's ID or ARN (running, or stopped and still on its node).
    #[arg(long, required = true)]
    pub task: Option<String>,
    /// One container's output; by default every container's, each line
    /// labelled with its container.
    #[arg(long)]
    pub container: Option<String>,
    /// Keep printing lines as they are written, until the task has stopped
    /// (or Ctrl-C).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Only lines written since then: a duration back from now (30s, 10m,
    /// 1h, 2d) or an RFC 3339 time.
    #[arg(long)]
    pub since: Option<String>,
    /// Only the last N lines of each container.
    #[arg(long)]
    pub tail: Option<u32>,
    /// Start each line with the time it was written (RFC 3339, UTC, ns).
    #[arg(long)]
    pub timestamps: bool,
}

#[derive(clap::Subcommand, Debug)]
pub enum LogsCommand {
    /// Prints the log events of an awslogs group, as `aws logs tail` does.
    Tail(logs_tail::Args),
}

/// Runs `orca logs` (or `orca logs tail`); the exit code.
pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<u8> {
    if let Some(LogsCommand::Tail(tail)) = &args.command {
        return logs_tail::run(tail, ctx).await;
    }
    let Some(task) = args.task.clone() else {
        return Err(
            CliError::usage("the following required arguments were not provided: --task").into(),
        );
    };
    let request = GetTaskLogsRequest {
        cluster: args.cluster.clone().unwrap_or_default(),
        task,
        container: args.container.clone().unwrap_or_default(),
        since_unix_ns: args
            .since
            .as_deref()
            .map(|s| log_time::parse_since(s, log_time::now_ns()))
            .transpose()?,
        tail: args.tail,
        follow: args.follow,
    };
    let stream = ctx
        .logs(OPERATION, request, |mut c, r| async move {
            c.get_task_logs(r).await
        })
        .await?;
    print_until_end(stream, args.timestamps).await
}

/// Prints chunks until the stream ends, Ctrl-C, or the output is closed.
async fn print_until_end(mut stream: Streaming<LogChunk>, timestamps: bool) -> anyhow::Result<u8> {
    // One listener for the whole stream: a Ctrl-C while lines print is
    // not lost between two waits.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut labelled = false;
    loop {
        let next = tokio::select! {
            next = stream.message() => next,
            _ = &mut interrupted => return Ok(0),
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(0),
            Err(status) => return Err(stream_error(OPERATION, &status).into()),
        };
        if !chunk.containers.is_empty() {
            labelled = chunk.containers.len() > 1;
        }
        if print_chunk(&chunk, labelled, timestamps).is_err() {
            // The reader went away (`orca logs | head`): done.
            return Ok(0);
        }
    }
}

fn print_chunk(chunk: &LogChunk, labelled: bool, timestamps: bool) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let mut err = std::io::stderr().lock();
    for line in &chunk.lines {
        let to: &mut dyn Write = if line.stream == "stderr" {
            &mut err
        } else {
            &mut out
        };
        if labelled {
            write!(to, "{} | ", line.container)?;
        }
        if timestamps {
            write!(to, "{} ", log_time::rfc3339_nanos(line.time_unix_ns))?;
        }
        to.write_all(&line.content)?;
        to.write_all(b"\n")?;
    }
    out.flush()?;
    err.flush()
}

/// A status that ended a stream after it opened, as the CLI reports it.
pub fn stream_error(operation: &'static str, status: &tonic::Status) -> CliError {
    let error = orca_api::error::from_status(status);
    CliError::Service {
        operation,
        exception: error.exception.name().to_string(),
        message: error.message,
    }
}

//! `orca logs tail GROUP [--follow] [--since 10m] [--log-stream-name-prefix P]
//! [--format detailed|short]`: the lines of every task whose containers log
//! with awslogs to GROUP, as `aws logs tail` prints a CloudWatch group:
//! `detailed` (the default) starts each line with its time and stream name
//! (`prefix/container/task-id`), `short` with its time only. Without
//! `--follow`, lines are merged by time; with it, each stream's lines come
//! as they are written, and tasks that start logging to the group join in.

use std::io::Write;

use orca_api::v1::{LogChunk, TailLogGroupRequest};

use super::{log_time, Ctx};
use crate::exit::CliError;

pub const OPERATION: &str = "TailLogGroup";

/// `aws logs tail`'s default `--since`.
const DEFAULT_SINCE: &str = "10m";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The awslogs-group of the containers (`/ecs/web-app`).
    pub group: String,
    /// Keep printing new lines (Ctrl-C ends it).
    #[arg(long, short = 'f')]
    pub follow: bool,
    /// Lines since then: a duration back from now (30s, 10m, 1h, 2d) or an
    /// RFC 3339 time [default: 10m]
    #[arg(long)]
    pub since: Option<String>,
    /// Only streams whose name starts with this.
    #[arg(long)]
    pub log_stream_name_prefix: Option<String>,
    #[arg(long, value_enum, default_value_t = Format::Detailed)]
    pub format: Format,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Time (µs, UTC), stream name, message.
    Detailed,
    /// Time (s, UTC), message.
    Short,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<u8> {
    let since = args.since.as_deref().unwrap_or(DEFAULT_SINCE);
    let request = TailLogGroupRequest {
        log_group_name: args.group.clone(),
        log_stream_name_prefix: args.log_stream_name_prefix.clone().unwrap_or_default(),
        since_unix_ns: Some(log_time::parse_since(since, log_time::now_ns())?),
        follow: args.follow,
    };
    let mut stream = ctx
        .logs(OPERATION, request, |mut c, r| async move {
            c.tail_log_group(r).await
        })
        .await?;
    // One listener for the whole stream: a Ctrl-C while lines print is
    // not lost between two waits.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        let next = tokio::select! {
            next = stream.message() => next,
            _ = &mut interrupted => return Ok(0),
        };
        let chunk = match next {
            Ok(Some(chunk)) => chunk,
            Ok(None) => return Ok(0),
            Err(status) => {
                let error: CliError = super::logs::stream_error(OPERATION, &status);
                return Err(error.into());
            }
        };
        if print_chunk(&chunk, args.format).is_err() {
            return Ok(0);
        }
    }
}

fn print_chunk(chunk: &LogChunk, format: Format) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    for line in &chunk.lines {
        match format {
            Format::Detailed => write!(
                out,
                "{} {} ",
                log_time::detailed(line.time_unix_ns),
                line.log_stream_name
            )?,
            Format::Short => write!(out, "{} ", log_time::short(line.time_unix_ns))?,
        }
        out.write_all(&line.content)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}

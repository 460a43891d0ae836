//! `orca stop-task --task T [--cluster C] [--reason R]`.

use super::{shape, Ctx};
use crate::failover::Call;
use serde_json::Value;

pub const OPERATION: &str = "StopTask";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The task's ID or ARN.
    #[arg(long)]
    pub task: String,
    /// Shown as the task's stoppedReason (up to 255 characters).
    #[arg(long)]
    pub reason: Option<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("cluster", args.cluster.clone().map(Value::String)),
        ("task", Some(Value::String(args.task.clone()))),
        ("reason", args.reason.clone().map(Value::String)),
    ]);
    let reply = ctx
        .ecs(
            OPERATION,
            Call::Write,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.stop_task(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

//! `orca describe-tasks --tasks T1 T2 ... [--cluster C] [--include TAGS]`.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input;
use serde_json::{Map, Value};

pub const OPERATION: &str = "DescribeTasks";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Task IDs or ARNs (up to 100).
    #[arg(long, num_args = 1.., required = true)]
    pub tasks: Vec<String>,
    /// TAGS.
    #[arg(long, num_args = 1..)]
    pub include: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("cluster", args.cluster.clone().map(Value::String)),
        ("tasks", input::optional_strings("--tasks", &args.tasks)?),
        (
            "include",
            input::optional_strings("--include", &args.include)?,
        ),
    ]);
    describe(ctx, input).await
}

/// Calls DescribeTasks with an input object; also what `run-task --wait` polls with.
pub async fn describe(ctx: &Ctx, input: Map<String, Value>) -> anyhow::Result<Value> {
    let reply = ctx
        .ecs(
            OPERATION,
            Call::Read,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.describe_tasks(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

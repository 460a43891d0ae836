//! `orca describe-container-instances --container-instances I1 I2 ... [--cluster C] [--include TAGS]`.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input;
use serde_json::Value;

pub const OPERATION: &str = "DescribeContainerInstances";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Container instance IDs or ARNs (up to 100).
    #[arg(long, num_args = 1.., required = true)]
    pub container_instances: Vec<String>,
    /// TAGS.
    #[arg(long, num_args = 1..)]
    pub include: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("cluster", args.cluster.clone().map(Value::String)),
        (
            "containerInstances",
            input::optional_strings("--container-instances", &args.container_instances)?,
        ),
        (
            "include",
            input::optional_strings("--include", &args.include)?,
        ),
    ]);
    let reply = ctx
        .ecs(
            OPERATION,
            Call::Read,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.describe_container_instances(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

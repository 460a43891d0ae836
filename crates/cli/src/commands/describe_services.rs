//! `orca describe-services --services S... [--cluster C] [--include TAGS]`.

use super::{shape, Ctx};
use crate::failover::Call;
use serde_json::Value;

pub const OPERATION: &str = "DescribeServices";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Names or ARNs, at most 10.
    #[arg(long, num_args = 1.., required = true)]
    pub services: Vec<String>,
    /// TAGS adds each service's tags.
    #[arg(long, num_args = 1..)]
    pub include: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let strings = |v: &[String]| {
        (!v.is_empty()).then(|| Value::Array(v.iter().cloned().map(Value::String).collect()))
    };
    let input = shape::input_object([
        ("cluster", args.cluster.clone().map(Value::String)),
        ("services", strings(&args.services)),
        ("include", strings(&args.include)),
    ]);
    let reply = ctx
        .ecs(
            OPERATION,
            Call::Read,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.describe_services(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

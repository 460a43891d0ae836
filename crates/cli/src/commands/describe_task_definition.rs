//! `orca describe-task-definition --task-definition X [--include TAGS]`.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input;
use orca_api::v1::DescribeTaskDefinitionRequest;
use serde_json::Value;

pub const OPERATION: &str = "DescribeTaskDefinition";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `family`, `family:revision` or an ARN.
    #[arg(long)]
    pub task_definition: String,
    /// Only TAGS is defined.
    #[arg(long, num_args = 1..)]
    pub include: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = DescribeTaskDefinitionRequest {
        task_definition: args.task_definition.clone(),
        include: input::strings("--include", &args.include)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
            c.describe_task_definition(r).await
        })
        .await?;
    shape::task_definition_reply(&reply)
}

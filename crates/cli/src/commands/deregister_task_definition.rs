//! `orca deregister-task-definition --task-definition family:revision`.

use super::{shape, Ctx};
use orca_api::v1::DeregisterTaskDefinitionRequest;
use serde_json::Value;

pub const OPERATION: &str = "DeregisterTaskDefinition";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `family:revision` or an ARN.
    #[arg(long)]
    pub task_definition: String,
}

pub async fn run(args: &Args, ctx: &mut Ctx) -> anyhow::Result<Value> {
    let request = DeregisterTaskDefinitionRequest {
        task_definition: args.task_definition.clone(),
    };
    let reply = ctx
        .client()
        .await?
        .deregister_task_definition(request)
        .await
        .map_err(|s| ctx.fail(OPERATION, s))?
        .into_inner();
    shape::task_definition_reply(&reply)
}

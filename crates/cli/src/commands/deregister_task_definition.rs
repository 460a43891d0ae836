//! `orca deregister-task-definition --task-definition family:revision`.

use super::{shape, Ctx};
use crate::failover::Call;
use orca_api::v1::DeregisterTaskDefinitionRequest;
use serde_json::Value;

pub const OPERATION: &str = "DeregisterTaskDefinition";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `family:revision` or an ARN.
    #[arg(long)]
    pub task_definition: String,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = DeregisterTaskDefinitionRequest {
        task_definition: args.task_definition.clone(),
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.deregister_task_definition(r).await
        })
        .await?;
    shape::task_definition_reply(&reply)
}

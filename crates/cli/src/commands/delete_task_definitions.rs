//! `orca delete-task-definitions --task-definitions A B ...`.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input;
use orca_api::v1::DeleteTaskDefinitionsRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "DeleteTaskDefinitions";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `family:revision` or ARNs of INACTIVE revisions.
    #[arg(long, num_args = 1.., required = true)]
    pub task_definitions: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = DeleteTaskDefinitionsRequest {
        task_definitions: input::strings("--task-definitions", &args.task_definitions)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.delete_task_definitions(r).await
        })
        .await?;
    let defs = reply
        .task_definitions_json
        .iter()
        .map(|j| shape::task_definition(j))
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(json!({"taskDefinitions": defs, "failures": shape::failures(&reply.failures)}))
}

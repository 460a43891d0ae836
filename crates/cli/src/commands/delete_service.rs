//! `orca delete-service --service S [--cluster C] [--force]`: ECS's
//! DeleteService (a service scaled above 0 needs --force).

use super::{shape, Ctx};
use crate::failover::Call;
use serde_json::Value;

pub const OPERATION: &str = "DeleteService";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The service's name or ARN.
    #[arg(long)]
    pub service: String,
    /// Delete even if the service is scaled above 0 (its tasks are stopped).
    #[arg(long)]
    pub force: bool,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("cluster", args.cluster.clone().map(Value::String)),
        ("service", Some(Value::String(args.service.clone()))),
        ("force", args.force.then_some(Value::Bool(true))),
    ]);
    let reply = ctx
        .ecs(
            OPERATION,
            Call::Write,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.delete_service(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

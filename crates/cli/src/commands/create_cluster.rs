//! `orca create-cluster [--cluster-name N] [--settings ...] [--tags ...]`.

use super::{shape, Ctx};
use crate::failover::Call;
use orca_api::v1::CreateClusterRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "CreateCluster";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Defaults to `default`.
    #[arg(long)]
    pub cluster_name: Option<String>,
    /// `name=containerInsights,value=enabled` (shorthand or JSON).
    #[arg(long, num_args = 1..)]
    pub settings: Vec<String>,
    /// `key=a,value=b ...` (shorthand or JSON).
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// Capacity provider names (FARGATE FARGATE_SPOT ...): stored as ECS
    /// stores them; orca places every task on its own instances.
    #[arg(long, num_args = 1..)]
    pub capacity_providers: Vec<String>,
    /// `capacityProvider=FARGATE,weight=1,base=1 ...` (shorthand or JSON).
    #[arg(long, num_args = 1..)]
    pub default_capacity_provider_strategy: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = CreateClusterRequest {
        cluster_name: args.cluster_name.clone().unwrap_or_default(),
        settings: shape::settings_flag("--settings", &args.settings)?,
        tags: shape::tags_flag("--tags", &args.tags)?,
        capacity_providers: args.capacity_providers.clone(),
        default_capacity_provider_strategy_json: match crate::input::optional_structures(
            "--default-capacity-provider-strategy",
            &args.default_capacity_provider_strategy,
        )? {
            Some(list) => list.to_string(),
            None => String::new(),
        },
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.create_cluster(r).await
        })
        .await?;
    Ok(json!({"cluster": reply.cluster.as_ref().map(shape::cluster)}))
}

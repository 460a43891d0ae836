//! `orca update-cluster --cluster N --settings name=containerInsights,value=enabled`.

use super::{shape, Ctx};
use crate::failover::Call;
use orca_api::v1::UpdateClusterRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "UpdateCluster";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN.
    #[arg(long)]
    pub cluster: String,
    /// `name=containerInsights,value=enabled` (shorthand or JSON).
    #[arg(long, num_args = 1.., required = true)]
    pub settings: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = UpdateClusterRequest {
        cluster: args.cluster.clone(),
        settings: shape::settings_flag("--settings", &args.settings)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.update_cluster(r).await
        })
        .await?;
    Ok(json!({"cluster": reply.cluster.as_ref().map(shape::cluster)}))
}

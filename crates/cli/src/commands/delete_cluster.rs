//! `orca delete-cluster --cluster N`.

use super::{shape, Ctx};
use crate::failover::Call;
use orca_api::v1::DeleteClusterRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "DeleteCluster";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN.
    #[arg(long)]
    pub cluster: String,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = DeleteClusterRequest {
        cluster: args.cluster.clone(),
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.delete_cluster(r).await
        })
        .await?;
    Ok(json!({"cluster": reply.cluster.as_ref().map(shape::cluster)}))
}

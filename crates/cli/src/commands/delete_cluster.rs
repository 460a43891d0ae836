//! `orca delete-cluster --cluster N`.

use super::{shape, Ctx};
use orca_api::v1::DeleteClusterRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "DeleteCluster";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN.
    #[arg(long)]
    pub cluster: String,
}

pub async fn run(args: &Args, ctx: &mut Ctx) -> anyhow::Result<Value> {
    let request = DeleteClusterRequest {
        cluster: args.cluster.clone(),
    };
    let reply = ctx
        .client()
        .await?
        .delete_cluster(request)
        .await
        .map_err(|s| ctx.fail(OPERATION, s))?
        .into_inner();
    Ok(json!({"cluster": reply.cluster.as_ref().map(shape::cluster)}))
}

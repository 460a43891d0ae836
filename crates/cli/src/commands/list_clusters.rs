//! `orca list-clusters`, paginated.

use super::Ctx;
use crate::failover::Call;
use crate::paginate::{self, Page, PageArgs};
use orca_api::v1::ListClustersRequest;
use serde_json::Value;

pub const OPERATION: &str = "ListClusters";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let request = ListClustersRequest {
            next_token,
            max_results,
        };
        async move {
            let reply = ctx
                .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
                    c.list_clusters(r).await
                })
                .await?;
            Ok(Page {
                items: reply.cluster_arns,
                next_token: reply.next_token,
            })
        }
    })
    .await?;
    Ok(listing.to_json("clusterArns"))
}

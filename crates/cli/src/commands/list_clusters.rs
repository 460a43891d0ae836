//! `orca list-clusters`, paginated.

use super::Ctx;
use crate::paginate::{self, Page, PageArgs};
use orca_api::v1::ListClustersRequest;
use serde_json::Value;

pub const OPERATION: &str = "ListClusters";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &mut Ctx) -> anyhow::Result<Value> {
    let client = ctx.client().await?;
    let ctx = &*ctx;
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let mut client = client.clone();
        let request = ListClustersRequest {
            next_token,
            max_results,
        };
        async move {
            let reply = client
                .list_clusters(request)
                .await
                .map_err(|s| ctx.fail(OPERATION, s))?
                .into_inner();
            Ok(Page {
                items: reply.cluster_arns,
                next_token: reply.next_token,
            })
        }
    })
    .await?;
    Ok(listing.to_json("clusterArns"))
}

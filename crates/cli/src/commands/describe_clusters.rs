//! `orca describe-clusters [--clusters a b] [--include SETTINGS TAGS STATISTICS]`.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input;
use orca_api::v1::DescribeClustersRequest;
use serde_json::{json, Value};

pub const OPERATION: &str = "DescribeClusters";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Names or ARNs; defaults to `default`.
    #[arg(long, num_args = 1..)]
    pub clusters: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub include: Vec<String>,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = DescribeClustersRequest {
        clusters: input::strings("--clusters", &args.clusters)?,
        include: input::strings("--include", &args.include)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
            c.describe_clusters(r).await
        })
        .await?;
    let clusters: Vec<Value> = reply.clusters.iter().map(shape::cluster).collect();
    Ok(json!({"clusters": clusters, "failures": shape::failures(&reply.failures)}))
}

//! `orca list-container-instances [--cluster] [--status] [--filter]`, paginated.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::paginate::{self, PageArgs};
use serde_json::Value;

pub const OPERATION: &str = "ListContainerInstances";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED;
    /// without it, ACTIVE and DRAINING instances.
    #[arg(long)]
    pub status: Option<String>,
    /// ECS's cluster query language, e.g. `attribute:stack == prod`.
    #[arg(long)]
    pub filter: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let input = shape::input_object([
            ("cluster", text(&args.cluster)),
            ("filter", text(&args.filter)),
            ("status", text(&args.status)),
            ("nextToken", shape::page_token(next_token)),
            ("maxResults", shape::page_size(max_results)),
        ]);
        async move {
            let reply = ctx
                .ecs(
                    OPERATION,
                    Call::Read,
                    shape::ecs_json_request(input),
                    |mut c, r| async move { c.list_container_instances(r).await },
                )
                .await?;
            shape::json_page(&shape::ecs_json(&reply)?, "containerInstanceArns")
        }
    })
    .await?;
    Ok(listing.to_json("containerInstanceArns"))
}

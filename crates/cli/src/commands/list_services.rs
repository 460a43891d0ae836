//! `orca list-services [--cluster] [--launch-type] [--scheduling-strategy]`,
//! paginated as ECS (10 a page by default).

use super::{shape, Ctx};
use crate::failover::Call;
use crate::paginate::{self, PageArgs};
use serde_json::Value;

pub const OPERATION: &str = "ListServices";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long)]
    pub launch_type: Option<String>,
    /// REPLICA or DAEMON.
    #[arg(long)]
    pub scheduling_strategy: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let input = shape::input_object([
            ("cluster", text(&args.cluster)),
            ("launchType", text(&args.launch_type)),
            ("schedulingStrategy", text(&args.scheduling_strategy)),
            ("nextToken", shape::page_token(next_token)),
            ("maxResults", shape::page_size(max_results)),
        ]);
        async move {
            let reply = ctx
                .ecs(
                    OPERATION,
                    Call::Read,
                    shape::ecs_json_request(input),
                    |mut c, r| async move { c.list_services(r).await },
                )
                .await?;
            shape::json_page(&shape::ecs_json(&reply)?, "serviceArns")
        }
    })
    .await?;
    Ok(listing.to_json("serviceArns"))
}

//! `orca list-task-definition-families [--family-prefix] [--status]`, paginated.

use super::Ctx;
use crate::failover::Call;
use crate::paginate::{self, Page, PageArgs};
use orca_api::v1::ListTaskDefinitionFamiliesRequest;
use serde_json::Value;

pub const OPERATION: &str = "ListTaskDefinitionFamilies";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub family_prefix: Option<String>,
    /// ACTIVE (default), INACTIVE or ALL.
    #[arg(long)]
    pub status: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let request = ListTaskDefinitionFamiliesRequest {
            family_prefix: args.family_prefix.clone().unwrap_or_default(),
            status: args.status.clone().unwrap_or_default(),
            next_token,
            max_results,
        };
        async move {
            let reply = ctx
                .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
                    c.list_task_definition_families(r).await
                })
                .await?;
            Ok(Page {
                items: reply.families,
                next_token: reply.next_token,
            })
        }
    })
    .await?;
    Ok(listing.to_json("families"))
}

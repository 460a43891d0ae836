//! `orca list-task-definitions [--family-prefix] [--status] [--sort]`, paginated.

use super::Ctx;
use crate::failover::Call;
use crate::paginate::{self, Page, PageArgs};
use orca_api::v1::ListTaskDefinitionsRequest;
use serde_json::Value;

pub const OPERATION: &str = "ListTaskDefinitions";

#[derive(clap::Args, Debug)]
pub struct Args {
    #[arg(long)]
    pub family_prefix: Option<String>,
    /// ACTIVE (default), INACTIVE or DELETE_IN_PROGRESS.
    #[arg(long)]
    pub status: Option<String>,
    /// ASC (default) or DESC.
    #[arg(long)]
    pub sort: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let request = ListTaskDefinitionsRequest {
            family_prefix: args.family_prefix.clone().unwrap_or_default(),
            status: args.status.clone().unwrap_or_default(),
            sort: args.sort.clone().unwrap_or_default(),
            next_token,
            max_results,
        };
        async move {
            let reply = ctx
                .ecs(OPERATION, Call::Read, request, |mut c, r| async move {
                    c.list_task_definitions(r).await
                })
                .await?;
            Ok(Page {
                items: reply.task_definition_arns,
                next_token: reply.next_token,
            })
        }
    })
    .await?;
    Ok(listing.to_json("taskDefinitionArns"))
}

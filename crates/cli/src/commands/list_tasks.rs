//! `orca list-tasks [--cluster] [--container-instance] [--family] [--started-by]
//! [--service-name] [--desired-status] [--launch-type]`, paginated.

use super::{shape, Ctx};
use crate::failover::Call;
use crate::paginate::{self, PageArgs};
use serde_json::Value;

pub const OPERATION: &str = "ListTasks";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Only tasks on this container instance (ID or ARN).
    #[arg(long)]
    pub container_instance: Option<String>,
    #[arg(long)]
    pub family: Option<String>,
    #[arg(long)]
    pub started_by: Option<String>,
    #[arg(long)]
    pub service_name: Option<String>,
    /// RUNNING (default), PENDING or STOPPED.
    #[arg(long)]
    pub desired_status: Option<String>,
    #[arg(long)]
    pub launch_type: Option<String>,
    #[command(flatten)]
    pub page: PageArgs,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let listing = paginate::collect(&args.page, |next_token, max_results| {
        let input = shape::input_object([
            ("cluster", text(&args.cluster)),
            ("containerInstance", text(&args.container_instance)),
            ("family", text(&args.family)),
            ("startedBy", text(&args.started_by)),
            ("serviceName", text(&args.service_name)),
            ("desiredStatus", text(&args.desired_status)),
            ("launchType", text(&args.launch_type)),
            ("nextToken", shape::page_token(next_token)),
            ("maxResults", shape::page_size(max_results)),
        ]);
        async move {
            let reply = ctx
                .ecs(
                    OPERATION,
                    Call::Read,
                    shape::ecs_json_request(input),
                    |mut c, r| async move { c.list_tasks(r).await },
                )
                .await?;
            shape::json_page(&shape::ecs_json(&reply)?, "taskArns")
        }
    })
    .await?;
    Ok(listing.to_json("taskArns"))
}

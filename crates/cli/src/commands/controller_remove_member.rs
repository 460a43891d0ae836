//! `orca controller remove-member --node-id N`: takes a controller out of the
//! voters and learners; prints the membership afterwards.

use super::{controller_members, Ctx};
use crate::failover::Call;
use orca_api::v1::RemoveMemberRequest;
use serde_json::Value;

pub const OPERATION: &str = "RemoveMember";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The controller's node id.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub node_id: u64,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = RemoveMemberRequest {
        node_id: args.node_id,
    };
    let reply = ctx
        .admin(OPERATION, Call::Write, request, |mut c, r| async move {
            c.remove_member(r).await
        })
        .await?;
    Ok(controller_members::reply_json(&reply))
}

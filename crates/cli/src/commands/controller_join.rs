//! `orca controller join --node-id N --address HOST:PORT`: adds a controller
//! as a learner and, once it has caught up, as a voter. A controller started
//! with `--join` does this itself; this is for operators doing it by hand.

use super::{controller_members, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use orca_api::v1::JoinClusterRequest;
use serde_json::Value;

pub const OPERATION: &str = "JoinCluster";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The new controller's node id.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub node_id: u64,
    /// Where the other controllers and clients reach it, as HOST:PORT.
    #[arg(long)]
    pub address: String,
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = JoinClusterRequest {
        node_id: args.node_id,
        address: address(&args.address)?,
        // An operator's join names no flags: the joining controller's own
        // join request carries them.
        ..Default::default()
    };
    let reply = ctx
        .admin(OPERATION, Call::Write, request, |mut c, r| async move {
            c.join_cluster(r).await
        })
        .await?;
    Ok(controller_members::reply_json(&reply))
}

/// `HOST:PORT` with a non-empty host and a port number; the controller keeps
/// it as the member's address, so a typo here would stick.
fn address(address: &str) -> Result<String, CliError> {
    let address = address.trim();
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(address.to_string())
        }
        _ => Err(CliError::usage(format!(
            "invalid --address '{address}': expected HOST:PORT"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert_eq!(
            address(" 10.0.0.12:7470 ").ok().as_deref(),
            Some("10.0.0.12:7470")
        );
        assert!(address("[::1]:7470").is_ok());
        for bad in [
            "10.0.0.12",
            ":7470",
            "host:",
            "host:0",
            "host:99999",
            "http://h",
        ] {
            assert!(matches!(address(bad), Err(CliError::Usage(_))), "{bad}");
        }
    }
}

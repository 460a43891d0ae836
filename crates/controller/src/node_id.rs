//! This controller's Raft node id when `--node-id` is not given: the id it
//! had before (kept in the data directory), 1 for a controller that
//! bootstraps a new cluster, or a fresh one from the cluster it joins (one
//! above the highest member id the leader knows). A given id is kept too, so
//! a restart without the flag keeps its identity.

use std::path::Path;
use std::time::Duration;

use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_api::v1::MembersRequest;

use crate::config::Config;
use crate::error::Error;
use crate::raft::network::peer_channel;

/// The file in the data directory that holds the node id.
const FILE: &str = "node-id";
/// How long to keep asking the cluster for a fresh id.
const ASK_FOR: Duration = Duration::from_secs(60);
const ASK_TIMEOUT: Duration = Duration::from_secs(5);

/// The node id to run with (0 in the config means "not given").
pub async fn resolve(config: &Config) -> Result<u64, Error> {
    let path = config.data_dir.join(FILE);
    let stored = read(&path).map_err(Error::Raft)?;
    let id = match (config.node_id, stored) {
        (0, Some(stored)) => stored,
        (0, None) if config.join.is_empty() => 1,
        (0, None) => fresh_from_cluster(&config.join).await?,
        (given, Some(stored)) if given != stored => {
            return Err(Error::JoinRefused(format!(
                "--node-id {given} but this data directory belongs to controller {stored}"
            )))
        }
        (given, _) => given,
    };
    write(&path, id).map_err(Error::Raft)?;
    Ok(id)
}

fn io_error(path: &Path, e: impl std::fmt::Display) -> String {
    format!("node id file {}: {e}", path.display())
}

fn read(path: &Path) -> Result<Option<u64>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.trim().parse().map(Some).map_err(|e| io_error(path, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io_error(path, e)),
    }
}

fn write(path: &Path, id: u64) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| io_error(path, e))?;
    }
    std::fs::write(path, format!("{id}\n")).map_err(|e| io_error(path, e))
}

/// One above the highest member id the leader reports.
async fn fresh_from_cluster(join: &[String]) -> Result<u64, Error> {
    let deadline = tokio::time::Instant::now() + ASK_FOR;
    loop {
        for endpoint in join {
            let Some(reply) = members(endpoint).await else {
                continue;
            };
            // Ask the leader itself when this member knows who it is.
            let leader = reply
                .members
                .iter()
                .find(|m| m.node_id == reply.leader_id && reply.leader_id != reply.responder_id)
                .map(|m| m.address.clone());
            let reply = match leader {
                Some(address) => match members(&address).await {
                    Some(r) => r,
                    None => continue,
                },
                None if reply.leader_id == reply.responder_id => reply,
                None => continue,
            };
            let highest = reply.members.iter().map(|m| m.node_id).max().unwrap_or(0);
            tracing::info!(
                node_id = highest + 1,
                "no --node-id: took a fresh id from the leader"
            );
            return Ok(highest + 1);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::JoinRefused(format!(
                "no leader answered at {} to hand out a node id",
                join.join(", ")
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn members(endpoint: &str) -> Option<orca_api::v1::MembersReply> {
    let channel = peer_channel(endpoint).ok()?;
    let mut request = tonic::Request::new(MembersRequest {});
    request.set_timeout(ASK_TIMEOUT);
    ControllerAdminClient::new(channel)
        .members(request)
        .await
        .ok()
        .map(|r| r.into_inner())
}

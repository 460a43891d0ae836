//! Leader-only: an instance whose agent holds no session with this leader
//! for longer than the heartbeat timeout is marked disconnected (a new
//! leader inherits "connected" flags from the log but none of the sessions;
//! agents reconnect to it within the timeout if they are alive).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SessionRegistry;
use crate::node::Node;
use crate::state::Command;

const TICK: Duration = Duration::from_millis(500);

pub async fn run(
    node: Arc<Node>,
    registry: Arc<SessionRegistry>,
    timeout: Duration,
    term: u64,
    token: CancellationToken,
) {
    let mut missing_since: BTreeMap<String, Instant> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = token.cancelled() => {
                registry.close_all();
                return;
            }
            _ = tokio::time::sleep(TICK) => {}
        }
        let connected: Vec<String> = node
            .view()
            .instances
            .values()
            .filter(|i| i.agent_connected)
            .map(|i| i.id.clone())
            .collect();
        let now = Instant::now();
        missing_since.retain(|id, _| connected.contains(id));
        for id in connected {
            if registry.is_connected(&id) {
                missing_since.remove(&id);
                continue;
            }
            let since = *missing_since.entry(id.clone()).or_insert(now);
            if now.duration_since(since) < timeout {
                continue;
            }
            let command = Command::SetAgentConnected {
                instance_id: id.clone(),
                connected: false,
                decided_in_term: term,
            };
            match node.propose(command).await {
                Ok(_) => {
                    tracing::warn!(instance = %id, "agent has no session: marked disconnected");
                    missing_since.remove(&id);
                }
                Err(e) => tracing::warn!(instance = %id, error = %e, "could not mark disconnected"),
            }
        }
    }
}

//! Leader-only: the one owner of agent liveness decisions, with its timers
//! in memory (Nomad's heartbeat.go). Sessions record every message an agent
//! sends (`SessionRegistry::heard`); this loop turns silence into Raft
//! writes:
//! - silent for `heartbeat_timeout`: the instance is marked disconnected
//!   (no new placements; its tasks keep running);
//! - silent for a further `loss_grace`: `InstanceLost` records its tasks
//!   STOPPED with InfrastructureHealth and frees their resources.
//!
//! A closed session does not shorten the clock (an agent restarting for an
//! upgrade comes back within it and finds its tasks untouched). A new leader
//! knows no heartbeats: it counts every instance as heard when it took over,
//! so a leader change re-arms every timer with a full grace.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::SessionRegistry;
use crate::clock::Clock;
use crate::node::Node;
use crate::state::Command;

/// The liveness loop's settings.
#[derive(Debug, Clone, Copy)]
pub struct LivenessConfig {
    /// Silence after which an instance is marked disconnected.
    pub heartbeat_timeout: Duration,
    /// Further silence after which its tasks are declared lost.
    pub loss_grace: Duration,
}

impl LivenessConfig {
    /// How often the loop looks: often enough that a decision comes within
    /// a tenth of the timeout of its deadline.
    fn tick(&self) -> Duration {
        (self.heartbeat_timeout / 10).clamp(Duration::from_millis(20), Duration::from_millis(500))
    }
}

pub async fn run(
    node: Arc<Node>,
    registry: Arc<SessionRegistry>,
    clock: Arc<dyn Clock>,
    config: LivenessConfig,
    term: u64,
    token: CancellationToken,
) {
    let took_over = Instant::now();
    loop {
        tokio::select! {
            _ = token.cancelled() => {
                registry.end_term(term);
                return;
            }
            _ = tokio::time::sleep(config.tick()) => {}
        }
        let now = Instant::now();
        let view = node.view();
        for instance in view.instances.values() {
            let last = registry
                .last_heard(&instance.id)
                .map_or(took_over, |heard| heard.max(took_over));
            let silent = now.saturating_duration_since(last);
            let command = if instance.agent_connected && silent >= config.heartbeat_timeout {
                tracing::warn!(instance = %instance.id, silent = ?silent, "agent silent: marking it disconnected");
                Command::SetAgentConnected {
                    instance_id: instance.id.clone(),
                    connected: false,
                    decided_in_term: term,
                }
            } else if !instance.agent_connected
                && !instance.task_ids.is_empty()
                && silent >= config.heartbeat_timeout + config.loss_grace
            {
                tracing::warn!(instance = %instance.id, silent = ?silent, tasks = instance.task_ids.len(), "agent lost: stopping its tasks");
                Command::InstanceLost {
                    instance_id: instance.id.clone(),
                    at: clock.now(),
                    decided_in_term: term,
                }
            } else {
                continue;
            };
            if let Err(e) = node.propose(command).await {
                tracing::warn!(instance = %instance.id, error = %e, "liveness decision not committed");
            }
        }
    }
}

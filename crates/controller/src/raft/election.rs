//! Elections with pre-vote. openraft's own election timer is off
//! (`enable_elect = false`); this driver starts an election only when this
//! voter has not heard from a leader for its (randomized) election timeout
//! and a majority of voters, itself included, say the same in a pre-vote.
//!
//! Why: a follower cut off from the others would otherwise raise its term
//! with every timeout, and when the partition heals its higher term in the
//! leader's AppendEntries responses deposes a healthy leader (Docker Swarm,
//! without pre-vote, was leaderless 7-11 s after such a heal here).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use orca_api::v1::raft_client::RaftClient;
use orca_api::v1::PreVoteRequest;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::NodeId;
use crate::node::Node;

/// How often the driver looks at the leader's liveness.
const TICK: Duration = Duration::from_millis(50);
/// How long a pre-vote RPC may take.
const PRE_VOTE_TIMEOUT: Duration = Duration::from_millis(300);

/// When this node last heard from a leader (an AppendEntries or snapshot
/// accepted), shared between the Raft service and the election driver.
#[derive(Clone)]
pub struct LeaderContact(Arc<Mutex<Instant>>);

impl LeaderContact {
    pub fn new() -> Self {
        LeaderContact(Arc::new(Mutex::new(Instant::now())))
    }

    pub fn touch(&self) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    pub fn silent_for(&self) -> Duration {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).elapsed()
    }
}

impl Default for LeaderContact {
    fn default() -> Self {
        LeaderContact::new()
    }
}

/// Election timeouts, randomized per attempt between min and max.
#[derive(Debug, Clone, Copy)]
pub struct ElectionTimeouts {
    pub min: Duration,
    pub max: Duration,
}

impl ElectionTimeouts {
    fn pick(&self) -> Duration {
        let spread = self.max.saturating_sub(self.min).as_millis() as u64;
        // Nanoseconds of the clock are random enough to spread candidates.
        let jitter = if spread == 0 {
            0
        } else {
            u64::from(
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .subsec_nanos(),
            ) % spread
        };
        self.min + Duration::from_millis(jitter)
    }
}

/// Whether this node would grant a pre-vote now: it is not the leader, has
/// not heard from one for at least the minimum election timeout, and the
/// candidate's log is not shorter than its own.
pub fn grants_pre_vote(node: &Node, timeouts: ElectionTimeouts, candidate_last_log: u64) -> bool {
    let my_last_log = node.raft.metrics().borrow().last_log_index.unwrap_or(0);
    node.current_leader() != Some(node.id)
        && node.leader_contact.silent_for() >= timeouts.min
        // A candidate missing entries this voter holds could not win the real
        // vote; its attempt would only raise the term.
        && candidate_last_log >= my_last_log
}

/// Runs elections for `node` until `shutdown`.
pub async fn run(node: Arc<Node>, timeouts: ElectionTimeouts, shutdown: CancellationToken) {
    let mut timeout = timeouts.pick();
    // Our own pacing between attempts. Not `leader_contact`: touching that
    // would make this node refuse the pre-votes of the other candidates.
    let mut next_attempt = Instant::now();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let (voters, leader) = {
            let metrics = node.raft.metrics();
            let m = metrics.borrow();
            let voters: BTreeSet<NodeId> = m.membership_config.membership().voter_ids().collect();
            (voters, m.current_leader)
        };
        if leader == Some(node.id) || !voters.contains(&node.id) {
            node.leader_contact.touch();
            continue;
        }
        // A lone voter has nobody to ask and nobody to depose.
        let alone = voters.len() == 1;
        let due = if alone {
            leader.is_none()
        } else {
            node.leader_contact.silent_for() >= timeout
        };
        if !due || Instant::now() < next_attempt {
            continue;
        }
        if alone || pre_vote(&node, &voters).await {
            // The pre-vote took a round trip: if a leader has been heard from
            // meanwhile (another candidate won), an election now would only
            // depose it.
            let still_silent = node.leader_contact.silent_for() >= timeout;
            if alone || (still_silent && node.current_leader() == leader) {
                tracing::info!(
                    node_id = node.id,
                    "no leader heard from: starting an election"
                );
                if let Err(e) = node.raft.trigger().elect().await {
                    tracing::warn!(error = %e, "cannot start an election");
                }
            }
        }
        timeout = timeouts.pick();
        next_attempt = Instant::now() + timeout;
    }
}

/// Asks every other voter; true with a majority of grants (self included).
async fn pre_vote(node: &Node, voters: &BTreeSet<NodeId>) -> bool {
    let (term, last_log) = {
        let metrics = node.raft.metrics();
        let m = metrics.borrow();
        (m.current_term, m.last_log_index.unwrap_or(0))
    };
    let asks = voters
        .iter()
        .filter(|v| **v != node.id)
        .filter_map(|v| node.address_of(*v))
        .map(|address| async move {
            let channel = node.peer(&address).ok()?;
            let mut request = tonic::Request::new(PreVoteRequest {
                candidate_id: node.id,
                candidate_term: term,
                candidate_last_log_index: last_log,
            });
            request.set_timeout(PRE_VOTE_TIMEOUT);
            RaftClient::new(channel)
                .pre_vote(request)
                .await
                .ok()
                .map(|r| r.into_inner().granted)
        });
    // A majority (this node included) is enough: do not wait for a voter
    // that is down or cut off to time out.
    let needed = voters.len() / 2;
    let mut pending: futures::stream::FuturesUnordered<_> = asks.collect();
    let mut granted = 0;
    while granted < needed {
        match futures::StreamExt::next(&mut pending).await {
            Some(Some(true)) => granted += 1,
            Some(_) => {}
            None => return false,
        }
    }
    true
}

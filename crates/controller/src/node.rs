//! One controller node: opens storage, starts Raft, bootstraps a new cluster
//! or waits to be joined, and proposes commands, forwarding them to the
//! leader when it is not the leader itself.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{CheckIsLeaderError, RaftError};
use openraft::BasicNode;
use orca_api::v1::raft_client::RaftClient;
use orca_api::v1::{RaftPayload, ReadIndexRequest};
use orca_core::arn::ArnContext;
use orca_core::ApiError;
use serde::{Deserialize, Serialize};
use tonic::transport::Channel;

use crate::config::Config;
use crate::error::Error;
use crate::plan_apply::{AskReply, PlanQueue, RunTaskAsk};
use crate::proposer::Proposer;
use crate::raft::election::{ElectionTimeouts, LeaderContact};
use crate::raft::log_store::LogStore;
use crate::raft::network::{GrpcNetwork, PeerChannels};
use crate::raft::state_machine::StateMachineStore;
use crate::raft::{NodeId, Raft};
use crate::state::{ClusterView, Command, CommandResult, Outcome};

/// How long a write waits for a leader to exist before giving up.
const LEADER_WAIT: Duration = Duration::from_secs(10);
/// How long a forwarded write may wait for the leader's answer.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(35);
/// How long the leader may take to confirm a read index.
const READ_INDEX_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between attempts while no leader is known.
const RETRY_PAUSE: Duration = Duration::from_millis(50);

/// The leader's answer to a forwarded write.
#[derive(Debug, Serialize, Deserialize)]
pub enum ProposeReply {
    Done(CommandResult),
    /// The receiver is not the leader (any more); nothing was proposed.
    NotLeader,
}

pub struct Node {
    pub id: NodeId,
    pub raft: Raft,
    /// The applied state, published by the state machine after each apply.
    views: tokio::sync::watch::Sender<ClusterView>,
    /// Per-instance wake-ups for agent sessions, published with the views.
    pub assignments: Arc<crate::state::AssignmentWatch>,
    pub arn: ArnContext,
    /// Group flushes of the log, for tests and metrics.
    pub log_flushes: Arc<AtomicU64>,
    /// The term whose leader-only work runs here; 0 when none does.
    pub leader_work_term: Arc<AtomicU64>,
    /// When this node last heard from a leader (for pre-vote).
    pub leader_contact: LeaderContact,
    /// Election timeouts, for granting pre-votes.
    pub election_timeouts: ElectionTimeouts,
    /// Serializes membership changes made through this node.
    pub membership_changes: tokio::sync::Mutex<()>,
    /// The plan applier while this node leads (set by the leader loops).
    pub plan_queue: std::sync::Mutex<Option<PlanQueue>>,
    /// How many plans this node's scheduler made (only a leader makes any).
    pub schedule_calls: Arc<AtomicU64>,
    /// Batches this node's proposals into shared entries.
    proposer: Proposer,
    /// Channels to other controllers, by address, shared with Raft.
    peers: PeerChannels,
    /// The cluster's secrets key (`--secrets-key-file`); None: secrets
    /// cannot be stored or read through this controller.
    pub secrets_key: Option<Arc<crate::secrets::SecretsKey>>,
}

fn raft_error(e: impl std::fmt::Display) -> Error {
    Error::Raft(e.to_string())
}

impl Node {
    /// Opens (or creates) the node's storage and starts Raft. A node with no
    /// Raft state and nothing to join bootstraps itself as the only voter; a
    /// node told to join waits to be added; a restarted node recovers from
    /// its snapshot and log.
    pub async fn open(config: &Config) -> Result<Node, Error> {
        let secrets_key = match &config.secrets_key_file {
            Some(file) => Some(Arc::new(crate::secrets::SecretsKey::load(file)?)),
            None => None,
        };
        let path = config.data_dir.join("raft");
        let data_dir_error = |source| Error::DataDir {
            path: path.clone(),
            source,
        };
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(data_dir_error)?;
        let log_store = LogStore::open(&db).map_err(data_dir_error)?;
        let log_flushes = log_store.flush_counter();
        let state_machine = StateMachineStore::open(&db, config.arn.clone(), config.task_cidr)?;
        let views = state_machine.views();
        let assignments = state_machine.assignments();
        let peers = PeerChannels::default();
        let raft = Raft::new(
            config.node_id,
            config.raft.to_config()?,
            GrpcNetwork {
                channels: peers.clone(),
            },
            log_store,
            state_machine,
        )
        .await
        .map_err(raft_error)?;
        let initialized = raft.is_initialized().await.map_err(raft_error)?;
        if !initialized && config.join.is_empty() {
            let address = config.advertised_address();
            let members = BTreeMap::from([(config.node_id, BasicNode { addr: address })]);
            raft.initialize(members).await.map_err(raft_error)?;
        }
        Ok(Node {
            id: config.node_id,
            raft: raft.clone(),
            views,
            assignments,
            arn: config.arn.clone(),
            log_flushes,
            leader_work_term: Arc::new(AtomicU64::new(0)),
            proposer: Proposer::start(raft.clone()),
            membership_changes: tokio::sync::Mutex::new(()),
            plan_queue: std::sync::Mutex::new(None),
            schedule_calls: Arc::new(AtomicU64::new(0)),
            leader_contact: LeaderContact::new(),
            election_timeouts: config.raft.election_timeouts(),
            peers,
            secrets_key,
        })
    }

    /// The latest applied state: an immutable view, cheap to take and hold.
    pub fn view(&self) -> ClusterView {
        self.views.borrow().clone()
    }

    /// A receiver that wakes whenever a new view is published.
    pub fn watch_views(&self) -> tokio::sync::watch::Receiver<ClusterView> {
        self.views.subscribe()
    }

    /// Waits until some leader is known.
    pub async fn wait_for_leader(&self, timeout: Duration) -> Result<NodeId, Error> {
        let metrics = self
            .raft
            .wait(Some(timeout))
            .metrics(|m| m.current_leader.is_some(), "a leader")
            .await
            .map_err(raft_error)?;
        metrics
            .current_leader
            .ok_or_else(|| Error::Raft("no leader".to_string()))
    }

    /// The address of controller `id` in the current membership.
    pub fn address_of(&self, id: NodeId) -> Option<String> {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        m.membership_config
            .membership()
            .get_node(&id)
            .map(|n| n.addr.clone())
    }

    pub fn current_leader(&self) -> Option<NodeId> {
        self.raft.metrics().borrow().current_leader
    }

    /// A channel to the controller at `address`, shared with Raft's own.
    pub fn peer(&self, address: &str) -> Result<Channel, ApiError> {
        self.peers
            .get(address)
            .map_err(|e| ApiError::server(format!("bad controller address {address}: {e}")))
    }

    /// Commits a command and returns what applying it produced. Returns only
    /// after the entry is flushed on a quorum, committed and applied. On a
    /// follower the command is forwarded to the leader.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ApiError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            let leader = match self.propose_here(command.clone()).await? {
                ProposeReply::Done(result) => return outcome(result),
                ProposeReply::NotLeader => self.current_leader().filter(|l| *l != self.id),
            };
            if let Some(address) = leader.and_then(|l| self.address_of(l)) {
                match self.forward(&address, &command).await? {
                    Some(ProposeReply::Done(result)) => return outcome(result),
                    // Not the leader any more, or gone before the write
                    // left: wait for the next leader.
                    Some(ProposeReply::NotLeader) | None => {}
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::server(format!(
                    "no controller leader for {}s: the write was not applied",
                    LEADER_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Proposes on this node if it leads; NotLeader (nothing proposed) if not.
    /// Concurrent proposals share an entry (see `proposer`).
    pub async fn propose_here(&self, command: Command) -> Result<ProposeReply, ApiError> {
        self.proposer.propose(command).await
    }

    /// Sends a command to the leader at `address`. None when the connection
    /// could not be opened (nothing was sent, so the caller may send it to
    /// the next leader); any other transport failure leaves the outcome
    /// unknown, so it is reported, never retried.
    async fn forward(
        &self,
        address: &str,
        command: &Command,
    ) -> Result<Option<ProposeReply>, ApiError> {
        let json = serde_json::to_vec(command)
            .map_err(|e| ApiError::server(format!("cannot encode the command: {e}")))?;
        let mut client = RaftClient::new(self.peer(address)?);
        let mut request = tonic::Request::new(RaftPayload { json });
        // Past this the outcome is unknown: the leader may commit it later.
        request.set_timeout(FORWARD_TIMEOUT);
        match client.propose(request).await {
            Ok(reply) => serde_json::from_slice(&reply.into_inner().json)
                .map(Some)
                .map_err(|e| {
                    ApiError::server(format!("bad reply from the leader at {address}: {e}"))
                }),
            Err(status) if orca_api::error::never_sent(&status) => {
                tracing::info!(leader = %address, "the leader cannot be reached: waiting for the next one");
                Ok(None)
            }
            Err(status) => Err(ApiError::server(format!(
                "the leader at {address} did not answer ({}): the write may or may not have been applied",
                failure_chain(&status)
            ))),
        }
    }

    /// Runs a RunTask ask through the leader's plan applier: here if this
    /// node leads, else forwarded. Like `propose`, waits for a leader and
    /// moves on to the next one when nothing was decided.
    pub async fn run_task(&self, ask: RunTaskAsk) -> Result<Outcome, ApiError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            if let AskReply::Done(result) = self.submit_here(ask.clone()).await {
                return result;
            }
            let leader = self
                .current_leader()
                .filter(|l| *l != self.id)
                .and_then(|l| self.address_of(l));
            if let Some(address) = leader {
                if let Some(AskReply::Done(result)) = self.forward_ask(&address, &ask).await? {
                    return result;
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::server(format!(
                    "no controller leader placed the tasks for {}s: nothing was started",
                    LEADER_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// Hands an ask to this node's plan applier; NotLeader when none runs.
    pub async fn submit_here(&self, ask: RunTaskAsk) -> AskReply {
        let queue = self
            .plan_queue
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        match queue {
            Some(q) if q.term() == self.leader_work_term() => q.submit(ask).await,
            _ => AskReply::NotLeader,
        }
    }

    /// Sends an ask to the leader at `address`: None when it could not be
    /// reached (nothing was sent).
    async fn forward_ask(
        &self,
        address: &str,
        ask: &RunTaskAsk,
    ) -> Result<Option<AskReply>, ApiError> {
        let json = serde_json::to_vec(ask)
            .map_err(|e| ApiError::server(format!("cannot encode the ask: {e}")))?;
        let mut client = RaftClient::new(self.peer(address)?);
        let mut request = tonic::Request::new(RaftPayload { json });
        request.set_timeout(FORWARD_TIMEOUT);
        match client.leader_call(request).await {
            Ok(reply) => serde_json::from_slice(&reply.into_inner().json)
                .map(Some)
                .map_err(|e| {
                    ApiError::server(format!("bad reply from the leader at {address}: {e}"))
                }),
            Err(status) if orca_api::error::never_sent(&status) => Ok(None),
            Err(status) => Err(ApiError::server(format!(
                "the leader at {address} did not answer ({}): tasks may or may not have been started",
                failure_chain(&status)
            ))),
        }
    }

    /// Waits until this node has applied everything committed before the
    /// call: a linearizable read may then be served from the local state.
    pub async fn linearizable_barrier(&self) -> Result<(), ApiError> {
        let index = self.read_index().await?;
        self.raft
            .wait(Some(LEADER_WAIT))
            .applied_index_at_least(Some(index), "read index")
            .await
            .map(|_| ())
            .map_err(|e| {
                ApiError::server(format!("did not catch up to the read index {index}: {e}"))
            })
    }

    /// The leader's read index, asked of the leader (this node or another);
    /// retried while leadership is changing.
    async fn read_index(&self) -> Result<u64, ApiError> {
        let deadline = tokio::time::Instant::now() + LEADER_WAIT;
        loop {
            match self.read_index_here().await {
                Ok(Some(index)) => return Ok(index),
                Ok(None) => {}
                // Leading but not confirmed by a quorum yet: try again.
                Err(e) if tokio::time::Instant::now() > deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(RETRY_PAUSE).await;
                    continue;
                }
            }
            let leader = self
                .current_leader()
                .filter(|l| *l != self.id)
                .and_then(|l| self.address_of(l));
            if let Some(address) = leader {
                let mut client = RaftClient::new(self.peer(&address)?);
                let mut request = tonic::Request::new(ReadIndexRequest {});
                request.set_timeout(READ_INDEX_TIMEOUT);
                if let Ok(reply) = client.read_index(request).await {
                    return Ok(reply.into_inner().index);
                }
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ApiError::server(format!(
                    "no controller leader confirmed a read index for {}s",
                    LEADER_WAIT.as_secs()
                )));
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
    }

    /// On the leader: confirms leadership with a quorum and returns the index
    /// a linearizable read must see applied. None when not the leader.
    pub async fn read_index_here(&self) -> Result<Option<u64>, ApiError> {
        match self.raft.get_read_log_id().await {
            Ok((read_log_id, _applied)) => Ok(Some(read_log_id.map(|l| l.index).unwrap_or(0))),
            Err(RaftError::APIError(CheckIsLeaderError::ForwardToLeader(_))) => Ok(None),
            Err(e) => Err(ApiError::server(format!("cannot confirm leadership: {e}"))),
        }
    }

    pub fn leader_work_term(&self) -> u64 {
        self.leader_work_term.load(Ordering::Relaxed)
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }
}

/// A failed call's message with every cause under it, so an operator can
/// tell a connection broken mid-call from a timeout.
fn failure_chain(status: &tonic::Status) -> String {
    let mut text = status.message().to_string();
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        let cause = e.to_string();
        if !text.contains(&cause) {
            text.push_str(": ");
            text.push_str(&cause);
        }
        source = e.source();
    }
    text
}

fn outcome(result: CommandResult) -> Result<Outcome, ApiError> {
    match result {
        CommandResult::Applied(outcome) => Ok(outcome),
        CommandResult::Refused(error) => Err(error),
        CommandResult::NoCommand | CommandResult::Batch(_) => {
            Err(ApiError::server("the write produced no result of its own"))
        }
    }
}

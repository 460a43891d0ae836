//! Controller membership: joining, removing and describing members. Changes
//! run on the leader; a follower forwards them there.

use std::collections::BTreeSet;

use openraft::error::{ChangeMembershipError, ClientWriteError, RaftError};
use openraft::{BasicNode, ChangeMembers};
use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_api::v1::{JoinClusterRequest, Member, MembersReply, RemoveMemberRequest};
use orca_core::{ApiError, Exception};

use crate::node::Node;
use crate::raft::NodeId;

/// How long a joining controller may take to catch up before it is
/// promoted; the join is refused after that and may be asked again.
const LEARNER_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(60);

fn server(what: &str, e: impl std::fmt::Display) -> ApiError {
    ApiError::server(format!("{what}: {e}"))
}

impl Node {
    /// This controller's view of the membership; replication progress is
    /// known only when it is the leader.
    pub fn members(&self) -> MembersReply {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let membership = m.membership_config.membership();
        let voters: BTreeSet<NodeId> = membership.voter_ids().collect();
        let last_log_index = m.last_log_index.unwrap_or(0);
        let members = membership
            .nodes()
            .map(|(id, node)| {
                let matched_index = m
                    .replication
                    .as_ref()
                    .and_then(|r| r.get(id).cloned().flatten())
                    .map(|l| l.index)
                    .unwrap_or(0);
                let role = if m.current_leader == Some(*id) {
                    "leader"
                } else if voters.contains(id) {
                    "follower"
                } else {
                    "learner"
                };
                Member {
                    node_id: *id,
                    address: node.addr.clone(),
                    role: role.to_string(),
                    voter: voters.contains(id),
                    matched_index,
                    lag: if m.replication.is_some() {
                        last_log_index.saturating_sub(matched_index)
                    } else {
                        0
                    },
                }
            })
            .collect();
        MembersReply {
            responder_id: self.id,
            leader_id: m.current_leader.unwrap_or(0),
            term: m.current_term,
            last_log_index,
            last_applied_index: m.last_applied.map(|l| l.index).unwrap_or(0),
            members,
            leader_work_term: self.leader_work_term(),
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            purged_index: m.purged.map(|l| l.index).unwrap_or(0),
            plans: self
                .schedule_calls
                .load(std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// Whether controller `id` is a voter in the membership this node knows.
    pub fn is_voter(&self, id: NodeId) -> bool {
        let metrics = self.raft.metrics();
        let m = metrics.borrow();
        let voter = m
            .membership_config
            .membership()
            .voter_ids()
            .any(|v| v == id);
        voter
    }

    fn is_leader(&self) -> bool {
        self.current_leader() == Some(self.id)
    }

    fn leader_admin(&self) -> Result<ControllerAdminClient<tonic::transport::Channel>, ApiError> {
        let address = self
            .current_leader()
            .and_then(|l| self.address_of(l))
            .ok_or_else(|| ApiError::server("no controller leader is known"))?;
        Ok(ControllerAdminClient::new(self.peer(&address)?))
    }

    /// Adds controller `id` at `address` as a learner, waits for it to catch
    /// up, then promotes it to voter. Idempotent for a member at that address.
    pub async fn join_member(&self, request: JoinClusterRequest) -> Result<MembersReply, ApiError> {
        if !self.is_leader() {
            let mut leader = self.leader_admin()?;
            let reply = leader
                .join_cluster(request)
                .await
                .map_err(|s| orca_api::error::from_status(&s))?;
            return Ok(reply.into_inner());
        }
        let (id, address) = (request.node_id, request.address.clone());
        let theirs = crate::state::Identity {
            region: request.region,
            account: request.account,
            task_cidr: request.task_cidr,
        };
        // A join asked for by an operator names no flags; a controller's
        // own join does, and must match.
        let named = !theirs.region.is_empty();
        if let (true, Some(fixed)) = (named, self.view().identity.clone()) {
            if let Some(difference) = theirs.difference(&fixed) {
                return Err(ApiError::new(
                    Exception::ClientException,
                    format!("controller {id} cannot join: {difference}"),
                ));
            }
        }
        // Read the membership under the lock, so that two joins of one id at
        // different addresses cannot both pass the check.
        let _one_at_a_time = self.membership_changes.lock().await;
        let (known, is_voter) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            let known = membership.get_node(&id).map(|n| n.addr.clone());
            (known, membership.voter_ids().any(|v| v == id))
        };
        match known {
            Some(existing) if existing != address => {
                return Err(ApiError::field(
                    Exception::ClientException,
                    "nodeId",
                    format!("controller {id} is already a member at {existing}; remove it before adding it at {address}"),
                ))
            }
            Some(_) => {}
            None => {
                let node = BasicNode { addr: address };
                retry_in_progress(|| async {
                    self.raft.add_learner(id, node.clone(), false).await.map(|_| ())
                })
                .await?;
            }
        }
        // Promote only once the learner has caught up, but never wait
        // without bound while holding the lock (it may have died).
        let target = self.raft.metrics().borrow().last_log_index;
        self.raft
            .wait(Some(LEARNER_CATCH_UP))
            .metrics(
                |m| {
                    let matched = m
                        .replication
                        .as_ref()
                        .and_then(|r| r.get(&id).cloned().flatten());
                    matched.map(|l| l.index) >= target
                },
                "the learner to catch up",
            )
            .await
            .map_err(|e| server(&format!("controller {id} did not catch up"), e))?;
        if !is_voter {
            retry_in_progress(|| async {
                let voters = BTreeSet::from([id]);
                self.raft
                    .change_membership(ChangeMembers::AddVoterIds(voters), false)
                    .await
                    .map(|_| ())
            })
            .await?;
        }
        Ok(self.members())
    }

    /// Removes controller `id` from the voters and learners.
    pub async fn remove_member(&self, id: NodeId) -> Result<MembersReply, ApiError> {
        if !self.is_leader() {
            let mut leader = self.leader_admin()?;
            let reply = leader
                .remove_member(RemoveMemberRequest { node_id: id })
                .await
                .map_err(|s| orca_api::error::from_status(&s))?;
            return Ok(reply.into_inner());
        }
        let (is_voter, is_member) = {
            let metrics = self.raft.metrics();
            let m = metrics.borrow();
            let membership = m.membership_config.membership();
            (
                membership.voter_ids().any(|v| v == id),
                membership.get_node(&id).is_some(),
            )
        };
        if !is_member {
            return Err(ApiError::field(
                Exception::ClientException,
                "nodeId",
                format!("controller {id} is not a member"),
            ));
        }
        let change = if is_voter {
            ChangeMembers::RemoveVoters(BTreeSet::from([id]))
        } else {
            ChangeMembers::RemoveNodes(BTreeSet::from([id]))
        };
        let _one_at_a_time = self.membership_changes.lock().await;
        retry_in_progress(|| async {
            self.raft
                .change_membership(change.clone(), false)
                .await
                .map(|_| ())
        })
        .await?;
        Ok(self.members())
    }
}

/// Retries a membership change that openraft refused because another one was
/// in flight (a concurrent join, or the second step of a joint change).
async fn retry_in_progress<F, Fut>(mut change: F) -> Result<(), ApiError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<
        Output = Result<(), RaftError<NodeId, ClientWriteError<NodeId, BasicNode>>>,
    >,
{
    for _ in 0..50 {
        match change().await {
            Err(RaftError::APIError(ClientWriteError::ChangeMembershipError(
                ChangeMembershipError::InProgress(_),
            ))) => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            Ok(()) => return Ok(()),
            Err(e) => return Err(server("cannot change the membership", e)),
        }
    }
    Err(ApiError::server("the membership kept changing: try again"))
}

//! The `Raft` service: openraft's RPCs from other controllers, and the
//! leader's side of forwarded writes and read indexes.

use std::sync::Arc;

use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, VoteRequest,
};
use orca_api::error::to_status;
use orca_api::v1::{self, RaftPayload};
use serde::de::DeserializeOwned;
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::node::Node;
use crate::raft::election::grants_pre_vote;
use crate::raft::{NodeId, TypeConfig};
use crate::state::Command;

pub struct RaftService {
    node: Arc<Node>,
}

impl RaftService {
    pub fn new(node: Arc<Node>) -> Self {
        RaftService { node }
    }
}

fn decode<T: DeserializeOwned>(request: Request<RaftPayload>) -> Result<T, Status> {
    serde_json::from_slice(&request.into_inner().json)
        .map_err(|e| Status::invalid_argument(format!("undecodable raft message: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Response<RaftPayload>, Status> {
    serde_json::to_vec(value)
        .map(|json| Response::new(RaftPayload { json }))
        .map_err(|e| Status::internal(format!("cannot encode raft reply: {e}")))
}

#[tonic::async_trait]
impl v1::raft_server::Raft for RaftService {
    async fn append_entries(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(request)?;
        let result = self.node.raft.append_entries(rpc).await;
        // Any AppendEntries a current leader sent counts as hearing from it,
        // as it does for openraft's own lease; only a stale one does not.
        let from_current_leader = result
            .as_ref()
            .is_ok_and(|r| !matches!(r, AppendEntriesResponse::HigherVote(_)));
        if from_current_leader {
            self.node.leader_contact.touch();
        }
        encode(&result)
    }

    async fn vote(&self, request: Request<RaftPayload>) -> Result<Response<RaftPayload>, Status> {
        let rpc: VoteRequest<NodeId> = decode(request)?;
        encode(&self.node.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(request)?;
        let result = self.node.raft.install_snapshot(rpc).await;
        if result.is_ok() {
            self.node.leader_contact.touch();
        }
        encode(&result)
    }

    async fn propose(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let command: Command = decode(request)?;
        let reply = self
            .node
            .propose_here(command)
            .await
            .map_err(|e| to_status(&e))?;
        encode(&reply)
    }

    async fn leader_call(
        &self,
        request: Request<RaftPayload>,
    ) -> Result<Response<RaftPayload>, Status> {
        let ask: crate::plan_apply::RunTaskAsk = decode(request)?;
        encode(&self.node.submit_here(ask).await)
    }

    async fn pre_vote(
        &self,
        request: Request<v1::PreVoteRequest>,
    ) -> Result<Response<v1::PreVoteReply>, Status> {
        let candidate_last_log = request.into_inner().candidate_last_log_index;
        let granted = grants_pre_vote(&self.node, self.node.election_timeouts, candidate_last_log);
        let responder_term = self.node.raft.metrics().borrow().current_term;
        Ok(Response::new(v1::PreVoteReply {
            granted,
            responder_term,
        }))
    }

    async fn read_index(
        &self,
        _request: Request<v1::ReadIndexRequest>,
    ) -> Result<Response<v1::ReadIndexReply>, Status> {
        match self
            .node
            .read_index_here()
            .await
            .map_err(|e| to_status(&e))?
        {
            Some(index) => Ok(Response::new(v1::ReadIndexReply { index })),
            None => Err(Status::unavailable("not the leader")),
        }
    }
}

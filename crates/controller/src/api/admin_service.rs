//! The `ControllerAdmin` service: membership changes and status for
//! operators (`orca controller ...`) and for joining controllers.

use std::sync::Arc;

use orca_api::error::to_status;
use orca_api::v1::{self, MembersReply};
use tonic::{Request, Response, Status};

use crate::node::Node;

pub struct AdminService {
    node: Arc<Node>,
}

impl AdminService {
    pub fn new(node: Arc<Node>) -> Self {
        AdminService { node }
    }
}

#[tonic::async_trait]
impl v1::controller_admin_server::ControllerAdmin for AdminService {
    async fn join_cluster(
        &self,
        request: Request<v1::JoinClusterRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        let req = request.into_inner();
        tracing::info!(node_id = req.node_id, address = %req.address, "join requested");
        self.node
            .join_member(req)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn remove_member(
        &self,
        request: Request<v1::RemoveMemberRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        let req = request.into_inner();
        tracing::info!(node_id = req.node_id, "removal requested");
        self.node
            .remove_member(req.node_id)
            .await
            .map(Response::new)
            .map_err(|e| to_status(&e))
    }

    async fn members(
        &self,
        _request: Request<v1::MembersRequest>,
    ) -> Result<Response<MembersReply>, Status> {
        Ok(Response::new(self.node.members()))
    }
}

//! The agents' API: RegisterContainerInstance (any controller; the write is
//! forwarded to the leader) and Session (the leader only; another controller
//! answers UNAVAILABLE naming the leader in `orca-leader`).

use std::pin::Pin;
use std::sync::Arc;

use futures::Stream;
use orca_api::error::to_status;
use orca_api::v1::{agent_server::Agent, AgentJson};
use orca_core::agent_protocol::{Registration, RegistrationReply};
use orca_core::cluster::validate_cluster_name;
use orca_core::json_input::parse_input;
use orca_core::{ApiError, Exception};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status, Streaming};

use crate::agents::session::{self, SessionContext};
use crate::clock::Clock;
use crate::state::{Command, Outcome};

/// Metadata naming the leader's address on a refused session.
pub const LEADER_METADATA: &str = "orca-leader";

pub struct AgentService {
    sessions: SessionContext,
    clock: Arc<dyn Clock>,
}

impl AgentService {
    pub fn new(sessions: SessionContext, clock: Arc<dyn Clock>) -> Self {
        AgentService { sessions, clock }
    }

    async fn register(&self, json: &str) -> Result<String, ApiError> {
        let registration: Registration = parse_input(json, "RegisterContainerInstance")?;
        validate_cluster_name(&registration.cluster, "cluster")?;
        if registration.cpu == 0 || registration.memory == 0 {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                if registration.cpu == 0 {
                    "cpu"
                } else {
                    "memory"
                },
                "a container instance must register more than 0",
            ));
        }
        // An id the agent chose (and saved before registering) makes a
        // repeated registration name the same instance: no ghost instance
        // when the agent crashed before it could save the reply.
        let instance_id = match &registration.instance_id {
            Some(id) if is_instance_id(id) => id.clone(),
            Some(_) => {
                return Err(ApiError::field(
                    Exception::InvalidParameterException,
                    "instanceId",
                    "an instance id is 32 lowercase hexadecimal digits",
                ))
            }
            None => uuid::Uuid::new_v4().simple().to_string(),
        };
        let command = Command::RegisterContainerInstance {
            instance_id,
            registration,
            at: self.clock.now(),
        };
        match self.sessions.node.propose(command).await? {
            Outcome::ContainerInstance(record) => {
                tracing::info!(instance = %record.id, hostname = %record.hostname, subnet = %record.task_subnet, "container instance registered");
                let state = self.sessions.node.view();
                let reply = RegistrationReply {
                    container_instance_arn: record.arn.clone(),
                    cluster_arn: state.arn.cluster(&record.cluster),
                    task_subnet: record.task_subnet.to_string(),
                };
                serde_json::to_string(&reply).map_err(|e| ApiError::server(e.to_string()))
            }
            other => Err(ApiError::server(format!("unexpected outcome: {other:?}"))),
        }
    }
}

/// The shape of the ids this controller mints (a simple uuid).
fn is_instance_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

type SessionStream = Pin<Box<dyn Stream<Item = Result<AgentJson, Status>> + Send>>;

#[tonic::async_trait]
impl Agent for AgentService {
    async fn register_container_instance(
        &self,
        request: Request<AgentJson>,
    ) -> Result<Response<AgentJson>, Status> {
        self.register(&request.into_inner().json)
            .await
            .map(|json| Response::new(AgentJson { json }))
            .map_err(|e| to_status(&e))
    }

    type SessionStream = SessionStream;

    async fn session(
        &self,
        request: Request<Streaming<AgentJson>>,
    ) -> Result<Response<Self::SessionStream>, Status> {
        let node = &self.sessions.node;
        let term = node.leader_work_term();
        if term == 0 {
            let mut status =
                Status::unavailable("not the leader: open the session with the leader");
            if let Some(address) = node.current_leader().and_then(|l| node.address_of(l)) {
                if let Ok(value) = address.parse() {
                    status.metadata_mut().insert(LEADER_METADATA, value);
                }
            }
            return Err(status);
        }
        let (tx, rx) = tokio::sync::mpsc::channel(64);
        tokio::spawn(session::run(
            self.sessions.clone(),
            term,
            request.into_inner(),
            tx,
        ));
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}

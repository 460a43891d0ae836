//! `orca.v1.Exec`, ECS Exec's analogue, served by every controller: the
//! first message names the task and container and carries the command;
//! the controller checks them against its applied state (after the read
//! index, so a task just started through another controller is seen),
//! parses the command, and relays the session both ways to the node API
//! of the agent running the task. Nothing of the session's data is logged.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::{Stream, StreamExt};
use orca_api::error::to_status;
use orca_api::v1::exec_server::Exec;
use orca_api::v1::node_exec_client::NodeExecClient;
use orca_api::v1::{self, exec_client_message, exec_server_message};
use orca_core::arn::cluster_name;
use orca_core::command_line::parse_command;
use orca_core::{ApiError, Exception};
use tonic::{Request, Response, Status, Streaming};

use crate::node::Node;

/// How long dialling the agent may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub struct ExecService {
    node: Arc<Node>,
}

impl ExecService {
    pub fn new(node: Arc<Node>) -> Self {
        ExecService { node }
    }
}

type ServerStream = Pin<Box<dyn Stream<Item = Result<v1::ExecServerMessage, Status>> + Send>>;

fn invalid(field: &str, rule: impl std::fmt::Display) -> Status {
    to_status(&ApiError::field(
        Exception::InvalidParameterException,
        field,
        rule,
    ))
}

#[tonic::async_trait]
impl Exec for ExecService {
    type ExecuteCommandStream = ServerStream;

    async fn execute_command(
        &self,
        request: Request<Streaming<v1::ExecClientMessage>>,
    ) -> Result<Response<ServerStream>, Status> {
        let mut inbound = request.into_inner();
        let mut start = match inbound.message().await? {
            Some(v1::ExecClientMessage {
                body: Some(exec_client_message::Body::Start(start)),
            }) => start,
            _ => return Err(invalid("start", "the first message must start the session")),
        };
        let cluster = cluster_name(&start.cluster).map_err(|e| to_status(&e))?;
        self.node
            .linearizable_barrier()
            .await
            .map_err(|e| to_status(&e))?;
        let container = (!start.container.is_empty()).then_some(start.container.as_str());
        let target = self
            .node
            .view()
            .exec_target(&cluster, &start.task, container)
            .map_err(|e| to_status(&e))?;
        start.argv = parse_command(&start.command).map_err(|e| invalid("command", e))?;
        start.task = target.task_id.clone();
        start.container = target.container_name.clone();
        start.container_index = target.container_index;
        let session_id = format!("ecs-execute-command-{}", uuid::Uuid::new_v4().simple());
        tracing::info!(task = %target.task_id, container = %target.container_name, %session_id, "execute-command session");
        let endpoint =
            tonic::transport::Endpoint::from_shared(format!("http://{}", target.node_api))
                .map_err(|e| Status::internal(e.to_string()))?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true);
        let channel = endpoint.connect().await.map_err(|e| {
            Status::unavailable(format!(
                "cannot reach the agent running task {} at {}: {e}",
                target.task_id, target.node_api
            ))
        })?;
        // The client's later messages follow the completed start; a second
        // start is dropped.
        let first = v1::ExecClientMessage {
            body: Some(exec_client_message::Body::Start(start)),
        };
        let rest = inbound
            // The client went away: the agent's input ends (EOF), and the
            // response stream dropped with it ends the process.
            .take_while(|m| futures::future::ready(m.is_ok()))
            .filter_map(|m| {
                futures::future::ready(match m {
                    Ok(v1::ExecClientMessage {
                        body: Some(exec_client_message::Body::Start(_)),
                    }) => None,
                    Ok(m) => Some(m),
                    Err(_) => None,
                })
            });
        let outbound = futures::stream::once(futures::future::ready(first)).chain(rest);
        let from_agent = NodeExecClient::new(channel)
            .exec(outbound)
            .await?
            .into_inner();
        let started = v1::ExecServerMessage {
            body: Some(exec_server_message::Body::Started(v1::ExecStarted {
                cluster_arn: target.cluster_arn,
                task_arn: target.task_arn,
                container_arn: target.container_arn,
                container_name: target.container_name,
                interactive: true,
                session_id,
            })),
        };
        let stream = futures::stream::once(futures::future::ready(Ok(started))).chain(from_agent);
        Ok(Response::new(Box::pin(stream)))
    }
}

//! The subcommands, one file each, and what they share: the lazily connected
//! [`Ctx`] and the mapping of gRPC statuses to [`CliError`]s. Every command
//! builds its request first (so usage errors come before connection errors),
//! then connects, calls, and returns the response as ECS's JSON.

pub mod create_cluster;
pub mod delete_cluster;
pub mod delete_task_definitions;
pub mod deregister_task_definition;
pub mod describe_clusters;
pub mod describe_task_definition;
pub mod list_clusters;
pub mod list_task_definition_families;
pub mod list_task_definitions;
pub mod register_task_definition;
pub mod shape;
pub mod update_cluster;

use crate::exit::CliError;
use orca_api::v1::ecs_client::EcsClient;
use tonic::transport::Channel;

/// The connection a command runs over, opened on first use.
pub struct Ctx {
    /// Controllers to try, in order.
    endpoints: Vec<String>,
    /// The client and the endpoint it reached, once connected.
    connected: Option<(EcsClient<Channel>, String)>,
}

impl Ctx {
    pub fn new(endpoints: Vec<String>) -> Self {
        Ctx {
            endpoints,
            connected: None,
        }
    }

    /// A client for the first endpoint that accepts a connection.
    pub async fn client(&mut self) -> Result<EcsClient<Channel>, CliError> {
        if let Some((client, _)) = &self.connected {
            return Ok(client.clone());
        }
        for endpoint in &self.endpoints {
            if let Ok(client) = orca_api::client::connect(endpoint).await {
                self.connected = Some((client.clone(), endpoint.clone()));
                return Ok(client);
            }
        }
        Err(CliError::Connect {
            endpoints: self.endpoints.clone(),
        })
    }

    /// The error for a failed call: the ECS exception the status carries, or a
    /// connection failure when the transport itself broke.
    pub fn fail(&self, operation: &'static str, status: tonic::Status) -> CliError {
        let transport = status.code() == tonic::Code::Unavailable
            && status
                .metadata()
                .get(orca_api::error::EXCEPTION_KEY)
                .is_none()
            && std::error::Error::source(&status).is_some();
        if transport {
            let endpoint = self.connected.as_ref().map(|(_, e)| e.clone());
            return CliError::Connect {
                endpoints: endpoint.into_iter().collect(),
            };
        }
        let error = orca_api::error::from_status(&status);
        CliError::Service {
            operation,
            exception: error.exception.name().to_string(),
            message: error.message,
        }
    }
}

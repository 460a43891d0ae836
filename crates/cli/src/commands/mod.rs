//! The subcommands, one file each, and what they share: [`Ctx`], which runs
//! every call with failover between the endpoints (policy in
//! [`crate::failover`]) and maps failures to [`CliError`]s. Every command
//! builds its request first (so usage errors come before connection errors),
//! then calls through the `Ctx` and returns the response as JSON. `dev` and
//! `image load` work on this machine instead and need no `Ctx`.

pub mod controller_join;
pub mod controller_members;
pub mod controller_remove_member;
pub mod create_cluster;
pub mod create_service;
pub mod delete_attributes;
pub mod delete_cluster;
pub mod delete_service;
pub mod delete_task_definitions;
pub mod deregister_container_instance;
pub mod deregister_task_definition;
pub mod describe_clusters;
pub mod describe_container_instances;
pub mod describe_services;
pub mod describe_task_definition;
pub mod describe_tasks;
pub mod dev;
pub mod execute_command;
pub mod image_load;
pub mod list_attributes;
pub mod list_clusters;
pub mod list_container_instances;
pub mod list_services;
pub mod list_task_definition_families;
pub mod list_task_definitions;
pub mod list_tasks;
pub mod log_time;
pub mod logs;
pub mod logs_tail;
pub mod parameters;
pub mod put_attributes;
pub mod register_task_definition;
pub mod run_task;
pub mod secrets;
pub mod service_flags;
pub mod shape;
pub mod stop_task;
pub mod update_cluster;
pub mod update_container_instances_state;
pub mod update_service;
pub mod wait;

use crate::exit::CliError;
use crate::failover::{self, Call, Failure};
use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::logs_client::LogsClient;
use orca_api::v1::secrets_client::SecretsClient;
use std::future::Future;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tonic::transport::{Channel, Endpoint};

/// How long opening a connection to one controller may take before the next is tried.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take once sent, so that a controller that accepts
/// a connection and then hangs cannot hang the CLI. Each is above the
/// controller's own bound for that kind of call (a read index 10 s, a commit
/// 30 s, a forwarded write 35 s, a join's catch-up 60 s).
const READ_DEADLINE: Duration = Duration::from_secs(30);
const WRITE_DEADLINE: Duration = Duration::from_secs(60);
const ADMIN_DEADLINE: Duration = Duration::from_secs(150);

/// The endpoints a command's calls go to, and the connection in use.
///
/// Each call starts at the endpoint the previous call ended on and, when
/// [`failover::try_next`] says so, moves on through the list (wrapping
/// around), using each endpoint at most once. Connections are opened only
/// when a call needs them.
pub struct Ctx {
    /// Controllers to try, in order.
    endpoints: Vec<String>,
    /// Whether reads ask for linearizable consistency (`--consistent-read`).
    consistent_read: bool,
    /// The endpoint the next call starts at (an index into `endpoints`) and
    /// its channel once opened. Locked only to read or replace it, never
    /// across an `.await`.
    current: Mutex<(usize, Option<Channel>)>,
}

impl Ctx {
    pub fn new(endpoints: Vec<String>, consistent_read: bool) -> Self {
        Ctx {
            endpoints,
            consistent_read,
            current: Mutex::new((0, None)),
        }
    }

    /// Calls the ECS service: `send` makes the call on a client. Reads carry
    /// the linearizable header under `--consistent-read`.
    pub async fn ecs<Req, Resp, Fut>(
        &self,
        operation: &'static str,
        call: Call,
        request: Req,
        send: impl Fn(EcsClient<Channel>, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, CliError>
    where
        Req: Clone,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let linearizable = self.consistent_read && call == Call::Read;
        let deadline = if call == Call::Read {
            READ_DEADLINE
        } else {
            WRITE_DEADLINE
        };
        self.call(
            operation,
            call,
            Some(deadline),
            request,
            |channel, request| {
                send(
                    EcsClient::new(channel),
                    with_consistency(request, linearizable),
                )
            },
        )
        .await
    }

    /// Calls the Secrets service (Secrets Manager and Parameter Store), as
    /// [`Ctx::ecs`] calls ECS.
    pub async fn secrets<Resp, Fut>(
        &self,
        operation: &'static str,
        call: Call,
        input: serde_json::Map<String, serde_json::Value>,
        send: impl Fn(SecretsClient<Channel>, tonic::Request<orca_api::v1::EcsJsonRequest>) -> Fut,
    ) -> Result<Resp, CliError>
    where
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let linearizable = self.consistent_read && call == Call::Read;
        let deadline = if call == Call::Read {
            READ_DEADLINE
        } else {
            WRITE_DEADLINE
        };
        let request = shape::ecs_json_request(input);
        self.call(
            operation,
            call,
            Some(deadline),
            request,
            |channel, request| {
                send(
                    SecretsClient::new(channel),
                    with_consistency(request, linearizable),
                )
            },
        )
        .await
    }

    /// Calls the ControllerAdmin service (membership and status).
    pub async fn admin<Req, Resp, Fut>(
        &self,
        operation: &'static str,
        call: Call,
        request: Req,
        send: impl Fn(ControllerAdminClient<Channel>, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, CliError>
    where
        Req: Clone,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.call(
            operation,
            call,
            Some(ADMIN_DEADLINE),
            request,
            |channel, request| send(ControllerAdminClient::new(channel), request),
        )
        .await
    }

    /// Opens a stream on the Logs service. It fails over like a read until
    /// the stream is open, and has no deadline: a follow runs until the
    /// user interrupts it.
    pub async fn logs<Req, Resp, Fut>(
        &self,
        operation: &'static str,
        request: Req,
        send: impl Fn(LogsClient<Channel>, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, CliError>
    where
        Req: Clone,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        self.call(operation, Call::Read, None, request, |channel, request| {
            send(LogsClient::new(channel), request)
        })
        .await
    }

    /// The failover loop every call goes through.
    async fn call<Req, Resp, Fut>(
        &self,
        operation: &'static str,
        call: Call,
        deadline: Option<Duration>,
        request: Req,
        send: impl Fn(Channel, tonic::Request<Req>) -> Fut,
    ) -> Result<Resp, CliError>
    where
        Req: Clone,
        Fut: Future<Output = Result<tonic::Response<Resp>, tonic::Status>>,
    {
        let n = self.endpoints.len();
        let (start, mut cached) = self.current_endpoint();
        let mut tried = Vec::new();
        let mut last: (Failure, Option<tonic::Status>, usize) = (Failure::CONNECT, None, start);
        for index in (0..n).map(|i| (start + i) % n) {
            let endpoint = &self.endpoints[index];
            tried.push(endpoint.clone());
            let channel = match cached.take() {
                Some(channel) => channel,
                None => match connect(endpoint).await {
                    Ok(channel) => {
                        self.set_current(index, Some(channel.clone()));
                        channel
                    }
                    Err(_) => {
                        last = (Failure::CONNECT, None, index);
                        continue;
                    }
                },
            };
            let mut attempt = tonic::Request::new(request.clone());
            if let Some(deadline) = deadline {
                attempt.set_timeout(deadline);
            }
            match send(channel, attempt).await {
                Ok(response) => return Ok(response.into_inner()),
                Err(status) => {
                    let failure = failover::classify(&status);
                    last = (failure, Some(status), index);
                    if !failover::try_next(failure.kind, call, failure.request_sent) {
                        break;
                    }
                    // The next call starts at the next endpoint, freshly connected.
                    self.set_current((index + 1) % n, None);
                }
            }
        }
        let (failure, status, index) = last;
        let endpoint = self.endpoints.get(index).map_or("", String::as_str);
        Err(failover::give_up(
            operation,
            call,
            failure,
            status.as_ref(),
            endpoint,
            tried,
        ))
    }

    /// A channel to the first controller that accepts a connection, for a
    /// streaming call (which is not retried elsewhere once it has begun).
    pub async fn connect_any(&self) -> Result<Channel, CliError> {
        let n = self.endpoints.len();
        let (start, cached) = self.current_endpoint();
        if let Some(channel) = cached {
            return Ok(channel);
        }
        for index in (0..n).map(|i| (start + i) % n) {
            if let Ok(channel) = connect(&self.endpoints[index]).await {
                self.set_current(index, Some(channel.clone()));
                return Ok(channel);
            }
        }
        Err(CliError::Connect {
            endpoints: self.endpoints.clone(),
        })
    }

    fn current_endpoint(&self) -> (usize, Option<Channel>) {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_current(&self, index: usize, channel: Option<Channel>) {
        *self.current.lock().unwrap_or_else(PoisonError::into_inner) = (index, channel);
    }
}

/// `request`, marked for a linearizable read when asked.
fn with_consistency<T>(request: tonic::Request<T>, linearizable: bool) -> tonic::Request<T> {
    if linearizable {
        orca_api::read::linearizable(request)
    } else {
        request
    }
}

/// Opens a channel to one controller (the CLI needs the channel itself, for
/// either service, so it does not use `orca_api::client::connect`).
async fn connect(endpoint: &str) -> Result<Channel, tonic::transport::Error> {
    Endpoint::from_shared(orca_api::client::endpoint_uri(endpoint))?
        .connect_timeout(CONNECT_TIMEOUT)
        .tcp_nodelay(true)
        .connect()
        .await
}

#[cfg(test)]
mod tests;

//! The node API: a small gRPC service (`orca.v1.Node`, proto/orca/v1/
//! node.proto) the agent serves on `api_listen` and registers with its
//! container instance, so that any controller can reach what only this
//! node holds on a client's behalf. Today that is the container logs
//! ([`logs`]); each further call gets a module of its own beside it and a
//! method in [`NodeService`].
//!
//! It is bound before the agent registers (the registration carries the
//! bound address) and served until the agent stops.

pub mod exec;
pub mod logs;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;

use orca_api::v1::node_exec_server::{NodeExec, NodeExecServer};
use orca_api::v1::node_server::{Node, NodeServer};
use orca_api::v1::{LogChunk, NodeLogsRequest};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::session::AssignmentWatch;

/// Why the node API could not start.
#[derive(Debug, thiserror::Error)]
pub enum NodeApiError {
    #[error("node API: cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// The listener, bound, and the address controllers are told to dial.
pub struct BoundNodeApi {
    listener: TcpListener,
    /// `host:port` as registered: the listener's port on the listen
    /// address, or on `reachable_ip` when it listens on every address.
    pub advertised: String,
}

/// Binds `listen`. A listener on every address (0.0.0.0) is advertised at
/// `reachable_ip`: the node address other nodes use, else loopback (the
/// controllers are on this machine).
pub async fn bind(
    listen: SocketAddr,
    reachable_ip: Option<Ipv4Addr>,
) -> Result<BoundNodeApi, NodeApiError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| NodeApiError::Bind {
            addr: listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(|source| NodeApiError::Bind {
        addr: listen,
        source,
    })?;
    let ip = if bound.ip().is_unspecified() {
        IpAddr::V4(reachable_ip.unwrap_or(Ipv4Addr::LOCALHOST))
    } else {
        bound.ip()
    };
    Ok(BoundNodeApi {
        listener,
        advertised: SocketAddr::new(ip, bound.port()).to_string(),
    })
}

/// What the node API's calls read.
#[derive(Clone)]
pub struct NodeState {
    /// `<data_dir>/tasks`: `<task-id>/<container>.log` and rotated files.
    pub logs_dir: PathBuf,
    /// `<data_dir>/finished`: a task with a final report there has ended.
    pub finished_dir: PathBuf,
    /// The leader's latest assignments: a task no longer assigned has
    /// ended here too.
    pub assignments: AssignmentWatch,
    /// The agent's shutdown: follows end with it (the server's graceful
    /// stop waits for open streams).
    pub shutdown: CancellationToken,
    /// The containers, for exec.
    pub runtime: std::sync::Arc<dyn orca_runtime::ContainerRuntime>,
}

impl NodeState {
    /// Whether the task is over on this node (its log files grow no more,
    /// short of the driver's last flush).
    pub fn task_ended(&self, task_id: &str) -> bool {
        // Never a path of an unchecked name (callers check it already).
        if orca_core::names::check_task_id(task_id).is_err() {
            return true;
        }
        if self.finished_dir.join(format!("{task_id}.json")).exists() {
            return true;
        }
        match &*self.assignments.borrow() {
            Some(tasks) => !tasks.iter().any(|t| t.task_id == task_id),
            // No assignments yet (no session so far): cannot tell.
            None => false,
        }
    }
}

/// The tonic service: each call validates and hands off to its module.
pub struct NodeService {
    state: NodeState,
}

#[tonic::async_trait]
impl Node for NodeService {
    type LogsStream = logs::LogStream;

    async fn logs(
        &self,
        request: Request<NodeLogsRequest>,
    ) -> Result<Response<Self::LogsStream>, Status> {
        logs::open(self.state.clone(), request.into_inner()).map(Response::new)
    }
}

/// `orca.v1.NodeExec`, beside `orca.v1.Node` on the same listener.
pub struct NodeExecService {
    state: NodeState,
}

#[tonic::async_trait]
impl NodeExec for NodeExecService {
    type ExecStream = exec::ExecStream;

    async fn exec(
        &self,
        request: Request<tonic::Streaming<orca_api::v1::ExecClientMessage>>,
    ) -> Result<Response<Self::ExecStream>, Status> {
        exec::open(self.state.clone(), request.into_inner())
            .await
            .map(Response::new)
    }
}

/// Serves the node API until `shutdown`.
pub async fn serve(bound: BoundNodeApi, state: NodeState, shutdown: CancellationToken) {
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(bound.listener);
    let result = tonic::transport::Server::builder()
        .add_service(NodeServer::new(NodeService {
            state: state.clone(),
        }))
        .add_service(NodeExecServer::new(NodeExecService { state }))
        .serve_with_incoming_shutdown(incoming, shutdown.cancelled())
        .await;
    if let Err(e) = result {
        tracing::error!(error = %e, "the node API stopped");
    }
}

/// A chunk of lines, for the streams' item type.
pub(crate) fn chunk(lines: Vec<orca_api::v1::LogLine>) -> LogChunk {
    LogChunk {
        lines,
        containers: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_advertised_address_is_one_a_controller_can_dial() {
        let on_loopback = bind(
            "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
            None,
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let port = on_loopback
            .listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(0);
        assert_eq!(on_loopback.advertised, format!("127.0.0.1:{port}"));
        let node = Some(Ipv4Addr::new(198, 18, 0, 5));
        let everywhere = bind("0.0.0.0:0".parse().unwrap_or_else(|e| panic!("{e}")), node)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(everywhere.advertised.starts_with("198.18.0.5:"));
        assert!(!everywhere.advertised.ends_with(":0"));
        let alone = bind("0.0.0.0:0".parse().unwrap_or_else(|e| panic!("{e}")), None)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(alone.advertised.starts_with("127.0.0.1:"));
    }
}

//! orca-controller: the control plane.
//!
//! Reading order: [`config`] (what a controller is told), [`state`] (the
//! replicated cluster state, its commands and the one `apply`), [`raft`]
//! (openraft over sled: log, state machine, snapshots, network), [`node`]
//! (starting Raft and proposing commands), [`api`] (the ECS API over gRPC).
//! [`run`] ties them together; [`start`] does the same in the background for
//! tests and for `orca dev`.

pub mod api;
pub mod clock;
pub mod config;
pub mod error;
pub mod node;
pub mod raft;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orca_api::v1::ecs_server::EcsServer;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

use crate::api::ecs_service::EcsService;
use crate::clock::SystemClock;
use crate::node::Node;

/// How long a starting node waits to lead before serving anyway (it answers
/// writes with an error until it leads).
const LEADERSHIP_WAIT: Duration = Duration::from_secs(10);

/// Runs a controller until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    serve(config, listener, shutdown).await
}

/// A controller started in the background.
pub struct RunningController {
    /// The address the API listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<Result<(), Error>>,
}

impl RunningController {
    /// Stops the controller and waits for it.
    pub async fn stop(self) -> Result<(), Error> {
        self.shutdown.cancel();
        self.handle
            .await
            .map_err(|e| Error::Raft(format!("controller task failed: {e}")))?
    }
}

/// Binds, then runs the controller in a background task.
pub async fn start(mut config: Config) -> Result<RunningController, Error> {
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|source| Error::Listen {
            addr: config.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    config.listen = addr;
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(serve(config, listener, shutdown.clone()));
    Ok(RunningController {
        addr,
        shutdown,
        handle,
    })
}

async fn serve(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let node = Arc::new(Node::open(&config).await?);
    if let Err(e) = node.wait_leader(LEADERSHIP_WAIT).await {
        tracing::warn!(error = %e, "not leading yet; serving anyway");
    }
    tracing::info!(node_id = config.node_id, addr = %config.listen, data_dir = %config.data_dir.display(), "controller serving");
    let service = EcsService::new(node.clone(), Arc::new(SystemClock));
    let result = tonic::transport::Server::builder()
        .add_service(EcsServer::new(service))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown.cancelled())
        .await;
    node.shutdown().await;
    result.map_err(Error::from)
}

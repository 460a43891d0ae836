//! orca-controller: the control plane.
//!
//! Reading order: [`config`] (what a controller is told), [`state`] (the
//! replicated cluster state, its commands and the one `apply`), [`raft`]
//! (openraft over sled: log, state machine, snapshots, network), [`node`]
//! (starting Raft, proposing and forwarding commands, linearizable reads),
//! `membership` (joining and removing controllers), [`leader`] (the loops
//! only the leader runs, fenced by term), [`api`] (the gRPC services).
//! [`run`] ties them together; [`start`] does the same in the background for
//! tests and for `orca dev`.

pub mod agents;
pub mod api;
pub mod clock;
pub mod config;
pub mod ecs_http;
pub mod error;
pub mod leader;
mod membership;
pub mod node;
mod node_id;
pub mod plan_apply;
mod proposer;
pub mod raft;
pub mod reconciler;
mod run_timeouts;
pub mod scheduler;
pub mod secrets;
pub mod services_loop;
pub mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use orca_api::v1::agent_server::AgentServer;
use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_api::v1::controller_admin_server::ControllerAdminServer;
use orca_api::v1::ecs_server::EcsServer;
use orca_api::v1::exec_server::ExecServer;
use orca_api::v1::logs_server::LogsServer;
use orca_api::v1::raft_server::RaftServer;
use orca_api::v1::secrets_server::SecretsServer;
use orca_api::v1::JoinClusterRequest;
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use error::Error;

use crate::agents::session::SessionContext;
use crate::agents::SessionRegistry;
use crate::api::admin_service::AdminService;
use crate::api::agent_service::AgentService;
use crate::api::ecs_service::EcsService;
use crate::api::exec_service::ExecService;
use crate::api::logs_service::LogsService;
use crate::api::raft_service::RaftService;
use crate::api::secrets_service::SecretsService;
use crate::clock::{Clock, SystemClock};
use crate::leader::LeaderWork;
use crate::node::Node;

/// How long a bootstrapping node waits for its own election before serving
/// (writes wait for a leader in any case).
const LEADERSHIP_WAIT: Duration = Duration::from_secs(10);
/// How long in-flight calls may finish after shutdown is asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// How long one join request may take (adding a learner waits for it to
/// catch up).
const JOIN_TIMEOUT: Duration = Duration::from_secs(120);
/// Pause between attempts to join an existing cluster.
const JOIN_RETRY: Duration = Duration::from_millis(500);

/// Runs a controller until `shutdown` is cancelled.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let listener = bind(config.listen).await?;
    let ecs_http = match config.ecs_api_listen {
        Some(addr) => Some(bind(addr).await?),
        None => None,
    };
    serve(config, listener, ecs_http, shutdown).await
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Listen { addr, source })
}

/// A controller started in the background.
pub struct RunningController {
    /// The address the API listens on (the real port when 0 was asked).
    pub addr: SocketAddr,
    /// Where ECS's JSON 1.1 endpoint listens, when it was asked for.
    pub ecs_api_addr: Option<SocketAddr>,
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
    let listener = bind(config.listen).await?;
    let addr = listener.local_addr().map_err(|source| Error::Listen {
        addr: config.listen,
        source,
    })?;
    config.listen = addr;
    let ecs_http = match config.ecs_api_listen {
        Some(asked) => {
            let l = bind(asked).await?;
            let bound = l.local_addr().map_err(|source| Error::Listen {
                addr: asked,
                source,
            })?;
            config.ecs_api_listen = Some(bound);
            Some(l)
        }
        None => None,
    };
    let shutdown = CancellationToken::new();
    let ecs_api_addr = config.ecs_api_listen;
    let handle = tokio::spawn(serve(config, listener, ecs_http, shutdown.clone()));
    Ok(RunningController {
        addr,
        ecs_api_addr,
        shutdown,
        handle,
    })
}

async fn serve(
    mut config: Config,
    listener: TcpListener,
    ecs_http: Option<TcpListener>,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    let discovery = config.discovery().map_err(Error::Config)?;
    config.node_id = node_id::resolve(&config).await?;
    let node = Arc::new(Node::open(&config).await?);
    let identity = state::Identity::new(&config.arn, config.task_cidr);
    if let Some(difference) = identity_difference(&node.view(), &identity) {
        node.shutdown().await;
        return Err(Error::IdentityMismatch(difference));
    }
    if let Err(e) = secrets::guard::check(&node.view(), node.secrets_key.as_deref()) {
        node.shutdown().await;
        return Err(Error::Secrets(e));
    }
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let background = shutdown.child_token();
    let mut tasks = JoinSet::new();
    // A joining controller learns the cluster's identity from the log.
    let refused = CancellationToken::new();
    let refusal: Arc<std::sync::Mutex<Option<Error>>> = Arc::new(std::sync::Mutex::new(None));
    tasks.spawn(guard_identity(
        node.clone(),
        identity,
        refused.clone(),
        refusal.clone(),
        background.clone(),
    ));
    tasks.spawn(guard_secrets_key(
        node.clone(),
        refused.clone(),
        refusal.clone(),
        background.clone(),
    ));
    let sessions = SessionContext {
        node: node.clone(),
        registry: Arc::new(SessionRegistry::new(background.clone())),
        heartbeat_timeout: config.agent_heartbeat_timeout,
        zones: Arc::new(agents::discovery::ZoneHub::default()),
        discovery,
    };
    let work = LeaderWork {
        node: node.clone(),
        clock: clock.clone(),
        purge_deleted_after: config.purge_deleted_after,
        purge_stopped_tasks_after: config.purge_stopped_tasks_after,
        sessions: sessions.clone(),
        liveness: agents::liveness::LivenessConfig {
            heartbeat_timeout: config.agent_heartbeat_timeout,
            loss_grace: config.agent_loss_grace,
        },
        identity: (config.arn.clone(), config.task_cidr),
        services: config.services,
    };
    tasks.spawn(leader::run(work, background.clone()));
    tasks.spawn(raft::election::run(
        node.clone(),
        config.raft.election_timeouts(),
        background.clone(),
    ));
    if config.join.is_empty() {
        if let Err(e) = node.wait_for_leader(LEADERSHIP_WAIT).await {
            tracing::warn!(error = %e, "no leader yet; serving anyway");
        }
    } else {
        tasks.spawn(join(
            node.clone(),
            config.clone(),
            refused.clone(),
            refusal.clone(),
            background.clone(),
        ));
    }
    if let Some(l) = ecs_http {
        tracing::info!(addr = ?config.ecs_api_listen, "ECS JSON 1.1 endpoint serving");
        tasks.spawn(ecs_http::serve(
            l,
            Arc::new(EcsService::new(node.clone(), clock.clone())),
            background.clone(),
        ));
    }
    tracing::info!(node_id = config.node_id, addr = %config.listen, data_dir = %config.data_dir.display(), "controller serving");
    let server = tonic::transport::Server::builder()
        .add_service(EcsServer::new(EcsService::new(node.clone(), clock.clone())))
        .add_service(AgentServer::new(AgentService::new(sessions, clock.clone())))
        .add_service(
            RaftServer::new(RaftService::new(node.clone()))
                .max_decoding_message_size(raft::network::MAX_RAFT_MESSAGE)
                .max_encoding_message_size(raft::network::MAX_RAFT_MESSAGE),
        )
        .add_service(ControllerAdminServer::new(AdminService::new(node.clone())))
        .add_service(SecretsServer::new(SecretsService::new(Arc::new(
            EcsService::new(node.clone(), clock.clone()),
        ))))
        .add_service(LogsServer::new(LogsService::new(
            node.clone(),
            background.clone(),
        )))
        .add_service(ExecServer::new(ExecService::new(node.clone())))
        .serve_with_incoming_shutdown(no_delay(listener), shutdown.cancelled());
    // Graceful shutdown waits for open connections, and other controllers
    // keep theirs open: give in-flight calls a moment, then stop anyway.
    let result = tokio::select! {
        result = server => result.map_err(Error::from),
        _ = async { shutdown.cancelled().await; tokio::time::sleep(SHUTDOWN_GRACE).await } => Ok(()),
        _ = refused.cancelled() => Err(refusal
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_else(|| Error::Raft("refused to serve".to_string()))),
    };
    background.cancel();
    while tasks.join_next().await.is_some() {}
    node.shutdown().await;
    result
}

fn identity_difference(view: &state::ClusterView, ours: &state::Identity) -> Option<String> {
    view.identity
        .as_ref()
        .and_then(|fixed| ours.difference(fixed))
}

/// Stops this controller if the cluster's identity, once it is known here,
/// differs from this controller's flags: serving on would mint other ARNs
/// and subnets than the rest of the cluster.
async fn guard_identity(
    node: Arc<Node>,
    ours: state::Identity,
    refused: CancellationToken,
    refusal: Arc<std::sync::Mutex<Option<Error>>>,
    shutdown: CancellationToken,
) {
    let mut views = node.watch_views();
    loop {
        let view = views.borrow_and_update().clone();
        if view.identity.is_some() {
            if let Some(difference) = identity_difference(&view, &ours) {
                tracing::error!(%difference, "this controller's flags differ from the cluster's identity: refusing to serve");
                *refusal.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Error::IdentityMismatch(difference));
                refused.cancel();
            }
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = views.changed() => if changed.is_err() { return },
        }
    }
}

/// Refuses to serve once the applied state holds secrets this controller's
/// key does not open (a controller that joined, or that started before the
/// first secret, with another key or none).
async fn guard_secrets_key(
    node: Arc<Node>,
    refused: CancellationToken,
    refusal: Arc<std::sync::Mutex<Option<Error>>>,
    shutdown: CancellationToken,
) {
    let mut views = node.watch_views();
    loop {
        let view = views.borrow_and_update().clone();
        if view.secrets_key_id.is_some() {
            if let Err(e) = secrets::guard::check(&view, node.secrets_key.as_deref()) {
                tracing::error!(error = %e, "refusing to serve");
                *refusal.lock().unwrap_or_else(|p| p.into_inner()) = Some(Error::Secrets(e));
                refused.cancel();
            }
            return;
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = views.changed() => if changed.is_err() { return },
        }
    }
}

/// Accepted connections with Nagle's algorithm off: small gRPC frames would
/// otherwise wait for delayed ACKs (~40 ms a request).
fn no_delay(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt as _;
    TcpListenerStream::new(listener).map(|accepted| {
        let stream = accepted?;
        stream.set_nodelay(true)?;
        Ok(stream)
    })
}

/// Asks the configured members to add this node until it is a voter (a
/// restarted member already is one and asks nobody). A refusal that asking
/// again cannot change (the id is taken at another address, the flags differ
/// from the cluster's identity) stops the controller with the reason.
async fn join(
    node: Arc<Node>,
    config: Config,
    refused: CancellationToken,
    refusal: Arc<std::sync::Mutex<Option<Error>>>,
    shutdown: CancellationToken,
) {
    let identity = state::Identity::new(&config.arn, config.task_cidr);
    let request = JoinClusterRequest {
        node_id: config.node_id,
        address: config.advertised_address(),
        region: identity.region,
        account: identity.account,
        task_cidr: identity.task_cidr,
    };
    loop {
        if node.is_voter(config.node_id) {
            return;
        }
        for endpoint in &config.join {
            let Ok(channel) = node.peer(endpoint) else {
                continue;
            };
            let mut call = tonic::Request::new(request.clone());
            call.set_timeout(JOIN_TIMEOUT);
            match ControllerAdminClient::new(channel).join_cluster(call).await {
                Ok(_) => {
                    tracing::info!(via = %endpoint, "joined the controller cluster");
                    return;
                }
                Err(status) => {
                    let error = orca_api::error::from_status(&status);
                    if error.exception == orca_core::Exception::ClientException {
                        tracing::error!(via = %endpoint, error = %error.message, "join refused");
                        *refusal.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(Error::JoinRefused(error.message));
                        refused.cancel();
                        return;
                    }
                    tracing::info!(via = %endpoint, error = %status.message(), "join not done yet")
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(JOIN_RETRY) => {}
        }
    }
}

#[cfg(test)]
mod node_tests;

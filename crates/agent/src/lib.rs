//! orca-agent: the node agent.
//!
//! Reading order: [`config`] (what an agent is told), [`host`] (what the
//! machine offers), [`session`] (registration and the stream with the
//! leader), [`reporter`] (task states on their way up, batched, resent until
//! acknowledged), [`manager`] (one runner per assigned task), [`runner`]
//! (one task's lifecycle through the container runtime and its network
//! namespace). Side effects sit behind orca-runtime's `ContainerRuntime` and
//! orca-net's `NetworkConfigurator`, so the layers above run with fakes.

pub mod config;
pub mod finished;
pub mod host;
pub mod manager;
#[cfg(test)]
mod manager_tests;
pub mod reporter;
pub mod runner;
pub mod session;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use orca_core::agent_protocol::Registration;
use orca_core::cidr::Ipv4Cidr;
use orca_net::{NetworkConfigurator, NodeNetworkConfig};
use orca_runtime::ContainerRuntime;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub use config::{AgentConfig, NetworkKind};

use crate::manager::TaskManager;
use crate::reporter::Reporter;
use crate::runner::RunnerContext;

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("data directory {path}: {message}")]
    DataDir { path: String, message: String },
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error("task network: {0}")]
    Network(#[from] orca_net::NetworkError),
    #[error("the controller handed out an unusable task subnet '{0}'")]
    Subnet(String),
}

/// Who this agent is, kept across restarts so it stays the same instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Identity {
    cluster: String,
    container_instance_arn: String,
}

fn identity_path(data_dir: &Path) -> PathBuf {
    data_dir.join("instance.json")
}

fn data_dir_error(path: &Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::DataDir {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

fn load_identity(data_dir: &Path, cluster: &str) -> Option<String> {
    let text = std::fs::read_to_string(identity_path(data_dir)).ok()?;
    let id: Identity = serde_json::from_str(&text).ok()?;
    (id.cluster == cluster).then_some(id.container_instance_arn)
}

/// Saves who this agent is (also after registering again).
pub(crate) fn save_identity(
    data_dir: &Path,
    cluster: &str,
    container_instance_arn: &str,
) -> Result<(), AgentError> {
    let identity = Identity {
        cluster: cluster.to_string(),
        container_instance_arn: container_instance_arn.to_string(),
    };
    let path = identity_path(data_dir);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec_pretty(&identity).map_err(|e| data_dir_error(&path, e))?;
    std::fs::write(&tmp, json).map_err(|e| data_dir_error(&tmp, e))?;
    std::fs::rename(&tmp, &path).map_err(|e| data_dir_error(&path, e))
}

/// A running agent, for `orca dev` and tests.
pub struct RunningAgent {
    pub shutdown: CancellationToken,
    pub handle: tokio::task::JoinHandle<Result<(), AgentError>>,
    pub reporter: Arc<Reporter>,
}

/// Starts the agent in the background.
pub fn start(
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    runtime_version: String,
) -> RunningAgent {
    let shutdown = CancellationToken::new();
    let reporter = Arc::new(Reporter::default());
    let handle = tokio::spawn(run(
        config,
        runtime,
        runtime_version,
        reporter.clone(),
        shutdown.clone(),
    ));
    RunningAgent {
        shutdown,
        handle,
        reporter,
    }
}

/// Registers this machine and serves its tasks until `shutdown`. Running
/// containers are left running when the agent stops: a restarted agent
/// adopts them.
pub async fn run(
    config: AgentConfig,
    runtime: Arc<dyn ContainerRuntime>,
    runtime_version: String,
    reporter: Arc<Reporter>,
    shutdown: CancellationToken,
) -> Result<(), AgentError> {
    config.validate()?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| data_dir_error(&config.data_dir, e))?;
    let registration = Registration {
        cluster: config.cluster.clone(),
        container_instance_arn: load_identity(&config.data_dir, &config.cluster),
        hostname: host::hostname(),
        cpu: host::cpu_units(&config),
        memory: host::memory_mib(&config),
        attributes: host::attributes(&config),
        agent_version: host::AGENT_VERSION.to_string(),
        runtime_version,
        task_subnet: config.task_subnet.clone(),
    };
    let Some(reply) = session::register(&config.endpoints, &registration, &shutdown).await? else {
        return Ok(());
    };
    save_identity(
        &config.data_dir,
        &config.cluster,
        &reply.container_instance_arn,
    )?;
    tracing::info!(instance = %reply.container_instance_arn, subnet = %reply.task_subnet, cpu = registration.cpu, memory = registration.memory, "registered");
    let network = open_network(&config, &reply.task_subnet).await?;
    let ctx = Arc::new(RunnerContext {
        runtime,
        network,
        reporter: reporter.clone(),
        logs_dir: config.data_dir.join("tasks"),
        default_stop_timeout: config.default_stop_timeout,
        task_subnet: reply.task_subnet.clone(),
        finished: finished::FinishedTasks::new(config.data_dir.join("finished")),
    });
    let mut again = registration.clone();
    again.container_instance_arn = Some(reply.container_instance_arn.clone());
    again.task_subnet = Some(reply.task_subnet.clone());
    let session = session::SessionConfig {
        endpoints: config.endpoints.clone(),
        instance_arn: reply.container_instance_arn,
        registration: again,
        data_dir: config.data_dir.clone(),
        heartbeat_interval: config.heartbeat_interval,
        report_batch_window: config.report_batch_window,
    };
    session::run(session, reporter, TaskManager::new(ctx), shutdown).await;
    Ok(())
}

async fn open_network(
    config: &AgentConfig,
    subnet: &str,
) -> Result<Arc<dyn NetworkConfigurator>, AgentError> {
    let cidr: Ipv4Cidr = subnet
        .parse()
        .map_err(|_| AgentError::Subnet(subnet.to_string()))?;
    let node = NodeNetworkConfig {
        bridge: config.bridge.clone(),
        subnet: orca_net::Ipv4Subnet::new(cidr.network, cidr.prefix_len)?,
        netns_prefix: format!("orca-{}", config.containerd_namespace),
        state_dir: config.data_dir.join("network"),
    };
    Ok(match config.network {
        NetworkKind::Netns => Arc::new(orca_net::netns::NetnsNetwork::open(node).await?),
        NetworkKind::Fake => Arc::new(orca_net::fake::FakeNetwork::open(node)?),
    })
}

//! orca-agent: the node agent.
//!
//! Reading order: [`config`] (what an agent is told), [`identity`] (who it
//! is, saved before it registers), [`host`] (what the machine offers),
//! [`session`] (registration and the stream with the leader), [`reporter`]
//! (task states on their way up, batched, resent until acknowledged),
//! [`reconcile`] (the pure decision: assignments and what containerd, the
//! kernel and the disk hold → actions), [`executor`] (the actions carried
//! out), [`node`] (the loop: relist, reconcile, execute), [`finished`]
//! (final reports on disk, so a task never runs twice), [`gc`] (what tasks
//! leave behind, and unused images), [`health`] (container health checks,
//! one checker per running container beside the loop), [`runner`] (container specs and
//! dependsOn), [`volumes`] (task volumes, tmpfs and /etc files: the pure
//! plan and the directories), [`resolver`] (the node's DNS responder for
//! service discovery), [`crash`] (crash points for tests). Side effects sit behind
//! orca-runtime's `ContainerRuntime` and orca-net's `NetworkConfigurator`,
//! so the layers above run with fakes.

pub mod config;
pub mod crash;
pub mod executor;
pub mod fabric;
pub mod finished;
pub mod gc;
pub mod health;
#[cfg(test)]
mod health_tests;
pub mod host;
pub mod identity;
pub mod node;
pub mod node_api;
#[cfg(test)]
mod node_tests;
pub mod reconcile;
pub mod reporter;
pub mod resolver;
pub mod runner;
pub mod session;
pub mod volumes;

use std::sync::Arc;

use orca_core::agent_protocol::{OverlayMode, Registration};
use orca_core::cidr::Ipv4Cidr;
use orca_net::{NetworkConfigurator, NodeNetworkConfig};
use orca_runtime::ContainerRuntime;
use tokio_util::sync::CancellationToken;

pub use config::{AgentConfig, NetworkKind, OverlayChoice};

use crate::reporter::Reporter;

/// Why the agent stopped.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("data directory {path}: {message}")]
    DataDir { path: String, message: String },
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Session(#[from] session::SessionError),
    #[error("task network: {0}")]
    Network(#[from] orca_net::NetworkError),
    #[error("the controller handed out an unusable task subnet '{0}'")]
    Subnet(String),
    #[error(transparent)]
    Resolver(#[from] resolver::ResolverError),
    #[error(transparent)]
    NodeApi(#[from] node_api::NodeApiError),
}

fn data_dir_error(path: &std::path::Path, e: impl std::fmt::Display) -> AgentError {
    AgentError::DataDir {
        path: path.display().to_string(),
        message: e.to_string(),
    }
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

/// The reconcile step's settings from the config.
fn settings(
    config: &AgentConfig,
    task_subnet: &str,
    volumes: volumes::VolumeSettings,
) -> reconcile::Settings {
    reconcile::Settings {
        default_stop_timeout: config.default_stop_timeout,
        kill_resend: config.kill_resend_interval,
        task_subnet: task_subnet.to_string(),
        logs_dir: config.data_dir.join("tasks"),
        volumes,
        max_restart_attempt_period: config.max_restart_attempt_period,
        pids_limit: (config.pids_limit > 0).then_some(config.pids_limit),
        log_rotation: (config.log_max_size > 0).then_some(
            orca_runtime::log_rotation::LogRotation {
                max_bytes: config.log_max_size,
                max_files: config.log_max_files,
            },
        ),
    }
}

/// Where volumes and /etc files go, the allow-list resolved (a path
/// reached through a symlink is allowed by its real location, which is
/// what a bind mount reaches), and the resolvers containers get.
fn volume_settings(config: &AgentConfig) -> Result<volumes::VolumeSettings, AgentError> {
    let mut host_volume_paths = Vec::new();
    for p in &config.host_volume_paths {
        let real = std::fs::canonicalize(p).map_err(|e| {
            AgentError::Config(config::ConfigError::Invalid {
                field: "host_volume_paths".into(),
                message: format!("{}: {e}", p.display()),
            })
        })?;
        host_volume_paths.push(real);
    }
    Ok(volumes::VolumeSettings {
        volumes_dir: config.data_dir.join("volumes"),
        files_dir: config.data_dir.join("task-files"),
        host_volume_paths,
        // Filled once the responder's address is known (`task_nameservers`).
        dns_servers: Vec::new(),
    })
}

/// The nameservers containers get when their definition names none:
/// `dns_servers` if set, else the node's DNS responder when tasks can name
/// it (port 53), else the node's own non-loopback nameservers.
fn task_nameservers(
    config: &AgentConfig,
    responder: Option<std::net::SocketAddr>,
) -> Vec<std::net::Ipv4Addr> {
    if let Some(list) = &config.dns_servers {
        return list.clone();
    }
    if let Some(ip) = responder.and_then(resolver::nameserver_for_tasks) {
        return vec![ip];
    }
    let text = std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default();
    let found = runner::dns_files::node_nameservers(&text);
    if found.is_empty() {
        tracing::warn!(
            "no nameserver in /etc/resolv.conf other than loopback ones: containers get \
             an empty resolv.conf unless dns_servers is set"
        );
    }
    found
}

/// The collector's settings from the config.
fn gc_config(config: &AgentConfig) -> gc::GcConfig {
    gc::GcConfig {
        task_log_retention: config.task_log_retention,
        image_gc_high_threshold_percent: config.image_gc_high_threshold_percent,
        image_gc_low_threshold_percent: config.image_gc_low_threshold_percent,
        image_gc_min_unused: config.image_gc_min_unused,
        image_gc_disk_path: config.image_gc_disk_path.clone(),
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
    let mut volume_settings = volume_settings(&config)?;
    std::fs::create_dir_all(&config.data_dir).map_err(|e| data_dir_error(&config.data_dir, e))?;
    orca_fs::remove_temp_files(&config.data_dir)
        .map_err(|e| data_dir_error(&config.data_dir, e))?;
    let mut identity = identity::Identity::load_or_create(&config.data_dir, &config.cluster)?;
    let node_address = match config.overlay {
        OverlayChoice::Off => None,
        _ => config
            .node_address
            .or_else(|| host::source_address_towards(&config.endpoints[0])),
    };
    // Bound before registering: the registration names its address.
    let node_api = node_api::bind(
        config.api_listen,
        config
            .node_address
            .or_else(|| host::source_address_towards(&config.endpoints[0])),
    )
    .await?;
    let mut registration = Registration {
        cluster: config.cluster.clone(),
        container_instance_arn: None,
        instance_id: None,
        hostname: host::hostname(),
        cpu: host::cpu_units(&config),
        memory: host::memory_mib(&config),
        attributes: host::attributes(&config),
        agent_version: host::AGENT_VERSION.to_string(),
        runtime_version,
        task_subnet: config.task_subnet.clone(),
        reserved_ports: config.reserved_ports.clone(),
        node_address: node_address.map(|a| a.to_string()),
        node_api_address: Some(node_api.advertised.clone()),
        overlay: match config.overlay {
            OverlayChoice::HostGw => OverlayMode::HostGw,
            OverlayChoice::Vxlan | OverlayChoice::Off => OverlayMode::Vxlan,
        },
    };
    let Some(reply) = session::register_as(
        &config.endpoints,
        &mut registration,
        &mut identity,
        &config.data_dir,
        &shutdown,
    )
    .await?
    else {
        return Ok(());
    };
    tracing::info!(instance = %reply.container_instance_arn, subnet = %reply.task_subnet, cpu = registration.cpu, memory = registration.memory, "registered");
    // Derived once: the tasks' interfaces and the VXLAN device share it.
    let mtu = task_mtu(&config, node_address).await;
    let network = open_network(&config, &reply.task_subnet, mtu).await?;
    let fabric_config = fabric_config(&config, network.as_ref(), node_address, mtu)?;
    // Before any task is set up: a task's first packets leave with egress.
    network
        .set_policy(fabric::initial_policy(&fabric_config))
        .await?;
    // The DNS responder, bound before any task can name it.
    let dns = match resolver::listen_address(&config, network.subnet().gateway()) {
        Some(addr) => Some(resolver::bind(addr).await?),
        None => None,
    };
    volume_settings.dns_servers = task_nameservers(&config, dns.as_ref().map(|d| d.addr));
    let (zone_tx, zone_rx) = tokio::sync::watch::channel(None);
    let dns_task = dns.map(|bound| {
        tokio::spawn(resolver::run(
            bound,
            resolver::upstreams(&config),
            zone_rx,
            shutdown.clone(),
        ))
    });
    let (net_map_tx, net_map_rx) = tokio::sync::watch::channel(None);
    let fabric_task = tokio::spawn(fabric::run(
        network.clone(),
        fabric_config,
        net_map_rx,
        shutdown.clone(),
    ));
    let (assignments_tx, assignments_rx) = tokio::sync::watch::channel(None);
    let node_api_task = tokio::spawn(node_api::serve(
        node_api,
        node_api::NodeState {
            logs_dir: config.data_dir.join("tasks"),
            finished_dir: config.data_dir.join("finished"),
            assignments: assignments_rx.clone(),
            shutdown: shutdown.clone(),
            runtime: runtime.clone(),
        },
        shutdown.clone(),
    ));
    let node = node::Node::new(node::NodeParts {
        runtime,
        network,
        reporter: reporter.clone(),
        finished: finished::FinishedTasks::new(config.data_dir.join("finished")),
        settings: settings(&config, &reply.task_subnet, volume_settings),
        config: node::LoopConfig {
            relist_interval: config.relist_interval,
            gc_interval: config.gc_interval,
        },
        gc: gc_config(&config),
        assignments: assignments_rx,
    })
    .map_err(|e| data_dir_error(&config.data_dir.join("finished"), e))?;
    let node_task = tokio::spawn(node.run(shutdown.clone()));
    registration.task_subnet = Some(reply.task_subnet.clone());
    let session = session::SessionConfig {
        endpoints: config.endpoints.clone(),
        instance_arn: reply.container_instance_arn,
        registration,
        identity,
        data_dir: config.data_dir.clone(),
        heartbeat_interval: config.heartbeat_interval,
        report_batch_window: config.report_batch_window,
    };
    let sinks = session::Sinks {
        assignments: assignments_tx,
        net_map: net_map_tx,
        zone: zone_tx,
    };
    session::run(session, reporter, sinks, shutdown.clone()).await;
    shutdown.cancel();
    let _ = node_task.await;
    let _ = fabric_task.await;
    let _ = node_api_task.await;
    if let Some(task) = dns_task {
        let _ = task.await;
    }
    Ok(())
}

/// The fabric loop's settings: the overlay only with a node address.
fn fabric_config(
    config: &AgentConfig,
    network: &dyn NetworkConfigurator,
    node_address: Option<std::net::Ipv4Addr>,
    mtu: Option<u32>,
) -> Result<fabric::FabricConfig, AgentError> {
    let subnet = network.subnet();
    let mode = match config.overlay {
        OverlayChoice::HostGw => Some(orca_net::overlay::OverlayMode::HostGw),
        OverlayChoice::Vxlan => Some(orca_net::overlay::OverlayMode::Vxlan),
        OverlayChoice::Off => None,
    };
    let overlay = match (mode, node_address) {
        (Some(mode), Some(local)) => Some(orca_net::overlay::OverlayConfig {
            device: config.vxlan_device.clone(),
            vni: config.vxlan_vni,
            port: config.vxlan_port,
            local,
            mode,
            // 0: derived from the underlay when the peers are synced.
            mtu: mtu.or(config.vxlan_mtu).unwrap_or(0),
            subnet,
        }),
        (Some(_), None) => {
            tracing::info!("no node address (the controllers are reached over loopback, and node_address is unset): no routes to other nodes");
            None
        }
        (None, _) => None,
    };
    tracing::info!(node_address = ?node_address, overlay = ?overlay.as_ref().map(|o| o.mode), egress = config.egress, "node network");
    Ok(fabric::FabricConfig {
        egress: config.egress,
        subnet,
        overlay,
        resync: config.overlay_resync_interval,
    })
}

/// The MTU tasks' interfaces get: the VXLAN device's when the overlay
/// carries their traffic to other nodes (so nothing they send needs
/// fragmenting or a path-MTU round trip), else the kernel's default.
async fn task_mtu(config: &AgentConfig, node_address: Option<std::net::Ipv4Addr>) -> Option<u32> {
    if config.overlay != OverlayChoice::Vxlan || config.network != NetworkKind::Netns {
        return None;
    }
    let address = node_address?;
    if config.vxlan_mtu.is_some() {
        return config.vxlan_mtu;
    }
    match orca_net::netns::fabric::link_mtu_of(address).await {
        Ok(Some(mtu)) => Some(mtu.saturating_sub(orca_net::netns::fabric::VXLAN_OVERHEAD)),
        _ => None,
    }
}

async fn open_network(
    config: &AgentConfig,
    subnet: &str,
    mtu: Option<u32>,
) -> Result<Arc<dyn NetworkConfigurator>, AgentError> {
    let cidr: Ipv4Cidr = subnet
        .parse()
        .map_err(|_| AgentError::Subnet(subnet.to_string()))?;
    let node = NodeNetworkConfig {
        bridge: config.bridge.clone(),
        subnet: orca_net::Ipv4Subnet::new(cidr.network, cidr.prefix_len)?,
        netns_prefix: format!("orca-{}", config.containerd_namespace),
        state_dir: config.data_dir.join("network"),
        mtu,
    };
    Ok(match config.network {
        NetworkKind::Netns => Arc::new(orca_net::netns::NetnsNetwork::open(node).await?),
        NetworkKind::Fake => Arc::new(orca_net::fake::FakeNetwork::open(node)?),
    })
}

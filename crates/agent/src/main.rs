//! orca-agent: parses flags and the config file, connects to containerd,
//! and runs the agent until SIGTERM or SIGINT.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Parser;
use orca_agent::AgentConfig;
use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime};

/// The orca node agent: registers this machine as a container instance and
/// runs the tasks the controller places on it.
#[derive(Debug, Parser)]
#[command(name = "orca-agent", version)]
struct Args {
    /// A TOML config file; flags override it.
    #[arg(long, env = "ORCA_AGENT_CONFIG")]
    config: Option<PathBuf>,
    /// Controller endpoints (host:port), comma separated.
    #[arg(long, env = "ORCA_ENDPOINT", value_delimiter = ',')]
    endpoints: Option<Vec<String>>,
    /// The cluster this instance joins.
    #[arg(long)]
    cluster: Option<String>,
    /// Where the agent keeps its identity, IPAM state and task logs.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// containerd's socket.
    #[arg(long)]
    containerd_socket: Option<PathBuf>,
    /// This agent's containerd namespace (one per agent on a machine).
    #[arg(long)]
    containerd_namespace: Option<String>,
    /// The node bridge tasks attach to.
    #[arg(long)]
    bridge: Option<String>,
    /// The node's task subnet (CIDR); by default the controller hands one out.
    #[arg(long)]
    task_subnet: Option<String>,
    /// The availability zone (rack, room, site) registered as
    /// ecs.availability-zone.
    #[arg(long)]
    availability_zone: Option<String>,
    /// The machine type registered as ecs.instance-type.
    #[arg(long)]
    instance_type: Option<String>,
    /// Custom attributes, NAME=VALUE, repeatable.
    #[arg(long = "attribute", value_parser = parse_attribute)]
    attributes: Vec<(String, String)>,
    /// CPU units to register instead of 1024 per core.
    #[arg(long)]
    cpu_units: Option<u64>,
    /// MiB to register instead of the machine's memory less the reserve.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// The containerd logging driver binary [default: orca-log-driver next
    /// to this executable]; an empty value makes the agent drain output.
    #[arg(long)]
    log_driver: Option<PathBuf>,
    /// Where the node API listens (controllers read task logs through it)
    /// [default: 0.0.0.0:7490].
    #[arg(long)]
    api_listen: Option<std::net::SocketAddr>,
}

fn parse_attribute(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| format!("'{s}' is not NAME=VALUE"))
}

fn config(args: Args) -> anyhow::Result<AgentConfig> {
    let mut c = match &args.config {
        Some(path) => AgentConfig::from_file(path)?,
        None => AgentConfig::default(),
    };
    if let Some(v) = args.endpoints {
        c.endpoints = v;
    }
    if let Some(v) = args.cluster {
        c.cluster = v;
    }
    if let Some(v) = args.data_dir {
        c.data_dir = v;
    }
    if let Some(v) = args.containerd_socket {
        c.containerd_socket = v;
    }
    if let Some(v) = args.containerd_namespace {
        c.containerd_namespace = v;
    }
    if let Some(v) = args.bridge {
        c.bridge = v;
    }
    if args.task_subnet.is_some() {
        c.task_subnet = args.task_subnet;
    }
    c.attributes.extend(args.attributes);
    if args.availability_zone.is_some() {
        c.availability_zone = args.availability_zone;
    }
    if args.instance_type.is_some() {
        c.instance_type = args.instance_type;
    }
    c.cpu_units = args.cpu_units.or(c.cpu_units);
    c.memory_mib = args.memory_mib.or(c.memory_mib);
    if args.log_driver.is_some() {
        c.log_driver = args.log_driver;
    }
    if let Some(v) = args.api_listen {
        c.api_listen = v;
    }
    c.validate()?;
    Ok(c)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,hickory_server=warn".into()),
        )
        .init();
    let config = config(Args::parse())?;
    let runtime = ContainerdRuntime::connect(ContainerdConfig {
        socket: config.containerd_socket.clone(),
        namespace: config.containerd_namespace.clone(),
        registries: config.registries.clone(),
        state_dir: config.data_dir.join("runtime"),
        log_driver: config.log_driver_path(),
    })
    .await
    .with_context(|| {
        format!(
            "connecting to containerd at {}",
            config.containerd_socket.display()
        )
    })?;
    // Exec sessions and health checks a previous agent process left in its
    // containers have nobody to talk to any more.
    runtime.end_orphaned_execs().await;
    let agent = orca_agent::start(config, Arc::new(runtime), "containerd".to_string());
    let shutdown = agent.shutdown.clone();
    tokio::spawn(async move {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => return,
            };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
        shutdown.cancel();
    });
    agent.handle.await.context("agent task")??;
    Ok(())
}

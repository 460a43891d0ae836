//! orca-controller: parses its command line and runs the control plane.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use orca_core::arn::ArnContext;
use tokio_util::sync::CancellationToken;

/// orca's control plane: the ECS API over gRPC, state replicated with Raft.
#[derive(Debug, Parser)]
#[command(name = "orca-controller", version)]
struct Args {
    /// Where this controller keeps its Raft log and snapshots.
    #[arg(long, env = "ORCA_DATA_DIR")]
    data_dir: PathBuf,
    /// The address the API listens on.
    #[arg(long, default_value = "127.0.0.1:7470")]
    listen: SocketAddr,
    /// This controller's Raft node id, unique in the controller cluster.
    /// Without it: the id this data directory had, 1 when bootstrapping, or
    /// a fresh id from the cluster named by --join.
    #[arg(long, env = "ORCA_NODE_ID", value_parser = clap::value_parser!(u64).range(1..))]
    node_id: Option<u64>,
    /// The address other controllers reach this one at (default: --listen).
    #[arg(long, env = "ORCA_ADVERTISE")]
    advertise: Option<String>,
    /// Join the cluster these controllers belong to (comma separated) instead
    /// of bootstrapping a new one. Ignored once this node holds Raft state.
    #[arg(long, env = "ORCA_JOIN", value_delimiter = ',')]
    join: Vec<String>,
    /// Seconds a DELETE_IN_PROGRESS task definition stays before it is purged.
    #[arg(long, default_value_t = 600)]
    purge_deleted_after_secs: u64,
    /// Seconds a STOPPED task stays describable (and in list-tasks
    /// --desired-status STOPPED) after its stoppedAt before it is forgotten.
    #[arg(
        long,
        env = "ORCA_STOPPED_TASK_RETENTION_SECS",
        default_value_t = orca_controller::config::DEFAULT_STOPPED_TASK_RETENTION.as_secs()
    )]
    purge_stopped_tasks_after_secs: u64,
    /// Seconds without a message from an agent before its session ends and
    /// its instance is marked disconnected (it gets no new tasks).
    #[arg(long, default_value_t = 3.0)]
    agent_heartbeat_timeout_secs: f64,
    /// Further seconds of silence before a disconnected instance's tasks are
    /// recorded STOPPED (InfrastructureHealth) and their resources freed.
    #[arg(long, default_value_t = 3.0)]
    agent_loss_grace_secs: f64,
    /// The block each container instance's task subnet (a /24) is carved
    /// from, unless its agent is configured with one.
    #[arg(long, default_value = "198.19.0.0/16")]
    task_cidr: orca_core::cidr::Ipv4Cidr,
    /// The region named in the ARNs this cluster mints.
    #[arg(long, default_value = "local")]
    region: String,
    /// The account named in the ARNs this cluster mints (12 digits).
    #[arg(long, default_value = "000000000000")]
    account: String,
    /// Seconds after RUNNING a service task without a health check counts
    /// as healthy (ECS: 40).
    #[arg(long, default_value_t = 40.0)]
    service_healthy_after_secs: f64,
    /// The service throttle's first delay after a task fails to start, in
    /// seconds, doubling with each failure in a row (ECS: about 10).
    #[arg(long, default_value_t = 10.0)]
    service_throttle_base_secs: f64,
    /// The service throttle's longest delay, in seconds (ECS: 900).
    #[arg(long, default_value_t = 900.0)]
    service_throttle_max_secs: f64,
    /// Seconds between looks at every service when nothing changes.
    #[arg(long, default_value_t = 1.0)]
    service_tick_secs: f64,
    /// Serve ECS's own wire protocol (AWS JSON 1.1 over HTTP, for boto3 and
    /// `aws ecs --endpoint-url`) on this address; off unless given.
    #[arg(long, env = "ORCA_ECS_API_LISTEN")]
    ecs_api_listen: Option<SocketAddr>,
    /// The DNS namespace discoverable services are named in:
    /// `<service>.<namespace>` (every cluster's).
    #[arg(long, default_value = orca_core::discovery::DEFAULT_NAMESPACE)]
    discovery_namespace: String,
    /// Seconds resolvers may keep a discovery answer (the records' TTL;
    /// whole seconds, at least 1).
    #[arg(long, default_value_t = 10)]
    discovery_ttl_secs: u64,
    /// Seconds a discoverable task waits in DEACTIVATING beyond the TTL
    /// before its containers get SIGTERM.
    #[arg(long, default_value_t = 1.0)]
    discovery_deregistration_margin_secs: f64,
    /// The cluster's secrets key: 32 random bytes (raw, hex or base64),
    /// mode 0600, the same file on every controller and never beside the
    /// data directory's backups (`head -c 32 /dev/urandom > key`). Without
    /// it, secrets and parameters cannot be stored or read here, and a
    /// controller whose cluster already holds secrets refuses to start.
    #[arg(long, env = "ORCA_SECRETS_KEY_FILE")]
    secrets_key_file: Option<std::path::PathBuf>,
    /// Build a snapshot after this many log entries.
    #[arg(long, default_value_t = 5000)]
    snapshot_every: u64,
    /// Log entries kept behind a snapshot for lagging followers.
    #[arg(long, default_value_t = 1000)]
    log_kept_after_snapshot: u64,
}

/// A positive number of seconds, as a duration.
fn seconds(flag: &str, value: f64) -> anyhow::Result<std::time::Duration> {
    if !(value.is_finite() && value > 0.0) {
        anyhow::bail!("{flag} must be a positive number of seconds, not {value}");
    }
    Ok(std::time::Duration::from_secs_f64(value))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,openraft=warn".into()),
        )
        .init();
    let args = Args::parse();
    let mut config = orca_controller::Config::new(args.data_dir, args.listen);
    config.node_id = args.node_id.unwrap_or(0);
    config.advertise = args.advertise;
    config.join = args.join;
    config.purge_deleted_after = std::time::Duration::from_secs(args.purge_deleted_after_secs);
    config.agent_heartbeat_timeout = seconds(
        "--agent-heartbeat-timeout-secs",
        args.agent_heartbeat_timeout_secs,
    )?;
    config.agent_loss_grace = seconds("--agent-loss-grace-secs", args.agent_loss_grace_secs)?;
    config.task_cidr = args.task_cidr;
    config.ecs_api_listen = args.ecs_api_listen;
    config.secrets_key_file = args.secrets_key_file;
    let millis = |flag: &str, value: f64| -> anyhow::Result<i64> {
        Ok(i64::try_from(seconds(flag, value)?.as_millis()).unwrap_or(i64::MAX))
    };
    config.services = orca_controller::services_loop::ServiceLoopConfig {
        timers: orca_controller::reconciler::Timers {
            healthy_after_running_ms: millis(
                "--service-healthy-after-secs",
                args.service_healthy_after_secs,
            )?,
            throttle_base_ms: millis(
                "--service-throttle-base-secs",
                args.service_throttle_base_secs,
            )?,
            throttle_max_ms: millis(
                "--service-throttle-max-secs",
                args.service_throttle_max_secs,
            )?,
            ..Default::default()
        },
        tick: seconds("--service-tick-secs", args.service_tick_secs)?,
    };
    config.purge_stopped_tasks_after =
        std::time::Duration::from_secs(args.purge_stopped_tasks_after_secs);
    config.arn = ArnContext {
        region: args.region,
        account: args.account,
    };
    config.discovery_namespace = args.discovery_namespace;
    config.discovery_ttl = std::time::Duration::from_secs(args.discovery_ttl_secs);
    config.discovery_deregistration_margin = seconds(
        "--discovery-deregistration-margin-secs",
        args.discovery_deregistration_margin_secs,
    )?;
    config.raft.snapshot_every = args.snapshot_every;
    config.raft.log_kept_after_snapshot = args.log_kept_after_snapshot;
    let shutdown = CancellationToken::new();
    let on_signal = shutdown.clone();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    tokio::spawn(async move {
        // SIGINT from a terminal, SIGTERM from systemd or a script: both
        // shut down cleanly.
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
        on_signal.cancel();
    });
    orca_controller::run(config, shutdown)
        .await
        .context("controller failed")
}

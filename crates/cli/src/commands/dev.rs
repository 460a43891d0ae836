//! `orca dev`: a single-node controller and an agent on the local containerd
//! in one process, the quickest way to try orca on one machine. The agent
//! does what `orca-agent` does, so this runs as root: it creates the node
//! bridge and a network namespace per task.
//!
//! State lives under `--data-dir` (`controller/` and `agent/`), so a
//! restarted `orca dev` finds its task definitions, clusters and container
//! instance again. Ctrl-C or SIGTERM stops the agent, then the controller;
//! running containers are left running, and the next `orca dev` adopts them
//! as a restarted agent does. Logs go to stderr (`RUST_LOG` overrides
//! [`DEFAULT_FILTER`]).

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use anyhow::Context as _;
use orca_agent::AgentConfig;
use serde_json::{json, Value};
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::task::{JoinError, JoinHandle};

/// What is logged unless `RUST_LOG` says otherwise.
pub const DEFAULT_FILTER: &str = "warn,orca_controller=info,orca_agent=info";
/// How often readiness is checked while starting.
const READY_POLL: Duration = Duration::from_millis(200);

#[derive(clap::Args, Debug, Clone)]
pub struct Args {
    /// Where the controller and the agent keep their state.
    #[arg(long, default_value = "/var/lib/orca-dev")]
    pub data_dir: PathBuf,
    /// The address the controller's API listens on.
    #[arg(long, default_value = "127.0.0.1:7470")]
    pub listen: SocketAddr,
    /// containerd's socket.
    #[arg(long, default_value = "/run/containerd/containerd.sock")]
    pub containerd_socket: PathBuf,
    /// The node bridge tasks attach to.
    #[arg(long, default_value = "orca0")]
    pub bridge: String,
    /// The block the node's task subnet is carved from [default: 198.19.0.0/16].
    #[arg(long)]
    pub task_cidr: Option<String>,
    /// Where ECS's own wire protocol is served, for boto3 and
    /// `aws ecs --endpoint-url http://ADDRESS`.
    #[arg(long, default_value = "127.0.0.1:7480")]
    pub ecs_api_listen: SocketAddr,
}

/// The agent's settings for `args`: the agent's defaults, this machine's
/// containerd in namespace `orca`, state in `<data-dir>/agent`.
fn agent_config(args: &Args, endpoint: String) -> AgentConfig {
    AgentConfig {
        endpoints: vec![endpoint],
        data_dir: args.data_dir.join("agent"),
        containerd_socket: args.containerd_socket.clone(),
        containerd_namespace: "orca".into(),
        bridge: args.bridge.clone(),
        ..AgentConfig::default()
    }
}

/// The controller's settings for `args`.
fn controller_config(args: &Args) -> Result<orca_controller::Config, CliError> {
    let mut config = orca_controller::Config::new(args.data_dir.join("controller"), args.listen);
    config.ecs_api_listen = Some(args.ecs_api_listen);
    // A development cluster keeps its secrets key beside its data (made
    // on first start): fine on a laptop, never what a real cluster does.
    config.secrets_key_file = Some(args.data_dir.join(DEV_SECRETS_KEY));
    if let Some(raw) = &args.task_cidr {
        match raw.parse() {
            Ok(cidr) => config.task_cidr = cidr,
            Err(e) => {
                return Err(CliError::usage(format!(
                    "Error parsing parameter '--task-cidr': {e}"
                )))
            }
        }
    }
    Ok(config)
}

/// Why the wait ended.
enum Event {
    Ready,
    Signal,
    AgentEnded(Result<Result<(), orca_agent::AgentError>, JoinError>),
    ControllerEnded(Result<Result<(), orca_controller::Error>, JoinError>),
}

/// The development cluster's secrets key, in its data directory.
const DEV_SECRETS_KEY: &str = "secrets.key";

/// Makes the development secrets key (32 random bytes, mode 0600) unless
/// it exists.
fn ensure_dev_key(path: &std::path::Path) -> anyhow::Result<()> {
    use std::io::{Read as _, Write as _};
    use std::os::unix::fs::OpenOptionsExt as _;
    if path.exists() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut key))
        .context("reading /dev/urandom")?;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(&key))
        .with_context(|| format!("writing the secrets key {}", path.display()))
}

pub async fn run(args: &Args) -> anyhow::Result<()> {
    let controller_config = controller_config(args)?;
    ensure_dev_key(&args.data_dir.join(DEV_SECRETS_KEY))?;
    agent_config(args, args.listen.to_string())
        .validate()
        .map_err(|e| CliError::usage(e.to_string()))?;
    init_tracing(DEFAULT_FILTER);
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let stop = async move {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = terminate.recv() => {}
        }
    };
    tokio::pin!(stop);

    let controller = orca_controller::start(controller_config)
        .await
        .context("starting the controller")?;
    let agent_config = agent_config(args, controller.addr.to_string());
    let runtime = match super::image_load::connect(
        &agent_config.containerd_socket,
        &agent_config.containerd_namespace,
        &agent_config.data_dir.join("runtime"),
        // `orca` and `orca-log-driver` are installed side by side.
        agent_config.log_driver_path(),
    )
    .await
    {
        Ok(runtime) => runtime,
        Err(e) => {
            let _ = controller.stop().await;
            return Err(e);
        }
    };
    let identity = agent_config.data_dir.join("instance.json");
    let started_at = SystemTime::now();
    runtime.end_orphaned_execs().await;
    let mut agent = orca_agent::start(agent_config, Arc::new(runtime), "containerd".into());
    let mut controller_handle = controller.handle;
    let ctx = Ctx::new(vec![controller.addr.to_string()], false);

    let mut ready = false;
    let mut agent_running = true;
    let mut controller_running = true;
    let outcome: anyhow::Result<()> = loop {
        let event = tokio::select! {
            () = wait_ready(&ctx, &identity, started_at), if !ready => Event::Ready,
            () = &mut stop => Event::Signal,
            r = &mut agent.handle => Event::AgentEnded(r),
            r = &mut controller_handle => Event::ControllerEnded(r),
        };
        match event {
            Event::Ready => {
                ready = true;
                note(&format!(
                    "orca dev: controller on {}, ECS JSON endpoint on http://{}, agent registered; Ctrl-C to stop",
                    controller.addr,
                    controller
                        .ecs_api_addr
                        .map_or_else(|| "-".to_string(), |a| a.to_string())
                ));
            }
            Event::Signal => break Ok(()),
            Event::AgentEnded(r) => {
                agent_running = false;
                break Err(ended("the agent", r));
            }
            Event::ControllerEnded(r) => {
                controller_running = false;
                break Err(ended("the controller", r));
            }
        }
    };
    note("orca dev: stopping the agent, then the controller (containers keep running)");
    agent.shutdown.cancel();
    if agent_running {
        if let Err(e) = finished("the agent", agent.handle).await {
            tracing::warn!(error = %e, "agent stopped with an error");
        }
    }
    controller.shutdown.cancel();
    if controller_running {
        finished("the controller", controller_handle).await?;
    }
    outcome
}

/// Waits until the agent has registered during this run (it rewrites its
/// identity file after every registration) and its instance shows a
/// connected agent. Errors while the controller elects itself are retried.
async fn wait_ready(ctx: &Ctx, identity: &Path, started_at: SystemTime) {
    // Files on coarse-grained file systems carry whole seconds.
    let since = started_at
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(started_at);
    loop {
        let registered = std::fs::metadata(identity)
            .and_then(|m| m.modified())
            .is_ok_and(|modified| modified >= since);
        if registered && agent_connected(ctx).await.unwrap_or(false) {
            return;
        }
        tokio::time::sleep(READY_POLL).await;
    }
}

/// Whether any instance of the default cluster has a connected agent.
async fn agent_connected(ctx: &Ctx) -> anyhow::Result<bool> {
    let listed = ctx
        .ecs(
            "ListContainerInstances",
            Call::Read,
            shape::ecs_json_request(serde_json::Map::new()),
            |mut c, r| async move { c.list_container_instances(r).await },
        )
        .await?;
    let arns = shape::ecs_json(&listed)?
        .get("containerInstanceArns")
        .cloned()
        .unwrap_or_default();
    if arns.as_array().is_none_or(Vec::is_empty) {
        return Ok(false);
    }
    let mut input = serde_json::Map::new();
    input.insert("containerInstances".into(), arns);
    let described = ctx
        .ecs(
            "DescribeContainerInstances",
            Call::Read,
            shape::ecs_json_request(input),
            |mut c, r| async move { c.describe_container_instances(r).await },
        )
        .await?;
    let described = shape::ecs_json(&described)?;
    Ok(described
        .get("containerInstances")
        .and_then(Value::as_array)
        .is_some_and(|is| is.iter().any(|i| i["agentConnected"] == json!(true))))
}

/// The error for a part that stopped on its own.
fn ended<E: std::fmt::Display>(what: &str, r: Result<Result<(), E>, JoinError>) -> anyhow::Error {
    match r {
        Ok(Ok(())) => anyhow::anyhow!("{what} stopped unexpectedly"),
        Ok(Err(e)) => anyhow::anyhow!("{what} failed: {e}"),
        Err(e) => anyhow::anyhow!("{what} crashed: {e}"),
    }
}

/// Waits for a part asked to stop.
async fn finished<E: std::fmt::Display>(
    what: &str,
    handle: JoinHandle<Result<(), E>>,
) -> anyhow::Result<()> {
    match handle.await {
        Ok(Ok(())) => Ok(()),
        other => Err(ended(what, other)),
    }
}

/// Logs to stderr, filtered by `RUST_LOG` or else `default_filter`.
pub fn init_tracing(default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    // Only fails when a subscriber is set already, which then stays.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init();
}

fn note(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Args {
        Args {
            data_dir: PathBuf::from("/tmp/d"),
            listen: SocketAddr::from(([127, 0, 0, 1], 7470)),
            containerd_socket: PathBuf::from("/run/c.sock"),
            bridge: "orca0".into(),
            task_cidr: None,
            ecs_api_listen: SocketAddr::from(([127, 0, 0, 1], 7480)),
        }
    }

    #[test]
    fn configs_follow_the_flags() -> anyhow::Result<()> {
        let mut a = args();
        let agent = agent_config(&a, "127.0.0.1:1".into());
        assert_eq!(agent.endpoints, ["127.0.0.1:1"]);
        assert_eq!(agent.data_dir, PathBuf::from("/tmp/d/agent"));
        assert_eq!(agent.containerd_namespace, "orca");
        assert_eq!(agent.containerd_socket, PathBuf::from("/run/c.sock"));
        let controller = controller_config(&a)?;
        assert_eq!(controller.data_dir, PathBuf::from("/tmp/d/controller"));
        assert_eq!(
            controller.ecs_api_listen,
            Some(SocketAddr::from(([127, 0, 0, 1], 7480)))
        );
        a.task_cidr = Some("10.99.0.0/16".into());
        assert_eq!(controller_config(&a)?.task_cidr.to_string(), "10.99.0.0/16");
        a.task_cidr = Some("nope".into());
        assert!(
            matches!(controller_config(&a), Err(CliError::Usage(m)) if m.contains("--task-cidr"))
        );
        Ok(())
    }
}

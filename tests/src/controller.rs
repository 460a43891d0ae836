//! Controllers for tests: in-process (fast, for API tests) and as real
//! `orca-controller` processes (for crash and restart tests).

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context;
use orca_api::v1::ecs_client::EcsClient;
use tonic::transport::Channel;

/// A controller running inside the test process, on a free loopback port,
/// with its data in a temporary directory.
pub struct InProcessController {
    pub running: orca_controller::RunningController,
    pub data_dir: tempfile::TempDir,
}

impl InProcessController {
    pub async fn start() -> anyhow::Result<Self> {
        Self::start_with(|_| {}).await
    }

    /// Starts one with its configuration adjusted by `adjust`.
    pub async fn start_with(
        adjust: impl FnOnce(&mut orca_controller::Config),
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut config =
            orca_controller::Config::new(data_dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
        adjust(&mut config);
        let running = orca_controller::start(config).await?;
        let me = InProcessController { running, data_dir };
        me.client().await?;
        Ok(me)
    }

    pub fn endpoint(&self) -> String {
        self.running.addr.to_string()
    }

    /// Where its ECS JSON 1.1 endpoint listens, if it was asked for.
    pub fn ecs_api_addr(&self) -> Option<std::net::SocketAddr> {
        self.running.ecs_api_addr
    }

    /// A client, retried while the server comes up.
    pub async fn client(&self) -> anyhow::Result<EcsClient<Channel>> {
        connect_with_retry(&self.endpoint(), Duration::from_secs(10)).await
    }
}

pub async fn connect_with_retry(
    endpoint: &str,
    within: Duration,
) -> anyhow::Result<EcsClient<Channel>> {
    let deadline = Instant::now() + within;
    loop {
        match orca_api::client::connect(endpoint).await {
            Ok(c) => return Ok(c),
            Err(e) if Instant::now() > deadline => return Err(e.into()),
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

/// A free port on 127.0.0.1 (bound and released; fine for tests).
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?)
}

/// How to start an `orca-controller` process (see [`ControllerProcess::spawn_with`]).
#[derive(Debug, Clone, Default)]
pub struct ControllerSpec {
    /// `--node-id`; omitted when `None` (the binary's default, 1).
    pub node_id: Option<u64>,
    pub data_dir: PathBuf,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--advertise`, when given.
    pub advertise: Option<SocketAddr>,
    /// `--join EP1,EP2,...`, when not empty.
    pub join: Vec<String>,
    /// Appended after the flags above (e.g. `--snapshot-every 50`).
    pub extra_args: Vec<String>,
    /// Extra environment (e.g. `RUST_LOG`).
    pub env: Vec<(String, String)>,
    /// A prefix the controller runs under, e.g. `nsenter --net=PATH --`;
    /// empty: run it directly. It must exec the controller (same pid).
    pub wrapper: Vec<OsString>,
    /// Where stdout and stderr are appended; default
    /// `<data_dir>/controller-<port>.log`.
    pub log: Option<PathBuf>,
}

/// A real `orca-controller` process; killed (by its PID) when dropped.
pub struct ControllerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    log: PathBuf,
    spec: ControllerSpec,
}

impl ControllerProcess {
    pub fn spawn(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<Self> {
        Self::spawn_with(ControllerSpec {
            data_dir: data_dir.to_path_buf(),
            listen: Some(addr),
            ..ControllerSpec::default()
        })
    }

    /// Starts a controller as `spec` says.
    pub fn spawn_with(spec: ControllerSpec) -> anyhow::Result<Self> {
        let addr = spec.listen.context("ControllerSpec::listen is required")?;
        let log = spec.log.clone().unwrap_or_else(|| {
            spec.data_dir
                .join(format!("controller-{}.log", addr.port()))
        });
        let mut me = ControllerProcess {
            child: None,
            addr,
            data_dir: spec.data_dir.clone(),
            log,
            spec,
        };
        me.start()?;
        Ok(me)
    }

    /// What the next (re)start runs; change `join` or `extra_args` here.
    pub fn spec_mut(&mut self) -> &mut ControllerSpec {
        &mut self.spec
    }

    /// Starts the process again after [`ControllerProcess::kill9`]; an error
    /// if it is running.
    pub fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(
            !self.is_running(),
            "controller {} is already running",
            self.addr
        );
        std::fs::create_dir_all(&self.data_dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let bin = crate::bin_path("orca-controller")?;
        let spec = &self.spec;
        let mut cmd = match spec.wrapper.split_first() {
            Some((prefix, rest)) => {
                let mut cmd = Command::new(prefix);
                cmd.args(rest).arg(bin);
                cmd
            }
            None => Command::new(bin),
        };
        if let Some(id) = spec.node_id {
            cmd.arg("--node-id").arg(id.to_string());
        }
        cmd.arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string());
        if let Some(advertise) = spec.advertise {
            cmd.arg("--advertise").arg(advertise.to_string());
        }
        if !spec.join.is_empty() {
            cmd.arg("--join").arg(spec.join.join(","));
        }
        cmd.args(&spec.extra_args);
        cmd.envs(spec.env.iter().map(|(k, v)| (k, v)));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        self.child = Some(child);
        Ok(())
    }

    /// Whether the process is alive (reaps it if it exited).
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.child = None;
                false
            }
            None => false,
        }
    }

    /// The pid while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// The exit status if the process exited on its own since it was
    /// started (without reaping: [`ControllerProcess::is_running`] does).
    pub fn exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    pub fn endpoint(&self) -> String {
        self.addr.to_string()
    }

    /// SIGKILL, as a crash: no shutdown path runs.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill9()?;
        self.start()
    }

    /// The log file (appended to across restarts).
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// Waits until the controller answers a read.
    pub async fn wait_ready(&mut self, within: Duration) -> anyhow::Result<EcsClient<Channel>> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    anyhow::bail!("controller exited with {status}; log:\n{}", self.log_text());
                }
            }
            if let Ok(mut c) = orca_api::client::connect(&self.endpoint()).await {
                let req = orca_api::v1::ListClustersRequest::default();
                if c.list_clusters(req).await.is_ok() {
                    return Ok(c);
                }
            }
            if Instant::now() > deadline {
                anyhow::bail!(
                    "controller not ready after {within:?}; log:\n{}",
                    self.log_text()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ControllerProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

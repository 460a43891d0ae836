//! Controllers for tests: in-process (fast, for API tests) and as real
//! `orca-controller` processes (for crash and restart tests).

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
        let data_dir = tempfile::tempdir()?;
        let config =
            orca_controller::Config::new(data_dir.path().to_path_buf(), "127.0.0.1:0".parse()?);
        let running = orca_controller::start(config).await?;
        let me = InProcessController { running, data_dir };
        me.client().await?;
        Ok(me)
    }

    pub fn endpoint(&self) -> String {
        self.running.addr.to_string()
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

/// A real `orca-controller` process; killed (by its PID) when dropped.
pub struct ControllerProcess {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub data_dir: PathBuf,
    log: PathBuf,
}

impl ControllerProcess {
    pub fn spawn(data_dir: &Path, addr: SocketAddr) -> anyhow::Result<Self> {
        let log = data_dir.join(format!("controller-{}.log", addr.port()));
        let mut me = ControllerProcess {
            child: None,
            addr,
            data_dir: data_dir.to_path_buf(),
            log,
        };
        me.start()?;
        Ok(me)
    }

    fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(crate::bin_path("orca-controller")?)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg(self.addr.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("spawning orca-controller")?;
        self.child = Some(child);
        Ok(())
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

//! Finding the machine's containerd for the runtime tests, and giving each
//! test its own containerd namespace.
//!
//! A test that needs containerd calls [`containerd_socket`]: `Ok(Some(path))`
//! when containerd answers there (and the test runs as root, which creating
//! containers needs); `Ok(None)` after printing why, on a developer's machine
//! without them; an error under `CI=true`, where a missing prerequisite is a
//! failure (`deploy/start-containerd.sh` starts one; tests/run.sh calls it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// containerd's default socket.
pub const SOCKET: &str = "/run/containerd/containerd.sock";

/// Whether the tests run under CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing prerequisite: an error under CI, else `Ok(None)` with the
/// reason printed.
pub fn missing<T>(reason: &str) -> anyhow::Result<Option<T>> {
    if in_ci() {
        anyhow::bail!("{reason} (CI=true: a missing prerequisite is a failure)");
    }
    eprintln!("skipping: {reason}");
    Ok(None)
}

/// The socket of a containerd that answers, if the tests can use it.
pub fn containerd_socket() -> anyhow::Result<Option<PathBuf>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return missing("the containerd tests need root (creating containers)");
    }
    let answers = Command::new("timeout")
        .args(["5", "ctr", "--address", SOCKET, "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !answers {
        return missing(&format!(
            "no containerd answers on {SOCKET} (run deploy/start-containerd.sh)"
        ));
    }
    Ok(Some(PathBuf::from(SOCKET)))
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A containerd namespace no other test (or test process) uses.
pub fn unique_namespace(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "orca-test-{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A containerd of a test's own: its own socket, root and state
/// directories under a temporary directory, so a test can stop and restart
/// it without touching the machine's containerd or other tests. Killed by
/// its PID when dropped (its shims' containers must be removed first, by
/// the test, while it runs).
pub struct PrivateContainerd {
    dir: tempfile::TempDir,
    child: Option<std::process::Child>,
}

impl PrivateContainerd {
    /// Starts one and waits until it answers.
    pub fn start() -> anyhow::Result<PrivateContainerd> {
        // Short: a unix socket path has at most 107 bytes.
        let dir = tempfile::Builder::new().prefix("ctrd").tempdir_in("/tmp")?;
        let d = dir.path();
        let config = format!(
            "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
             disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
             [grpc]\n  address = \"{sock}\"\n[ttrpc]\n  address = \"{sock}.ttrpc\"\n\
             [debug]\n  address = \"\"\n[metrics]\n  address = \"\"\n",
            root = d.join("root").display(),
            state = d.join("state").display(),
            sock = d.join("c.sock").display(),
        );
        std::fs::write(d.join("config.toml"), config)?;
        let mut me = PrivateContainerd { dir, child: None };
        me.restart()?;
        Ok(me)
    }

    /// Its socket.
    pub fn socket(&self) -> PathBuf {
        self.dir.path().join("c.sock")
    }

    /// Its PID while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// Starts it (again) on the same directories and waits until it
    /// answers; an error if it is running.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(self.child.is_none(), "containerd is running");
        let d = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(d.join("containerd.log"))?;
        let child = Command::new("containerd")
            .arg("--config")
            .arg(d.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let answers = Command::new("timeout")
                .args(["5", "ctr", "--address"])
                .arg(self.socket())
                .arg("version")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answers {
                return Ok(());
            }
            anyhow::ensure!(
                std::time::Instant::now() < deadline,
                "the test's containerd did not answer within 30 s; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// SIGKILL by its PID (the shims and their containers live on).
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Its log.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }
}

impl Drop for PrivateContainerd {
    fn drop(&mut self) {
        let _ = self.kill9();
        // Mounts a crashed test left under its root go before the directory.
        let root = self.dir.path().to_string_lossy().into_owned();
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let mut points: Vec<&str> = mounts
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4))
            .filter(|p| p.starts_with(&root))
            .collect();
        points.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for p in points {
            let _ = Command::new("umount").arg("-l").arg(p).status();
        }
    }
}

/// What a test node left on the machine, for [`purge_node_blocking`].
pub struct NodeLeftovers {
    pub socket: PathBuf,
    /// The node's containerd namespace (containers, images, snapshots).
    pub namespace: String,
    /// Its task network namespaces' name prefix.
    pub netns_prefix: String,
    pub bridge: String,
    /// A state directory for the runtime that does the purge.
    pub state_dir: PathBuf,
}

/// Removes everything a test node created, from a `Drop` of a test that
/// failed half-way: on a thread with a runtime of its own (the test's
/// runtime is unwinding), best effort.
pub fn purge_node_blocking(left: NodeLeftovers) {
    use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime, RegistriesConfig};
    let cleanup = std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            let config = ContainerdConfig {
                socket: left.socket,
                namespace: left.namespace,
                registries: RegistriesConfig::default(),
                state_dir: left.state_dir,
                log_driver: None,
            };
            if let Ok(runtime) = ContainerdRuntime::connect(config).await {
                let _ = runtime.purge_namespace().await;
            }
            for ns in orca_net::netns::list_namespaces(&left.netns_prefix).unwrap_or_default() {
                let _ = orca_net::netns::delete_namespace(&ns);
            }
            let _ = orca_net::netns::remove_bridge(&left.bridge).await;
        });
    });
    let _ = cleanup.join();
}

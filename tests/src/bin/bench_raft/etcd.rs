//! The etcd side of the Raft benchmark: a 3-member etcd cluster on 127.0.0.1
//! ports, started from Debian's binary and killed by PID.

use std::fs::OpenOptions;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::*;
use anyhow::{bail, Context};

/// Free ports on 127.0.0.1, all bound at once so they differ.
pub(crate) fn free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

// ---------------------------------------------------------------- etcd

pub(crate) struct EtcdMember {
    pub(crate) name: String,
    pub(crate) client: SocketAddr,
    pub(crate) peer: SocketAddr,
    pub(crate) data: PathBuf,
    pub(crate) log: PathBuf,
    pub(crate) child: Option<Child>,
    /// etcd's member id, learned from its status replies.
    pub(crate) id: u64,
}

/// Three etcd processes on 127.0.0.1; killed by PID on drop, then the
/// directory goes.
pub(crate) struct EtcdCluster {
    pub(crate) members: Vec<EtcdMember>,
    pub(crate) initial_cluster: String,
    pub(crate) token: String,
    pub(crate) dir: tempfile::TempDir,
}

impl EtcdCluster {
    pub(crate) fn start(n: usize) -> anyhow::Result<Self> {
        anyhow::ensure!(
            Path::new(ETCD_BIN).exists(),
            "{ETCD_BIN} is missing: install Debian's etcd-server (deploy/install-deps.sh)"
        );
        let dir = tempfile::Builder::new()
            .prefix("bench-raft-etcd-")
            .tempdir()?;
        let ports = free_ports(2 * n)?;
        let members: Vec<EtcdMember> = (0..n)
            .map(|i| EtcdMember {
                name: format!("m{}", i + 1),
                client: SocketAddr::from(([127, 0, 0, 1], ports[2 * i])),
                peer: SocketAddr::from(([127, 0, 0, 1], ports[2 * i + 1])),
                data: dir.path().join(format!("m{}", i + 1)),
                log: dir.path().join(format!("m{}.log", i + 1)),
                child: None,
                id: 0,
            })
            .collect();
        let initial_cluster = members
            .iter()
            .map(|m| format!("{}=http://{}", m.name, m.peer))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = EtcdCluster {
            members,
            initial_cluster,
            token: format!("bench-raft-{}", std::process::id()),
            dir,
        };
        for i in 0..n {
            cluster.spawn(i)?;
        }
        Ok(cluster)
    }

    /// Starts member `i` (from 0) on its data directory; the same command
    /// line serves a restart (etcd ignores `--initial-*` once it has data).
    pub(crate) fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let m = &mut self.members[i];
        anyhow::ensure!(m.child.is_none(), "etcd {} is running", m.name);
        let log = OpenOptions::new().create(true).append(true).open(&m.log)?;
        let mut cmd = Command::new(ETCD_BIN);
        cmd.arg("--name")
            .arg(&m.name)
            .arg("--data-dir")
            .arg(&m.data)
            .arg("--listen-client-urls")
            .arg(format!("http://{}", m.client))
            .arg("--advertise-client-urls")
            .arg(format!("http://{}", m.client))
            .arg("--listen-peer-urls")
            .arg(format!("http://{}", m.peer))
            .arg("--initial-advertise-peer-urls")
            .arg(format!("http://{}", m.peer))
            .arg("--initial-cluster")
            .arg(&self.initial_cluster)
            .arg("--initial-cluster-state")
            .arg("new")
            .arg("--initial-cluster-token")
            .arg(&self.token)
            .arg("--logger")
            .arg("zap")
            .arg("--log-outputs")
            .arg("stderr");
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("ETCD_") {
                cmd.env_remove(key);
            }
        }
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("spawning {cmd:?}"))?;
        m.child = Some(child);
        Ok(())
    }

    /// SIGKILL member `i` by its PID and reap it.
    pub(crate) fn kill9(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(mut child) = self.members[i].child.take() {
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    pub(crate) fn endpoint(&self, i: usize) -> String {
        format!("http://{}", self.members[i].client)
    }

    pub(crate) fn is_running(&mut self, i: usize) -> bool {
        match self.members[i].child.as_mut().map(|c| c.try_wait()) {
            Some(Ok(None)) => true,
            Some(_) => {
                self.members[i].child = None;
                false
            }
            None => false,
        }
    }

    /// Member `i`'s (own id, leader id, server version).
    pub(crate) async fn status(&self, i: usize) -> anyhow::Result<(u64, u64, String)> {
        let call = async {
            let mut c = etcd_connect(&self.endpoint(i)).await?;
            let s = c.status().await?;
            let id = s.header().map(|h| h.member_id()).unwrap_or_default();
            anyhow::Ok((id, s.leader(), s.version().to_string()))
        };
        tokio::time::timeout(PROBE_TIMEOUT, call)
            .await
            .context("etcd status timed out")?
    }

    /// The leader's index when every member runs, answers and names the same
    /// leader.
    pub(crate) async fn agreed_leader(&mut self) -> anyhow::Result<usize> {
        let mut leaders = Vec::new();
        for i in 0..self.members.len() {
            anyhow::ensure!(
                self.is_running(i),
                "{} is not running",
                self.members[i].name
            );
            let (id, leader, _) = self.status(i).await?;
            self.members[i].id = id;
            leaders.push(leader);
        }
        anyhow::ensure!(
            leaders[0] != 0 && leaders.iter().all(|&l| l == leaders[0]),
            "members disagree on the leader: {leaders:x?}"
        );
        self.members
            .iter()
            .position(|m| m.id == leaders[0])
            .context("the leader is not a member")
    }

    /// Waits until all members agree on a leader and member `via` (if any)
    /// acknowledges a put.
    pub(crate) async fn settle(
        &mut self,
        via: Option<usize>,
        seq: &AtomicU64,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + SETTLE_LIMIT;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.agreed_leader().await {
                Ok(leader) => {
                    let Some(via) = via else { return Ok(leader) };
                    let put = async {
                        let w = Writer::etcd(&self.endpoint(via)).await?;
                        attempt(w, seq.fetch_add(1, Ordering::Relaxed)).await
                    };
                    match put.await {
                        Ok(()) => return Ok(leader),
                        Err(e) => last = format!("put via {}: {e:#}", self.members[via].name),
                    }
                }
                Err(e) => last = format!("{e:#}"),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "etcd not settled after {SETTLE_LIMIT:?}: {last}\n{}",
            self.logs()
        )
    }

    /// The end of every member's log, for failure messages.
    pub(crate) fn logs(&self) -> String {
        self.members
            .iter()
            .map(|m| {
                let text = std::fs::read_to_string(&m.log).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(20).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                format!("===== etcd {} =====\n{}\n", m.name, tail.join("\n"))
            })
            .collect()
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for i in 0..self.members.len() {
            let _ = self.kill9(i);
        }
    }
}

//! The Docker Swarm side, as /work/shared/environment.md's recipe runs it:
//! each dockerd in a network namespace of its own (a [`TestNet`] host,
//! entered with `nsenter --net=`), its data and exec roots in a temp dir,
//! its bridges on subnets leased like the tests' own, the image loaded from
//! containerd (`ctr images export` → `docker load`), services created with
//! `--no-resolve-image` and `--stop-grace-period 0s`. A single-node swarm
//! for scenarios 1-3; three managers for scenario 4. Stopped with SIGTERM
//! to the pid in its pidfile.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orca_tests::netns::{lease_subnet, SubnetLease, TestNet};

use crate::orca::SCRIPT;
use crate::util::{alive, output, sigterm, unmount_under};

const WAIT: Duration = Duration::from_secs(120);
const POLL: Duration = Duration::from_millis(20);

/// The docker client of the daemon's own version when installed
/// (docker.io's /usr/bin/docker), else whatever `docker` is on PATH.
fn docker_bin() -> &'static str {
    if Path::new("/usr/bin/docker").exists() {
        "/usr/bin/docker"
    } else {
        "docker"
    }
}

/// One dockerd in test host `host` of a TestNet.
pub struct Dockerd {
    pub host: usize,
    dir: PathBuf,
    pid: Option<u32>,
    /// `198.18.S.(10+i)`, or 127.0.0.1 for a single node.
    pub advertise: String,
    pub node_id: String,
}

impl Dockerd {
    fn sock(&self) -> PathBuf {
        self.dir.join("d.sock")
    }

    /// `docker -H unix://SOCK args...`, its stdout.
    pub fn docker(&self, args: &[&str]) -> anyhow::Result<String> {
        let mut cmd = Command::new(docker_bin());
        cmd.arg("-H")
            .arg(format!("unix://{}", self.sock().display()))
            .args(args);
        output(&mut cmd)
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("dockerd.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().rev().take(20).collect();
        lines.into_iter().rev().collect::<Vec<_>>().join("\n")
    }
}

/// A swarm of `n` dockerd's (all managers).
pub struct Swarm {
    pub net: TestNet,
    pub nodes: Vec<Dockerd>,
    _leases: Vec<SubnetLease>,
    _dir: tempfile::TempDir,
}

impl Swarm {
    /// Starts `n` dockerd's, one per test host, forms a swarm of managers
    /// and loads `archive` (a docker-loadable tar) into each.
    pub fn start(n: usize, archive: &Path, images: &[String]) -> anyhow::Result<Swarm> {
        let net = TestNet::new(n)?;
        // Short: a unix socket path has at most 107 bytes.
        let dir = tempfile::Builder::new().prefix("obd").tempdir_in("/tmp")?;
        // docker0, docker_gwbridge and the ingress overlay get subnets no
        // test or other bench uses: leased (the bridge names are never
        // created on the machine, so a stale lease's cleanup is harmless).
        let tag = std::process::id() % 100_000;
        let mut leases = Vec::new();
        for what in ["b", "g", "o"] {
            leases.push(lease_subnet(&format!("odk{tag}{what}"), "")?);
        }
        let bip = format!("198.18.{}.1/24", leases[0].octet());
        let pool = format!("base={},size=24", leases[1].cidr());
        let swarm_pool = leases[2].cidr();
        let mut me = Swarm {
            net,
            nodes: Vec::new(),
            _leases: leases,
            _dir: dir,
        };
        for i in 1..=n {
            let d = me._dir.path().join(format!("n{i}"));
            std::fs::create_dir_all(d.join("data"))?;
            std::fs::create_dir_all(d.join("exec"))?;
            let mut cmd = Command::new("dockerd");
            cmd.arg("-H")
                .arg(format!("unix://{}", d.join("d.sock").display()))
                .arg("--data-root")
                .arg(d.join("data"))
                .arg("--exec-root")
                .arg(d.join("exec"))
                .arg("--pidfile")
                .arg(d.join("dockerd.pid"))
                .args(["--bip", &bip, "--default-address-pool", &pool])
                .env("DOCKER_SERVICE_PREFER_OFFLINE_IMAGE", "1");
            // The TestNet keeps the child (SIGKILLed on drop only if the
            // SIGTERM below did not end it); the pidfile names the same pid.
            let pid = me.net.spawn_in(i, &cmd, Some(&d.join("dockerd.log")))?;
            let advertise = if n == 1 {
                "127.0.0.1".to_string()
            } else {
                me.net.addr(i).to_string()
            };
            me.nodes.push(Dockerd {
                host: i,
                dir: d,
                pid: Some(pid),
                advertise,
                node_id: String::new(),
            });
        }
        for node in &me.nodes {
            let deadline = Instant::now() + Duration::from_secs(60);
            while node.docker(&["info", "--format", "{{.ID}}"]).is_err() {
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "dockerd in host {} did not answer within 60 s:\n{}",
                    node.host,
                    node.log_tail()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
            node.docker(&["load", "-q", "-i", &archive.to_string_lossy()])?;
            for image in images {
                node.docker(&["image", "inspect", "--format", "{{.Id}}", image])
                    .with_context(|| format!("{image} was not loaded into dockerd"))?;
            }
        }
        let first = &me.nodes[0];
        first.docker(&[
            "swarm",
            "init",
            "--advertise-addr",
            &first.advertise,
            "--default-addr-pool",
            &swarm_pool,
            "--default-addr-pool-mask-length",
            "24",
        ])?;
        if n > 1 {
            let token = first.docker(&["swarm", "join-token", "-q", "manager"])?;
            let join = format!("{}:2377", first.advertise);
            for node in &me.nodes[1..] {
                node.docker(&[
                    "swarm",
                    "join",
                    "--token",
                    token.trim(),
                    "--advertise-addr",
                    &node.advertise,
                    &join,
                ])?;
            }
        }
        for node in &mut me.nodes {
            node.node_id = node
                .docker(&["info", "--format", "{{.Swarm.NodeID}}"])?
                .trim()
                .to_string();
        }
        me.wait_all_ready(0)?;
        Ok(me)
    }

    /// Waits until node `via` (0-based) sees every node Ready and a leader.
    fn wait_all_ready(&self, via: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let listed = self.nodes[via].docker(&[
                "node",
                "ls",
                "--format",
                "{{.Status}} {{.ManagerStatus}}",
            ]);
            if let Ok(l) = &listed {
                let lines: Vec<&str> = l.lines().collect();
                if lines.len() == self.nodes.len()
                    && lines.iter().all(|s| s.starts_with("Ready"))
                    && lines.iter().any(|s| s.ends_with("Leader"))
                {
                    return Ok(());
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "swarm not all Ready with a leader: {listed:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The index of the node the swarm says leads.
    fn leader(&self) -> anyhow::Result<usize> {
        for node in &self.nodes {
            if let Ok(l) = node.docker(&["node", "ls", "--format", "{{.ID}} {{.ManagerStatus}}"]) {
                for line in l.lines() {
                    if let Some(id) = line.strip_suffix(" Leader") {
                        return self
                            .nodes
                            .iter()
                            .position(|n| n.node_id == id.trim())
                            .context("the leader is no node of ours");
                    }
                }
            }
        }
        anyhow::bail!("no node names a leader")
    }

    fn create(
        &self,
        via: usize,
        name: &str,
        replicas: u32,
        extra: &[&str],
        image: &str,
    ) -> anyhow::Result<()> {
        let replicas = replicas.to_string();
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--replicas",
            &replicas,
            "--stop-grace-period",
            "0s",
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[image, "sh", "-c", SCRIPT]);
        self.nodes[via].docker(&args)?;
        Ok(())
    }

    fn wait_replicas(&self, via: usize, name: &str, want: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let r = self.nodes[via].docker(&[
                "service",
                "ls",
                "--filter",
                &format!("name={name}"),
                "--format",
                "{{.Replicas}}",
            ])?;
            if r.trim() == want {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "service {name} not {want} within {WAIT:?}: {r}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Removes the service (retried while the swarm has no leader) and
    /// waits until no node runs a container of it.
    pub fn remove(&self, via: usize, name: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            match self.nodes[via].docker(&["service", "rm", name]) {
                Ok(_) => break,
                Err(e) => anyhow::ensure!(Instant::now() < deadline, "service rm {name}: {e:#}"),
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let filter = format!("label=com.docker.swarm.service.name={name}");
        for node in &self.nodes {
            loop {
                let left = node.docker(&["ps", "-aq", "--filter", &filter])?;
                if left.trim().is_empty() {
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "containers of {name} left on host {}",
                    node.host
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Scenario 1: service create (3 replicas) → `3/3`.
    pub fn create_to_running(&self, name: &str, image: &str) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        self.create(0, name, 3, &[], image)?;
        self.wait_replicas(0, name, "3/3")?;
        Ok(t0.elapsed())
    }

    pub fn create_plain(
        &self,
        name: &str,
        replicas: u32,
        extra: &[&str],
        image: &str,
    ) -> anyhow::Result<()> {
        self.create(0, name, replicas, extra, image)?;
        self.wait_replicas(0, name, &format!("{replicas}/{replicas}"))
    }

    /// The service's tasks wanted running on node `via`'s view: (task id,
    /// current state).
    fn running_tasks(&self, via: usize, name: &str) -> anyhow::Result<Vec<(String, String)>> {
        let out = self.nodes[via].docker(&[
            "service",
            "ps",
            name,
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}}|{{.CurrentState}}",
        ])?;
        Ok(out
            .lines()
            .filter_map(|l| l.split_once('|'))
            .map(|(id, state)| (id.to_string(), state.to_string()))
            .collect())
    }

    /// Scenario 2: `docker kill` of one task's container → 3 tasks Running,
    /// the killed one not among them.
    pub fn kill_to_replacement(&self, name: &str) -> anyhow::Result<Duration> {
        let deadline = Instant::now() + WAIT;
        let victim = loop {
            let out = self.nodes[0].docker(&[
                "ps",
                "--no-trunc",
                "--filter",
                &format!("label=com.docker.swarm.service.name={name}"),
                "--format",
                "{{.ID}}|{{.Label \"com.docker.swarm.task.id\"}}",
            ])?;
            let running = self.running_tasks(0, name)?;
            let all_running =
                running.len() == 3 && running.iter().all(|(_, s)| s.starts_with("Running"));
            if let (true, Some(line)) = (all_running, out.lines().next()) {
                if out.lines().count() == 3 {
                    let (cid, task) = line.split_once('|').context("ps line")?;
                    break (cid.to_string(), task.to_string());
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "{name}: not 3 running containers: {out}"
            );
            std::thread::sleep(POLL);
        };
        let t0 = Instant::now();
        self.nodes[0].docker(&["kill", &victim.0])?;
        loop {
            let running = self.running_tasks(0, name)?;
            if running.len() == 3
                && running
                    .iter()
                    .all(|(id, s)| s.starts_with("Running") && *id != victim.1)
            {
                return Ok(t0.elapsed());
            }
            anyhow::ensure!(
                Instant::now() < t0 + WAIT,
                "{name}: no replacement within {WAIT:?}: {running:?}"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Scenario 3: a service of 10, then `service update --image` with the
    /// brief's flags → UpdateStatus `completed`.
    pub fn rolling_update(&self, name: &str, images: &[String; 2]) -> anyhow::Result<Duration> {
        self.create_plain(name, 10, &[], &images[0])?;
        let t0 = Instant::now();
        self.nodes[0].docker(&[
            "service",
            "update",
            "--detach",
            "--no-resolve-image",
            "--image",
            &images[1],
            "--update-parallelism",
            "5",
            "--update-delay",
            "0s",
            "--update-order",
            "start-first",
            "--stop-grace-period",
            "0s",
            name,
        ])?;
        loop {
            let state = self.nodes[0].docker(&[
                "service",
                "inspect",
                name,
                "--format",
                "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}",
            ])?;
            match state.trim() {
                "completed" => return Ok(t0.elapsed()),
                s @ ("paused" | "rollback_started" | "rollback_completed" | "rollback_paused") => {
                    anyhow::bail!("swarm update of {name} ended {s}")
                }
                _ => {}
            }
            anyhow::ensure!(
                Instant::now() < t0 + Duration::from_secs(300),
                "update of {name} not completed in 300 s"
            );
            std::thread::sleep(POLL);
        }
    }

    /// Scenario 4, one trial on a swarm of 3 managers: a service of 3
    /// (one task per node); a follower holding a task is cut off from the
    /// other two (iptables DROP in its namespace) → 3 tasks Running on the
    /// other two nodes. Heals and removes the service afterwards.
    pub fn node_cut_trial(&self, trial: usize, image: &str) -> anyhow::Result<Duration> {
        let name = format!("cut-{trial}");
        let leader = self.leader()?;
        self.create(leader, &name, 3, &[], image)?;
        self.wait_replicas(leader, &name, "3/3")?;
        let filter = format!("label=com.docker.swarm.service.name={name}");
        let holding: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| {
                self.nodes[i]
                    .docker(&["ps", "-q", "--filter", &filter])
                    .is_ok_and(|o| !o.trim().is_empty())
            })
            .collect();
        let followers: Vec<usize> = holding.iter().copied().filter(|&i| i != leader).collect();
        anyhow::ensure!(!followers.is_empty(), "no follower runs a task of {name}");
        let cut = followers[trial % followers.len()];
        let others: Vec<String> = (0..self.nodes.len())
            .filter(|&i| i != cut)
            .map(|i| self.nodes[i].node_id.clone())
            .collect();
        let before = self.running_on(leader, &name, &others)?;
        anyhow::ensure!(
            before < 3,
            "{name}: {before} tasks already on the nodes that stay"
        );
        self.net.isolate(self.nodes[cut].host)?;
        let t0 = Instant::now();
        let measured = (|| -> anyhow::Result<Duration> {
            loop {
                if self.running_on(leader, &name, &others)? >= 3 {
                    return Ok(t0.elapsed());
                }
                anyhow::ensure!(
                    Instant::now() < t0 + WAIT,
                    "{name}: tasks not running elsewhere within {WAIT:?}"
                );
                std::thread::sleep(POLL);
            }
        })();
        self.net.heal_all()?;
        let elapsed = measured?;
        self.wait_all_ready(leader)?;
        let leader = self.leader()?;
        self.remove(leader, &name)?;
        self.wait_all_ready(leader)?;
        Ok(elapsed)
    }

    /// How many tasks of the service, wanted running, are running on one of
    /// `nodes` (node ids), as node `via` sees them (`docker inspect` of the
    /// tasks: `docker node ps` with several nodes did not filter here).
    fn running_on(&self, via: usize, name: &str, nodes: &[String]) -> anyhow::Result<usize> {
        let Ok(ids) = self.nodes[via].docker(&[
            "service",
            "ps",
            name,
            "-q",
            "--no-trunc",
            "--filter",
            "desired-state=running",
        ]) else {
            return Ok(0);
        };
        let ids: Vec<&str> = ids.split_whitespace().collect();
        if ids.is_empty() {
            return Ok(0);
        }
        let mut args = vec![
            "inspect",
            "--type",
            "task",
            "--format",
            "{{.NodeID}} {{.Status.State}}",
        ];
        args.extend(ids);
        let Ok(out) = self.nodes[via].docker(&args) else {
            return Ok(0);
        };
        Ok(out
            .lines()
            .filter_map(|l| l.split_once(' '))
            .filter(|(node, state)| *state == "running" && nodes.iter().any(|n| n == node))
            .count())
    }

    /// Removes every service, leaves the swarm, SIGTERMs each dockerd (by
    /// the pid in its pidfile) and waits for it; the TestNet (namespaces,
    /// bridge) goes on drop.
    pub fn stop(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        if let Ok(services) = self.nodes[0].docker(&["service", "ls", "-q"]) {
            for s in services.split_whitespace() {
                let _ = self.remove(0, s);
            }
        }
        for node in self.nodes.iter().rev() {
            let _ = node.docker(&["swarm", "leave", "--force"]);
            if let Ok(ids) = node.docker(&["ps", "-aq"]) {
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let mut args = vec!["rm", "-f"];
                    args.extend(ids);
                    let _ = node.docker(&args);
                }
            }
        }
        for node in &mut self.nodes {
            let pidfile = std::fs::read_to_string(node.dir.join("dockerd.pid")).ok();
            let pid = pidfile
                .and_then(|p| p.trim().parse::<u32>().ok())
                .or(node.pid);
            if let Some(pid) = pid {
                if Some(pid) != node.pid {
                    problems.push(format!(
                        "dockerd pidfile names {pid}, not the {:?} started",
                        node.pid
                    ));
                    continue;
                }
                let _ = sigterm(pid);
                let deadline = Instant::now() + Duration::from_secs(30);
                while alive(pid) && Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(100));
                }
                if alive(pid) {
                    problems.push(format!(
                        "dockerd {pid} still running 30 s after SIGTERM (killed)"
                    ));
                }
                // Reaps it (SIGKILL only if it is still there).
                let _ = self.net.kill(pid);
                node.pid = None;
            }
            unmount_under(&node.dir);
        }
        problems
    }
}

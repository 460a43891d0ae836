//! A cluster of real `orca-controller` processes, on loopback or each in its
//! own network namespace (see [`crate::netns`]).
//!
//! Nodes are numbered from 1 and node `i` has Raft node id `i`, so a
//! leader id read from `Members` is also an index here. Node 1 bootstraps a
//! new cluster; node `k > 1` starts with `--join` listing nodes `1..k` and is
//! waited for until the leader counts it as a voter before node `k+1` starts.
//! Every node keeps the same address, data directory and log file (appended
//! to) across kills and restarts; all of it lives in one TempDir.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::{MembersReply, MembersRequest};
use tonic::transport::{Channel, Endpoint};

use crate::controller::{free_addr, ControllerProcess, ControllerSpec};
use crate::netns::TestNet;

/// The port controllers listen on inside their namespaces.
pub const NETNS_PORT: u16 = 7470;
/// The port their ECS JSON endpoints listen on, when asked for.
pub const NETNS_ECS_API_PORT: u16 = 7480;

/// How long one `Members` call may take before the node counts as silent.
const MEMBERS_TIMEOUT: Duration = Duration::from_secs(2);

/// Options for [`ControllerCluster`]; start with
/// [`ControllerCluster::builder`].
#[derive(Debug, Clone)]
pub struct ClusterBuilder {
    nodes: usize,
    netns: bool,
    extra_args: Vec<String>,
    env: Vec<(String, String)>,
    join_timeout: Duration,
    ecs_api: bool,
}

impl ClusterBuilder {
    /// In network namespaces (root only) instead of on 127.0.0.1.
    pub fn netns(mut self, yes: bool) -> Self {
        self.netns = yes;
        self
    }

    /// Arguments every node gets, e.g. `["--snapshot-every", "50"]`.
    pub fn extra_args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable every node gets (e.g. `RUST_LOG`).
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }

    /// Every node also serves ECS's JSON 1.1 endpoint (`--ecs-api-listen`,
    /// on its own port); see [`ControllerCluster::ecs_api_addr`].
    pub fn ecs_api(mut self, yes: bool) -> Self {
        self.ecs_api = yes;
        self
    }

    /// How long bootstrapping, and then each join, may take (default 30 s).
    pub fn join_timeout(mut self, within: Duration) -> Self {
        self.join_timeout = within;
        self
    }

    /// Starts node 1, then joins the others one at a time.
    pub async fn start(self) -> anyhow::Result<ControllerCluster> {
        anyhow::ensure!(self.nodes >= 1, "a cluster needs at least one node");
        let dir = tempfile::Builder::new().prefix("orca-cluster-").tempdir()?;
        let net = if self.netns {
            Some(TestNet::new(self.nodes)?)
        } else {
            None
        };
        let mut addrs = Vec::with_capacity(self.nodes);
        let mut ecs_api_addrs = Vec::with_capacity(self.nodes);
        for i in 1..=self.nodes {
            let (addr, ecs_api) = match &net {
                Some(net) => {
                    let ip = IpAddr::V4(net.addr(i));
                    (
                        SocketAddr::new(ip, NETNS_PORT),
                        SocketAddr::new(ip, NETNS_ECS_API_PORT),
                    )
                }
                None => (free_addr()?, free_addr()?),
            };
            addrs.push(addr);
            ecs_api_addrs.push(self.ecs_api.then_some(ecs_api));
        }
        let mut cluster = ControllerCluster {
            nodes: Vec::with_capacity(self.nodes),
            net,
            dir,
            addrs,
            ecs_api_addrs,
            options: self,
        };
        let n = cluster.options.nodes;
        let within = cluster.options.join_timeout;
        for i in 1..=n {
            let join: Vec<String> = (1..i).map(|j| cluster.endpoint(j)).collect();
            let mut attempt = 0;
            loop {
                let process = ControllerProcess::spawn_with(cluster.spec(i, join.clone()))?;
                cluster.nodes.push(process);
                let started = cluster.wait_voter(i, within).await;
                // A free port is found by binding and releasing it, so a
                // concurrent test may take it first: on loopback, a node
                // that could not listen gets new ports (it never joined,
                // so no member knows the old address).
                let port_taken = started.is_err()
                    && cluster.net.is_none()
                    && attempt < 3
                    && cluster.nodes[i - 1]
                        .log_text()
                        .contains("Address already in use");
                if !port_taken {
                    started.with_context(|| format!("starting node {i} of {n}"))?;
                    break;
                }
                attempt += 1;
                drop(cluster.nodes.pop());
                cluster.addrs[i - 1] = free_addr()?;
                if cluster.ecs_api_addrs[i - 1].is_some() {
                    cluster.ecs_api_addrs[i - 1] = Some(free_addr()?);
                }
            }
        }
        Ok(cluster)
    }
}

/// A node that led, as it said before it was killed or cut off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FormerLeader {
    /// Its node id (and index in the cluster).
    pub id: usize,
    /// The term it led in.
    pub term: u64,
}

/// Controller processes forming one Raft cluster; all are killed on drop,
/// then the namespaces (if any) and the data are removed.
pub struct ControllerCluster {
    // Dropped in this order: processes, then the network, then the files.
    nodes: Vec<ControllerProcess>,
    net: Option<TestNet>,
    dir: tempfile::TempDir,
    addrs: Vec<SocketAddr>,
    ecs_api_addrs: Vec<Option<SocketAddr>>,
    options: ClusterBuilder,
}

impl ControllerCluster {
    pub fn builder(nodes: usize) -> ClusterBuilder {
        ClusterBuilder {
            nodes,
            netns: false,
            extra_args: Vec::new(),
            // Plain logs: tracing's colours make them hard to read.
            env: vec![("NO_COLOR".to_string(), "1".to_string())],
            join_timeout: Duration::from_secs(30),
            ecs_api: false,
        }
    }

    /// `n` nodes on 127.0.0.1, each on a free port.
    pub async fn start_loopback(n: usize) -> anyhow::Result<Self> {
        Self::builder(n).start().await
    }

    /// `n` nodes, node `i` in namespace `i` of a new [`TestNet`], listening
    /// on `198.18.S.(10+i):7470`. Check [`crate::netns::netns_available`]
    /// first.
    pub async fn start_netns(n: usize) -> anyhow::Result<Self> {
        Self::builder(n).netns(true).start().await
    }

    fn spec(&self, i: usize, join: Vec<String>) -> ControllerSpec {
        let addr = self.addrs[i - 1];
        let mut extra_args = self.options.extra_args.clone();
        if let Some(ecs_api) = self.ecs_api_addrs[i - 1] {
            extra_args.extend(["--ecs-api-listen".to_string(), ecs_api.to_string()]);
        }
        ControllerSpec {
            node_id: Some(i as u64),
            data_dir: self.data_dir(i),
            listen: Some(addr),
            advertise: Some(addr),
            join,
            extra_args,
            env: self.options.env.clone(),
            wrapper: self.net.as_ref().map(|n| n.wrapper(i)).unwrap_or_default(),
            log: Some(self.log_path(i)),
        }
    }

    /// How many nodes (running or not).
    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The namespaces, when started with [`ControllerCluster::start_netns`]:
    /// partition with `net().isolate(i)` and friends.
    pub fn net(&self) -> Option<&TestNet> {
        self.net.as_ref()
    }

    fn node(&self, i: usize) -> &ControllerProcess {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "node {i} out of 1..={}",
            self.nodes.len()
        );
        &self.nodes[i - 1]
    }

    fn node_mut(&mut self, i: usize) -> &mut ControllerProcess {
        assert!(
            (1..=self.nodes.len()).contains(&i),
            "node {i} out of 1..={}",
            self.nodes.len()
        );
        &mut self.nodes[i - 1]
    }

    pub fn addr(&self, i: usize) -> SocketAddr {
        self.addrs[i - 1]
    }

    /// Where node `i` serves ECS's JSON endpoint (built with
    /// [`ClusterBuilder::ecs_api`]).
    pub fn ecs_api_addr(&self, i: usize) -> Option<SocketAddr> {
        self.ecs_api_addrs[i - 1]
    }

    /// `host:port` of node `i`.
    pub fn endpoint(&self, i: usize) -> String {
        self.addr(i).to_string()
    }

    /// Every node's endpoint, comma-separated (for `ORCA_ENDPOINT`).
    pub fn endpoints(&self) -> String {
        (1..=self.len())
            .map(|i| self.endpoint(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    pub fn data_dir(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}"))
    }

    pub fn log_path(&self, i: usize) -> PathBuf {
        self.dir.path().join(format!("node-{i}.log"))
    }

    /// Node `i`'s log, across all its runs.
    pub fn log_text(&self, i: usize) -> String {
        std::fs::read_to_string(self.log_path(i)).unwrap_or_default()
    }

    /// Every node's log, headed by its number: for failure messages.
    pub fn logs(&self) -> String {
        (1..=self.len())
            .map(|i| {
                format!(
                    "===== node {i} ({}) =====\n{}",
                    self.endpoint(i),
                    self.log_text(i)
                )
            })
            .collect()
    }

    /// The directory holding data and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Whether node `i`'s process is alive.
    pub fn is_running(&mut self, i: usize) -> bool {
        self.node_mut(i).is_running()
    }

    pub fn pid(&self, i: usize) -> Option<u32> {
        self.node(i).pid()
    }

    /// An ECS client of node `i` (connects; does not retry).
    pub async fn ecs_client(&self, i: usize) -> anyhow::Result<EcsClient<Channel>> {
        Ok(orca_api::client::connect(&self.endpoint(i)).await?)
    }

    /// A `ControllerAdmin` client of node `i`.
    pub async fn admin_client(&self, i: usize) -> anyhow::Result<ControllerAdminClient<Channel>> {
        let channel = Endpoint::from_shared(format!("http://{}", self.addr(i)))?
            .connect_timeout(MEMBERS_TIMEOUT)
            .connect()
            .await
            .with_context(|| format!("connecting to node {i} at {}", self.addr(i)))?;
        Ok(ControllerAdminClient::new(channel))
    }

    /// Node `i`'s answer to `Members`, within two seconds.
    pub async fn members(&self, i: usize) -> anyhow::Result<MembersReply> {
        let call = async {
            let mut admin = self.admin_client(i).await?;
            let reply = admin.members(MembersRequest {}).await?;
            anyhow::Ok(reply.into_inner())
        };
        tokio::time::timeout(MEMBERS_TIMEOUT, call)
            .await
            .with_context(|| format!("node {i}: Members timed out"))?
    }

    /// Every running node's answer (None: not running or no answer).
    async fn all_members(&mut self) -> Vec<Option<MembersReply>> {
        // During start-up, nodes not yet started count as not running.
        let started = self.nodes.len();
        let running: Vec<bool> = (1..=self.len())
            .map(|i| i <= started && self.is_running(i))
            .collect();
        let me = &*self;
        let running = &running;
        let calls = (1..=me.len()).map(|i| async move {
            if running[i - 1] {
                me.members(i).await.ok()
            } else {
                None
            }
        });
        futures::future::join_all(calls).await
    }

    /// The node a majority of the cluster's nodes (counting every node,
    /// running or not) names as leader, if any and if it is running (a
    /// killed leader is still named until the others time out).
    pub async fn leader(&mut self) -> Option<usize> {
        let replies = self.all_members().await;
        let started = self.nodes.len();
        let alive: Vec<bool> = (1..=self.len())
            .map(|i| i <= started && self.is_running(i))
            .collect();
        let mut votes = std::collections::BTreeMap::<u64, usize>::new();
        for r in replies.iter().flatten().filter(|r| r.leader_id != 0) {
            *votes.entry(r.leader_id).or_default() += 1;
        }
        let quorum = self.len() / 2 + 1;
        votes
            .into_iter()
            .find(|&(id, n)| {
                n >= quorum && (1..=alive.len() as u64).contains(&id) && alive[id as usize - 1]
            })
            .map(|(id, _)| id as usize)
    }

    /// Waits until a majority agrees on a leader.
    pub async fn wait_leader(&mut self, within: Duration) -> anyhow::Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(leader) = self.leader().await {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                bail!(
                    "no leader agreed by a majority after {within:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a majority agrees on a leader other than `old` (after
    /// cutting `old` off, say).
    pub async fn wait_leader_change(
        &mut self,
        old: usize,
        within: Duration,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + within;
        loop {
            match self.leader().await {
                Some(leader) if leader != old => return Ok(leader),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!(
                    "node {old} still leads, or no leader, after {within:?}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until a leader is known and, in the leader's own view, at least
    /// `n_voters` members are voters; returns the leader's reply.
    pub async fn wait_members(
        &mut self,
        n_voters: usize,
        within: Duration,
    ) -> anyhow::Result<MembersReply> {
        let deadline = Instant::now() + within;
        let mut last;
        loop {
            match self.leader_view().await {
                Some(reply) => {
                    let voters = reply.members.iter().filter(|m| m.voter).count();
                    if voters >= n_voters {
                        return Ok(reply);
                    }
                    last = format!("{reply:?}");
                }
                None => last = "no leader known".into(),
            }
            if Instant::now() > deadline {
                bail!(
                    "{n_voters} voters not seen after {within:?}; last: {last}\n{}",
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `Members` as answered by the node that says it leads.
    async fn leader_view(&mut self) -> Option<MembersReply> {
        let replies = self.all_members().await;
        replies
            .into_iter()
            .flatten()
            .find(|r| r.leader_id != 0 && r.leader_id == r.responder_id)
    }

    /// Waits until the leader counts node `i` as a voter; fails early with
    /// its log if node `i` exits.
    async fn wait_voter(&mut self, i: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.node_mut(i).exit_status() {
                bail!(
                    "node {i} exited with {status}; its log:\n{}",
                    self.log_text(i)
                );
            }
            if let Some(view) = self.leader_view().await {
                if view
                    .members
                    .iter()
                    .any(|m| m.node_id == i as u64 && m.voter)
                {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!("node {i} not a voter after {within:?}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL node `i`: a crash, no shutdown path runs.
    pub fn kill9(&mut self, i: usize) -> anyhow::Result<()> {
        self.node_mut(i).kill9()
    }

    /// Node `i`'s own word that it leads: its id and current term, read
    /// before it is killed or cut off, for [`ControllerCluster::wait_successor`].
    pub async fn leader_record(&self, i: usize) -> anyhow::Result<FormerLeader> {
        let view = self.members(i).await?;
        anyhow::ensure!(
            view.responder_id == i as u64 && view.leader_id == i as u64,
            "node {i} does not say it leads: {view:?}"
        );
        Ok(FormerLeader {
            id: i,
            term: view.term,
        })
    }

    /// SIGKILLs node `i` and checks that it is really gone: the process that
    /// ran it no longer exists and its endpoint no longer answers `Members`.
    pub async fn kill9_and_check_gone(&mut self, i: usize) -> anyhow::Result<()> {
        let pid = self
            .pid(i)
            .with_context(|| format!("node {i} is not running"))?;
        self.kill9(i)?;
        // Gone, or at most a zombie (`kill9` reaps it, so normally gone).
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(") ")?.1.chars().next());
        anyhow::ensure!(
            matches!(state, None | Some('Z') | Some('X')),
            "node {i} (pid {pid}) still runs after SIGKILL (state {state:?})"
        );
        if let Ok(view) = self.members(i).await {
            bail!("node {i} still answers after SIGKILL: {view:?}");
        }
        Ok(())
    }

    /// Waits until a majority names a running leader other than `former`
    /// and that node, asked itself, says it leads in a term later than
    /// `former`'s: a new election took place, the old leader is not counted.
    pub async fn wait_successor(
        &mut self,
        former: FormerLeader,
        within: Duration,
    ) -> anyhow::Result<usize> {
        let deadline = Instant::now() + within;
        let mut last = String::from("no leader agreed by a majority");
        loop {
            if let Some(leader) = self.leader().await {
                match self.members(leader).await {
                    Ok(view)
                        if leader != former.id
                            && view.responder_id == leader as u64
                            && view.leader_id == leader as u64
                            && view.term > former.term =>
                    {
                        return Ok(leader);
                    }
                    Ok(view) => last = format!("node {leader} agreed as leader; its view {view:?}"),
                    Err(e) => last = format!("node {leader} agreed as leader but: {e:#}"),
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "no successor to node {} (term {}) after {within:?}; last: {last}\n{}",
                    former.id,
                    former.term,
                    self.logs()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills node `i` if running and starts it again on its data.
    pub fn restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.node_mut(i).restart()
    }

    /// Kills node `i`, deletes its data and starts it again with `--join`
    /// listing every other node, as a replacement machine would.
    pub fn wipe_and_restart(&mut self, i: usize) -> anyhow::Result<()> {
        self.kill9(i)?;
        let data = self.data_dir(i);
        if data.exists() {
            std::fs::remove_dir_all(&data)
                .with_context(|| format!("removing {}", data.display()))?;
        }
        let others: Vec<String> = (1..=self.len())
            .filter(|&j| j != i)
            .map(|j| self.endpoint(j))
            .collect();
        let node = self.node_mut(i);
        node.spec_mut().join = others;
        node.start()
    }

    /// Kills every node.
    pub fn stop_all(&mut self) -> anyhow::Result<()> {
        for i in 1..=self.len() {
            self.kill9(i)?;
        }
        Ok(())
    }

    /// Starts every node that is not running, on its data.
    pub fn start_all(&mut self) -> anyhow::Result<()> {
        for i in 1..=self.len() {
            if !self.is_running(i) {
                self.node_mut(i).start()?;
            }
        }
        Ok(())
    }
}

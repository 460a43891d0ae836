//! One node on real parts for end-to-end tests: an in-process controller,
//! an agent (in this process or a real `orca-agent` process) on real
//! containerd and runc, a network namespace, veth and address per task on a
//! bridge of the test's own (198.18.S.0/24), images pulled from a local
//! `docker-registry` on 127.0.0.1 holding a busybox image built by the test.
//! Under CI=true a missing prerequisite fails the test; elsewhere `start`
//! answers None after saying why.
//!
//! `assert_clean` checks that nothing of the node's tasks remains; `finish`
//! (or Drop, after a failure) removes everything the node created.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use orca_agent::{AgentConfig, NetworkKind, RunningAgent};
use orca_runtime::containerd::{
    ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
};
use orca_tests::agents::{ecs, test_agent_config, wait_for_instances, AgentProcess};
use orca_tests::containerd::{containerd_socket, unique_namespace};
use orca_tests::controller::InProcessController;
use orca_tests::netns::{lease_subnet, SubnetLease};
use orca_tests::registry::{build_busybox_oci_archive, tools_available, TestRegistry};
use serde_json::{json, Value};

use crate::support::{register, Client};

const WAIT: Duration = Duration::from_secs(60);

/// Where the node's agent runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// In this process, on the node's runtime object.
    InProcess,
    /// A real `orca-agent` process, which a test can SIGKILL.
    Process,
}

enum Agent {
    InProcess(RunningAgent),
    Process(AgentProcess),
}

pub struct Node {
    /// Held: the controller runs as long as the node.
    pub controller: InProcessController,
    agent: Option<Agent>,
    /// What the agent was started with (the containerd socket, for cleanup).
    pub agent_config: AgentConfig,
    /// `finish` ran: Drop has nothing left to clean.
    pub finished: bool,
    /// The in-process agent's runtime; with an agent process, a runtime of
    /// the test's own (its own state directory) to look at containerd.
    pub runtime: Arc<ContainerdRuntime>,
    pub client: Client,
    pub image: String,
    pub namespace: String,
    pub bridge: String,
    pub netns_prefix: String,
    pub data_dir: tempfile::TempDir,
    pub _registry: TestRegistry,
    pub _lease: SubnetLease,
}

impl Node {
    /// Everything for one scenario, or None (after saying why) where the
    /// prerequisites are missing outside CI.
    pub async fn start(name: &str) -> anyhow::Result<Option<Node>> {
        Self::start_with(name, AgentKind::InProcess).await
    }

    pub async fn start_with(name: &str, kind: AgentKind) -> anyhow::Result<Option<Node>> {
        Self::start_configured(name, kind, |_| {}).await
    }

    /// As [`Node::start_with`], with the controller's settings adjusted by
    /// `configure` (services' timers, liveness).
    pub async fn start_configured(
        name: &str,
        kind: AgentKind,
        configure: impl FnOnce(&mut orca_controller::Config),
    ) -> anyhow::Result<Option<Node>> {
        Self::start_full(name, kind, configure, |_, _| {}).await
    }

    /// As [`Node::start_with`], with the agent's settings adjusted by
    /// `configure` (given the node's data directory: host volume paths).
    pub async fn start_agent_configured(
        name: &str,
        kind: AgentKind,
        configure: impl FnOnce(&mut AgentConfig, &std::path::Path),
    ) -> anyhow::Result<Option<Node>> {
        Self::start_full(name, kind, |_| {}, configure).await
    }

    async fn start_full(
        name: &str,
        kind: AgentKind,
        configure: impl FnOnce(&mut orca_controller::Config),
        configure_agent: impl FnOnce(&mut AgentConfig, &std::path::Path),
    ) -> anyhow::Result<Option<Node>> {
        let Some(socket) = containerd_socket()? else {
            return Ok(None);
        };
        if !tools_available()? || !orca_tests::netns::require_root()? {
            return Ok(None);
        }
        let registry = TestRegistry::start()?;
        let work = tempfile::tempdir()?;
        let archive = build_busybox_oci_archive(work.path())?;
        let image = registry.push(&archive, "orca/busybox:1")?;
        let namespace = unique_namespace(name);
        let netns_prefix = format!("orca-{namespace}");
        // A bridge name (at most 15 bytes) of this test's own.
        let bridge = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            namespace.hash(&mut h);
            format!("oe{:08x}", h.finish() as u32)
        };
        let lease = lease_subnet(&bridge, &netns_prefix)?;
        let registries = RegistriesConfig {
            hosts: [(
                registry.host(),
                RegistryHostConfig {
                    insecure: true,
                    ..RegistryHostConfig::default()
                },
            )]
            .into(),
        };
        let data_dir = tempfile::tempdir()?;
        let log_driver = orca_tests::bin_path("orca-log-driver")?;
        let runtime = Arc::new(
            ContainerdRuntime::connect(ContainerdConfig {
                socket: socket.clone(),
                namespace: namespace.clone(),
                registries: registries.clone(),
                state_dir: data_dir.path().join(match kind {
                    AgentKind::InProcess => "runtime",
                    AgentKind::Process => "observer",
                }),
                log_driver: Some(log_driver.clone()),
            })
            .await?,
        );
        let controller = InProcessController::start_with(configure).await?;
        let mut config: AgentConfig = test_agent_config(&controller.endpoint(), data_dir.path());
        config.network = NetworkKind::Netns;
        config.containerd_socket = socket;
        config.containerd_namespace = namespace.clone();
        config.bridge = bridge.clone();
        config.task_subnet = Some(lease.cidr());
        config.registries = registries;
        config.log_driver = Some(log_driver);
        configure_agent(&mut config, data_dir.path());
        let agent = match kind {
            AgentKind::InProcess => Agent::InProcess(orca_agent::start(
                config.clone(),
                runtime.clone(),
                "containerd".to_string(),
            )),
            AgentKind::Process => Agent::Process(AgentProcess::spawn(
                &config,
                &data_dir.path().join("agent-process"),
            )?),
        };
        let mut client = controller.client().await?;
        if let Err(e) = wait_for_instances(&mut client, "default", 1, WAIT).await {
            let log = match &agent {
                Agent::Process(p) => p.log_text(),
                Agent::InProcess(_) => String::new(),
            };
            return Err(e.context(format!("agent log:\n{log}")));
        }
        Ok(Some(Node {
            controller,
            agent: Some(agent),
            agent_config: config,
            finished: false,
            runtime,
            client,
            image,
            namespace,
            bridge,
            netns_prefix,
            data_dir,
            _registry: registry,
            _lease: lease,
        }))
    }

    /// The controller's API address, for the `orca` binary.
    pub fn endpoint(&self) -> String {
        self.controller.endpoint()
    }

    /// SIGKILLs a container's process behind orca's back, as an operator
    /// (or the kernel) would, through containerd.
    pub async fn kill_container(&self, runtime_id: &str) -> anyhow::Result<()> {
        use containerd_client::services::v1::KillRequest;
        let ctrd = orca_runtime::containerd::client::Ctrd::connect(
            &self.agent_config.containerd_socket,
            &self.namespace,
        )
        .await?;
        ctrd.tasks()
            .kill(ctrd.req(KillRequest {
                container_id: runtime_id.to_string(),
                exec_id: String::new(),
                signal: 9,
                all: true,
            }))
            .await
            .with_context(|| format!("killing {runtime_id} through containerd"))?;
        Ok(())
    }

    pub fn container(&self, name: &str, script: &str) -> Value {
        json!({"name": name, "image": self.image, "memory": 64, "command": ["sh", "-c", script]})
    }

    /// Registers a whole task definition.
    pub async fn register_definition(&mut self, td: Value) {
        register(&mut self.client, &td.to_string())
            .await
            .expect("register");
    }

    pub async fn register(&mut self, family: &str, containers: Vec<Value>) {
        let td = json!({"family": family, "containerDefinitions": containers});
        register(&mut self.client, &td.to_string())
            .await
            .expect("register");
    }

    pub async fn run(&mut self, input: Value) -> String {
        let out = ecs(&mut self.client, "RunTask", input)
            .await
            .expect("run-task");
        out["tasks"][0]["taskArn"]
            .as_str()
            .unwrap_or_else(|| panic!("no task: {out:#}"))
            .to_string()
    }

    pub fn log(&self, task: &Value, container: &str) -> String {
        let id = task["taskArn"]
            .as_str()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default();
        let path: PathBuf = self
            .data_dir
            .path()
            .join("tasks")
            .join(id)
            .join(format!("{container}.log"));
        // What the container printed (the file's records parsed).
        orca_runtime::log_format::output_text(&std::fs::read(&path).unwrap_or_default())
    }

    /// Nothing of this node's tasks is left on the machine.
    pub async fn assert_clean(&self) {
        let leftover_ns: Vec<String> = std::fs::read_dir("/run/netns")
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default();
        let leftover_ns: Vec<_> = leftover_ns
            .into_iter()
            .filter(|n| n.starts_with(&self.netns_prefix))
            .collect();
        assert!(leftover_ns.is_empty(), "namespaces left: {leftover_ns:?}");
        // The kernel removes a deleted namespace's veth pair asynchronously
        // (milliseconds, longer under load): wait for it with a deadline.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let ports: Vec<String> =
                std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge))
                    .map(|d| {
                        d.flatten()
                            .map(|e| e.file_name().to_string_lossy().into_owned())
                            .collect()
                    })
                    .unwrap_or_default();
            if ports.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "veths left on {}: {ports:?}",
                self.bridge
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let listed = self.runtime_list().await;
        assert!(listed.is_empty(), "containers left: {listed:?}");
        let snapshots = self.runtime.snapshot_keys().await.unwrap_or_default();
        let task_snapshots: Vec<_> = snapshots
            .iter()
            .filter(|k| k.len() > 32 && k.as_bytes()[32] == b'-')
            .collect();
        assert!(
            task_snapshots.is_empty(),
            "container snapshots left: {task_snapshots:?}"
        );
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let stray: Vec<&str> = mounts
            .lines()
            .filter(|l| l.contains(&self.namespace))
            .collect();
        assert!(stray.is_empty(), "mounts left: {stray:?}");
        // Task volumes and /etc files go with their task; nothing of the
        // agent's data directory stays mounted.
        let data = self.data_dir.path();
        for dir in ["volumes/tasks", "task-files"] {
            let left: Vec<String> = std::fs::read_dir(data.join(dir))
                .map(|d| {
                    d.flatten()
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .collect()
                })
                .unwrap_or_default();
            assert!(left.is_empty(), "{dir} left: {left:?}");
        }
        let data_text = data.display().to_string();
        let under_data: Vec<&str> = mounts.lines().filter(|l| l.contains(&data_text)).collect();
        assert!(
            under_data.is_empty(),
            "mounts of the data dir left: {under_data:?}"
        );
    }

    pub async fn runtime_list(&self) -> Vec<String> {
        use orca_runtime::ContainerRuntime;
        self.runtime
            .list()
            .await
            .map(|l| l.into_iter().map(|c| c.id).collect())
            .unwrap_or_default()
    }

    /// The agent process (the node must have been started with one).
    pub fn agent_process(&mut self) -> &mut AgentProcess {
        match &mut self.agent {
            Some(Agent::Process(p)) => p,
            _ => panic!("this node's agent is not a process"),
        }
    }

    /// The host pid of the container's init and whether containerd reports
    /// its task running.
    pub async fn container_pid(&self, runtime_id: &str) -> anyhow::Result<(u32, bool)> {
        use containerd_client::services::v1::GetRequest;
        use containerd_client::types::v1::Status;
        let ctrd = orca_runtime::containerd::client::Ctrd::connect(
            &self.agent_config.containerd_socket,
            &self.namespace,
        )
        .await?;
        let process = ctrd
            .tasks()
            .get(ctrd.req(GetRequest {
                container_id: runtime_id.to_string(),
                exec_id: String::new(),
            }))
            .await
            .with_context(|| format!("containerd task of {runtime_id}"))?
            .into_inner()
            .process
            .with_context(|| format!("no process for {runtime_id}"))?;
        Ok((process.pid, process.status == Status::Running as i32))
    }

    pub async fn finish(mut self) {
        match self.agent.take() {
            Some(Agent::InProcess(agent)) => {
                agent.shutdown.cancel();
                let _ = agent.handle.await;
            }
            Some(Agent::Process(mut p)) => {
                let _ = p.kill9();
            }
            None => {}
        }
        let _ = self.runtime.purge_namespace().await;
        for ns in orca_net::netns::list_namespaces(&self.netns_prefix).unwrap_or_default() {
            let _ = orca_net::netns::delete_namespace(&ns);
        }
        let _ = orca_net::netns::remove_bridge(&self.bridge).await;
        self.finished = true;
    }
}

impl Drop for Node {
    /// A scenario that failed half-way still leaves nothing behind: its
    /// containers, images and namespace in containerd, its network
    /// namespaces and its bridge are removed from a thread with a runtime of
    /// its own (the test's runtime is unwinding).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        match self.agent.take() {
            Some(Agent::InProcess(agent)) => {
                agent.shutdown.cancel();
                agent.handle.abort();
            }
            // Killed by its PID on drop.
            Some(Agent::Process(p)) => drop(p),
            None => {}
        }
        orca_tests::containerd::purge_node_blocking(orca_tests::containerd::NodeLeftovers {
            socket: self.agent_config.containerd_socket.clone(),
            namespace: self.namespace.clone(),
            netns_prefix: self.netns_prefix.clone(),
            bridge: self.bridge.clone(),
            state_dir: self.data_dir.path().join("cleanup"),
        });
    }
}

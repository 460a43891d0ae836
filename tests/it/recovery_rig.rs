//! The rig for the agent recovery tests: a controller in this process, a
//! real `orca-agent` process (which a test SIGKILLs, or arms with a crash
//! point), real containerd (the machine's, or a containerd of the test's
//! own that the test restarts), a bridge and subnet of the test's own, a
//! local registry with a busybox image. `assert_clean` checks that nothing
//! of the rig's tasks is left: containers, container root filesystems,
//! namespaces, veths, addresses in the IPAM file, mounts.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_agent::{AgentConfig, NetworkKind};
use orca_runtime::containerd::{
    ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
};
use orca_runtime::{ContainerRuntime, ProcessState};
use orca_tests::agents::{
    ecs, test_agent_config, wait_for_instances, wait_running, wait_stopped, AgentProcess,
};
use orca_tests::containerd::{containerd_socket, unique_namespace, PrivateContainerd};
use orca_tests::controller::InProcessController;
use orca_tests::netns::{lease_subnet, SubnetLease};
use orca_tests::registry::{build_busybox_oci_archive, tools_available, TestRegistry};
use serde_json::{json, Value};

use crate::support::{register, Client};

pub const WAIT: Duration = Duration::from_secs(60);

/// How a rig starts.
#[derive(Default)]
pub struct RigOptions {
    /// A containerd of the test's own instead of the machine's.
    pub private_containerd: bool,
    /// `ORCA_AGENT_CRASH_AT` for the agent's first start.
    pub crash_at: Option<&'static str>,
    /// Changes to the agent's config.
    pub adjust: Option<fn(&mut AgentConfig)>,
}

pub struct Rig {
    _controller: InProcessController,
    pub agent: AgentProcess,
    pub config: AgentConfig,
    /// A runtime of the test's own on the agent's namespace, to look.
    pub observer: Arc<ContainerdRuntime>,
    pub client: Client,
    pub image: String,
    pub registry: TestRegistry,
    pub namespace: String,
    pub bridge: String,
    pub netns_prefix: String,
    pub data_dir: tempfile::TempDir,
    pub containerd: Option<PrivateContainerd>,
    /// Where `archive` (the busybox image) is.
    _work: tempfile::TempDir,
    pub archive: PathBuf,
    finished: bool,
    _lease: SubnetLease,
}

async fn observer(config: &AgentConfig, state_dir: &Path) -> anyhow::Result<ContainerdRuntime> {
    Ok(ContainerdRuntime::connect(ContainerdConfig {
        socket: config.containerd_socket.clone(),
        namespace: config.containerd_namespace.clone(),
        registries: config.registries.clone(),
        state_dir: state_dir.to_path_buf(),
        log_driver: None,
    })
    .await?)
}

impl Rig {
    /// Everything for one scenario, or None (after saying why) where the
    /// prerequisites are missing outside CI.
    pub async fn start(name: &str, options: RigOptions) -> anyhow::Result<Option<Rig>> {
        let Some(machine_socket) = containerd_socket()? else {
            return Ok(None);
        };
        if !tools_available()? || !orca_tests::netns::require_root()? {
            return Ok(None);
        }
        let containerd = if options.private_containerd {
            Some(PrivateContainerd::start()?)
        } else {
            None
        };
        let socket = containerd
            .as_ref()
            .map_or(machine_socket, PrivateContainerd::socket);
        let registry = TestRegistry::start()?;
        let work = tempfile::tempdir()?;
        let archive = build_busybox_oci_archive(work.path())?;
        let image = registry.push(&archive, "orca/busybox:1")?;
        let namespace = unique_namespace(name);
        let netns_prefix = format!("orca-{namespace}");
        let bridge = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            namespace.hash(&mut h);
            format!("or{:08x}", h.finish() as u32)
        };
        let lease = lease_subnet(&bridge, &netns_prefix)?;
        let data_dir = tempfile::tempdir()?;
        let controller = InProcessController::start().await?;
        let mut config = test_agent_config(&controller.endpoint(), data_dir.path());
        config.network = NetworkKind::Netns;
        config.containerd_socket = socket;
        config.containerd_namespace = namespace.clone();
        config.bridge = bridge.clone();
        config.task_subnet = Some(lease.cidr());
        config.registries = RegistriesConfig {
            hosts: [(
                registry.host(),
                RegistryHostConfig {
                    insecure: true,
                    ..RegistryHostConfig::default()
                },
            )]
            .into(),
        };
        config.log_driver = Some(orca_tests::bin_path("orca-log-driver")?);
        if let Some(adjust) = options.adjust {
            adjust(&mut config);
        }
        let env: Vec<(&str, &str)> = options
            .crash_at
            .map(|p| vec![(orca_agent::crash::ENV, p)])
            .unwrap_or_default();
        let agent =
            AgentProcess::spawn_with_env(&config, &data_dir.path().join("agent-process"), &env)?;
        let observer = Arc::new(observer(&config, &data_dir.path().join("observer")).await?);
        let client = controller.client().await?;
        let mut rig = Rig {
            _controller: controller,
            agent,
            config,
            observer,
            client,
            image,
            registry,
            namespace,
            bridge,
            netns_prefix,
            data_dir,
            containerd,
            _work: work,
            archive,
            finished: false,
            _lease: lease,
        };
        if options.crash_at.is_none() {
            rig.wait_connected().await?;
        }
        Ok(Some(rig))
    }

    /// Waits until the agent's instance is connected.
    pub async fn wait_connected(&mut self) -> anyhow::Result<()> {
        if let Err(e) = wait_for_instances(&mut self.client, "default", 1, WAIT).await {
            return Err(e.context(format!("agent log:\n{}", self.agent.log_text())));
        }
        Ok(())
    }

    /// A new look at containerd (after it restarted).
    pub async fn reconnect_observer(&mut self) -> anyhow::Result<()> {
        let dir = self.data_dir.path().join(format!(
            "observer-{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_nanos()
        ));
        self.observer = Arc::new(observer(&self.config, &dir).await?);
        Ok(())
    }

    pub fn container(&self, name: &str, script: &str) -> Value {
        json!({"name": name, "image": self.image, "memory": 64, "stopTimeout": 10,
               "command": ["sh", "-c", script]})
    }

    pub async fn register(&mut self, family: &str, containers: Vec<Value>) {
        let td = json!({"family": family, "containerDefinitions": containers});
        register(&mut self.client, &td.to_string())
            .await
            .expect("register");
    }

    pub async fn run(&mut self, family: &str) -> String {
        let out = ecs(
            &mut self.client,
            "RunTask",
            json!({"taskDefinition": family}),
        )
        .await
        .expect("run-task");
        out["tasks"][0]["taskArn"]
            .as_str()
            .unwrap_or_else(|| panic!("no task: {out:#}"))
            .to_string()
    }

    pub async fn stop_task(&mut self, arn: &str, reason: &str) {
        ecs(
            &mut self.client,
            "StopTask",
            json!({"task": arn, "reason": reason}),
        )
        .await
        .expect("stop-task");
    }

    pub async fn describe(&mut self, arn: &str) -> Value {
        let d = ecs(&mut self.client, "DescribeTasks", json!({"tasks": [arn]}))
            .await
            .expect("describe");
        d["tasks"][0].clone()
    }

    pub async fn running(&mut self, arn: &str) -> Value {
        let t = wait_running(&mut self.client, "default", arn, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\nagent log:\n{}", self.agent.log_text()));
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        t
    }

    pub async fn stopped(&mut self, arn: &str) -> Value {
        wait_stopped(&mut self.client, "default", arn, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{e:#}\nagent log:\n{}", self.agent.log_text()))
    }

    /// What `container` of task `arn` printed (its log file's records
    /// parsed).
    pub fn log(&self, arn: &str, container: &str) -> String {
        let id = task_id(arn);
        let bytes = std::fs::read(
            self.data_dir
                .path()
                .join("tasks")
                .join(id)
                .join(format!("{container}.log")),
        )
        .unwrap_or_default();
        orca_runtime::log_format::output_text(&bytes)
    }

    /// Waits until the container's log says `word`.
    pub async fn wait_log(&self, arn: &str, container: &str, word: &str) {
        let deadline = Instant::now() + WAIT;
        while !self.log(arn, container).contains(word) {
            assert!(
                Instant::now() < deadline,
                "{arn}/{container} never said {word:?}: {:?}",
                self.log(arn, container)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The containerd state of a container.
    pub async fn state(&self, runtime_id: &str) -> Option<ProcessState> {
        self.observer
            .list()
            .await
            .expect("list containers")
            .into_iter()
            .find(|c| c.id == runtime_id)
            .map(|c| c.state)
    }

    /// The IPAM file's allocations (task ids).
    pub fn allocations(&self) -> Vec<String> {
        let path = self.data_dir.path().join("network/ipam.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            return Vec::new();
        };
        let v: Value = serde_json::from_str(&text).unwrap_or_default();
        v["allocations"]
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    pub fn namespaces(&self) -> Vec<String> {
        orca_net::netns::list_namespaces(&self.netns_prefix).unwrap_or_default()
    }

    /// The agent log since `from` (a length of an earlier read).
    pub fn agent_log_since(&self, from: usize) -> String {
        self.agent
            .log_text()
            .get(from..)
            .unwrap_or_default()
            .to_string()
    }

    /// Nothing of the rig's tasks is left, waiting up to a deadline for the
    /// agent to finish what it is doing.
    pub async fn assert_clean(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let leftovers = self.leftovers().await;
            if leftovers.is_empty() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "left over after {WAIT:?}: {leftovers:#?}\nagent log:\n{}",
                self.agent.log_text()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn leftovers(&self) -> Vec<String> {
        let mut out = Vec::new();
        for ns in self.namespaces() {
            out.push(format!("namespace {ns}"));
        }
        if let Ok(d) = std::fs::read_dir(format!("/sys/class/net/{}/brif", self.bridge)) {
            for e in d.flatten() {
                out.push(format!("veth {}", e.file_name().to_string_lossy()));
            }
        }
        for a in self.allocations() {
            out.push(format!("address of {a}"));
        }
        match self.observer.list().await {
            Ok(list) => out.extend(list.into_iter().map(|c| format!("container {}", c.id))),
            Err(e) => out.push(format!("containerd: {e}")),
        }
        for k in self.observer.snapshot_keys().await.unwrap_or_default() {
            if k.len() > 32 && k.as_bytes()[32] == b'-' {
                out.push(format!("rootfs snapshot {k}"));
            }
        }
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        for l in mounts.lines().filter(|l| l.contains(&self.namespace)) {
            out.push(format!("mount {l}"));
        }
        out
    }

    pub async fn finish(mut self) {
        let _ = self.agent.kill9();
        let _ = self.observer.purge_namespace().await;
        for ns in self.namespaces() {
            let _ = orca_net::netns::delete_namespace(&ns);
        }
        let _ = orca_net::netns::remove_bridge(&self.bridge).await;
        self.finished = true;
    }
}

impl Drop for Rig {
    /// A scenario that failed half-way still leaves nothing behind (from a
    /// thread with a runtime of its own: the test's is unwinding).
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let _ = self.agent.kill9();
        orca_tests::containerd::purge_node_blocking(orca_tests::containerd::NodeLeftovers {
            socket: self.config.containerd_socket.clone(),
            namespace: self.namespace.clone(),
            netns_prefix: self.netns_prefix.clone(),
            bridge: self.bridge.clone(),
            state_dir: self.data_dir.path().join("cleanup"),
        });
    }
}

/// A task's id (the last part of its ARN).
pub fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or_default()
}

/// The runtime id of a task's container.
pub fn runtime_id(task: &Value, container: &str) -> String {
    orca_tests::agents::container_named(task, container)["runtimeId"]
        .as_str()
        .unwrap_or_else(|| panic!("no runtime id: {task:#}"))
        .to_string()
}

/// The host pid of a running container's init.
pub async fn pid_of(rig: &Rig, runtime_id: &str) -> anyhow::Result<u32> {
    match rig.state(runtime_id).await {
        Some(ProcessState::Running { pid }) => Ok(pid),
        other => anyhow::bail!("{runtime_id} is not running: {other:?}"),
    }
}

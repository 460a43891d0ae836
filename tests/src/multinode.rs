//! Several real agents, each in a test host of a [`TestNet`] with its own
//! bridge, task subnet and containerd namespace (on the machine's
//! containerd), and one in-process controller listening on the machine's
//! address in that net: a small fleet on one machine, for the network
//! tests and benchmarks.
//!
//! Agents inside a host cannot reach the test registry on the machine's
//! loopback: the image is pulled into each agent's containerd namespace
//! from the machine first, and the agent finds it present. Agents run as
//! `orca-agent` processes (so a test can SIGKILL one) with egress on and
//! the overlay mode each test chooses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context;
use orca_agent::{AgentConfig, NetworkKind, OverlayChoice};
use orca_api::v1::ecs_client::EcsClient;
use orca_runtime::containerd::{
    ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
};
use orca_runtime::ContainerRuntime;
use serde_json::{json, Value};
use tonic::transport::Channel;

use crate::agents::{agent_config_toml, ecs, test_agent_config};
use crate::containerd::{containerd_socket, unique_namespace};
use crate::controller::InProcessController;
use crate::netns::{lease_subnet, netns_available, SubnetLease, TestNet};
use crate::registry::{build_busybox_oci_archive, tools_available, TestRegistry};

const WAIT: Duration = Duration::from_secs(60);

/// One agent in test host `host`.
pub struct HostAgent {
    pub host: usize,
    pub namespace: String,
    pub bridge: String,
    pub netns_prefix: String,
    /// Its task subnet (`198.18.T.0/24`).
    pub subnet: String,
    pub config: AgentConfig,
    pub config_path: PathBuf,
    pub log: PathBuf,
    pub pid: Option<u32>,
    pub instance_arn: String,
    /// The agent's containerd namespace seen from the machine.
    pub observer: ContainerdRuntime,
    _lease: SubnetLease,
}

/// A controller and one agent per host of `net`.
pub struct MultiNode {
    pub controller: InProcessController,
    pub client: EcsClient<Channel>,
    pub image: String,
    pub agents: Vec<HostAgent>,
    /// Dropped after the agents' processes (fields drop in order).
    pub net: TestNet,
    _registry: TestRegistry,
    work: tempfile::TempDir,
    /// Set by [`MultiNode::clean`]; otherwise (a failed test) Drop purges.
    cleaned: bool,
}

impl Drop for MultiNode {
    fn drop(&mut self) {
        if self.cleaned {
            return;
        }
        for i in 1..=self.agents.len() {
            let _ = self.kill_agent(i);
        }
        for agent in &self.agents {
            crate::containerd::purge_node_blocking(crate::containerd::NodeLeftovers {
                socket: agent.config.containerd_socket.clone(),
                namespace: agent.namespace.clone(),
                netns_prefix: agent.netns_prefix.clone(),
                bridge: agent.bridge.clone(),
                state_dir: self.work.path().join(format!("purge-{}", agent.host)),
            });
        }
    }
}

impl MultiNode {
    /// Everything up, or None where prerequisites are missing outside CI
    /// (under CI=true that is an error). `configure_agent` adjusts host
    /// `i`'s agent (1-based) before it starts.
    pub async fn start(
        name: &str,
        net: impl FnOnce() -> anyhow::Result<TestNet>,
        configure_controller: impl FnOnce(&mut orca_controller::Config),
        configure_agent: impl Fn(usize, &mut AgentConfig),
    ) -> anyhow::Result<Option<MultiNode>> {
        let Some(socket) = containerd_socket()? else {
            return Ok(None);
        };
        if !tools_available()? || !netns_available()? {
            return Ok(None);
        }
        let net = net()?;
        let registry = TestRegistry::start()?;
        let work = tempfile::tempdir()?;
        let archive = build_busybox_oci_archive(work.path())?;
        let image = registry.push(&archive, "orca/busybox:1")?;
        let listen = std::net::SocketAddr::new(net.host_addr().into(), 0);
        let controller = InProcessController::start_with(|c| {
            c.listen = listen;
            configure_controller(c);
        })
        .await?;
        let client = controller.client().await?;
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
        let mut me = MultiNode {
            controller,
            client,
            image,
            agents: Vec::new(),
            net,
            _registry: registry,
            work,
            cleaned: false,
        };
        for i in 1..=me.net.len() {
            let agent = me
                .prepare_agent(name, i, &socket, &registries, &configure_agent)
                .await?;
            me.agents.push(agent);
            me.start_agent(i)?;
        }
        me.wait_registered().await?;
        Ok(Some(me))
    }

    async fn prepare_agent(
        &self,
        name: &str,
        i: usize,
        socket: &Path,
        registries: &RegistriesConfig,
        configure: &impl Fn(usize, &mut AgentConfig),
    ) -> anyhow::Result<HostAgent> {
        let namespace = unique_namespace(&format!("{name}{i}"));
        let netns_prefix = format!("orca-{namespace}");
        let bridge: String = format!("om{}{i}", std::process::id() % 1_000_000)
            .chars()
            .take(15)
            .collect();
        let lease = lease_subnet(&bridge, &netns_prefix)?;
        let dir = self.work.path().join(format!("agent-{i}"));
        std::fs::create_dir_all(&dir)?;
        let observer = ContainerdRuntime::connect(ContainerdConfig {
            socket: socket.to_path_buf(),
            namespace: namespace.clone(),
            registries: registries.clone(),
            state_dir: dir.join("observer"),
            log_driver: None,
        })
        .await?;
        observer.ensure_image(&self.image, None).await?;
        let endpoint = self.controller.endpoint();
        let mut config = test_agent_config(&endpoint, &dir.join("data"));
        config.network = NetworkKind::Netns;
        config.containerd_socket = socket.to_path_buf();
        config.containerd_namespace = namespace.clone();
        config.bridge = bridge.clone();
        config.task_subnet = Some(lease.cidr());
        config.registries = registries.clone();
        config.log_driver = Some(crate::bin_path("orca-log-driver")?);
        // A host of its own: egress and the overlay as on a real node.
        config.egress = true;
        config.overlay = OverlayChoice::Vxlan;
        // The node API on the host's own address, for the controller on
        // the machine to dial.
        config.api_listen = std::net::SocketAddr::from(([0, 0, 0, 0], 0));
        configure(i, &mut config);
        let config_path = dir.join("agent.toml");
        std::fs::write(&config_path, agent_config_toml(&config)?)?;
        Ok(HostAgent {
            host: i,
            namespace,
            bridge,
            netns_prefix,
            subnet: lease.cidr(),
            config,
            config_path,
            log: dir.join("agent.log"),
            pid: None,
            instance_arn: String::new(),
            observer,
            _lease: lease,
        })
    }

    /// Starts host `i`'s agent process (again, after [`MultiNode::kill_agent`]).
    pub fn start_agent(&mut self, i: usize) -> anyhow::Result<()> {
        let agent = &self.agents[i - 1];
        anyhow::ensure!(agent.pid.is_none(), "agent {i} already runs");
        let mut cmd = Command::new(crate::bin_path("orca-agent")?);
        cmd.arg("--config")
            .arg(&agent.config_path)
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,hickory_server=warn");
        let pid = self.net.spawn_in(i, &cmd, Some(&agent.log))?;
        self.agents[i - 1].pid = Some(pid);
        Ok(())
    }

    /// SIGKILLs host `i`'s agent (its containers keep running).
    pub fn kill_agent(&mut self, i: usize) -> anyhow::Result<()> {
        if let Some(pid) = self.agents[i - 1].pid.take() {
            self.net.kill(pid)?;
        }
        Ok(())
    }

    /// Host `i`'s agent log.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.agents[i - 1].log).unwrap_or_default()
    }

    /// Waits until every agent's instance is registered and connected;
    /// records each one's ARN (matched by task subnet).
    pub async fn wait_registered(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + WAIT;
        loop {
            let listed = ecs(&mut self.client, "ListContainerInstances", json!({})).await?;
            let arns = listed["containerInstanceArns"].clone();
            let described = if arns.as_array().is_some_and(|a| !a.is_empty()) {
                ecs(
                    &mut self.client,
                    "DescribeContainerInstances",
                    json!({"containerInstances": arns}),
                )
                .await?
            } else {
                json!({"containerInstances": []})
            };
            let instances = described["containerInstances"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let mut all = true;
            for agent in &mut self.agents {
                let found = instances.iter().find(|i| {
                    attribute(i, "orca.task-subnet") == Some(agent.subnet.as_str())
                        && i["agentConnected"] == true
                });
                match found {
                    Some(i) => {
                        agent.instance_arn = i["containerInstanceArn"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string();
                    }
                    None => all = false,
                }
            }
            if all {
                return Ok(());
            }
            if Instant::now() > deadline {
                let logs: Vec<String> = (1..=self.agents.len())
                    .map(|i| format!("agent {i}:\n{}", self.log(i)))
                    .collect();
                anyhow::bail!(
                    "agents not all connected within {WAIT:?}: {described:#}\n{}",
                    logs.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs one task of `family` on host `i`'s instance; returns its ARN.
    pub async fn run_on(&mut self, i: usize, family: &str) -> anyhow::Result<String> {
        let instance = self.agents[i - 1].instance_arn.clone();
        let out = ecs(
            &mut self.client,
            "StartTask",
            json!({"taskDefinition": family, "containerInstances": [instance]}),
        )
        .await?;
        out["tasks"][0]["taskArn"]
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("StartTask on host {i}: {out:#}"))
    }

    /// Waits until the task is RUNNING; returns its description.
    pub async fn wait_running(&mut self, task: &str) -> anyhow::Result<Value> {
        crate::agents::wait_running(&mut self.client, "default", task, WAIT).await
    }

    /// The network namespace a task's containers joined, on host `i`.
    pub fn task_netns(&self, i: usize, task: &Value) -> PathBuf {
        let id = task["taskArn"]
            .as_str()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default();
        orca_net::netns::netns_path(&format!("{}-{id}", self.agents[i - 1].netns_prefix))
    }

    /// Everything host `i` holds of orca's node-level state, one line per
    /// item, for cleanliness checks: task namespaces, orca's routes, the
    /// VXLAN device, ORCA chains.
    pub fn host_leftovers(&self, i: usize) -> Vec<String> {
        let agent = &self.agents[i - 1];
        let mut left: Vec<String> = orca_net::netns::list_namespaces(&agent.netns_prefix)
            .unwrap_or_default()
            .into_iter()
            .map(|n| format!("netns {n}"))
            .collect();
        let text = |cmd: &mut Command| {
            self.net
                .run_in(i, cmd)
                .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
                .unwrap_or_default()
        };
        let routes = text(Command::new("ip").args(["route", "show", "proto", "190"]));
        left.extend(routes.lines().map(|l| format!("route {l}")));
        let device = &agent.config.vxlan_device;
        let link = text(Command::new("ip").args(["-o", "link", "show", device]));
        left.extend(link.lines().map(|l| format!("link {l}")));
        let rules = text(&mut Command::new("iptables-save"));
        left.extend(
            rules
                .lines()
                .filter(|l| l.contains("ORCA-EGR") || l.contains("ORCA-DNAT"))
                .map(|l| format!("rule {l}")),
        );
        left
    }

    /// Stops every agent, then removes their containers, images, task
    /// namespaces (the hosts' own go with the TestNet). Returns what could
    /// not be removed.
    pub async fn clean(mut self) -> Vec<String> {
        self.cleaned = true;
        let mut problems = Vec::new();
        for i in 1..=self.agents.len() {
            if let Err(e) = self.kill_agent(i) {
                problems.push(format!("kill agent {i}: {e}"));
            }
        }
        for agent in &self.agents {
            // A container killed just now may hold its snapshot a while
            // longer (its shim unmounting): try again for up to ~30 s (CI
            // saw 10 s fall short on a loaded machine).
            let mut tries = 0;
            while let Err(e) = agent.observer.purge_namespace().await {
                tries += 1;
                if tries == 15 {
                    problems.push(format!("purge {}: {e}", agent.namespace));
                    break;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            for ns in orca_net::netns::list_namespaces(&agent.netns_prefix).unwrap_or_default() {
                if let Err(e) = orca_net::netns::delete_namespace(&ns) {
                    problems.push(format!("delete netns {ns}: {e}"));
                }
            }
        }
        problems
    }
}

/// The value of a container instance's attribute `name`.
pub fn attribute<'a>(instance: &'a Value, name: &str) -> Option<&'a str> {
    instance["attributes"]
        .as_array()?
        .iter()
        .find(|a| a["name"] == name)?
        .get("value")?
        .as_str()
}

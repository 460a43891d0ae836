//! The orca side: one real `orca-controller` listening on the bridge of a
//! three-host [`TestNet`]; one real `orca-agent` on the machine (cluster
//! `default`, scenarios 1, 2, 3 and 5) and one in each test host's network
//! namespace (cluster `bench-cut`, scenario 4), every agent on the machine's
//! containerd in a containerd namespace of its own, with the busybox image
//! pulled from the loopback registry beforehand (as Swarm gets it loaded).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orca_agent::AgentConfig;
use orca_runtime::containerd::{
    ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
};
use orca_runtime::{ContainerRuntime, ProcessState};
use orca_tests::agents::{agent_config_toml, ecs, AgentProcess, Client};
use orca_tests::controller::{ControllerProcess, ControllerSpec};
use orca_tests::netns::{lease_subnet, SubnetLease, TestNet};
use serde_json::{json, Value};

use crate::util::{cut_from_machine, reconnect_to_machine, sigkill};

pub const FAMILY: &str = "bench-svc";
pub const CUT_CLUSTER: &str = "bench-cut";
/// A container that exits at once on SIGTERM (so stops take no grace).
pub const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";
const POLL: Duration = Duration::from_millis(10);
const WAIT: Duration = Duration::from_secs(120);
const TASK_LABEL: &str = "orca.task-arn";

/// One agent and what the benchmark keeps to observe and clean it.
pub struct Agent {
    /// `Some` for the machine's agent (an [`AgentProcess`]).
    process: Option<AgentProcess>,
    /// For agents in a test host: the host index and the pid TestNet gave.
    host: Option<(usize, u32)>,
    pub namespace: String,
    bridge: String,
    /// Sees the agent's containers in containerd; purges them at the end.
    pub observer: ContainerdRuntime,
    pub instance: String,
    dir: PathBuf,
    _lease: SubnetLease,
}

pub struct Orca {
    pub net: TestNet,
    pub controller: ControllerProcess,
    pub client: Client,
    pub endpoint: SocketAddr,
    pub main: Option<Agent>,
    pub cut_agents: Vec<Agent>,
    pub images: [String; 2],
    socket: PathBuf,
    work: PathBuf,
    registries: RegistriesConfig,
    seen: BTreeSet<String>,
}

/// A free port on `ip`.
fn free_port_on(ip: std::net::Ipv4Addr) -> anyhow::Result<SocketAddr> {
    let l = std::net::TcpListener::bind((ip, 0))?;
    Ok(l.local_addr()?)
}

pub fn task_definition(image: &str) -> Value {
    json!({"family": FAMILY, "containerDefinitions": [
        {"name": "app", "image": image, "cpu": 16, "memory": 32,
         "command": ["sh", "-c", SCRIPT]}]})
}

impl Orca {
    /// Starts the controller (with `extra_args`), registers both revisions
    /// and starts the machine's agent. `images`: the two registry refs.
    pub async fn start(
        work: &Path,
        socket: &Path,
        registry_host: &str,
        images: [String; 2],
    ) -> anyhow::Result<Orca> {
        let net = TestNet::new(3)?;
        let endpoint = free_port_on(net.host_addr())?;
        let controller_dir = work.join("controller");
        std::fs::create_dir_all(&controller_dir)?;
        let mut controller = ControllerProcess::spawn_with(ControllerSpec {
            data_dir: controller_dir,
            listen: Some(endpoint),
            ..ControllerSpec::default()
        })?;
        let mut client = controller.wait_ready(Duration::from_secs(30)).await?;
        client
            .create_cluster(orca_api::v1::CreateClusterRequest {
                cluster_name: CUT_CLUSTER.into(),
                ..Default::default()
            })
            .await
            .map_err(|s| orca_api::error::from_status(&s))?;
        for image in &images {
            client
                .register_task_definition(orca_api::v1::RegisterTaskDefinitionRequest {
                    input_json: task_definition(image).to_string(),
                    registered_by: String::new(),
                })
                .await
                .map_err(|s| orca_api::error::from_status(&s))?;
        }
        let mut registries = RegistriesConfig::default();
        registries.hosts.insert(
            registry_host.to_string(),
            RegistryHostConfig {
                insecure: true,
                ..Default::default()
            },
        );
        let mut me = Orca {
            net,
            controller,
            client,
            endpoint,
            main: None,
            cut_agents: Vec::new(),
            images,
            socket: socket.to_path_buf(),
            work: work.to_path_buf(),
            registries,
            seen: BTreeSet::new(),
        };
        let main = me.start_agent("main", None).await?;
        me.main = Some(main);
        Ok(me)
    }

    /// The agent configuration a user would write: the defaults, but for
    /// where things are and an explicit size.
    fn agent_config(
        &self,
        namespace: &str,
        bridge: &str,
        subnet: &str,
        dir: &Path,
        cluster: &str,
    ) -> AgentConfig {
        AgentConfig {
            endpoints: vec![self.endpoint.to_string()],
            cluster: cluster.to_string(),
            containerd_socket: self.socket.clone(),
            containerd_namespace: namespace.to_string(),
            data_dir: dir.to_path_buf(),
            bridge: bridge.to_string(),
            task_subnet: Some(subnet.to_string()),
            registries: self.registries.clone(),
            cpu_units: Some(8192),
            memory_mib: Some(8192),
            log_driver: orca_tests::bin_path("orca-log-driver").ok(),
            // Several agents may share the machine's namespace.
            api_listen: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
            ..AgentConfig::default()
        }
    }

    /// Starts an agent: on the machine (`host` None, cluster `default`) or
    /// in test host `host` (cluster `bench-cut`); waits for its instance.
    async fn start_agent(&mut self, name: &str, host: Option<usize>) -> anyhow::Result<Agent> {
        let namespace = orca_tests::containerd::unique_namespace(&format!("svc-{name}"));
        let bridge = format!("os{}{name}", std::process::id() % 100_000);
        let bridge: String = bridge.chars().take(15).collect();
        let lease = lease_subnet(&bridge, &format!("orca-{namespace}"))?;
        let dir = self.work.join(format!("agent-{name}"));
        std::fs::create_dir_all(&dir)?;
        let observer = ContainerdRuntime::connect(ContainerdConfig {
            socket: self.socket.clone(),
            namespace: namespace.clone(),
            registries: self.registries.clone(),
            state_dir: dir.join("observer"),
            log_driver: None,
        })
        .await?;
        // The image is present before the agent needs it, as for Swarm.
        for image in &self.images {
            observer.ensure_image(image, None).await?;
        }
        let cluster = if host.is_some() {
            CUT_CLUSTER
        } else {
            "default"
        };
        let config = self.agent_config(&namespace, &bridge, &lease.cidr(), &dir, cluster);
        let (process, host) = match host {
            None => (Some(AgentProcess::spawn(&config, &dir)?), None),
            Some(i) => {
                let path = dir.join("agent.toml");
                std::fs::write(&path, agent_config_toml(&config)?)?;
                let mut cmd = Command::new(orca_tests::bin_path("orca-agent")?);
                cmd.arg("--config")
                    .arg(&path)
                    .env("NO_COLOR", "1")
                    .env("RUST_LOG", "info");
                let pid = self.net.spawn_in(i, &cmd, Some(&dir.join("agent.log")))?;
                (None, Some((i, pid)))
            }
        };
        let mut agent = Agent {
            process,
            host,
            namespace,
            bridge,
            observer,
            instance: String::new(),
            dir,
            _lease: lease,
        };
        agent.instance = self.wait_new_instance(cluster, &agent).await?;
        self.seen.insert(agent.instance.clone());
        Ok(agent)
    }

    /// Starts one agent in each of the three test hosts (scenario 4).
    pub async fn start_cut_agents(&mut self) -> anyhow::Result<()> {
        for i in 1..=3 {
            let agent = self.start_agent(&format!("h{i}"), Some(i)).await?;
            self.cut_agents.push(agent);
        }
        Ok(())
    }

    async fn wait_new_instance(&mut self, cluster: &str, agent: &Agent) -> anyhow::Result<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let listed = ecs(
                &mut self.client,
                "ListContainerInstances",
                json!({"cluster": cluster}),
            )
            .await?;
            let fresh: Vec<String> = listed["containerInstanceArns"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|a| a.as_str())
                .filter(|a| !self.seen.contains(*a))
                .map(str::to_string)
                .collect();
            for arn in fresh {
                let d = ecs(
                    &mut self.client,
                    "DescribeContainerInstances",
                    json!({"cluster": cluster, "containerInstances": [arn]}),
                )
                .await?;
                if d["containerInstances"][0]["agentConnected"] == true {
                    return Ok(arn);
                }
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "agent {} did not connect within 60 s; its log:\n{}",
                agent.namespace,
                std::fs::read_to_string(agent.dir.join("agent.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The service's tasks wanted RUNNING, described.
    pub async fn service_tasks(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> anyhow::Result<Vec<Value>> {
        let listed = ecs(
            &mut self.client,
            "ListTasks",
            json!({"cluster": cluster, "serviceName": service}),
        )
        .await?;
        let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
        if arns.is_empty() {
            return Ok(Vec::new());
        }
        let d = ecs(
            &mut self.client,
            "DescribeTasks",
            json!({"cluster": cluster, "tasks": arns}),
        )
        .await?;
        Ok(d["tasks"].as_array().cloned().unwrap_or_default())
    }

    pub async fn describe_service(
        &mut self,
        cluster: &str,
        service: &str,
    ) -> anyhow::Result<Value> {
        let d = ecs(
            &mut self.client,
            "DescribeServices",
            json!({"cluster": cluster, "services": [service]}),
        )
        .await?;
        Ok(d["services"][0].clone())
    }

    async fn create_service(
        &mut self,
        cluster: &str,
        name: &str,
        count: u32,
        spread: bool,
    ) -> anyhow::Result<()> {
        let mut input = json!({"cluster": cluster, "serviceName": name,
            "taskDefinition": format!("{FAMILY}:1"), "desiredCount": count,
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}});
        if spread {
            input["placementStrategy"] = json!([{"type": "spread", "field": "instanceId"}]);
        }
        ecs(&mut self.client, "CreateService", input).await?;
        Ok(())
    }

    /// Waits until `count` tasks of the service are RUNNING and `also`
    /// holds for them; returns them.
    async fn wait_running(
        &mut self,
        cluster: &str,
        service: &str,
        count: usize,
        also: impl Fn(&[&Value]) -> bool,
    ) -> anyhow::Result<Vec<Value>> {
        let deadline = Instant::now() + WAIT;
        loop {
            let tasks = self.service_tasks(cluster, service).await?;
            let running: Vec<&Value> = tasks
                .iter()
                .filter(|t| t["lastStatus"] == "RUNNING")
                .collect();
            if running.len() >= count && also(&running) {
                return Ok(running.into_iter().cloned().collect());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "service {service}: {count} tasks not RUNNING within {WAIT:?}: {:#}",
                Value::from(tasks.clone())
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Deletes the service (force) and waits until none of its tasks runs.
    pub async fn delete_service(&mut self, cluster: &str, name: &str) -> anyhow::Result<()> {
        ecs(
            &mut self.client,
            "DeleteService",
            json!({"cluster": cluster, "service": name, "force": true}),
        )
        .await?;
        let deadline = Instant::now() + WAIT;
        loop {
            let tasks = self.service_tasks(cluster, name).await?;
            if tasks.iter().all(|t| t["lastStatus"] == "STOPPED") {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "service {name}: tasks still not stopped {WAIT:?} after delete"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Scenario 1: create-service (3 replicas) → 3 tasks RUNNING; and, when
    /// `steady` says so, → the service's "has reached a steady state." event.
    pub async fn create_to_running(
        &mut self,
        name: &str,
        steady: bool,
    ) -> anyhow::Result<(Duration, Option<Duration>)> {
        let t0 = Instant::now();
        self.create_service("default", name, 3, false).await?;
        self.wait_running("default", name, 3, |_| true).await?;
        let running = t0.elapsed();
        let mut steady_at = None;
        if steady {
            let deadline = Instant::now() + WAIT;
            loop {
                let s = self.describe_service("default", name).await?;
                let reached = s["events"].as_array().into_iter().flatten().any(|e| {
                    e["message"]
                        .as_str()
                        .is_some_and(|m| m.ends_with("has reached a steady state."))
                });
                if reached {
                    steady_at = Some(t0.elapsed());
                    break;
                }
                anyhow::ensure!(
                    Instant::now() < deadline,
                    "no steady-state event within {WAIT:?}: {s:#}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok((running, steady_at))
    }

    /// The pid of the running container of `task_arn` on the main agent.
    async fn container_pid(&self, task_arn: &str) -> anyhow::Result<u32> {
        let main = self.main.as_ref().context("the main agent")?;
        for c in main.observer.list().await? {
            if c.labels.get(TASK_LABEL).map(String::as_str) == Some(task_arn) {
                if let ProcessState::Running { pid } = c.state {
                    return Ok(pid);
                }
            }
        }
        anyhow::bail!("no running container for {task_arn}")
    }

    /// Scenario 2: SIGKILL of one task's container process → a replacement
    /// task RUNNING (3 RUNNING again, the killed one not among them).
    pub async fn kill_to_replacement(&mut self, name: &str) -> anyhow::Result<Duration> {
        let running = self.wait_running("default", name, 3, |_| true).await?;
        let victim = running[0]["taskArn"]
            .as_str()
            .context("taskArn")?
            .to_string();
        let pid = self.container_pid(&victim).await?;
        let t0 = Instant::now();
        sigkill(pid)?;
        self.wait_running("default", name, 3, |r| {
            r.iter().all(|t| t["taskArn"] != victim.as_str())
        })
        .await?;
        Ok(t0.elapsed())
    }

    pub async fn create_plain(&mut self, name: &str, count: u32) -> anyhow::Result<()> {
        self.create_service("default", name, count, false).await?;
        self.wait_running("default", name, count as usize, |_| true)
            .await?;
        Ok(())
    }

    /// Scenario 3: a service of 10 at revision 1 (its first deployment
    /// COMPLETED), then update-service to revision 2 at 50/200 → that
    /// deployment COMPLETED.
    pub async fn rolling_update(&mut self, name: &str) -> anyhow::Result<Duration> {
        self.create_plain(name, 10).await?;
        self.wait_deployment(name, ":1").await?;
        let t0 = Instant::now();
        ecs(
            &mut self.client,
            "UpdateService",
            json!({"service": name, "taskDefinition": format!("{FAMILY}:2"),
                   "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}}),
        )
        .await?;
        self.wait_deployment(name, ":2").await?;
        Ok(t0.elapsed())
    }

    /// Waits until the service has one deployment, of a task definition
    /// ending in `revision`, COMPLETED, with all its tasks running.
    async fn wait_deployment(&mut self, name: &str, revision: &str) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let s = self.describe_service("default", name).await?;
            let deployments = s["deployments"].as_array().cloned().unwrap_or_default();
            if deployments.len() == 1
                && deployments[0]["rolloutState"] == "COMPLETED"
                && deployments[0]["taskDefinition"]
                    .as_str()
                    .is_some_and(|t| t.ends_with(revision))
                && s["runningCount"] == s["desiredCount"]
            {
                return Ok(());
            }
            anyhow::ensure!(
                !deployments.iter().any(|d| d["rolloutState"] == "FAILED"),
                "deployment failed: {s:#}"
            );
            anyhow::ensure!(
                Instant::now() < deadline,
                "deployment {revision} not COMPLETED in 300 s: {s:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Scenario 5: SIGKILL of the main agent and an immediate restart; after
    /// `settle` (longer than loss detection), the same task ARNs RUNNING and
    /// the same containers running with the same pids.
    pub async fn agent_restart(
        &mut self,
        name: &str,
        settle: Duration,
    ) -> anyhow::Result<RestartCheck> {
        let before_tasks: BTreeSet<String> = self
            .wait_running("default", name, 3, |_| true)
            .await?
            .iter()
            .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
            .collect();
        let main = self.main.as_mut().context("the main agent")?;
        let pids = |list: Vec<orca_runtime::ContainerListing>| -> BTreeMap<String, u32> {
            list.into_iter()
                .filter_map(|c| match c.state {
                    ProcessState::Running { pid } => Some((c.id, pid)),
                    _ => None,
                })
                .collect()
        };
        let before_pids = pids(main.observer.list().await?);
        let process = main.process.as_mut().context("the main agent process")?;
        let t0 = Instant::now();
        process.kill9()?;
        process.start()?;
        let restarted = t0.elapsed();
        tokio::time::sleep(settle).await;
        let main = self.main.as_mut().context("the main agent")?;
        anyhow::ensure!(
            main.process.as_mut().is_some_and(AgentProcess::is_running),
            "the restarted agent exited; its log:\n{}",
            main.process
                .as_ref()
                .map(AgentProcess::log_text)
                .unwrap_or_default()
        );
        let after_pids = pids(main.observer.list().await?);
        let instance = main.instance.clone();
        let connected = ecs(
            &mut self.client,
            "DescribeContainerInstances",
            json!({"containerInstances": [instance]}),
        )
        .await?["containerInstances"][0]["agentConnected"]
            == true;
        let after: Vec<Value> = self.service_tasks("default", name).await?;
        let after_running: BTreeSet<String> = after
            .iter()
            .filter(|t| t["lastStatus"] == "RUNNING")
            .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
            .collect();
        let service = self.describe_service("default", name).await?;
        Ok(RestartCheck {
            restarted,
            connected,
            tasks_before: before_tasks.len(),
            tasks_kept: before_tasks.intersection(&after_running).count(),
            tasks_new: after_running.difference(&before_tasks).count(),
            containers_before: before_pids.len(),
            same_pid: before_pids
                .iter()
                .filter(|(id, pid)| after_pids.get(*id) == Some(pid))
                .count(),
            running_count: service["runningCount"].as_u64().unwrap_or(0),
        })
    }

    /// Scenario 4, one trial: a service of 3 spread over the three test
    /// hosts' agents; host `k` is cut off from the controller → 3 tasks
    /// RUNNING on the other two. Heals and removes the service afterwards.
    pub async fn node_cut_trial(&mut self, trial: usize, k: usize) -> anyhow::Result<Duration> {
        let name = format!("cut-{trial}");
        let cut_instance = self.cut_agents[k - 1].instance.clone();
        self.create_service(CUT_CLUSTER, &name, 3, true).await?;
        self.wait_running(CUT_CLUSTER, &name, 3, |r| {
            let on: BTreeSet<&str> = r
                .iter()
                .filter_map(|t| t["containerInstanceArn"].as_str())
                .collect();
            on.len() == 3
        })
        .await?;
        cut_from_machine(&self.net, k)?;
        let t0 = Instant::now();
        let measured = self
            .wait_running(CUT_CLUSTER, &name, 3, |r| {
                r.iter()
                    .filter(|t| t["containerInstanceArn"] != cut_instance.as_str())
                    .count()
                    >= 3
            })
            .await;
        let elapsed = t0.elapsed();
        reconnect_to_machine(&self.net, k)?;
        measured?;
        // Healed: the agent reconnects and stops the lost task's container.
        let deadline = Instant::now() + WAIT;
        loop {
            let d = ecs(
                &mut self.client,
                "DescribeContainerInstances",
                json!({"cluster": CUT_CLUSTER, "containerInstances": [cut_instance]}),
            )
            .await?;
            let running = self.cut_agents[k - 1]
                .observer
                .list()
                .await?
                .iter()
                .filter(|c| c.is_running())
                .count();
            if d["containerInstances"][0]["agentConnected"] == true && running == 0 {
                break;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "host {k}'s agent not back (connected, stale container stopped) within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.delete_service(CUT_CLUSTER, &name).await?;
        Ok(elapsed)
    }

    /// Restarts the controller with `extra_args` on the same data
    /// directory; waits until it answers and every agent is connected.
    pub async fn restart_controller(&mut self, extra_args: &[&str]) -> anyhow::Result<()> {
        self.controller.spec_mut().extra_args = extra_args.iter().map(|s| s.to_string()).collect();
        self.controller.restart()?;
        self.client = self.controller.wait_ready(Duration::from_secs(30)).await?;
        let main = self
            .main
            .as_ref()
            .context("the main agent")?
            .instance
            .clone();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let d = ecs(
                &mut self.client,
                "DescribeContainerInstances",
                json!({"containerInstances": [main]}),
            )
            .await?;
            if d["containerInstances"][0]["agentConnected"] == true {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the agent did not reconnect after the controller restart"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops everything: agents, their containers, namespaces and bridges,
    /// the controller; the TestNet goes when dropped.
    pub async fn clean(mut self) -> Vec<String> {
        let mut problems = Vec::new();
        let mut agents: Vec<Agent> = self.cut_agents.drain(..).collect();
        agents.extend(self.main.take());
        for mut agent in agents {
            if let Some(mut p) = agent.process.take() {
                let _ = p.kill9();
            }
            if let Some((_, pid)) = agent.host.take() {
                let _ = self.net.kill(pid);
            }
            if let Err(e) = agent.observer.purge_namespace().await {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e2) = agent.observer.purge_namespace().await {
                    problems.push(format!(
                        "purge containerd namespace {}: {e}; again: {e2}",
                        agent.namespace
                    ));
                }
            }
            let prefix = format!("orca-{}", agent.namespace);
            for ns in orca_net::netns::list_namespaces(&prefix).unwrap_or_default() {
                if let Err(e) = orca_net::netns::delete_namespace(&ns) {
                    problems.push(format!("delete netns {ns}: {e}"));
                }
            }
            // The machine agent's bridge; a host agent's went with its host.
            if Path::new("/sys/class/net").join(&agent.bridge).exists() {
                if let Err(e) = orca_net::netns::remove_bridge(&agent.bridge).await {
                    problems.push(format!("remove bridge {}: {e}", agent.bridge));
                }
            }
        }
        let _ = self.controller.kill9();
        problems
    }
}

/// What scenario 5 found.
pub struct RestartCheck {
    /// From the SIGKILL to the new process spawned.
    pub restarted: Duration,
    pub connected: bool,
    pub tasks_before: usize,
    /// Of the tasks RUNNING before, how many are RUNNING after.
    pub tasks_kept: usize,
    /// RUNNING tasks that were not there before (replacements).
    pub tasks_new: usize,
    pub containers_before: usize,
    /// Containers running after with the pid they had before.
    pub same_pid: usize,
    pub running_count: u64,
}

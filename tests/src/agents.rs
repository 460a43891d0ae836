//! Agents for tests: in-process agents over the fake runtime and fake
//! network (no root, no containerd) or over real containerd, and a client
//! for the ECS task calls, whose input and output are ECS's JSON.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_agent::{AgentConfig, NetworkKind, RunningAgent};
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::EcsJsonRequest;
use orca_core::ApiError;
use orca_runtime::fake::FakeRuntime;
use orca_runtime::{ContainerRuntime, ImageConfig};
use serde_json::Value;
use tonic::transport::Channel;

/// An ECS API client.
pub type Client = EcsClient<Channel>;

/// The image the fake runtime knows (a "busybox" whose config runs `sh`).
pub const FAKE_IMAGE: &str = "registry.test/busybox:1";

/// An agent in this process on the fake runtime and fake network.
pub struct FakeNode {
    pub agent: RunningAgent,
    pub runtime: FakeRuntime,
    pub data_dir: tempfile::TempDir,
}

/// The agent settings tests use: quick heartbeats, a small node.
pub fn test_agent_config(endpoint: &str, data_dir: &Path) -> AgentConfig {
    AgentConfig {
        endpoints: vec![endpoint.to_string()],
        data_dir: data_dir.to_path_buf(),
        network: NetworkKind::Fake,
        cpu_units: Some(2048),
        memory_mib: Some(1024),
        heartbeat_interval: Duration::from_millis(500),
        report_batch_window: Duration::from_millis(5),
        default_stop_timeout: Duration::from_secs(5),
        relist_interval: Duration::from_millis(500),
        kill_resend_interval: Duration::from_secs(2),
        gc_interval: Duration::from_secs(2),
        task_log_retention: Duration::from_secs(3600),
        // Image collection only when a test asks for it.
        image_gc_high_threshold_percent: 100,
        image_gc_low_threshold_percent: 100,
        // Test agents share the machine's namespace: no NAT rules or
        // forwarding there, and no routes (rigs with hosts of their own
        // switch these on).
        egress: false,
        overlay: orca_agent::OverlayChoice::Off,
        // Names outside the cluster's namespace are refused rather than
        // relayed to the machine's resolvers: tests send nothing off the
        // machine (rigs that test relaying point this at their own).
        dns_upstreams: Some(Vec::new()),
        // Many test agents share a machine: each node API on a free port.
        api_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
        ..AgentConfig::default()
    }
}

impl FakeNode {
    pub async fn start(
        endpoint: &str,
        adjust: impl FnOnce(&mut AgentConfig),
    ) -> anyhow::Result<Self> {
        let data_dir = tempfile::tempdir()?;
        let mut config = test_agent_config(endpoint, data_dir.path());
        adjust(&mut config);
        let runtime = FakeRuntime::new();
        runtime.add_image(
            FAKE_IMAGE,
            ImageConfig {
                cmd: vec!["sh".to_string()],
                env: vec!["PATH=/bin".to_string()],
                ..ImageConfig::default()
            },
        );
        let shared: Arc<dyn ContainerRuntime> = Arc::new(runtime.clone());
        let agent = orca_agent::start(config, shared, "fake".to_string());
        Ok(FakeNode {
            agent,
            runtime,
            data_dir,
        })
    }

    pub async fn stop(self) {
        self.agent.shutdown.cancel();
        let _ = self.agent.handle.await;
    }
}

/// Calls one of the JSON ECS calls by name.
pub async fn ecs(
    client: &mut EcsClient<Channel>,
    operation: &str,
    input: Value,
) -> Result<Value, ApiError> {
    let request = EcsJsonRequest {
        input_json: input.to_string(),
    };
    let reply = match operation {
        "RunTask" => client.run_task(request).await,
        "StopTask" => client.stop_task(request).await,
        "DescribeTasks" => client.describe_tasks(request).await,
        "ListTasks" => client.list_tasks(request).await,
        "ListContainerInstances" => client.list_container_instances(request).await,
        "DescribeContainerInstances" => client.describe_container_instances(request).await,
        "PutAttributes" => client.put_attributes(request).await,
        "DeleteAttributes" => client.delete_attributes(request).await,
        "ListAttributes" => client.list_attributes(request).await,
        "UpdateContainerInstancesState" => client.update_container_instances_state(request).await,
        "DeregisterContainerInstance" => client.deregister_container_instance(request).await,
        "CreateService" => client.create_service(request).await,
        "UpdateService" => client.update_service(request).await,
        "DeleteService" => client.delete_service(request).await,
        "DescribeServices" => client.describe_services(request).await,
        "ListServices" => client.list_services(request).await,
        "StartTask" => client.start_task(request).await,
        "TagResource" => client.tag_resource(request).await,
        "UntagResource" => client.untag_resource(request).await,
        "ListTagsForResource" => client.list_tags_for_resource(request).await,
        other => panic!("no such call in tests: {other}"),
    }
    .map_err(|s| orca_api::error::from_status(&s))?;
    Ok(serde_json::from_str(&reply.into_inner().output_json).expect("the reply is JSON"))
}

/// Waits until `cluster` has `count` instances with connected agents.
pub async fn wait_for_instances(
    client: &mut EcsClient<Channel>,
    cluster: &str,
    count: usize,
    within: Duration,
) -> anyhow::Result<Vec<Value>> {
    let deadline = Instant::now() + within;
    loop {
        let listed = ecs(
            client,
            "ListContainerInstances",
            serde_json::json!({"cluster": cluster}),
        )
        .await?;
        let arns = listed["containerInstanceArns"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        if arns.len() >= count {
            let described = ecs(
                client,
                "DescribeContainerInstances",
                serde_json::json!({"cluster": cluster, "containerInstances": arns}),
            )
            .await?;
            let instances = described["containerInstances"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            if instances
                .iter()
                .filter(|i| i["agentConnected"] == true)
                .count()
                >= count
            {
                return Ok(instances);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{count} connected instances did not appear in {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Describes one task until `done` holds for it, returning it.
pub async fn wait_for_task(
    client: &mut EcsClient<Channel>,
    cluster: &str,
    task_arn: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    let mut last = Value::Null;
    loop {
        let d = ecs(
            client,
            "DescribeTasks",
            serde_json::json!({"cluster": cluster, "tasks": [task_arn]}),
        )
        .await?;
        if let Some(t) = d["tasks"].get(0) {
            if done(t) {
                return Ok(t.clone());
            }
            last = t.clone();
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "task {task_arn} did not get there in {within:?}; last seen: {last:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits for the task to be STOPPED.
pub async fn wait_stopped(
    client: &mut EcsClient<Channel>,
    cluster: &str,
    task_arn: &str,
    within: Duration,
) -> anyhow::Result<Value> {
    wait_for_task(client, cluster, task_arn, within, |t| {
        t["lastStatus"] == "STOPPED"
    })
    .await
}

/// Waits for the task to be RUNNING.
pub async fn wait_running(
    client: &mut EcsClient<Channel>,
    cluster: &str,
    task_arn: &str,
    within: Duration,
) -> anyhow::Result<Value> {
    wait_for_task(client, cluster, task_arn, within, |t| {
        t["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
    })
    .await
}

/// The container named `name` of a DescribeTasks task (panics naming the
/// task when there is none: a test failure).
pub fn container_named<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name} in {task:#}"))
}

/// A real `orca-agent` process on containerd, started from an
/// [`AgentConfig`] written out as its TOML config file: for tests that crash
/// the agent (SIGKILL by its PID, no shutdown path runs) and start it again
/// on the same data directory. Killed by its PID when dropped.
pub struct AgentProcess {
    child: Option<std::process::Child>,
    /// Extra environment for the next start (e.g. a crash point).
    env: Vec<(String, String)>,
    /// `<dir>/agent.toml`.
    config_path: std::path::PathBuf,
    /// `<dir>/agent.log`, appended to across restarts.
    log: std::path::PathBuf,
}

impl AgentProcess {
    /// Writes `config` to `<dir>/agent.toml` and starts the agent on it.
    pub fn spawn(config: &AgentConfig, dir: &Path) -> anyhow::Result<Self> {
        Self::spawn_with_env(config, dir, &[])
    }

    /// Like [`AgentProcess::spawn`], with `env` added to every start until
    /// [`AgentProcess::set_env`] changes it.
    pub fn spawn_with_env(
        config: &AgentConfig,
        dir: &Path,
        env: &[(&str, &str)],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir)?;
        let config_path = dir.join("agent.toml");
        std::fs::write(&config_path, agent_config_toml(config)?)?;
        let mut me = AgentProcess {
            child: None,
            env: Vec::new(),
            config_path,
            log: dir.join("agent.log"),
        };
        me.set_env(env);
        me.start()?;
        Ok(me)
    }

    /// The environment the next [`AgentProcess::start`] adds (replacing
    /// the last one): `ORCA_AGENT_CRASH_AT` arms a crash point.
    pub fn set_env(&mut self, env: &[(&str, &str)]) {
        self.env = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    }

    /// Waits up to `within` for the process to exit by itself (a crash
    /// point), reaping it; its exit status.
    pub fn wait_exit(&mut self, within: Duration) -> anyhow::Result<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            let Some(child) = self.child.as_mut() else {
                anyhow::bail!("the agent is not running");
            };
            if let Some(status) = child.try_wait()? {
                self.child = None;
                return Ok(status);
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the agent did not exit within {within:?}; its log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts the process (again, after [`AgentProcess::kill9`]); an error
    /// if it is running.
    pub fn start(&mut self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.is_running(), "the agent is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = std::process::Command::new(crate::bin_path("orca-agent")?)
            .arg("--config")
            .arg(&self.config_path)
            // Plain text, so the test can read the log.
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info,hickory_server=warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
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
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL by its PID, as a crash, and reaps it.
    pub fn kill9(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            // std's Child::kill sends SIGKILL to this child's pid.
            child.kill()?;
            child.wait()?;
        }
        Ok(())
    }

    /// Everything the agent logged, across restarts.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        let _ = self.kill9();
    }
}

/// `config` as the agent's TOML config file (see `orca_agent::AgentConfig`).
pub fn agent_config_toml(config: &AgentConfig) -> anyhow::Result<String> {
    use std::fmt::Write;
    // A JSON string is a valid TOML basic string.
    let q = |s: &str| serde_json::Value::from(s).to_string();
    let p = |path: &Path| -> anyhow::Result<String> {
        let s = path
            .to_str()
            .ok_or_else(|| anyhow::anyhow!("{} is not UTF-8", path.display()))?;
        Ok(q(s))
    };
    let mut t = String::new();
    let endpoints: Vec<String> = config.endpoints.iter().map(|e| q(e)).collect();
    writeln!(t, "endpoints = [{}]", endpoints.join(", "))?;
    writeln!(t, "cluster = {}", q(&config.cluster))?;
    writeln!(t, "containerd_socket = {}", p(&config.containerd_socket)?)?;
    writeln!(
        t,
        "containerd_namespace = {}",
        q(&config.containerd_namespace)
    )?;
    writeln!(t, "data_dir = {}", p(&config.data_dir)?)?;
    writeln!(t, "bridge = {}", q(&config.bridge))?;
    if let Some(subnet) = &config.task_subnet {
        writeln!(t, "task_subnet = {}", q(subnet))?;
    }
    let network = match config.network {
        NetworkKind::Netns => "netns",
        NetworkKind::Fake => "fake",
    };
    writeln!(t, "network = {}", q(network))?;
    if let Some(v) = config.cpu_units {
        writeln!(t, "cpu_units = {v}")?;
    }
    if let Some(v) = config.memory_mib {
        writeln!(t, "memory_mib = {v}")?;
    }
    writeln!(t, "reserved_memory_mib = {}", config.reserved_memory_mib)?;
    writeln!(
        t,
        "heartbeat_interval = {:?}",
        config.heartbeat_interval.as_secs_f64()
    )?;
    writeln!(
        t,
        "report_batch_window = {}",
        config.report_batch_window.as_millis()
    )?;
    writeln!(
        t,
        "default_stop_timeout = {:?}",
        config.default_stop_timeout.as_secs_f64()
    )?;
    for (key, d) in [
        ("relist_interval", config.relist_interval),
        ("kill_resend_interval", config.kill_resend_interval),
        ("gc_interval", config.gc_interval),
        ("task_log_retention", config.task_log_retention),
        ("image_gc_min_unused", config.image_gc_min_unused),
    ] {
        writeln!(t, "{key} = {:?}", d.as_secs_f64())?;
    }
    writeln!(
        t,
        "image_gc_high_threshold_percent = {}",
        config.image_gc_high_threshold_percent
    )?;
    writeln!(
        t,
        "image_gc_low_threshold_percent = {}",
        config.image_gc_low_threshold_percent
    )?;
    writeln!(t, "image_gc_disk_path = {}", p(&config.image_gc_disk_path)?)?;
    if let Some(driver) = &config.log_driver {
        writeln!(t, "log_driver = {}", p(driver)?)?;
    }
    let host_paths = config
        .host_volume_paths
        .iter()
        .map(|path| p(path))
        .collect::<anyhow::Result<Vec<String>>>()?;
    writeln!(t, "host_volume_paths = [{}]", host_paths.join(", "))?;
    if let Some(servers) = &config.dns_servers {
        let servers: Vec<String> = servers.iter().map(|s| q(&s.to_string())).collect();
        writeln!(t, "dns_servers = [{}]", servers.join(", "))?;
    }
    if let Some(listen) = config.dns_listen {
        writeln!(t, "dns_listen = {}", q(&listen.to_string()))?;
    }
    if let Some(upstreams) = &config.dns_upstreams {
        let upstreams: Vec<String> = upstreams.iter().map(|s| q(&s.to_string())).collect();
        writeln!(t, "dns_upstreams = [{}]", upstreams.join(", "))?;
    }
    writeln!(t, "egress = {}", config.egress)?;
    writeln!(t, "api_listen = {}", q(&config.api_listen.to_string()))?;
    let overlay = match config.overlay {
        orca_agent::OverlayChoice::Vxlan => "vxlan",
        orca_agent::OverlayChoice::HostGw => "host_gw",
        orca_agent::OverlayChoice::Off => "off",
    };
    writeln!(t, "overlay = {}", q(overlay))?;
    if let Some(a) = config.node_address {
        writeln!(t, "node_address = {}", q(&a.to_string()))?;
    }
    writeln!(t, "vxlan_device = {}", q(&config.vxlan_device))?;
    writeln!(t, "vxlan_vni = {}", config.vxlan_vni)?;
    writeln!(t, "vxlan_port = {}", config.vxlan_port)?;
    if let Some(m) = config.vxlan_mtu {
        writeln!(t, "vxlan_mtu = {m}")?;
    }
    writeln!(
        t,
        "overlay_resync_interval = {:?}",
        config.overlay_resync_interval.as_secs_f64()
    )?;
    if let Some(p) = config.max_restart_attempt_period {
        writeln!(t, "max_restart_attempt_period = {:?}", p.as_secs_f64())?;
    }
    writeln!(t, "[attributes]")?;
    for (k, v) in &config.attributes {
        writeln!(t, "{} = {}", q(k), q(v))?;
    }
    for (host, h) in &config.registries.hosts {
        anyhow::ensure!(
            h.auth.is_none(),
            "registry credentials are not written to test agent configs"
        );
        writeln!(t, "[registries.hosts.{}]", q(host))?;
        let mirrors: Vec<String> = h.mirrors.iter().map(|m| q(m)).collect();
        writeln!(t, "mirrors = [{}]", mirrors.join(", "))?;
        writeln!(t, "insecure = {}", h.insecure)?;
    }
    Ok(t)
}

/// Waits until `check` holds for DescribeContainerInstances of one instance.
pub async fn wait_instance(
    client: &mut EcsClient<Channel>,
    arn: &str,
    within: Duration,
    what: &str,
    check: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    let deadline = Instant::now() + within;
    loop {
        let described = ecs(
            client,
            "DescribeContainerInstances",
            serde_json::json!({"containerInstances": [arn]}),
        )
        .await?;
        let instance = described["containerInstances"][0].clone();
        if check(&instance) {
            return Ok(instance);
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "instance {arn}: not {what} within {within:?}: {instance:#}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_written_config_reads_back_as_the_agent_reads_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = test_agent_config("127.0.0.1:7470", &dir.path().join("da\"ta"));
        config.network = NetworkKind::Netns;
        config.task_subnet = Some("198.18.7.0/24".into());
        config.log_driver = Some("/opt/orca/orca-log-driver".into());
        config.attributes.insert("zone".into(), "a b".into());
        config.dns_listen = Some("127.0.0.1:5353".parse().expect("addr"));
        config.dns_upstreams = Some(vec!["10.0.0.2:53".parse().expect("addr")]);
        config.registries.hosts.insert(
            "127.0.0.1:5000".into(),
            orca_runtime::containerd::RegistryHostConfig {
                insecure: true,
                mirrors: vec!["127.0.0.1:5001".into()],
                ..Default::default()
            },
        );
        let path = dir.path().join("agent.toml");
        std::fs::write(&path, agent_config_toml(&config).expect("toml")).expect("write");
        let read = AgentConfig::from_file(&path).expect("the agent reads it");
        read.validate().expect("valid");
        assert_eq!(read.endpoints, config.endpoints);
        assert_eq!(read.data_dir, config.data_dir);
        assert_eq!(read.network, config.network);
        assert_eq!(read.task_subnet, config.task_subnet);
        assert_eq!(read.log_driver, config.log_driver);
        assert_eq!(read.attributes, config.attributes);
        assert_eq!(read.registries, config.registries);
        assert_eq!(read.cpu_units, config.cpu_units);
        assert_eq!(read.memory_mib, config.memory_mib);
        assert_eq!(read.egress, config.egress);
        assert_eq!(read.overlay, config.overlay);
        assert_eq!(read.node_address, config.node_address);
        assert_eq!(read.dns_listen, config.dns_listen);
        assert_eq!(read.dns_upstreams, config.dns_upstreams);
        assert_eq!(read.heartbeat_interval, config.heartbeat_interval);
        assert_eq!(read.report_batch_window, config.report_batch_window);
        assert_eq!(read.default_stop_timeout, config.default_stop_timeout);
        assert_eq!(read.containerd_namespace, config.containerd_namespace);
        assert_eq!(read.bridge, config.bridge);
        assert_eq!(read.relist_interval, config.relist_interval);
        assert_eq!(read.gc_interval, config.gc_interval);
        assert_eq!(read.task_log_retention, config.task_log_retention);
        assert_eq!(read.image_gc_min_unused, config.image_gc_min_unused);
        assert_eq!(
            read.image_gc_high_threshold_percent,
            config.image_gc_high_threshold_percent
        );
        assert_eq!(read.image_gc_disk_path, config.image_gc_disk_path);
    }
}

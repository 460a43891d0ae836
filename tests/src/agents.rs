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

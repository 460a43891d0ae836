//! The messages between an orca-agent and the controller (JSON inside
//! `proto/orca/v1/agent.proto`'s envelopes): registration, and the session's
//! heartbeats, assignments, state reports and acknowledgements.
//!
//! Assignments are levels, not edges: the leader sends the full list of
//! tasks the instance should hold whenever it changes, and on every new
//! session. Reports are levels too: each carries the complete agent-owned
//! state of one task, so the agent may coalesce several changes of a task
//! into its latest report, and a resent report is harmless.

use serde::{Deserialize, Serialize};

use crate::task::{ContainerStatus, HealthStatus, StopCode, TaskOverride, TaskStatus};
use crate::task_definition::{Attribute, TaskDefinition, Timestamp};

/// RegisterContainerInstance, sent by an agent when it starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub cluster: String,
    /// The ARN this agent registered as before (kept in its data dir), so a
    /// restarted agent is the same instance.
    #[serde(default)]
    pub container_instance_arn: Option<String>,
    /// The instance id the agent chose and saved before it first
    /// registered (32 lowercase hex digits). Registering again with it,
    /// after a crash that lost the reply, names the same instance, so a
    /// registration can never leave a ghost instance behind. Refused when
    /// it names a deregistered instance (the agent then chooses another).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<String>,
    pub hostname: String,
    /// Registered CPU units (1024 per core).
    pub cpu: u64,
    /// Registered memory in MiB.
    pub memory: u64,
    pub attributes: Vec<Attribute>,
    pub agent_version: String,
    pub runtime_version: String,
    /// The task subnet the agent is configured with; None asks the
    /// controller for one from the cluster's task CIDR.
    #[serde(default)]
    pub task_subnet: Option<String>,
    /// Host ports no task may take (ECS's registered PORTS resource: sshd,
    /// the agent's own listeners); both TCP and UDP.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved_ports: Vec<u16>,
    /// The node's address on the network between nodes (its `node_address`
    /// config, else its source address towards the controllers): where
    /// other nodes send traffic for this node's tasks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_address: Option<String>,
    /// Where the agent's node API (`orca.v1.Node`, `host:port`) answers:
    /// controllers dial it to read the node's task logs. None for agents
    /// older than the node API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_api_address: Option<String>,
    /// How this node wants its tasks reached from other nodes.
    #[serde(default)]
    pub overlay: OverlayMode,
}

/// Whether another node can send to `address` (not loopback, unspecified,
/// multicast or broadcast): the rule for a node address, checked by the
/// agent's config and again by the controller.
pub fn reachable_from_other_nodes(address: std::net::Ipv4Addr) -> bool {
    !(address.is_loopback()
        || address.is_unspecified()
        || address.is_multicast()
        || address.is_broadcast())
}

/// How a node's tasks are reached from other nodes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "camelCase")]
pub enum OverlayMode {
    /// A kernel VXLAN device with static forwarding entries: works over any
    /// routed network between nodes (the default).
    #[default]
    Vxlan,
    /// Plain routes through the peer's node address, used between two nodes
    /// that both ask for it and share a link.
    HostGw,
}

/// One node of the cluster in the leader's map: whose tasks live in
/// `subnet`, reached at `node_address`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeRoute {
    pub instance_id: String,
    pub subnet: String,
    /// None for agents that registered none (older agents): they get no
    /// route, and no one routes to them.
    #[serde(default)]
    pub node_address: Option<String>,
    #[serde(default)]
    pub overlay: OverlayMode,
}

/// The controller's answer to a registration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistrationReply {
    pub container_instance_arn: String,
    pub cluster_arn: String,
    /// The node's task subnet (CIDR), configured or handed out.
    pub task_subnet: String,
}

/// Agent → controller on the session stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum AgentMessage {
    /// The first message: which instance this session is.
    Open { container_instance_arn: String },
    /// Liveness; kept in the leader's memory only.
    Heartbeat,
    /// Task states, acknowledged by `seq` once committed.
    Reports {
        seq: u64,
        reports: Vec<TaskStateReport>,
    },
}

/// Controller → agent on the session stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum ControllerMessage {
    /// Every task the instance should hold (not yet reported STOPPED).
    Assignments { tasks: Vec<TaskAssignment> },
    /// The reports of batch `seq` are committed.
    Ack { seq: u64 },
    /// The session was refused (a malformed first message).
    Refused { reason: String },
    /// The controllers do not know this instance (their state was rebuilt
    /// without it): the agent registers again.
    UnknownInstance { container_instance_arn: String },
    /// Every registered (not deregistered) instance of the cluster with its
    /// task subnet and node address, this one included; sent when the
    /// session opens and whenever it changes. Disconnected and draining
    /// instances stay in it: their tasks may still run.
    NetMap { nodes: Vec<NodeRoute> },
    /// The cluster's service-discovery names as the leader sees them; sent
    /// when the session opens and whenever a name's answers change.
    Discovery {
        zone: crate::discovery::DiscoveryZone,
    },
}

/// One task the agent should hold, and whether it should run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskAssignment {
    pub task_arn: String,
    /// The last part of the ARN: names the namespace, containers, logs.
    pub task_id: String,
    pub desired_status: TaskStatus,
    pub task_definition: TaskDefinition,
    pub overrides: TaskOverride,
    /// Set once the controller asked the task to stop (StopTask).
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// The host ports the leader chose for the task's bridge and host mode
    /// port mappings; the agent publishes them, never picks them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<crate::task::HostPortBinding>,
    /// Set for a task whose service is discoverable by name: when the task
    /// is to stop while running, the agent reports DEACTIVATING and waits
    /// this long (the records' TTL and a margin, so no resolver still
    /// hands out its address) before any container gets SIGTERM.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deregistration_delay_ms: Option<u64>,
    /// The values of the containers' `secrets[]`, resolved and decrypted
    /// by the leader for this task only (sent while the task is to run).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub secrets: Vec<ContainerSecret>,
    /// Why the task's secrets could not be resolved (a missing secret or
    /// key): the agent stops the task with this reason instead of
    /// starting it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secrets_error: Option<String>,
    /// Whether the task's cluster allows privileged containers and added
    /// capabilities (`orca.privilegedContainers`) as the leader saw it
    /// when it sent this. The API refuses such definitions already; the
    /// agent checks again and fails a task that asks without this
    /// (an older leader never sets it: refused).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub privileges_allowed: bool,
}

/// One resolved `secrets[]` entry of one container.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerSecret {
    pub container: String,
    /// The entry's `name`: the environment variable (or file) it becomes.
    pub name: String,
    pub value: crate::secrets::SecretValue,
}

/// The complete agent-owned state of one task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskStateReport {
    pub task_arn: String,
    pub last_status: TaskStatus,
    pub containers: Vec<ContainerStateReport>,
    #[serde(default)]
    pub network: Option<TaskNetworkReport>,
    #[serde(default)]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default)]
    pub pull_stopped_at: Option<Timestamp>,
    /// When the task reached RUNNING.
    #[serde(default)]
    pub started_at: Option<Timestamp>,
    /// When the agent began stopping it.
    #[serde(default)]
    pub stopping_at: Option<Timestamp>,
    /// When its last container exited.
    #[serde(default)]
    pub execution_stopped_at: Option<Timestamp>,
    /// When it was fully torn down (STOPPED).
    #[serde(default)]
    pub stopped_at: Option<Timestamp>,
    /// Set by the agent when the task stopped on its own.
    #[serde(default)]
    pub stop_code: Option<StopCode>,
    #[serde(default)]
    pub stopped_reason: Option<String>,
    /// From the essential containers with a health check (UNKNOWN when
    /// none has one); absent from older agents' reports.
    #[serde(default)]
    pub health_status: HealthStatus,
}

/// How much of a health check's output a report carries.
pub const HEALTH_OUTPUT_LIMIT: usize = 1024;

/// One container's agent-owned state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerStateReport {
    pub name: String,
    pub last_status: ContainerStatus,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub runtime_id: Option<String>,
    #[serde(default)]
    pub image_digest: Option<String>,
    /// UNKNOWN without a health check, or until its first verdict.
    #[serde(default)]
    pub health_status: HealthStatus,
    /// The last health check's output (at most [`HEALTH_OUTPUT_LIMIT`]
    /// bytes, cut on a character boundary).
    #[serde(default)]
    pub health_output: Option<String>,
    /// The last health check's exit code (None when it timed out or could
    /// not run).
    #[serde(default)]
    pub health_exit_code: Option<i32>,
    /// How many times its restartPolicy restarted it in place.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub restart_count: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// The task's network namespace, as set up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskNetworkReport {
    pub private_ipv4_address: String,
    pub mac_address: String,
    pub subnet: String,
    /// The namespace's name (shown as networkInterfaceId).
    pub netns: String,
}

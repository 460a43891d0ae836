//! A task as the controllers store it: typed facts only (statuses, reserved
//! resources, timestamps, placement, the network the agent reported). ECS's
//! describe shape is rendered from it on read (`task_render.rs`), so a change
//! to what describe-tasks prints never needs a migration of stored data.

use orca_core::task::{
    ContainerStatus, HealthStatus, HostPortBinding, NetworkConfiguration, Resources, StopCode,
    TaskOverride, TaskStatus,
};
use orca_core::task_definition::{Tag, Timestamp};
use serde::{Deserialize, Serialize};

/// A task as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    pub id: String,
    pub cluster: String,
    /// The instance the leader placed it on.
    pub instance_id: String,
    pub family: String,
    pub revision: u32,
    /// What the task holds on its instance until it is STOPPED.
    pub reserved: Resources,
    /// RunTask's networkConfiguration, recorded as given.
    pub network_configuration: Option<NetworkConfiguration>,
    pub client_token: Option<String>,
    pub overrides: TaskOverride,
    /// The agent's, moved only forward.
    pub last_status: TaskStatus,
    /// The controller's: RUNNING or STOPPED.
    pub desired_status: TaskStatus,
    pub containers: Vec<ContainerRecord>,
    pub started_by: Option<String>,
    /// `family:<name>` unless RunTask named one (`service:<name>` for a
    /// service's tasks).
    pub group: String,
    pub launch_type: String,
    /// The network namespace, once the agent reported it.
    pub network: Option<TaskNetwork>,
    pub times: TaskTimes,
    pub stop_code: Option<StopCode>,
    pub stopped_reason: Option<String>,
    /// Bumped on every change, as ECS's task version.
    pub version: u64,
    pub health: HealthStatus,
    pub enable_execute_command: bool,
    /// Stopped (UserInitiated) once RUNNING this many seconds; absent
    /// from records written before run timeouts existed.
    #[serde(default)]
    pub run_timeout_seconds: Option<u32>,
    pub tags: Vec<Tag>,
    /// A DAEMON service (its name) needs this replica task's place on its
    /// instance: the task's own service moves it elsewhere, within its
    /// minimumHealthyPercent and maximumPercent, as from a DRAINING
    /// instance.
    #[serde(default)]
    pub making_room_for: Option<String>,
    /// The host ports the leader chose for it (bridge and host mode), held
    /// on its instance until it is STOPPED; shown as networkBindings.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPortBinding>,
    /// The definition's `ephemeralStorage`, recorded and shown (not
    /// enforced: overlayfs on ext4 has no quota); absent from snapshots
    /// written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<orca_core::task_definition::EphemeralStorage>,
}

/// One container of a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRecord {
    /// The id in the container's ARN.
    pub id: String,
    pub name: String,
    pub image: String,
    pub image_digest: Option<String>,
    /// The containerd container id.
    pub runtime_id: Option<String>,
    pub last_status: ContainerStatus,
    pub exit_code: Option<i32>,
    pub reason: Option<String>,
    pub health: HealthStatus,
    /// The last health check's output (at most 1 KiB) and exit code (None
    /// when it timed out), as the agent last reported them; absent from
    /// snapshots written before health checks ran.
    #[serde(default)]
    pub health_output: Option<String>,
    #[serde(default)]
    pub health_exit_code: Option<i32>,
    /// How many times its restartPolicy restarted it in place.
    #[serde(default)]
    pub restart_count: u32,
    /// CPU units and MiB from the definition with RunTask's overrides.
    pub cpu: u32,
    pub memory: Option<u32>,
    pub memory_reservation: Option<u32>,
    pub essential: bool,
}

/// The task's network namespace as the agent set it up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskNetwork {
    /// The namespace's name (ECS's networkInterfaceId and attachment id).
    pub netns: String,
    pub subnet: String,
    pub mac_address: String,
    pub private_ipv4_address: String,
}

/// The lifecycle's timestamps; each is set once.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskTimes {
    pub created_at: Timestamp,
    pub pull_started_at: Option<Timestamp>,
    pub pull_stopped_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub stopping_at: Option<Timestamp>,
    pub execution_stopped_at: Option<Timestamp>,
    pub stopped_at: Option<Timestamp>,
}

impl TaskRecord {
    /// The task group, for placement.
    pub fn group(&self) -> &str {
        &self.group
    }

    pub fn is_stopped(&self) -> bool {
        self.last_status == TaskStatus::Stopped
    }

    /// Wanted running and not stopped: the task holds a place in its service.
    pub fn is_live(&self) -> bool {
        !self.is_stopped() && self.desired_status == TaskStatus::Running
    }

    /// Records the controller's wish that the task stop. The first stop's
    /// code, reason and time stay; a later one changes nothing. True if the
    /// task was still wanted running (its agent must be told).
    pub fn request_stop(
        &mut self,
        code: StopCode,
        reason: impl FnOnce() -> String,
        at: Timestamp,
    ) -> bool {
        if self.desired_status == TaskStatus::Stopped || self.is_stopped() {
            return false;
        }
        self.desired_status = TaskStatus::Stopped;
        self.stop_code.get_or_insert(code);
        self.stopped_reason.get_or_insert_with(reason);
        self.times.stopping_at.get_or_insert(at);
        self.version += 1;
        true
    }
}

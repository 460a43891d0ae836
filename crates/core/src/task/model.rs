//! A task as ECS's DescribeTasks shows it, and its containers.
//!
//! The controller stores typed task records and renders this shape on read,
//! so `orca describe-tasks` prints what `aws ecs describe-tasks` does and a
//! change to the rendering never needs a migration of stored data.

use serde::{Deserialize, Serialize};

use super::overrides::TaskOverride;
use super::status::{ContainerStatus, StopCode, TaskStatus};
use crate::task_definition::{EphemeralStorage, Tag, Timestamp};

/// ECS's `tasks[]` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub task_arn: String,
    pub cluster_arn: String,
    pub task_definition_arn: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_instance_arn: Option<String>,
    pub overrides: TaskOverride,
    pub last_status: TaskStatus,
    pub desired_status: TaskStatus,
    /// CPU units reserved for the task, as ECS prints them (a string).
    pub cpu: String,
    /// MiB reserved for the task, as a string.
    pub memory: String,
    pub containers: Vec<Container>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    pub launch_type: String,
    /// The task's network namespace, shown as ECS shows an awsvpc ENI.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopping_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_code: Option<StopCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_reason: Option<String>,
    /// Bumped on every change, as ECS's task version.
    pub version: u64,
    pub health_status: String,
    #[serde(default)]
    pub enable_execute_command: bool,
    /// RunTask's runTimeoutSeconds (orca's, beyond ECS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_timeout_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
    /// The task definition's `ephemeralStorage`, shown as ECS shows it.
    /// Recorded only: a container's writable layer is overlayfs on the
    /// node's file system, which has no per-directory quota to enforce it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ephemeral_storage: Option<EphemeralStorage>,
}

/// ECS's `containers[]` entry of a task.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    pub container_arn: String,
    pub task_arn: String,
    pub name: String,
    pub image: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_digest: Option<String>,
    /// The containerd container id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime_id: Option<String>,
    pub last_status: ContainerStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default)]
    pub network_bindings: Vec<super::NetworkBinding>,
    #[serde(default)]
    pub network_interfaces: Vec<NetworkInterface>,
    pub health_status: String,
    /// Not in ECS's shape: the last health check's output (at most 1 KiB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_output: Option<String>,
    /// Not in ECS's shape: the last health check's exit code (absent when
    /// it timed out or could not run).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check_exit_code: Option<i32>,
    /// How many times its restartPolicy restarted it in place (orca's:
    /// ECS keeps this count to its agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart_count: Option<u32>,
    pub cpu: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_reservation: Option<String>,
    /// Not in ECS's shape, but what the lifecycle hinges on.
    pub essential: bool,
}

/// `containers[].networkInterfaces[]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NetworkInterface {
    pub attachment_id: String,
    #[serde(rename = "privateIpv4Address")]
    pub private_ipv4_address: String,
}

/// `attachments[]`: ECS shows an awsvpc task's ENI here; orca shows the
/// task's network namespace in the same shape (type ElasticNetworkInterface,
/// details subnetId, networkInterfaceId, macAddress, privateIPv4Address) so
/// scripts written for ECS find the address where they look for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// PRECREATED, ATTACHED, DETACHED or DELETED.
    pub status: String,
    pub details: Vec<KeyValue>,
}

/// A `{name, value}` pair in attachment details.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyValue {
    pub name: String,
    pub value: String,
}

/// ECS's `failures[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arn: Option<String>,
    pub reason: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

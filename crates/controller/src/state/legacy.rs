//! Stored data in formats older than this code's, migrated on open.
//!
//! Format 1 (before tasks were domain records) stored each task as ECS's
//! describe shape inside its record (`task: Task`, numbers as strings,
//! health as a string). Format 2 stores [`TaskRecord`]s. A snapshot carries
//! its format; one without it is format 1.

use orca_core::task::{HealthStatus, NetworkConfiguration, Resources, Task};
use serde::Deserialize;

use super::task_record::{ContainerRecord, TaskNetwork, TaskRecord, TaskTimes};

/// The format this code writes.
pub const STATE_FORMAT: u32 = 2;

/// Why stored state cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error(
        "the stored state is in format {found}, newer than this controller reads (up to {STATE_FORMAT}): \
         run a controller of the version that wrote it, or restore from a backup"
    )]
    Newer { found: u32 },
    #[error("the stored state (format {format}) cannot be read: {source}")]
    Unreadable {
        format: u32,
        #[source]
        source: serde_json::Error,
    },
    #[error("stored task {id} (format 1) cannot be migrated: {reason}")]
    Task { id: String, reason: String },
}

/// Brings a stored state (the snapshot's `state` object) of `format` up to
/// [`STATE_FORMAT`], in place.
pub fn migrate_state(state: &mut serde_json::Value, format: u32) -> Result<(), FormatError> {
    match format {
        STATE_FORMAT => Ok(()),
        1 => tasks_from_format_1(state),
        found => Err(FormatError::Newer { found }),
    }
}

/// A task record as format 1 wrote it.
#[derive(Deserialize)]
struct TaskRecordV1 {
    id: String,
    cluster: String,
    instance_id: String,
    family: String,
    revision: u32,
    reserved: Resources,
    network_configuration: Option<NetworkConfiguration>,
    client_token: Option<String>,
    task: Task,
}

fn tasks_from_format_1(state: &mut serde_json::Value) -> Result<(), FormatError> {
    let Some(tasks) = state.get_mut("tasks").and_then(|t| t.as_object_mut()) else {
        return Ok(());
    };
    for (id, stored) in tasks.iter_mut() {
        let old: TaskRecordV1 =
            serde_json::from_value(stored.take()).map_err(|e| FormatError::Task {
                id: id.clone(),
                reason: e.to_string(),
            })?;
        let record = from_format_1(old).map_err(|reason| FormatError::Task {
            id: id.clone(),
            reason,
        })?;
        *stored = serde_json::to_value(&record).map_err(|e| FormatError::Task {
            id: id.clone(),
            reason: e.to_string(),
        })?;
    }
    Ok(())
}

fn from_format_1(old: TaskRecordV1) -> Result<TaskRecord, String> {
    let task = old.task;
    let containers = task
        .containers
        .into_iter()
        .map(|c| {
            Ok(ContainerRecord {
                id: c
                    .container_arn
                    .rsplit('/')
                    .next()
                    .unwrap_or_default()
                    .to_string(),
                cpu: number(&c.cpu, "cpu")?,
                memory: c
                    .memory
                    .as_deref()
                    .map(|m| number(m, "memory"))
                    .transpose()?,
                memory_reservation: c
                    .memory_reservation
                    .as_deref()
                    .map(|m| number(m, "memoryReservation"))
                    .transpose()?,
                name: c.name,
                image: c.image,
                image_digest: c.image_digest,
                runtime_id: c.runtime_id,
                last_status: c.last_status,
                exit_code: c.exit_code,
                reason: c.reason,
                health: HealthStatus::parse(&c.health_status),
                health_output: c.health_check_output,
                health_exit_code: c.health_check_exit_code,
                restart_count: c.restart_count.unwrap_or(0),
                essential: c.essential,
            })
        })
        .collect::<Result<Vec<_>, String>>()?;
    let network = task.attachments.first().map(|a| {
        let detail = |name: &str| {
            a.details
                .iter()
                .find(|d| d.name == name)
                .map(|d| d.value.clone())
                .unwrap_or_default()
        };
        TaskNetwork {
            netns: a.id.clone(),
            subnet: detail("subnetId"),
            mac_address: detail("macAddress"),
            private_ipv4_address: detail("privateIPv4Address"),
        }
    });
    Ok(TaskRecord {
        id: old.id,
        cluster: old.cluster,
        instance_id: old.instance_id,
        family: old.family,
        revision: old.revision,
        reserved: old.reserved,
        network_configuration: old.network_configuration,
        client_token: old.client_token,
        overrides: task.overrides,
        last_status: task.last_status,
        desired_status: task.desired_status,
        containers,
        started_by: task.started_by,
        group: task.group.unwrap_or_default(),
        launch_type: task.launch_type,
        network,
        times: TaskTimes {
            created_at: task.created_at,
            pull_started_at: task.pull_started_at,
            pull_stopped_at: task.pull_stopped_at,
            started_at: task.started_at,
            stopping_at: task.stopping_at,
            execution_stopped_at: task.execution_stopped_at,
            stopped_at: task.stopped_at,
        },
        stop_code: task.stop_code,
        stopped_reason: task.stopped_reason,
        version: task.version,
        health: HealthStatus::parse(&task.health_status),
        enable_execute_command: task.enable_execute_command,
        run_timeout_seconds: None,
        tags: task.tags,
        making_room_for: None,
        host_ports: Vec::new(),
        ephemeral_storage: None,
    })
}

fn number(text: &str, field: &str) -> Result<u32, String> {
    text.parse()
        .map_err(|_| format!("container {field} {text:?} is not a number"))
}

//! Where an ExecuteCommand goes, and whether it may: the task (id or ARN)
//! of the cluster, started with enableExecuteCommand and running, the
//! container (named, or the task's only one) running, and the node API of
//! the instance running it. Pure reads of the applied state; the messages
//! are ECS's where ECS has one.

use std::net::SocketAddr;

use orca_core::task::{ContainerStatus, TaskStatus};
use orca_core::{ApiError, Exception};

use super::ClusterState;

/// ECS's refusal when the task was not started with enableExecuteCommand.
pub const NOT_ENABLED: &str = "The execute command failed because execute command was not \
     enabled when the task was run or the execute command agent isn't running. Wait and try \
     again or run a new task with execute command enabled and try again.";

/// Where a command runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecTarget {
    pub cluster_arn: String,
    pub task_arn: String,
    pub task_id: String,
    pub container_arn: String,
    pub container_name: String,
    /// The container's position in its task definition (with the task id
    /// and name, the agent's container id).
    pub container_index: u32,
    pub node_api: SocketAddr,
}

fn invalid(field: &str, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, field, rule)
}

impl ClusterState {
    pub fn exec_target(
        &self,
        cluster: &str,
        reference: &str,
        container: Option<&str>,
    ) -> Result<ExecTarget, ApiError> {
        let task = self.task_in(cluster, reference).ok_or_else(|| {
            invalid(
                "task",
                format!("task '{reference}' not found in cluster '{cluster}'"),
            )
        })?;
        if !task.enable_execute_command {
            return Err(ApiError::new(
                Exception::InvalidParameterException,
                NOT_ENABLED,
            ));
        }
        if task.last_status != TaskStatus::Running || task.desired_status != TaskStatus::Running {
            return Err(invalid(
                "task",
                format!(
                    "The execute command failed because task {} is not running (lastStatus {}, \
                     desiredStatus {})",
                    task.id,
                    task.last_status.name(),
                    task.desired_status.name()
                ),
            ));
        }
        let names = || {
            task.containers
                .iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let (index, record) = match container {
            Some(name) => task
                .containers
                .iter()
                .enumerate()
                .find(|(_, c)| c.name == name)
                .ok_or_else(|| {
                    invalid(
                        "container",
                        format!(
                            "task {} has no container '{name}' (its containers: {})",
                            task.id,
                            names()
                        ),
                    )
                })?,
            None if task.containers.len() == 1 => (0, &task.containers[0]),
            None => {
                return Err(invalid(
                    "container",
                    format!(
                        "task {} has more than one container: name one of {}",
                        task.id,
                        names()
                    ),
                ))
            }
        };
        if record.last_status != ContainerStatus::Running {
            return Err(invalid(
                "container",
                format!(
                    "container '{}' of task {} is not running ({})",
                    record.name,
                    task.id,
                    record.last_status.name()
                ),
            ));
        }
        // The agent names containers by their place in the definition.
        let index = self
            .families
            .get(&task.family)
            .and_then(|f| f.revisions.get(&task.revision))
            .and_then(|d| {
                d.task_definition
                    .spec
                    .container_definitions
                    .iter()
                    .position(|c| c.name == record.name)
            })
            .unwrap_or(index);
        let instance = self.instances.get(&task.instance_id);
        let node_api = instance.and_then(|i| i.node_api_address).ok_or_else(|| {
            ApiError::new(
                Exception::InvalidParameterException,
                format!(
                    "the agent of container instance {} registered no node API (api_listen): \
                     it cannot run commands",
                    task.instance_id
                ),
            )
        })?;
        Ok(ExecTarget {
            cluster_arn: self.arn.cluster(&task.cluster),
            task_arn: self.task_arn(task),
            task_id: task.id.clone(),
            container_arn: self.arn.container(&task.cluster, &task.id, &record.id),
            container_name: record.name.clone(),
            container_index: u32::try_from(index).unwrap_or(u32::MAX),
            node_api,
        })
    }
}

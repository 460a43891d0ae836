//! Where a task's logs are: the task's containers and the node API of the
//! instance that ran it, for `orca logs`; and which tasks' containers log
//! to an awslogs group, with the stream names ECS gives them, for
//! `orca logs tail GROUP`. Pure reads of the applied state.

use std::net::SocketAddr;

use orca_core::task_definition::LogDriver;
use orca_core::{ApiError, Exception};

use super::{ClusterState, TaskRecord};

/// The awslogs option naming the log group.
pub const GROUP_OPTION: &str = "awslogs-group";
/// The awslogs option giving streams a prefix (`prefix/container/task-id`).
pub const PREFIX_OPTION: &str = "awslogs-stream-prefix";

/// The logs of one task, on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTarget {
    pub task_id: String,
    pub instance_arn: String,
    /// The agent's node API; None for an agent that registered none.
    pub node_api: Option<SocketAddr>,
    /// The containers to read, in the task's order.
    pub containers: Vec<String>,
}

/// One container of a task logging to a group: its stream's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupStream {
    pub target: LogTarget,
    /// `container` of `target` (the one container it names).
    pub log_stream_name: String,
}

impl ClusterState {
    /// The logs of task `reference` (id or ARN) of `cluster`, all its
    /// containers or the one named.
    pub fn log_target(
        &self,
        cluster: &str,
        reference: &str,
        container: Option<&str>,
    ) -> Result<LogTarget, ApiError> {
        let task = self.task_in(cluster, reference).ok_or_else(|| {
            ApiError::field(
                Exception::InvalidParameterException,
                "task",
                format!("task '{reference}' not found in cluster '{cluster}'"),
            )
        })?;
        let names: Vec<String> = task.containers.iter().map(|c| c.name.clone()).collect();
        let containers = match container {
            None => names,
            Some(c) if names.iter().any(|n| n == c) => vec![c.to_string()],
            Some(c) => {
                return Err(ApiError::field(
                    Exception::InvalidParameterException,
                    "container",
                    format!(
                        "task '{}' has no container '{c}' (its containers: {})",
                        task.id,
                        names.join(", ")
                    ),
                ))
            }
        };
        Ok(self.target_of(task, containers))
    }

    fn target_of(&self, task: &TaskRecord, containers: Vec<String>) -> LogTarget {
        let instance = self.instances.get(&task.instance_id);
        LogTarget {
            task_id: task.id.clone(),
            instance_arn: instance.map_or_else(|| task.instance_id.clone(), |i| i.arn.clone()),
            node_api: instance.and_then(|i| i.node_api_address),
            containers,
        }
    }

    /// Every container of every task (running, or stopped and still
    /// remembered) whose definition logs with awslogs to `group`, by
    /// stream name, filtered by `prefix` on that name.
    ///
    /// The stream name is ECS's: `<awslogs-stream-prefix>/<container>/<task-id>`.
    /// Without a prefix ECS on EC2 names the stream after the container's
    /// id in the runtime; orca does the same with the containerd container
    /// id (`<task-id>-<container>`-like, whatever the agent chose), or
    /// `<container>/<task-id>` before the container got one.
    pub fn group_streams(&self, group: &str, prefix: &str) -> Vec<GroupStream> {
        let mut out = Vec::new();
        for task in self.tasks.values() {
            let Some(definition) = self
                .families
                .get(&task.family)
                .and_then(|f| f.revisions.get(&task.revision))
            else {
                continue;
            };
            for c in &definition.task_definition.spec.container_definitions {
                let Some(options) = c
                    .log_configuration
                    .as_ref()
                    .filter(|l| l.log_driver == LogDriver::Awslogs)
                    .and_then(|l| l.options.as_ref())
                else {
                    continue;
                };
                if options.get(GROUP_OPTION).map(String::as_str) != Some(group) {
                    continue;
                }
                let runtime_id = task
                    .containers
                    .iter()
                    .find(|r| r.name == c.name)
                    .and_then(|r| r.runtime_id.clone());
                let name = match (options.get(PREFIX_OPTION), runtime_id) {
                    (Some(p), _) if !p.is_empty() => format!("{p}/{}/{}", c.name, task.id),
                    (_, Some(id)) => id,
                    _ => format!("{}/{}", c.name, task.id),
                };
                if !name.starts_with(prefix) {
                    continue;
                }
                out.push(GroupStream {
                    target: self.target_of(task, vec![c.name.clone()]),
                    log_stream_name: name,
                });
            }
        }
        out.sort_by(|a, b| a.log_stream_name.cmp(&b.log_stream_name));
        out
    }
}

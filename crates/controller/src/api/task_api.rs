//! The ECS task and container-instance calls (RunTask, StopTask,
//! DescribeTasks, ListTasks, List/DescribeContainerInstances). Requests and
//! replies are ECS's JSON; each handler parses and validates it, reads the
//! state or proposes one command, and writes ECS's output.

use orca_core::arn::{cluster_name, resource_id, task_definition_ref};
use orca_core::container_instance::{
    DescribeContainerInstancesInput, DescribeContainerInstancesOutput, ListContainerInstancesInput,
    ListContainerInstancesOutput,
};
use orca_core::json_input::parse_input;
use orca_core::task::{
    task_resources, validate_overrides, DescribeTasksInput, DescribeTasksOutput, ListTasksInput,
    ListTasksOutput, RunTaskInput, RunTaskOutput, StopCode, StopTaskInput, StopTaskOutput,
};
use orca_core::task_definition::TaskDefinitionStatus;
use orca_core::{ApiError, Exception};
use serde::Serialize;

use super::ecs_service::EcsService;
use crate::scheduler::first_fit;
use crate::state::query::PageRequest;
use crate::state::task_queries::TaskFilter;
use crate::state::{Command, Outcome, Placement, RunTaskCommand};

/// How many times RunTask places again when its placements went stale
/// between reading the state and committing.
const PLACEMENT_ATTEMPTS: usize = 5;

fn to_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::server(format!("encoding the reply: {e}")))
}

fn new_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

fn page(next_token: Option<String>, max_results: Option<u32>) -> PageRequest {
    PageRequest {
        next_token: next_token.unwrap_or_default(),
        max_results: max_results.unwrap_or(0),
    }
}

/// The cluster a call names, checked to exist (ECS: ClusterNotFoundException).
fn cluster_of(service: &EcsService, reference: Option<&str>) -> Result<String, ApiError> {
    let cluster = cluster_name(reference.unwrap_or(""))?;
    service.read(|s| s.active_cluster(&cluster).map(|_| ()))?;
    Ok(cluster)
}

impl EcsService {
    pub(super) async fn run_task_json(&self, json: &str) -> Result<String, ApiError> {
        let input: RunTaskInput = parse_input(json, "RunTask")?;
        input.validate()?;
        let cluster = cluster_name(input.cluster.as_deref().unwrap_or(""))?;
        let reference = task_definition_ref(&input.task_definition, "taskDefinition")?;
        let count = input.count.unwrap_or(1) as usize;
        let fingerprint = to_json(&input)?;
        // Placement reads the state: on a follower, first catch up with
        // everything committed (the caller's own RegisterTaskDefinition,
        // forwarded through this controller, may not be applied here yet).
        if self.node.current_leader() != Some(self.node.id) {
            self.node.linearizable_barrier().await?;
        }
        for _ in 0..PLACEMENT_ATTEMPTS {
            let created_at = self.clock.now();
            let command = self.read(|s| -> Result<RunTaskCommand, ApiError> {
                s.active_cluster(&cluster)?;
                let stored = s.describe_task_definition(&reference)?;
                let definition = &stored.task_definition;
                if definition.status != TaskDefinitionStatus::Active {
                    return Err(ApiError::field(
                        Exception::ClientException,
                        "taskDefinition",
                        format!(
                            "TaskDefinition is inactive: {}",
                            definition.task_definition_arn
                        ),
                    ));
                }
                let mut overrides = input.overrides.clone().unwrap_or_default();
                validate_overrides(&mut overrides, definition, "overrides")?;
                let token_known = input
                    .client_token
                    .as_ref()
                    .is_some_and(|t| s.client_tokens.contains_key(&(cluster.clone(), t.clone())));
                let instances: Vec<_> = s
                    .instances
                    .values()
                    .filter(|i| i.cluster == cluster)
                    .collect();
                if instances.is_empty() && !token_known {
                    return Err(ApiError::new(
                        Exception::InvalidParameterException,
                        "No Container Instances were found in your cluster.",
                    ));
                }
                let need = task_resources(definition, &overrides);
                let plan = if token_known {
                    // apply returns the token's tasks; place nothing new.
                    crate::scheduler::PlacementPlan {
                        instances: Vec::new(),
                        failures: Vec::new(),
                    }
                } else {
                    first_fit(instances, need, count)
                };
                let containers = definition.spec.container_definitions.len();
                Ok(RunTaskCommand {
                    cluster: cluster.clone(),
                    family: definition.spec.family.clone(),
                    revision: definition.revision,
                    overrides,
                    started_by: input.started_by.clone(),
                    group: input.group.clone(),
                    client_token: input.client_token.clone(),
                    fingerprint: fingerprint.clone(),
                    launch_type: input
                        .launch_type
                        .clone()
                        .unwrap_or_else(|| "EC2".to_string()),
                    network_configuration: input.network_configuration.clone(),
                    tags: input.tags.clone().unwrap_or_default(),
                    enable_execute_command: input.enable_execute_command.unwrap_or(false),
                    created_at,
                    placements: plan
                        .instances
                        .into_iter()
                        .map(|instance_id| Placement {
                            task_id: new_id(),
                            instance_id,
                            container_ids: (0..containers).map(|_| new_id()).collect(),
                        })
                        .collect(),
                    failures: plan.failures,
                })
            })?;
            match self
                .node
                .propose(Command::RunTask(Box::new(command)))
                .await?
            {
                Outcome::Tasks { tasks, failures } => {
                    for t in &tasks {
                        tracing::info!(task = %t.task_arn, instance = ?t.container_instance_arn, "task placed");
                    }
                    return to_json(&RunTaskOutput { tasks, failures });
                }
                Outcome::PlacementConflict => continue,
                other => {
                    return Err(ApiError::server(format!(
                        "unexpected outcome of RunTask: {other:?}"
                    )))
                }
            }
        }
        Err(ApiError::server(
            "the placements kept going stale under concurrent changes; try again",
        ))
    }

    pub(super) async fn stop_task_json(&self, json: &str) -> Result<String, ApiError> {
        let input: StopTaskInput = parse_input(json, "StopTask")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let (arn_cluster, task_id) = resource_id(&input.task, "task", "task")?;
        if arn_cluster.is_some_and(|c| c != cluster) {
            return Err(crate::state::tasks::task_not_found(&input.task));
        }
        let command = Command::StopTask {
            cluster,
            task_id,
            reason: input.reason,
            stop_code: StopCode::UserInitiated,
            at: self.clock.now(),
        };
        match self.node.propose(command).await? {
            Outcome::Task(task) => to_json(&StopTaskOutput { task: *task }),
            other => Err(ApiError::server(format!(
                "unexpected outcome of StopTask: {other:?}"
            ))),
        }
    }

    pub(super) fn describe_tasks_json(&self, json: &str) -> Result<String, ApiError> {
        let input: DescribeTasksInput = parse_input(json, "DescribeTasks")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let with_tags = input.include.as_ref().is_some_and(|i| !i.is_empty());
        let (mut tasks, failures) = self.read(|s| s.describe_tasks(&cluster, &input.tasks));
        if !with_tags {
            for t in &mut tasks {
                t.tags.clear();
            }
        }
        to_json(&DescribeTasksOutput { tasks, failures })
    }

    pub(super) fn list_tasks_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListTasksInput = parse_input(json, "ListTasks")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let instance_id = match input.container_instance.as_deref() {
            Some(r) => Some(resource_id(r, "container-instance", "containerInstance")?.1),
            None => None,
        };
        let filter = TaskFilter {
            cluster,
            instance_id,
            family: input.family,
            started_by: input.started_by,
            service_name: input.service_name,
            desired_status: input
                .desired_status
                .unwrap_or_else(|| "RUNNING".to_string()),
            launch_type: input.launch_type,
        };
        let page =
            self.read(|s| s.list_tasks(&filter, &page(input.next_token, input.max_results)))?;
        to_json(&ListTasksOutput {
            task_arns: page.items,
            next_token: page.next_token,
        })
    }

    pub(super) fn list_container_instances_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListContainerInstancesInput = parse_input(json, "ListContainerInstances")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let wanted = input.status.unwrap_or_else(|| "ACTIVE".to_string());
        let page = self.read(|s| {
            if wanted == "ACTIVE" {
                s.list_container_instances(&cluster, &page(input.next_token, input.max_results))
            } else {
                // Instances are ACTIVE until draining and deregistration exist.
                Ok(crate::state::query::Page {
                    items: Vec::new(),
                    next_token: None,
                })
            }
        })?;
        to_json(&ListContainerInstancesOutput {
            container_instance_arns: page.items,
            next_token: page.next_token,
        })
    }

    pub(super) fn describe_container_instances_json(&self, json: &str) -> Result<String, ApiError> {
        let input: DescribeContainerInstancesInput =
            parse_input(json, "DescribeContainerInstances")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let (container_instances, failures) =
            self.read(|s| s.describe_container_instances(&cluster, &input.container_instances));
        to_json(&DescribeContainerInstancesOutput {
            container_instances,
            failures,
        })
    }
}

//! The ECS task and container-instance calls (RunTask, StopTask,
//! DescribeTasks, ListTasks, List/DescribeContainerInstances). Requests and
//! replies are ECS's JSON; each handler parses and validates it, reads the
//! state or proposes one command, and writes ECS's output.

use orca_core::arn::{cluster_name, resource_id, task_definition_ref, TaskDefinitionRef};
use orca_core::cluster::{check_privileges, privileges_allowed};
use orca_core::container_instance::{
    DescribeContainerInstancesInput, DescribeContainerInstancesOutput, ListContainerInstancesInput,
    ListContainerInstancesOutput,
};
use orca_core::json_input::parse_input;
use orca_core::task::{
    validate_overrides, DescribeTasksInput, DescribeTasksOutput, Failure, ListTasksInput,
    ListTasksOutput, RunTaskInput, RunTaskOutput, StartTaskInput, StopCode, StopTaskInput,
    StopTaskOutput, Task,
};
use orca_core::task_definition::TaskDefinitionStatus;
use orca_core::{ApiError, Exception};
use serde::Serialize;

use super::ecs_service::EcsService;
use crate::plan_apply::RunTaskAsk;
use crate::state::query::PageRequest;
use crate::state::task_queries::TaskFilter;
use crate::state::{Command, Outcome};

pub(super) fn to_json<T: Serialize>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::server(format!("encoding the reply: {e}")))
}

pub(super) fn page(next_token: Option<String>, max_results: Option<u32>) -> PageRequest {
    PageRequest {
        next_token: next_token.unwrap_or_default(),
        max_results: max_results.unwrap_or(0),
    }
}

/// The cluster a call names, checked to exist (ECS: ClusterNotFoundException).
pub(super) fn cluster_of(
    service: &EcsService,
    reference: Option<&str>,
) -> Result<String, ApiError> {
    let cluster = cluster_name(reference.unwrap_or(""))?;
    service.read(|s| s.active_cluster(&cluster).map(|_| ()))?;
    Ok(cluster)
}

impl EcsService {
    /// Refuses a service's definition that asks for privileges its
    /// cluster does not allow (RunTask checks the same in its own read).
    /// An unknown cluster or definition passes here: the command reports
    /// it.
    pub(super) fn check_definition_privileges(
        &self,
        cluster: &str,
        reference: &TaskDefinitionRef,
    ) -> Result<(), ApiError> {
        self.read(|s| {
            let (Some(record), Ok(stored)) = (
                s.clusters.get(cluster),
                s.describe_task_definition(reference),
            ) else {
                return Ok(());
            };
            check_privileges(
                &stored.task_definition,
                privileges_allowed(&record.settings),
                cluster,
            )
        })
    }

    /// RunTask: validated here, placed by the leader's plan applier (this
    /// controller never places, even when it leads: the applier does).
    pub(super) async fn run_task_json(&self, json: &str) -> Result<String, ApiError> {
        let input: RunTaskInput = parse_input(json, "RunTask")?;
        input.validate()?;
        let (tasks, failures) = self.run_tasks(&input).await?;
        to_json(&RunTaskOutput { tasks, failures })
    }

    /// StartTask: one task on each named container instance, through the
    /// same applier (pinned to the instance, so it only checks the fit).
    pub(super) async fn start_task_json(&self, json: &str) -> Result<String, ApiError> {
        let input: StartTaskInput = parse_input(json, "StartTask")?;
        let cluster = cluster_name(input.cluster.as_deref().unwrap_or(""))?;
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for (i, reference) in input.container_instances.iter().enumerate() {
            let field = format!("containerInstances[{i}]");
            let (arn_cluster, id) = resource_id(reference, "container-instance", &field)?;
            let known = self.read(|s| s.instances.get(&id).is_some_and(|r| r.cluster == cluster));
            if !known || arn_cluster.is_some_and(|c| c != cluster) {
                failures.push(Failure {
                    arn: Some(reference.clone()),
                    reason: "MISSING".to_string(),
                    detail: None,
                });
                continue;
            }
            let (t, f) = self.run_tasks(&input.run_on(&id)?).await?;
            tasks.extend(t);
            failures.extend(f);
        }
        to_json(&RunTaskOutput { tasks, failures })
    }

    /// Validates a RunTask against the state and has the leader's plan
    /// applier place it.
    async fn run_tasks(&self, input: &RunTaskInput) -> Result<(Vec<Task>, Vec<Failure>), ApiError> {
        let cluster = cluster_name(input.cluster.as_deref().unwrap_or(""))?;
        let reference = task_definition_ref(&input.task_definition, "taskDefinition")?;
        let fingerprint = to_json(input)?;
        // Validation reads the state: on a follower, first catch up with
        // everything committed (the caller's own RegisterTaskDefinition,
        // forwarded through this controller, may not be applied here yet).
        if self.node.current_leader() != Some(self.node.id) {
            self.node.linearizable_barrier().await?;
        }
        let ask = self.read(|s| -> Result<RunTaskAsk, ApiError> {
            let record = s.active_cluster(&cluster)?;
            let stored = s.describe_task_definition(&reference)?;
            let definition = &stored.task_definition;
            check_privileges(definition, privileges_allowed(&record.settings), &cluster)?;
            let token_known = input
                .client_token
                .as_ref()
                .is_some_and(|t| s.client_tokens.contains_key(&(cluster.clone(), t.clone())));
            if definition.status != TaskDefinitionStatus::Active && !token_known {
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
            Ok(RunTaskAsk {
                cluster: cluster.clone(),
                family: definition.spec.family.clone(),
                revision: definition.revision,
                count: input.count.unwrap_or(1) as usize,
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
                run_timeout_seconds: input.run_timeout_seconds,
                placement_constraints: input.placement_constraints.clone().unwrap_or_default(),
                placement_strategy: input.placement_strategy.clone().unwrap_or_default(),
            })
        })?;
        match self.node.run_task(ask).await? {
            Outcome::Tasks { tasks, failures } => {
                for t in &tasks {
                    tracing::info!(task = %t.task_arn, instance = ?t.container_instance_arn, "task placed");
                }
                Ok((tasks, failures))
            }
            other => Err(ApiError::server(format!(
                "unexpected outcome of RunTask: {other:?}"
            ))),
        }
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
        let filter = input.parsed_filter()?;
        // Without a status ECS lists ACTIVE and DRAINING instances.
        let statuses: Vec<&str> = match input.status.as_deref() {
            Some(status) => vec![status],
            None => vec!["ACTIVE", "DRAINING"],
        };
        let page = self.read(|s| {
            s.list_container_instances(
                &cluster,
                |i| {
                    statuses.contains(&i.status.name())
                        && filter
                            .as_ref()
                            .is_none_or(|f| f.matches(&crate::state::RecordFacts(i)))
                },
                &page(input.next_token, input.max_results),
            )
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

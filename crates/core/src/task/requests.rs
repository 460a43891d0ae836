//! The inputs and outputs of ECS's task calls (RunTask, StopTask,
//! DescribeTasks, ListTasks), in ECS's JSON, with their parameter rules.

use serde::{Deserialize, Serialize};

use super::model::{Failure, Task};
use super::overrides::TaskOverride;
use crate::error::{ApiError, Exception};
use crate::placement::{self, PlacementConstraintInput, PlacementStrategyInput};
use crate::task_definition::Tag;

/// The most tasks one RunTask starts, as ECS.
pub const MAX_RUN_TASK_COUNT: u32 = 10;

/// ECS's RunTask input. Fields orca accepts but does not act on yet
/// (capacity providers, platform version) are kept so that ECS scripts run
/// unchanged. Placement inputs are kept as they came, to be stored and
/// echoed; `validate` checks them and `placement` types them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub task_definition: String,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub overrides: Option<TaskOverride>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    /// ECS spells it `enableECSManagedTags`.
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub reference_id: Option<String>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<PlacementConstraintInput>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<PlacementStrategyInput>>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<serde_json::Value>>,
    /// orca's, beyond ECS: stop the task (UserInitiated) once it has been
    /// RUNNING this many seconds (1 to a year). Not in the task
    /// definition, whose schema stays ECS's.
    #[serde(default)]
    pub run_timeout_seconds: Option<u32>,
}

/// The longest run timeout RunTask takes: a year.
pub const MAX_RUN_TIMEOUT_SECONDS: u32 = 365 * 24 * 3600;

/// ECS's `networkConfiguration`; recorded with the task (every orca task
/// gets its own namespace and address from the node's subnet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NetworkConfiguration {
    pub awsvpc_configuration: AwsVpcConfiguration,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AwsVpcConfiguration {
    pub subnets: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_groups: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_public_ip: Option<String>,
}

/// ECS's StartTask input: RunTask on named container instances, one task
/// on each, no placement decided.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StartTaskInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub task_definition: String,
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub overrides: Option<TaskOverride>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub group: Option<String>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub reference_id: Option<String>,
}

/// The most container instances one StartTask names, as ECS.
pub const MAX_START_TASK_INSTANCES: usize = 10;

impl StartTaskInput {
    /// The RunTask that starts one task on `instance_id` (pinned by a
    /// memberOf constraint, so the plan applier only checks it fits),
    /// validated by RunTask's rules.
    pub fn run_on(&self, instance_id: &str) -> Result<RunTaskInput, ApiError> {
        let n = self.container_instances.len();
        if !(1..=MAX_START_TASK_INSTANCES).contains(&n) {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "containerInstances",
                format!("must name 1 to {MAX_START_TASK_INSTANCES} container instances, not {n}"),
            ));
        }
        let run = RunTaskInput {
            cluster: self.cluster.clone(),
            task_definition: self.task_definition.clone(),
            count: Some(1),
            overrides: self.overrides.clone(),
            started_by: self.started_by.clone(),
            group: self.group.clone(),
            network_configuration: self.network_configuration.clone(),
            tags: self.tags.clone(),
            enable_execute_command: self.enable_execute_command,
            enable_ecs_managed_tags: self.enable_ecs_managed_tags,
            propagate_tags: self.propagate_tags.clone(),
            reference_id: self.reference_id.clone(),
            placement_constraints: Some(vec![PlacementConstraintInput {
                r#type: "memberOf".to_string(),
                expression: Some(format!("instanceId == {instance_id}")),
            }]),
            ..RunTaskInput::default()
        };
        run.validate()?;
        Ok(run)
    }
}

impl RunTaskInput {
    /// The parameter rules that need no state: count, lengths, enums.
    pub fn validate(&self) -> Result<(), ApiError> {
        let invalid = |field: &str, message: String| {
            ApiError::field(Exception::InvalidParameterException, field, message)
        };
        if self.task_definition.is_empty() {
            return Err(ApiError::field(
                Exception::ClientException,
                "taskDefinition",
                "is required",
            ));
        }
        if let Some(count) = self.count {
            if !(1..=MAX_RUN_TASK_COUNT).contains(&count) {
                return Err(invalid(
                    "count",
                    format!(
                        "{count} is out of range: it must be between 1 and {MAX_RUN_TASK_COUNT}"
                    ),
                ));
            }
        }
        if let Some(t) = self.run_timeout_seconds {
            if !(1..=MAX_RUN_TIMEOUT_SECONDS).contains(&t) {
                return Err(invalid(
                    "runTimeoutSeconds",
                    format!("{t} is out of range: it must be between 1 and {MAX_RUN_TIMEOUT_SECONDS} (a year)"),
                ));
            }
        }
        check_len("startedBy", self.started_by.as_deref(), 128)?;
        check_len("group", self.group.as_deref(), 255)?;
        check_len("clientToken", self.client_token.as_deref(), 64)?;
        if let Some(launch_type) = self.launch_type.as_deref() {
            if !["EC2", "EXTERNAL", "FARGATE"].contains(&launch_type) {
                return Err(invalid(
                    "launchType",
                    format!("unknown value '{launch_type}': expected EC2, EXTERNAL or FARGATE"),
                ));
            }
        }
        if let Some(net) = &self.network_configuration {
            let vpc = &net.awsvpc_configuration;
            if vpc.subnets.len() > 16 {
                return Err(invalid(
                    "networkConfiguration.awsvpcConfiguration.subnets",
                    "at most 16 subnets may be given".into(),
                ));
            }
            if let Some(ip) = vpc.assign_public_ip.as_deref() {
                if ip != "ENABLED" && ip != "DISABLED" {
                    return Err(invalid(
                        "networkConfiguration.awsvpcConfiguration.assignPublicIp",
                        format!("unknown value '{ip}': expected ENABLED or DISABLED"),
                    ));
                }
            }
        }
        if let Some(p) = self.propagate_tags.as_deref() {
            if !["TASK_DEFINITION", "SERVICE", "NONE"].contains(&p) {
                return Err(invalid(
                    "propagateTags",
                    format!("unknown value '{p}': expected TASK_DEFINITION, SERVICE or NONE"),
                ));
            }
        }
        if let Some(tags) = &self.tags {
            crate::task_definition::validate_tags(tags, "tags")?;
        }
        if let Some(constraints) = &self.placement_constraints {
            placement::parse_constraints(constraints, "placementConstraints")?;
        }
        if let Some(strategies) = &self.placement_strategy {
            placement::parse_strategies(strategies, "placementStrategy")?;
        }
        Ok(())
    }
}

fn check_len(field: &str, value: Option<&str>, max: usize) -> Result<(), ApiError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ApiError::field(
            Exception::InvalidParameterException,
            field,
            format!(
                "is {} characters long; at most {max} are allowed",
                v.chars().count()
            ),
        )),
        _ => Ok(()),
    }
}

/// ECS's RunTask output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunTaskOutput {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

/// ECS's StopTask input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub task: String,
    #[serde(default)]
    pub reason: Option<String>,
}

impl StopTaskInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.task.is_empty() {
            return Err(ApiError::field(
                Exception::ClientException,
                "task",
                "is required",
            ));
        }
        check_len("reason", self.reason.as_deref(), 255)
    }
}

/// ECS's StopTask output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StopTaskOutput {
    pub task: Task,
}

/// ECS's DescribeTasks input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub tasks: Vec<String>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
}

impl DescribeTasksInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.tasks.is_empty() || self.tasks.len() > 100 {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "tasks",
                format!(
                    "{} tasks given: between 1 and 100 are allowed",
                    self.tasks.len()
                ),
            ));
        }
        check_include(self.include.as_deref())
    }
}

pub(crate) fn check_include(include: Option<&[String]>) -> Result<(), ApiError> {
    for (i, v) in include.unwrap_or_default().iter().enumerate() {
        if v != "TAGS" {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("include[{i}]"),
                format!("unknown value '{v}': expected TAGS"),
            ));
        }
    }
    Ok(())
}

/// ECS's DescribeTasks output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeTasksOutput {
    pub tasks: Vec<Task>,
    pub failures: Vec<Failure>,
}

/// ECS's ListTasks input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksInput {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub container_instance: Option<String>,
    #[serde(default)]
    pub family: Option<String>,
    #[serde(default)]
    pub started_by: Option<String>,
    #[serde(default)]
    pub service_name: Option<String>,
    /// RUNNING (the default), PENDING or STOPPED.
    #[serde(default)]
    pub desired_status: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<u32>,
}

impl ListTasksInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(s) = self.desired_status.as_deref() {
            if !["RUNNING", "PENDING", "STOPPED"].contains(&s) {
                return Err(ApiError::field(
                    Exception::InvalidParameterException,
                    "desiredStatus",
                    format!("unknown value '{s}': expected RUNNING, PENDING or STOPPED"),
                ));
            }
        }
        check_max_results(self.max_results)
    }
}

pub(crate) fn check_max_results(max: Option<u32>) -> Result<(), ApiError> {
    match max {
        Some(m) if !(1..=100).contains(&m) => Err(ApiError::field(
            Exception::InvalidParameterException,
            "maxResults",
            format!("{m} is out of range: it must be between 1 and 100"),
        )),
        _ => Ok(()),
    }
}

/// ECS's ListTasks output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListTasksOutput {
    pub task_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

//! The inputs and outputs of ECS's service calls (CreateService,
//! UpdateService, DeleteService, DescribeServices, ListServices), in ECS's
//! JSON, with the rules that need no state. Fields about AWS infrastructure
//! (load balancers, service registries, capacity providers, platform
//! version, Service Connect, VPC Lattice) are accepted and stored so that
//! ECS scripts run unchanged.

use serde::{Deserialize, Serialize};

use super::config::DeploymentConfiguration;
use super::model::{SchedulingStrategy, Service};
use crate::error::{ApiError, Exception};
use crate::placement::{self, PlacementConstraintInput, PlacementStrategyInput};
use crate::task::{Failure, NetworkConfiguration};
use crate::task_definition::Tag;

/// ECS's longest healthCheckGracePeriodSeconds (2³¹ − 1).
pub const MAX_GRACE_PERIOD_SECONDS: u32 = i32::MAX as u32;
/// DescribeServices takes at most 10 services, as ECS.
pub const MAX_DESCRIBE_SERVICES: usize = 10;

/// ECS's CreateService input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateServiceInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service_name: String,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub desired_count: Option<u32>,
    #[serde(default)]
    pub client_token: Option<String>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub scheduling_strategy: Option<SchedulingStrategy>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub deployment_controller: Option<DeploymentControllerInput>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<PlacementConstraintInput>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<PlacementStrategyInput>>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    #[serde(default)]
    pub tags: Option<Vec<Tag>>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default)]
    pub load_balancers: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub service_registries: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub service_connect_configuration: Option<serde_json::Value>,
    #[serde(default)]
    pub volume_configurations: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub availability_zone_rebalancing: Option<String>,
}

/// ECS's `deploymentController` in a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentControllerInput {
    #[serde(rename = "type")]
    pub kind: String,
}

/// ECS's UpdateService input.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateServiceInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service: String,
    #[serde(default)]
    pub desired_count: Option<u32>,
    #[serde(default)]
    pub task_definition: Option<String>,
    #[serde(default)]
    pub deployment_configuration: Option<DeploymentConfiguration>,
    #[serde(default)]
    pub placement_constraints: Option<Vec<PlacementConstraintInput>>,
    #[serde(default)]
    pub placement_strategy: Option<Vec<PlacementStrategyInput>>,
    #[serde(default)]
    pub network_configuration: Option<NetworkConfiguration>,
    #[serde(default)]
    pub health_check_grace_period_seconds: Option<u32>,
    #[serde(default)]
    pub force_new_deployment: Option<bool>,
    #[serde(default)]
    pub enable_execute_command: Option<bool>,
    #[serde(default, rename = "enableECSManagedTags")]
    pub enable_ecs_managed_tags: Option<bool>,
    #[serde(default)]
    pub propagate_tags: Option<String>,
    #[serde(default)]
    pub load_balancers: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub service_registries: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub capacity_provider_strategy: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub platform_version: Option<String>,
    #[serde(default)]
    pub deployment_controller: Option<DeploymentControllerInput>,
    #[serde(default)]
    pub service_connect_configuration: Option<serde_json::Value>,
    #[serde(default)]
    pub volume_configurations: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub vpc_lattice_configurations: Option<Vec<serde_json::Value>>,
    #[serde(default)]
    pub availability_zone_rebalancing: Option<String>,
}

/// ECS's DeleteService input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeleteServiceInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub service: String,
    #[serde(default)]
    pub force: Option<bool>,
}

/// ECS's DescribeServices input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub services: Vec<String>,
    /// `["TAGS"]` adds the services' tags.
    #[serde(default)]
    pub include: Option<Vec<String>>,
}

/// ECS's ListServices input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<u32>,
    #[serde(default)]
    pub launch_type: Option<String>,
    #[serde(default)]
    pub scheduling_strategy: Option<SchedulingStrategy>,
    #[serde(default)]
    pub resource_management_type: Option<String>,
}

/// CreateService, UpdateService and DeleteService answer with the service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceOutput {
    pub service: Service,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeServicesOutput {
    pub services: Vec<Service>,
    pub failures: Vec<Failure>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListServicesOutput {
    pub service_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, field, message)
}

/// ECS: up to 255 letters, numbers, underscores and hyphens.
pub fn validate_service_name(name: &str, field: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(ApiError::field(
            Exception::ClientException,
            field,
            "is required",
        ));
    }
    if name.chars().count() > 255 {
        return Err(invalid(field, "is longer than 255 characters"));
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_'))
    {
        return Err(invalid(
            field,
            format!("'{name}' contains '{bad}': only letters, numbers, hyphens and underscores are allowed"),
        ));
    }
    Ok(())
}

fn validate_launch_type(launch_type: Option<&str>) -> Result<(), ApiError> {
    match launch_type {
        None | Some("EC2" | "EXTERNAL" | "FARGATE") => Ok(()),
        Some(other) => Err(invalid(
            "launchType",
            format!("unknown value '{other}': expected EC2, EXTERNAL or FARGATE"),
        )),
    }
}

fn validate_propagate_tags(value: Option<&str>) -> Result<(), ApiError> {
    match value {
        None | Some("TASK_DEFINITION" | "SERVICE" | "NONE") => Ok(()),
        Some(other) => Err(invalid(
            "propagateTags",
            format!("unknown value '{other}': expected TASK_DEFINITION, SERVICE or NONE"),
        )),
    }
}

fn validate_controller(controller: Option<&DeploymentControllerInput>) -> Result<(), ApiError> {
    match controller.map(|c| c.kind.as_str()) {
        None | Some("ECS") => Ok(()),
        Some(kind @ ("CODE_DEPLOY" | "EXTERNAL")) => Err(ApiError::field(
            Exception::UnsupportedFeatureException,
            "deploymentController.type",
            format!("{kind} deployments are not supported by orca: use ECS (rolling)"),
        )),
        Some(other) => Err(invalid(
            "deploymentController.type",
            format!("unknown value '{other}': expected ECS, CODE_DEPLOY or EXTERNAL"),
        )),
    }
}

fn validate_placement(
    constraints: Option<&Vec<PlacementConstraintInput>>,
    strategies: Option<&Vec<PlacementStrategyInput>>,
    strategy: SchedulingStrategy,
) -> Result<(), ApiError> {
    if let Some(c) = constraints {
        placement::parse_constraints(c, "placementConstraints")?;
    }
    if let Some(s) = strategies {
        if strategy == SchedulingStrategy::Daemon && !s.is_empty() {
            return Err(invalid(
                "placementStrategy",
                "a DAEMON service takes no placement strategy: it runs one task on every matching instance",
            ));
        }
        placement::parse_strategies(s, "placementStrategy")?;
    }
    Ok(())
}

fn validate_grace(seconds: Option<u32>) -> Result<(), ApiError> {
    match seconds {
        Some(s) if s > MAX_GRACE_PERIOD_SECONDS => Err(invalid(
            "healthCheckGracePeriodSeconds",
            format!("{s} is out of range: at most {MAX_GRACE_PERIOD_SECONDS}"),
        )),
        _ => Ok(()),
    }
}

impl CreateServiceInput {
    pub fn scheduling_strategy(&self) -> SchedulingStrategy {
        self.scheduling_strategy.unwrap_or_default()
    }

    /// The rules that need no state.
    pub fn validate(&self) -> Result<(), ApiError> {
        validate_service_name(&self.service_name, "serviceName")?;
        let strategy = self.scheduling_strategy();
        if self.task_definition.as_deref().is_none_or(str::is_empty) {
            return Err(ApiError::field(
                Exception::ClientException,
                "taskDefinition",
                "is required",
            ));
        }
        match (strategy, self.desired_count) {
            (SchedulingStrategy::Replica, None) => {
                return Err(ApiError::field(
                    Exception::ClientException,
                    "desiredCount",
                    "is required for a REPLICA service",
                ))
            }
            (SchedulingStrategy::Daemon, Some(_)) => {
                return Err(invalid(
                    "desiredCount",
                    "a DAEMON service takes no desiredCount: it runs one task on every matching instance",
                ))
            }
            _ => {}
        }
        if let Some(token) = &self.client_token {
            if token.chars().count() > 36 {
                return Err(invalid("clientToken", "is longer than 36 characters"));
            }
        }
        validate_launch_type(self.launch_type.as_deref())?;
        if strategy == SchedulingStrategy::Daemon && self.launch_type.as_deref() == Some("FARGATE")
        {
            return Err(invalid(
                "schedulingStrategy",
                "DAEMON services cannot use the FARGATE launch type",
            ));
        }
        if let Some(c) = &self.deployment_configuration {
            c.validate(strategy, "deploymentConfiguration")?;
        }
        validate_controller(self.deployment_controller.as_ref())?;
        validate_placement(
            self.placement_constraints.as_ref(),
            self.placement_strategy.as_ref(),
            strategy,
        )?;
        validate_grace(self.health_check_grace_period_seconds)?;
        validate_propagate_tags(self.propagate_tags.as_deref())?;
        if let Some(tags) = &self.tags {
            crate::task_definition::validate_tags(tags, "tags")?;
        }
        Ok(())
    }
}

impl UpdateServiceInput {
    /// The rules that need no state; those that depend on the service's
    /// scheduling strategy are checked against the stored service.
    pub fn validate(&self, strategy: SchedulingStrategy) -> Result<(), ApiError> {
        if self.service.is_empty() {
            return Err(ApiError::field(
                Exception::ClientException,
                "service",
                "is required",
            ));
        }
        if self.task_definition.as_deref() == Some("") {
            return Err(invalid("taskDefinition", "must not be empty"));
        }
        if strategy == SchedulingStrategy::Daemon && self.desired_count.is_some() {
            return Err(invalid(
                "desiredCount",
                "a DAEMON service takes no desiredCount: it runs one task on every matching instance",
            ));
        }
        if let Some(c) = &self.deployment_configuration {
            c.validate(strategy, "deploymentConfiguration")?;
        }
        validate_controller(self.deployment_controller.as_ref())?;
        validate_placement(
            self.placement_constraints.as_ref(),
            self.placement_strategy.as_ref(),
            strategy,
        )?;
        validate_grace(self.health_check_grace_period_seconds)?;
        validate_propagate_tags(self.propagate_tags.as_deref())
    }
}

impl DescribeServicesInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.services.is_empty() {
            return Err(ApiError::field(
                Exception::ClientException,
                "services",
                "is required",
            ));
        }
        if self.services.len() > MAX_DESCRIBE_SERVICES {
            return Err(invalid(
                "services",
                format!(
                    "{} services were given; at most {MAX_DESCRIBE_SERVICES} may be described at once",
                    self.services.len()
                ),
            ));
        }
        if let Some(bad) = self.include.iter().flatten().find(|i| i.as_str() != "TAGS") {
            return Err(invalid(
                "include",
                format!("unknown value '{bad}': expected TAGS"),
            ));
        }
        Ok(())
    }
}

impl ListServicesInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if let Some(max) = self.max_results {
            if !(1..=100).contains(&max) {
                return Err(invalid(
                    "maxResults",
                    format!("{max} is out of range: it must be between 1 and 100"),
                ));
            }
        }
        validate_launch_type(self.launch_type.as_deref())
    }
}

//! The flags create-service and update-service share, named as `aws ecs`
//! names them, and their ECS input keys.

use super::shape;
use crate::exit::CliError;
use crate::input;
use serde_json::{Map, Value};

#[derive(clap::Args, Debug, Default)]
pub struct ServiceFlags {
    /// JSON or shorthand: `minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}`.
    #[arg(long)]
    pub deployment_configuration: Option<String>,
    /// JSON or shorthand: `awsvpcConfiguration={subnets=[s1],assignPublicIp=DISABLED}`.
    #[arg(long)]
    pub network_configuration: Option<String>,
    #[arg(long)]
    pub health_check_grace_period_seconds: Option<u32>,
    #[arg(long, num_args = 1..)]
    pub placement_constraints: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub placement_strategy: Vec<String>,
    /// TASK_DEFINITION, SERVICE or NONE.
    #[arg(long)]
    pub propagate_tags: Option<String>,
    #[arg(long, overrides_with = "no_enable_execute_command")]
    pub enable_execute_command: bool,
    #[arg(long, overrides_with = "enable_execute_command")]
    pub no_enable_execute_command: bool,
    /// Stored; orca has no load balancer yet (the service's events say so).
    #[arg(long, num_args = 1..)]
    pub load_balancers: Vec<String>,
    /// Stored; orca has no service discovery yet.
    #[arg(long, num_args = 1..)]
    pub service_registries: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub capacity_provider_strategy: Vec<String>,
    #[arg(long)]
    pub platform_version: Option<String>,
}

impl ServiceFlags {
    /// Adds the flags given to `keys`, as ECS input keys.
    pub fn add_keys(&self, keys: &mut Map<String, Value>) -> Result<(), CliError> {
        let text = |v: &Option<String>| v.clone().map(Value::String);
        keys.extend(shape::input_object([
            (
                "deploymentConfiguration",
                input::optional_structure(
                    "--deployment-configuration",
                    self.deployment_configuration.as_deref(),
                )?,
            ),
            (
                "networkConfiguration",
                input::optional_structure(
                    "--network-configuration",
                    self.network_configuration.as_deref(),
                )?,
            ),
            (
                "healthCheckGracePeriodSeconds",
                self.health_check_grace_period_seconds.map(Value::from),
            ),
            (
                "placementConstraints",
                input::optional_structures("--placement-constraints", &self.placement_constraints)?,
            ),
            (
                "placementStrategy",
                input::optional_structures("--placement-strategy", &self.placement_strategy)?,
            ),
            ("propagateTags", text(&self.propagate_tags)),
            (
                "enableExecuteCommand",
                shape::switch(self.enable_execute_command, self.no_enable_execute_command),
            ),
            (
                "loadBalancers",
                input::optional_structures("--load-balancers", &self.load_balancers)?,
            ),
            (
                "serviceRegistries",
                input::optional_structures("--service-registries", &self.service_registries)?,
            ),
            (
                "capacityProviderStrategy",
                input::optional_structures(
                    "--capacity-provider-strategy",
                    &self.capacity_provider_strategy,
                )?,
            ),
            ("platformVersion", text(&self.platform_version)),
        ]));
        Ok(())
    }
}

//! `orca create-service`: ECS's CreateService from `--cli-input-json` and/or
//! flags named as `aws ecs create-service` names them (JSON or shorthand);
//! prints ECS's output. Flags about AWS infrastructure (load balancers,
//! service registries, capacity providers) are accepted and stored.

use super::service_flags::ServiceFlags;
use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use serde_json::{Map, Value};

pub const OPERATION: &str = "CreateService";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Follow the rollout until steady state (counts and events on stderr);
    /// exit non-zero with the reason if the deployment fails or rolls back.
    #[arg(long)]
    pub wait: bool,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    #[arg(long, required_unless_present = "cli_input_json")]
    pub service_name: Option<String>,
    /// `family`, `family:revision` or a task definition ARN.
    #[arg(long)]
    pub task_definition: Option<String>,
    #[arg(long)]
    pub desired_count: Option<u32>,
    /// REPLICA (default) or DAEMON.
    #[arg(long)]
    pub scheduling_strategy: Option<String>,
    /// EC2, EXTERNAL or FARGATE (stored; orca runs every task on its nodes).
    #[arg(long)]
    pub launch_type: Option<String>,
    #[arg(long)]
    pub client_token: Option<String>,
    /// `key=k,value=v` (or JSON), one per tag.
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    #[arg(long, overrides_with = "no_enable_ecs_managed_tags")]
    pub enable_ecs_managed_tags: bool,
    #[arg(long, overrides_with = "enable_ecs_managed_tags")]
    pub no_enable_ecs_managed_tags: bool,
    /// JSON or shorthand: `type=ECS` (the only controller orca runs).
    #[arg(long)]
    pub deployment_controller: Option<String>,
    #[arg(long)]
    pub role: Option<String>,
    #[command(flatten)]
    pub shared: ServiceFlags,
}

fn flag_keys(a: &Args) -> Result<Map<String, Value>, CliError> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let mut keys = shape::input_object([
        ("cluster", text(&a.cluster)),
        ("serviceName", text(&a.service_name)),
        ("taskDefinition", text(&a.task_definition)),
        ("desiredCount", a.desired_count.map(Value::from)),
        ("schedulingStrategy", text(&a.scheduling_strategy)),
        ("launchType", text(&a.launch_type)),
        ("clientToken", text(&a.client_token)),
        ("tags", input::optional_structures("--tags", &a.tags)?),
        (
            "enableECSManagedTags",
            shape::switch(a.enable_ecs_managed_tags, a.no_enable_ecs_managed_tags),
        ),
        (
            "deploymentController",
            input::optional_structure(
                "--deployment-controller",
                a.deployment_controller.as_deref(),
            )?,
        ),
        ("role", text(&a.role)),
    ]);
    a.shared.add_keys(&mut keys)?;
    Ok(keys)
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over it.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    input::merge_cli_input(a.cli_input_json.as_deref(), flag_keys(a)?)
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = orca_api::v1::EcsJsonRequest {
        input_json: build_input(args)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.create_service(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_ecs_tutorial_command_becomes_ecs_input() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("production".into()),
            service_name: Some("web-api".into()),
            task_definition: Some("web-api:3".into()),
            desired_count: Some(3),
            launch_type: Some("FARGATE".into()),
            shared: ServiceFlags {
                network_configuration: Some("awsvpcConfiguration={subnets=[subnet-0a1b2c,subnet-0d4e5f],securityGroups=[sg-api-tasks],assignPublicIp=DISABLED}".into()),
                health_check_grace_period_seconds: Some(30),
                deployment_configuration: Some("minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}".into()),
                ..ServiceFlags::default()
            },
            ..Args::default()
        };
        let input: Value = serde_json::from_str(&build_input(&a)?)?;
        assert_eq!(
            input,
            json!({
                "cluster": "production",
                "serviceName": "web-api",
                "taskDefinition": "web-api:3",
                "desiredCount": 3,
                "launchType": "FARGATE",
                "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200,
                    "deploymentCircuitBreaker": {"enable": true, "rollback": true}},
                "networkConfiguration": {"awsvpcConfiguration": {
                    "subnets": ["subnet-0a1b2c", "subnet-0d4e5f"],
                    "securityGroups": ["sg-api-tasks"], "assignPublicIp": "DISABLED"}},
                "healthCheckGracePeriodSeconds": 30
            })
        );
        Ok(())
    }
}

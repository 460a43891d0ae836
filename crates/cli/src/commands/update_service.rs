//! `orca update-service`: ECS's UpdateService from `--cli-input-json` and/or
//! flags named as `aws ecs update-service` names them; prints ECS's output.

use super::service_flags::ServiceFlags;
use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use serde_json::{Map, Value};

pub const OPERATION: &str = "UpdateService";

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
    /// The service's name or ARN.
    #[arg(long, required_unless_present = "cli_input_json")]
    pub service: Option<String>,
    #[arg(long)]
    pub desired_count: Option<u32>,
    /// `family`, `family:revision` or a task definition ARN.
    #[arg(long)]
    pub task_definition: Option<String>,
    /// Start a new deployment even if nothing else changed.
    #[arg(long, overrides_with = "no_force_new_deployment")]
    pub force_new_deployment: bool,
    #[arg(long, overrides_with = "force_new_deployment")]
    pub no_force_new_deployment: bool,
    #[command(flatten)]
    pub shared: ServiceFlags,
}

fn flag_keys(a: &Args) -> Result<Map<String, Value>, CliError> {
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let mut keys = shape::input_object([
        ("cluster", text(&a.cluster)),
        ("service", text(&a.service)),
        ("desiredCount", a.desired_count.map(Value::from)),
        ("taskDefinition", text(&a.task_definition)),
        (
            "forceNewDeployment",
            shape::switch(a.force_new_deployment, a.no_force_new_deployment),
        ),
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
            c.update_service(r).await
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
            service: Some("web-api".into()),
            task_definition: Some("web-api:4".into()),
            shared: ServiceFlags {
                deployment_configuration: Some(
                    "minimumHealthyPercent=50,maximumPercent=200".into(),
                ),
                ..ServiceFlags::default()
            },
            force_new_deployment: true,
            ..Args::default()
        };
        let input: Value = serde_json::from_str(&build_input(&a)?)?;
        assert_eq!(
            input,
            json!({
                "cluster": "production",
                "service": "web-api",
                "taskDefinition": "web-api:4",
                "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200},
                "forceNewDeployment": true
            })
        );
        Ok(())
    }
}

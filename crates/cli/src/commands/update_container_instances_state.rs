//! `orca update-container-instances-state [--cluster C] --container-instances I1 I2 ...
//! --status DRAINING|ACTIVE`, and/or `--cli-input-json`.

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use orca_api::v1::EcsJsonRequest;
use serde_json::Value;

pub const OPERATION: &str = "UpdateContainerInstancesState";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// Container instance IDs or ARNs (up to 10).
    #[arg(long, num_args = 1.., required_unless_present = "cli_input_json")]
    pub container_instances: Vec<String>,
    /// DRAINING (no new placements; standalone tasks there keep running) or ACTIVE.
    #[arg(long, required_unless_present = "cli_input_json")]
    pub status: Option<String>,
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over it.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    let flags = shape::input_object([
        ("cluster", a.cluster.clone().map(Value::String)),
        (
            "containerInstances",
            input::optional_strings("--container-instances", &a.container_instances)?,
        ),
        ("status", a.status.clone().map(Value::String)),
    ]);
    input::merge_cli_input(a.cli_input_json.as_deref(), flags)
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = EcsJsonRequest {
        input_json: build_input(args)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.update_container_instances_state(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn flags_build_the_input() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("prod".into()),
            container_instances: vec!["9c1e".into(), "[\"0f3a\", \"77\"]".into()],
            status: Some("DRAINING".into()),
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            json!({"cluster": "prod", "containerInstances": ["9c1e", "0f3a", "77"], "status": "DRAINING"})
                .to_string()
        );
        let doc = "{\"containerInstances\": [\"a\"], \"status\": \"DRAINING\"}";
        let a = Args {
            cli_input_json: Some(doc.into()),
            status: Some("ACTIVE".into()),
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            json!({"containerInstances": ["a"], "status": "ACTIVE"}).to_string()
        );
        Ok(())
    }
}

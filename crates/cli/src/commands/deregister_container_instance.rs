//! `orca deregister-container-instance [--cluster C] --container-instance I
//! [--force | --no-force]`, and/or `--cli-input-json`.

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use orca_api::v1::EcsJsonRequest;
use serde_json::Value;

pub const OPERATION: &str = "DeregisterContainerInstance";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// The container instance's ID or ARN.
    #[arg(long, required_unless_present = "cli_input_json")]
    pub container_instance: Option<String>,
    /// Deregister even while tasks are placed there (each is asked to stop).
    #[arg(long, overrides_with = "no_force")]
    pub force: bool,
    /// Refuse while tasks are placed there (the default).
    #[arg(long, overrides_with = "force")]
    pub no_force: bool,
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over
/// it; `force` only when `--force` or `--no-force` was given.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    let flags = shape::input_object([
        ("cluster", a.cluster.clone().map(Value::String)),
        (
            "containerInstance",
            a.container_instance.clone().map(Value::String),
        ),
        ("force", shape::switch(a.force, a.no_force)),
    ]);
    input::merge_cli_input(a.cli_input_json.as_deref(), flags)
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = EcsJsonRequest {
        input_json: build_input(args)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.deregister_container_instance(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn with(force: bool, no_force: bool) -> Args {
        Args {
            cluster: Some("prod".into()),
            container_instance: Some("9c1e".into()),
            force,
            no_force,
            ..Args::default()
        }
    }

    #[test]
    fn force_is_sent_only_when_given() -> anyhow::Result<()> {
        assert_eq!(
            build_input(&with(false, false))?,
            json!({"cluster": "prod", "containerInstance": "9c1e"}).to_string()
        );
        assert_eq!(
            build_input(&with(true, false))?,
            json!({"cluster": "prod", "containerInstance": "9c1e", "force": true}).to_string()
        );
        assert_eq!(
            build_input(&with(false, true))?,
            json!({"cluster": "prod", "containerInstance": "9c1e", "force": false}).to_string()
        );
        let a = Args {
            cli_input_json: Some("{\"containerInstance\": \"a\", \"force\": true}".into()),
            no_force: true,
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            json!({"containerInstance": "a", "force": false}).to_string()
        );
        Ok(())
    }
}

//! `orca delete-attributes [--cluster C] --attributes name=N,targetId=ID ...`
//! (shorthand or JSON, up to 10), and/or `--cli-input-json`. ECS matches by
//! name on the target, so `value` may be left out.

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use orca_api::v1::EcsJsonRequest;
use serde_json::Value;

pub const OPERATION: &str = "DeleteAttributes";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// `name=N,targetId=ID` (or JSON), one per attribute; targetId is the
    /// container instance's ID or ARN and targetType defaults to container-instance.
    #[arg(long, num_args = 1.., required_unless_present = "cli_input_json")]
    pub attributes: Vec<String>,
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over it.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    shape::attributes_call_input(
        a.cli_input_json.as_deref(),
        a.cluster.as_deref(),
        &a.attributes,
    )
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = EcsJsonRequest {
        input_json: build_input(args)?,
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.delete_attributes(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn attributes_default_their_target_type_and_need_no_value() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("prod".into()),
            attributes: vec![
                "name=stack,targetId=9c1e".into(),
                "name=zone,value=b,targetType=other,targetId=9c1e".into(),
            ],
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            json!({
                "cluster": "prod",
                "attributes": [
                    {"name": "stack", "targetId": "9c1e", "targetType": "container-instance"},
                    // A targetType given is passed on for the controller to judge.
                    {"name": "zone", "value": "b", "targetType": "other", "targetId": "9c1e"}
                ]
            })
            .to_string()
        );
        let a = Args {
            cli_input_json: Some("{\"attributes\": [{\"name\": \"stack\"}]}".into()),
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            "{\"attributes\": [{\"name\": \"stack\"}]}"
        );
        let a = Args {
            attributes: vec!["targetId=9c1e".into()],
            ..Args::default()
        };
        assert!(
            matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("'--attributes'") && m.contains("'name'"))
        );
        Ok(())
    }
}

//! `orca put-attributes [--cluster C] --attributes name=N,value=V,targetType=container-instance,targetId=ID ...`
//! (shorthand or JSON, up to 10), and/or `--cli-input-json`.

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use orca_api::v1::EcsJsonRequest;
use serde_json::Value;

pub const OPERATION: &str = "PutAttributes";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    /// Name or ARN; defaults to `default`.
    #[arg(long)]
    pub cluster: Option<String>,
    /// `name=N,value=V,targetType=container-instance,targetId=ID` (or JSON), one
    /// per attribute; targetId is the container instance's ID or ARN and
    /// targetType defaults to container-instance.
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
            c.put_attributes(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(a: &Args) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&build_input(a)?)?)
    }

    #[test]
    fn shorthand_attributes_become_ecs_attributes() -> anyhow::Result<()> {
        let a = Args {
            cluster: Some("prod".into()),
            attributes: vec![
                "name=stack,value=prod,targetType=container-instance,targetId=9c1e".into(),
                // No targetType: container-instance. Digits stay strings.
                "name=rack,value=42,targetId=0012".into(),
                "[{\"name\": \"zone\", \"value\": \"b\", \"targetId\": \"arn:orca:ecs:local:000000000000:container-instance/prod/9c1e\"}]".into(),
            ],
            ..Args::default()
        };
        assert_eq!(
            build_input(&a)?,
            json!({
                "cluster": "prod",
                "attributes": [
                    {"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": "9c1e"},
                    {"name": "rack", "value": "42", "targetId": "0012", "targetType": "container-instance"},
                    {"name": "zone", "value": "b", "targetId": "arn:orca:ecs:local:000000000000:container-instance/prod/9c1e", "targetType": "container-instance"}
                ]
            })
            .to_string()
        );
        Ok(())
    }

    #[test]
    fn cli_input_json_is_verbatim_unless_flags_override() -> anyhow::Result<()> {
        let doc = "{\"cluster\": \"c\", \"attributes\": [{\"name\": \"a\", \"value\": \"1\", \"targetId\": \"i\"}]}";
        let a = Args {
            cli_input_json: Some(doc.into()),
            ..Args::default()
        };
        assert_eq!(build_input(&a)?, doc);
        let a = Args {
            cli_input_json: Some(doc.into()),
            attributes: vec!["name=b,value=2,targetId=j".into()],
            ..Args::default()
        };
        assert_eq!(
            parsed(&a)?,
            json!({"cluster": "c", "attributes": [{"name": "b", "value": "2", "targetId": "j", "targetType": "container-instance"}]})
        );
        Ok(())
    }

    #[test]
    fn bad_attributes_are_usage_errors_naming_the_flag() {
        for bad in ["value=1,targetId=i", "name", "[\"stack\"]", "name={a=1}"] {
            let a = Args {
                attributes: vec![bad.into()],
                ..Args::default()
            };
            assert!(
                matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("'--attributes'")),
                "{bad}"
            );
        }
    }
}

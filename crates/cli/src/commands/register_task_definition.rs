//! `orca register-task-definition`: a task definition from `--cli-input-json`
//! (sent verbatim) and/or from flags (which override the JSON's keys).

use super::{shape, Ctx};
use crate::exit::CliError;
use crate::failover::Call;
use crate::input;
use orca_api::v1::RegisterTaskDefinitionRequest;
use serde_json::{Map, Value};

pub const OPERATION: &str = "RegisterTaskDefinition";

#[derive(clap::Args, Debug, Default)]
pub struct Args {
    /// The whole input as JSON (inline or file://path); flags override its keys.
    #[arg(long)]
    pub cli_input_json: Option<String>,
    #[arg(long, required_unless_present = "cli_input_json")]
    pub family: Option<String>,
    /// A JSON array, or one shorthand structure per container.
    #[arg(long, num_args = 1.., required_unless_present = "cli_input_json")]
    pub container_definitions: Vec<String>,
    #[arg(long)]
    pub task_role_arn: Option<String>,
    #[arg(long)]
    pub execution_role_arn: Option<String>,
    #[arg(long)]
    pub network_mode: Option<String>,
    #[arg(long, num_args = 1..)]
    pub volumes: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub placement_constraints: Vec<String>,
    #[arg(long, num_args = 1..)]
    pub requires_compatibilities: Vec<String>,
    #[arg(long)]
    pub cpu: Option<String>,
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    #[arg(long)]
    pub pid_mode: Option<String>,
    #[arg(long)]
    pub ipc_mode: Option<String>,
    #[arg(long)]
    pub proxy_configuration: Option<String>,
    #[arg(long, num_args = 1..)]
    pub inference_accelerators: Vec<String>,
    #[arg(long)]
    pub ephemeral_storage: Option<String>,
    #[arg(long)]
    pub runtime_platform: Option<String>,
}

/// The flags given, as ECS input keys, in ECS's order.
fn flag_keys(a: &Args) -> Result<Map<String, Value>, CliError> {
    let mut m = Map::new();
    let text = |v: &Option<String>| v.clone().map(Value::String);
    let structs = |flag: &str, v: &[String]| -> Result<Option<Value>, CliError> {
        if v.is_empty() {
            Ok(None)
        } else {
            input::structure_list(flag, v).map(Some)
        }
    };
    let strings = |flag: &str, v: &[String]| -> Result<Option<Value>, CliError> {
        if v.is_empty() {
            Ok(None)
        } else {
            input::string_list(flag, v).map(Some)
        }
    };
    let structure = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|raw| input::structure(flag, raw))
            .transpose()
    };
    let entries = [
        ("family", text(&a.family)),
        ("taskRoleArn", text(&a.task_role_arn)),
        ("executionRoleArn", text(&a.execution_role_arn)),
        ("networkMode", text(&a.network_mode)),
        (
            "containerDefinitions",
            structs("--container-definitions", &a.container_definitions)?,
        ),
        ("volumes", structs("--volumes", &a.volumes)?),
        (
            "placementConstraints",
            structs("--placement-constraints", &a.placement_constraints)?,
        ),
        (
            "requiresCompatibilities",
            strings("--requires-compatibilities", &a.requires_compatibilities)?,
        ),
        ("cpu", text(&a.cpu)),
        ("memory", text(&a.memory)),
        ("tags", structs("--tags", &a.tags)?),
        ("pidMode", text(&a.pid_mode)),
        ("ipcMode", text(&a.ipc_mode)),
        (
            "proxyConfiguration",
            structure("--proxy-configuration", &a.proxy_configuration)?,
        ),
        (
            "inferenceAccelerators",
            structs("--inference-accelerators", &a.inference_accelerators)?,
        ),
        (
            "ephemeralStorage",
            structure("--ephemeral-storage", &a.ephemeral_storage)?,
        ),
        (
            "runtimePlatform",
            structure("--runtime-platform", &a.runtime_platform)?,
        ),
    ];
    for (key, value) in entries {
        if let Some(v) = value {
            m.insert(key.to_string(), v);
        }
    }
    Ok(m)
}

/// The `input_json` to send: `--cli-input-json` with the flags' keys laid over it.
pub fn build_input(a: &Args) -> Result<String, CliError> {
    input::merge_cli_input(a.cli_input_json.as_deref(), flag_keys(a)?)
}

pub async fn run(args: &Args, ctx: &Ctx) -> anyhow::Result<Value> {
    let request = RegisterTaskDefinitionRequest {
        input_json: build_input(args)?,
        registered_by: String::new(),
    };
    let reply = ctx
        .ecs(OPERATION, Call::Write, request, |mut c, r| async move {
            c.register_task_definition(r).await
        })
        .await?;
    shape::task_definition_reply(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parsed(a: &Args) -> anyhow::Result<Value> {
        Ok(serde_json::from_str(&build_input(a)?)?)
    }

    #[test]
    fn flags_build_the_input_in_ecs_order() -> anyhow::Result<()> {
        let a = Args {
            family: Some("web".into()),
            container_definitions: vec![
                "name=web,image=nginx,memory=128,portMappings=[{containerPort=80}]".into(),
                "name=side,image=busybox,essential=false".into(),
            ],
            cpu: Some("256".into()),
            requires_compatibilities: vec!["EC2".into(), "FARGATE".into()],
            tags: vec!["key=team,value=42".into()],
            runtime_platform: Some("{\"operatingSystemFamily\": \"LINUX\"}".into()),
            ephemeral_storage: Some("sizeInGiB=21".into()),
            ..Args::default()
        };
        let got = build_input(&a)?;
        assert_eq!(
            got,
            json!({
                "family": "web",
                "containerDefinitions": [
                    {"name": "web", "image": "nginx", "memory": 128, "portMappings": [{"containerPort": 80}]},
                    {"name": "side", "image": "busybox", "essential": false}
                ],
                "requiresCompatibilities": ["EC2", "FARGATE"],
                "cpu": "256",
                "tags": [{"key": "team", "value": "42"}],
                "ephemeralStorage": {"sizeInGiB": 21},
                "runtimePlatform": {"operatingSystemFamily": "LINUX"}
            })
            .to_string()
        );
        Ok(())
    }

    #[test]
    fn cli_input_json_is_verbatim_unless_flags_override() -> anyhow::Result<()> {
        let doc = "{ \"family\": \"a\",\n  \"memory\": \"512\", \"containerDefinitions\": [] }";
        let a = Args {
            cli_input_json: Some(doc.into()),
            ..Args::default()
        };
        assert_eq!(build_input(&a)?, doc);

        let a = Args {
            cli_input_json: Some(doc.into()),
            family: Some("b".into()),
            container_definitions: vec!["[{\"name\": \"x\", \"image\": \"busybox\"}]".into()],
            pid_mode: Some("host".into()),
            ..Args::default()
        };
        assert_eq!(
            parsed(&a)?,
            json!({"family": "b", "memory": "512", "containerDefinitions": [{"name": "x", "image": "busybox"}], "pidMode": "host"})
        );
        let keys: Vec<String> = parsed(&a)?
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            ["family", "memory", "containerDefinitions", "pidMode"]
        );
        Ok(())
    }

    #[test]
    fn bad_inputs_are_usage_errors_naming_the_flag() {
        let a = Args {
            cli_input_json: Some("file:///nonexistent/td.json".into()),
            ..Args::default()
        };
        assert!(
            matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("/nonexistent/td.json"))
        );
        let a = Args {
            family: Some("f".into()),
            container_definitions: vec!["name".into()],
            ..Args::default()
        };
        assert!(
            matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("--container-definitions"))
        );
        let a = Args {
            cli_input_json: Some("{not json".into()),
            ..Args::default()
        };
        assert!(
            matches!(build_input(&a), Err(CliError::Usage(m)) if m.contains("--cli-input-json"))
        );
    }
}

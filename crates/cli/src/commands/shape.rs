//! Between wire types and ECS's JSON: clusters, failures and tags as `aws ecs`
//! prints them, the tag and setting flags turned into wire types, and the
//! JSON documents the task and container-instance calls carry.

use crate::exit::CliError;
use crate::input;
use crate::paginate::Page;
use orca_api::v1::{ClusterSetting, EcsJsonReply, EcsJsonRequest, Tag};
use serde_json::{Map, Value};

pub use orca_api::ecs_json::{cluster, failures};

/// A task-definition JSON document from a reply, re-emitted unchanged.
pub fn task_definition(json: &str) -> anyhow::Result<Value> {
    serde_json::from_str(json)
        .map_err(|e| anyhow::anyhow!("the controller returned an invalid task definition: {e}"))
}

/// `{"taskDefinition": {...}, "tags": [...]}`, tags only when there are some.
pub fn task_definition_reply(reply: &orca_api::v1::TaskDefinitionReply) -> anyhow::Result<Value> {
    orca_api::ecs_json::task_definition_reply(reply)
        .map_err(|e| anyhow::anyhow!("the controller returned an invalid task definition: {e}"))
}

/// The request of a JSON-carrying call: ECS's input object.
pub fn ecs_json_request(input: Map<String, Value>) -> EcsJsonRequest {
    EcsJsonRequest {
        input_json: Value::Object(input).to_string(),
    }
}

/// The output document of a JSON-carrying call, re-emitted unchanged.
pub fn ecs_json(reply: &EcsJsonReply) -> anyhow::Result<Value> {
    serde_json::from_str(&reply.output_json)
        .map_err(|e| anyhow::anyhow!("the controller returned invalid JSON: {e}"))
}

/// An input object from `(key, value)` pairs, leaving out absent values.
pub fn input_object<'a>(
    entries: impl IntoIterator<Item = (&'a str, Option<Value>)>,
) -> Map<String, Value> {
    entries
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k.to_string(), v)))
        .collect()
}

/// A page token as an input value: `None` for the first page.
pub fn page_token(token: String) -> Option<Value> {
    (!token.is_empty()).then_some(Value::String(token))
}

/// A page size as an input value: `None` (the service's default) for 0.
pub fn page_size(max_results: u32) -> Option<Value> {
    (max_results > 0).then_some(Value::from(max_results))
}

/// One page of a JSON list output: the strings under `key` and `nextToken`.
pub fn json_page(output: &Value, key: &str) -> anyhow::Result<Page> {
    let page = json_value_page(output, key)?;
    Ok(Page {
        items: page
            .items
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect(),
        next_token: page.next_token,
    })
}

/// One page of a JSON list output whose items are objects (ListAttributes'
/// `attributes`): the items under `key`, unchanged, and `nextToken`.
pub fn json_value_page(output: &Value, key: &str) -> anyhow::Result<Page<Value>> {
    let items = output
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow::anyhow!("the controller's reply has no '{key}' list"))?
        .clone();
    let next_token = output
        .get("nextToken")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    Ok(Page { items, next_token })
}

/// `--x` / `--no-x` as an input value: absent when neither was given.
pub fn switch(yes: bool, no: bool) -> Option<Value> {
    match (yes, no) {
        (true, _) => Some(Value::Bool(true)),
        (false, true) => Some(Value::Bool(false)),
        (false, false) => None,
    }
}

/// The `targetType` an attribute flag's item gets when it names none: the
/// only one ECS's attribute calls know.
pub const CONTAINER_INSTANCE_TARGET: &str = "container-instance";

/// `--attributes name=stack,value=prod,targetId=ID ...` (shorthand or JSON) as
/// ECS's `attributes` list; `None` when the flag was not given. Like
/// botocore, each item must be a structure with a `name`; `name`, `value`,
/// The input of PutAttributes and DeleteAttributes (the same shape):
/// `--cli-input-json` with `--cluster` and `--attributes` laid over it.
pub fn attributes_call_input(
    cli_input_json: Option<&str>,
    cluster: Option<&str>,
    attributes: &[String],
) -> Result<String, CliError> {
    let flags = input_object([
        ("cluster", cluster.map(|c| Value::String(c.to_string()))),
        ("attributes", attributes_flag("--attributes", attributes)?),
    ]);
    input::merge_cli_input(cli_input_json, flags)
}

/// `targetType` and `targetId` are strings (a number or boolean is written
/// out), and an item without `targetType` gets [`CONTAINER_INSTANCE_TARGET`].
/// Anything else in an item is passed on for the controller to judge.
pub fn attributes_flag(flag: &str, values: &[String]) -> Result<Option<Value>, CliError> {
    let Some(Value::Array(items)) = input::optional_structures(flag, values)? else {
        return Ok(None);
    };
    let bad = |i: usize, why: &str| {
        CliError::usage(format!("Error parsing parameter '{flag}': item {i}: {why}"))
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let Value::Object(mut m) = item else {
            return Err(bad(
                i,
                "expected a structure like name=N,value=V,targetId=ID",
            ));
        };
        if !m.contains_key("name") {
            return Err(bad(i, "missing required key 'name'"));
        }
        for key in ["name", "value", "targetType", "targetId"] {
            match m.get(key) {
                None | Some(Value::String(_)) => {}
                Some(v @ (Value::Number(_) | Value::Bool(_))) => {
                    let text = v.to_string();
                    m.insert(key.to_string(), Value::String(text));
                }
                Some(_) => return Err(bad(i, &format!("'{key}' must be a string"))),
            }
        }
        if !m.contains_key("targetType") {
            m.insert(
                "targetType".to_string(),
                Value::String(CONTAINER_INSTANCE_TARGET.to_string()),
            );
        }
        out.push(Value::Object(m));
    }
    Ok(Some(Value::Array(out)))
}

/// Reads a string field of a flag's structure; numbers and booleans are written out.
fn field(flag: &str, item: &Value, key: &str) -> Result<String, CliError> {
    match item.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Ok(v.to_string()),
        None | Some(Value::Null) if key == "value" => Ok(String::new()),
        _ => Err(CliError::usage(format!(
            "Error parsing parameter '{flag}': each item needs a string '{key}'"
        ))),
    }
}

/// `--tags key=a,value=b ...` (or JSON).
pub fn tags_flag(flag: &str, values: &[String]) -> Result<Vec<Tag>, CliError> {
    let Value::Array(items) = input::structure_list(flag, values)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|i| {
            Ok(Tag {
                key: field(flag, i, "key")?,
                value: field(flag, i, "value")?,
            })
        })
        .collect()
}

/// `--settings name=containerInsights,value=enabled ...` (or JSON).
pub fn settings_flag(flag: &str, values: &[String]) -> Result<Vec<ClusterSetting>, CliError> {
    let Value::Array(items) = input::structure_list(flag, values)? else {
        return Ok(Vec::new());
    };
    items
        .iter()
        .map(|i| {
            Ok(ClusterSetting {
                name: field(flag, i, "name")?,
                value: field(flag, i, "value")?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use orca_api::ecs_json::failure;
    use orca_api::v1::{Cluster, Failure};
    use serde_json::json;

    #[test]
    fn clusters_print_like_ecs() -> anyhow::Result<()> {
        let c = Cluster {
            cluster_arn: "arn".into(),
            cluster_name: "prod".into(),
            status: "ACTIVE".into(),
            settings: vec![ClusterSetting {
                name: "containerInsights".into(),
                value: "enabled".into(),
            }],
            ..Cluster::default()
        };
        let keys: Vec<String> = cluster(&c)
            .as_object()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(
            keys,
            [
                "clusterArn",
                "clusterName",
                "status",
                "registeredContainerInstancesCount",
                "runningTasksCount",
                "pendingTasksCount",
                "activeServicesCount",
                "statistics",
                "tags",
                "settings",
                "capacityProviders",
                "defaultCapacityProviderStrategy"
            ]
        );
        let f = Failure {
            arn: "a".into(),
            reason: "MISSING".into(),
            detail: String::new(),
        };
        assert_eq!(failure(&f), json!({"arn": "a", "reason": "MISSING"}));
        let t = tags_flag(
            "--tags",
            &[
                "key=a,value=1".into(),
                "[{\"key\":\"b\",\"value\":\"x\"}]".into(),
            ],
        )?;
        assert_eq!(
            t,
            vec![
                Tag {
                    key: "a".into(),
                    value: "1".into()
                },
                Tag {
                    key: "b".into(),
                    value: "x".into()
                }
            ]
        );
        assert!(
            matches!(tags_flag("--tags", &["value=1".into()]), Err(CliError::Usage(m)) if m.contains("'--tags'"))
        );
        Ok(())
    }
}

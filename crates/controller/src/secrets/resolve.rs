//! A task's `secrets[]`, resolved for the agent that runs it: each
//! `valueFrom` looked up in the applied state, opened with the cluster key,
//! a JSON key picked when asked. Done by the leader's session for the
//! tasks of that agent only, while a task is to run; a failure is a reason
//! naming the container, the entry and the reference, never a value.

use orca_core::agent_protocol::{ContainerSecret, TaskAssignment};
use orca_core::secrets::{SecretValue, ValueFrom};
use orca_core::task::TaskStatus;
use orca_core::task_definition::Timestamp;

use super::SecretsKey;
use crate::state::ClusterState;

/// The prefix of the reason a task stops with when its secrets cannot be
/// resolved (ECS's error class for it).
const REASON: &str = "ResourceInitializationError: unable to retrieve secrets";

/// Fills `secrets` (or `secrets_error`) of the assignments to run.
pub fn fill(
    state: &ClusterState,
    key: Option<&SecretsKey>,
    now: Timestamp,
    tasks: &mut [TaskAssignment],
) {
    for task in tasks
        .iter_mut()
        .filter(|t| t.desired_status == TaskStatus::Running)
    {
        match task_secrets(state, key, now, task) {
            Ok(secrets) => task.secrets = secrets,
            Err(reason) => task.secrets_error = Some(format!("{REASON}: {reason}")),
        }
    }
}

fn task_secrets(
    state: &ClusterState,
    key: Option<&SecretsKey>,
    now: Timestamp,
    task: &TaskAssignment,
) -> Result<Vec<ContainerSecret>, String> {
    let mut out = Vec::new();
    for c in &task.task_definition.spec.container_definitions {
        for (j, s) in c.secrets.iter().flatten().enumerate() {
            let at = format!("container '{}' secrets[{j}] ({})", c.name, s.name);
            let value =
                resolve(state, key, now, &s.value_from).map_err(|e| format!("{at}: {e}"))?;
            out.push(ContainerSecret {
                container: c.name.clone(),
                name: s.name.clone(),
                value,
            });
        }
    }
    Ok(out)
}

/// One `valueFrom`'s value.
pub fn resolve(
    state: &ClusterState,
    key: Option<&SecretsKey>,
    now: Timestamp,
    value_from: &str,
) -> Result<SecretValue, String> {
    let reference = ValueFrom::parse("valueFrom", value_from).map_err(|e| e.message)?;
    let found = state.resolve_value_from(&reference, now)?;
    let key = key.ok_or_else(|| {
        "the leader has no secrets key (start every controller with --secrets-key-file)".to_string()
    })?;
    let value = key
        .open(found.sealed, &found.context)
        .map_err(|e| e.to_string())?;
    let Some(json_key) = found.json_key else {
        return Ok(value);
    };
    let doc: serde_json::Value = serde_json::from_str(value.expose()).map_err(|_| {
        format!("'{value_from}' asks for key '{json_key}' but the value is not JSON")
    })?;
    match doc.get(&json_key) {
        Some(serde_json::Value::String(s)) => Ok(SecretValue::new(s.clone())),
        Some(other) => Ok(SecretValue::new(other.to_string())),
        None => Err(format!(
            "'{value_from}': the secret's JSON has no key '{json_key}'"
        )),
    }
}

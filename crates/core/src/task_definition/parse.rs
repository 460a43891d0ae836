//! JSON text → model: the size limit, the JSON-object check, unknown fields
//! and wrong types, each reported with its JSON path
//! (`containerDefinitions[0].healthCheck.interval`).
//!
//! The model cannot use `deny_unknown_fields` (the describe shape flattens
//! the spec), so unknown fields are caught with `serde_ignored`, and
//! `serde_path_to_error` supplies the path of a type error.

use serde_json::Value;

use super::model::{Tag, TaskDefinitionSpec};
use crate::error::{ApiError, Exception};
use crate::json_input::from_value;

/// Named in unknown-field errors.
const OPERATION: &str = "RegisterTaskDefinition";

/// The largest RegisterTaskDefinition input accepted, as ECS: 64 KiB.
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

/// The path used for errors about the input as a whole.
pub const ROOT_PATH: &str = "taskDefinition";

/// Reads the JSON text into a spec and its tags, without the semantic checks.
pub(crate) fn read_input(json: &str) -> Result<(TaskDefinitionSpec, Vec<Tag>), ApiError> {
    if json.len() > MAX_INPUT_BYTES {
        return Err(ApiError::field(
            Exception::ClientException,
            ROOT_PATH,
            format!(
                "the task definition is {} bytes; it must be at most {MAX_INPUT_BYTES} bytes",
                json.len()
            ),
        ));
    }
    let value: Value = serde_json::from_str(json).map_err(|e| {
        ApiError::field(
            Exception::ClientException,
            ROOT_PATH,
            format!("is not valid JSON: {e}"),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(ApiError::field(
            Exception::ClientException,
            ROOT_PATH,
            format!("must be a JSON object, not {}", kind(&value)),
        ));
    };
    let tags = object.remove("tags");
    let spec: TaskDefinitionSpec = from_value(Value::Object(object), "", OPERATION, ROOT_PATH)?;
    let tags: Vec<Tag> = match tags {
        None | Some(Value::Null) => Vec::new(),
        Some(tags) => from_value(tags, "tags", OPERATION, ROOT_PATH)?,
    };
    Ok((spec, tags))
}

/// "a string", "an array", ... for messages.
pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

//! JSON text → model: the size limit, the JSON-object check, unknown fields
//! and wrong types, each reported with its JSON path
//! (`containerDefinitions[0].healthCheck.interval`).
//!
//! The model cannot use `deny_unknown_fields` (the describe shape flattens
//! the spec), so unknown fields are caught with `serde_ignored`, and
//! `serde_path_to_error` supplies the path of a type error.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::model::{Tag, TaskDefinitionSpec};
use crate::error::{ApiError, Exception};

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
    let spec: TaskDefinitionSpec = from_value(Value::Object(object), "")?;
    let tags: Vec<Tag> = match tags {
        None | Some(Value::Null) => Vec::new(),
        Some(tags) => from_value(tags, "tags")?,
    };
    Ok((spec, tags))
}

/// Deserialises `value` (found at `prefix`) into `T`, rejecting unknown
/// fields and naming the path of the first problem.
fn from_value<T: DeserializeOwned>(value: Value, prefix: &str) -> Result<T, ApiError> {
    let mut unknown: Option<String> = None;
    let mut on_ignored = |path: serde_ignored::Path<'_>| {
        if unknown.is_none() {
            let mut out = prefix.to_string();
            push_ignored_path(&mut out, &path);
            unknown = Some(out);
        }
    };
    let result: Result<T, _> =
        serde_path_to_error::deserialize(serde_ignored::Deserializer::new(value, &mut on_ignored));
    if let Some(path) = unknown {
        return Err(ApiError::field(
            Exception::ClientException,
            path,
            "unknown field; ECS's RegisterTaskDefinition input has no such field",
        ));
    }
    result.map_err(|e| {
        let mut path = prefix.to_string();
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => push_index(&mut path, *index),
                serde_path_to_error::Segment::Map { key } => push_key(&mut path, key),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        type_error(path, &e.into_inner().to_string())
    })
}

/// Turns serde's message into an ApiError: a missing field is reported at
/// the field's own path, an unknown enum value as InvalidParameterException.
fn type_error(mut path: String, message: &str) -> ApiError {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        push_key(&mut path, field);
        return ApiError::field(Exception::ClientException, path, "is required");
    }
    let shown = if path.is_empty() {
        ROOT_PATH.to_string()
    } else {
        path
    };
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        return ApiError::field(
            Exception::InvalidParameterException,
            shown,
            format!("unknown value {rest}"),
        );
    }
    ApiError::field(Exception::ClientException, shown, message)
}

fn push_ignored_path(out: &mut String, path: &serde_ignored::Path<'_>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            push_ignored_path(out, parent);
            push_index(out, *index);
        }
        Path::Map { parent, key } => {
            push_ignored_path(out, parent);
            push_key(out, key);
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => push_ignored_path(out, parent),
    }
}

fn push_key(path: &mut String, key: &str) {
    if !path.is_empty() {
        path.push('.');
    }
    path.push_str(key);
}

fn push_index(path: &mut String, index: usize) {
    path.push('[');
    path.push_str(&index.to_string());
    path.push(']');
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

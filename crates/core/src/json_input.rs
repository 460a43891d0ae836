//! ECS request JSON → model, for every call whose input is ECS's JSON:
//! unknown fields and wrong types are reported with their JSON path
//! (`overrides.containerOverrides[0].cpu`), as ECS's ClientException.
//!
//! The models cannot all use `deny_unknown_fields` (describe shapes flatten
//! specs), so unknown fields are caught with `serde_ignored`, and
//! `serde_path_to_error` supplies the path of a type error.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{ApiError, Exception};

/// The largest request accepted by [`parse_input`]: 64 KiB, as ECS.
pub const MAX_REQUEST_BYTES: usize = 64 * 1024;

/// Parses the JSON input of ECS's `operation` into `T`: the size limit, the
/// JSON-object check, unknown fields and wrong types, each naming its path.
/// Empty text reads as `{}`.
pub fn parse_input<T: DeserializeOwned>(json: &str, operation: &str) -> Result<T, ApiError> {
    if json.len() > MAX_REQUEST_BYTES {
        return Err(ApiError::new(
            Exception::ClientException,
            format!(
                "the {operation} input is {} bytes; it must be at most {MAX_REQUEST_BYTES} bytes",
                json.len()
            ),
        ));
    }
    let value: Value = if json.trim().is_empty() {
        Value::Object(Default::default())
    } else {
        serde_json::from_str(json).map_err(|e| {
            ApiError::new(
                Exception::ClientException,
                format!("the {operation} input is not valid JSON: {e}"),
            )
        })?
    };
    if !value.is_object() {
        return Err(ApiError::new(
            Exception::ClientException,
            format!("the {operation} input must be a JSON object"),
        ));
    }
    from_value(value, "", operation, "input")
}

/// Deserialises `value` (found at `prefix`) into `T`, rejecting unknown
/// fields and naming the path of the first problem.
pub(crate) fn from_value<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    operation: &str,
    root: &str,
) -> Result<T, ApiError> {
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
            format!("unknown field; ECS's {operation} input has no such field"),
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
        type_error(path, root, &e.into_inner().to_string())
    })
}

/// Turns serde's message into an ApiError: a missing field is reported at
/// the field's own path, an unknown enum value as InvalidParameterException.
fn type_error(mut path: String, root: &str, message: &str) -> ApiError {
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|m| m.strip_suffix('`'))
    {
        push_key(&mut path, field);
        return ApiError::field(Exception::ClientException, path, "is required");
    }
    let shown = if path.is_empty() {
        root.to_string()
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

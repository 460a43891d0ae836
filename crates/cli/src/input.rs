//! Loading flag values: `file://path` indirection, JSON, and JSON-or-shorthand
//! structures and lists. Every error is a usage error naming the flag or path.

use crate::exit::CliError;
use crate::shorthand;
use serde_json::Value;

/// The value itself, or the contents of the file a `file://` (or `fileb://`) value names.
pub fn read_param(flag: &str, raw: &str) -> Result<String, CliError> {
    let Some(path) = raw
        .strip_prefix("file://")
        .or_else(|| raw.strip_prefix("fileb://"))
    else {
        return Ok(raw.to_string());
    };
    std::fs::read_to_string(path).map_err(|e| {
        CliError::usage(format!(
            "Error parsing parameter '{flag}': Unable to load paramfile {raw}: {e}: '{path}'"
        ))
    })
}

/// Parses `text` (already read) as JSON.
pub fn parse_json(flag: &str, text: &str) -> Result<Value, CliError> {
    serde_json::from_str(text).map_err(|e| {
        CliError::usage(format!(
            "Error parsing parameter '{flag}': Invalid JSON: {e}\nJSON received: {text}"
        ))
    })
}

/// A flag that holds a JSON object (such as `--cli-input-json`): the text as given
/// (or read from the file), and its parsed form.
pub fn json_object(
    flag: &str,
    raw: &str,
) -> Result<(String, serde_json::Map<String, Value>), CliError> {
    let text = read_param(flag, raw)?;
    match parse_json(flag, &text)? {
        Value::Object(map) => Ok((text, map)),
        _ => Err(CliError::usage(format!(
            "Error parsing parameter '{flag}': expected a JSON object"
        ))),
    }
}

/// The `input_json` to send: `--cli-input-json` verbatim when no flag
/// overrides it, else its object with the flags' keys replaced or appended.
pub fn merge_cli_input(
    cli_input_json: Option<&str>,
    flags: serde_json::Map<String, Value>,
) -> Result<String, CliError> {
    let Some(raw) = cli_input_json else {
        return Ok(Value::Object(flags).to_string());
    };
    let (text, mut doc) = json_object("--cli-input-json", raw)?;
    if flags.is_empty() {
        return Ok(text);
    }
    for (key, value) in flags {
        doc.insert(key, value);
    }
    Ok(Value::Object(doc).to_string())
}

/// A structure flag: a JSON object or one shorthand structure.
pub fn structure(flag: &str, raw: &str) -> Result<Value, CliError> {
    let text = read_param(flag, raw)?;
    if text.trim_start().starts_with('{') {
        return parse_json(flag, &text);
    }
    shorthand::parse(&text)
        .map_err(|e| CliError::usage(format!("Error parsing parameter '{flag}': {e}")))
}

/// A list-of-structures flag given as several values: each value is a JSON array
/// (its items are taken), a JSON object, or one shorthand structure.
pub fn structure_list(flag: &str, values: &[String]) -> Result<Value, CliError> {
    let mut items = Vec::new();
    for raw in values {
        let text = read_param(flag, raw)?;
        if text.trim_start().starts_with('[') {
            match parse_json(flag, &text)? {
                Value::Array(list) => items.extend(list),
                _ => {
                    return Err(CliError::usage(format!(
                        "Error parsing parameter '{flag}': expected a JSON list"
                    )))
                }
            }
        } else {
            items.push(structure(flag, &text)?);
        }
    }
    Ok(Value::Array(items))
}

/// A list-of-strings flag given as several values; a value that is a JSON array
/// contributes its items.
pub fn string_list(flag: &str, values: &[String]) -> Result<Value, CliError> {
    let mut items = Vec::new();
    for raw in values {
        let text = read_param(flag, raw)?;
        if text.trim_start().starts_with('[') {
            match parse_json(flag, &text)? {
                Value::Array(list) => items.extend(list),
                _ => {
                    return Err(CliError::usage(format!(
                        "Error parsing parameter '{flag}': expected a JSON list"
                    )))
                }
            }
        } else {
            items.push(Value::String(text));
        }
    }
    Ok(Value::Array(items))
}

/// A list of strings as plain values, reading JSON arrays and `file://` values.
pub fn strings(flag: &str, values: &[String]) -> Result<Vec<String>, CliError> {
    let Value::Array(items) = string_list(flag, values)? else {
        return Ok(Vec::new());
    };
    items
        .into_iter()
        .map(|v| match v {
            Value::String(s) => Ok(s),
            other => Err(CliError::usage(format!(
                "Error parsing parameter '{flag}': expected a string, got {other}"
            ))),
        })
        .collect()
}

/// A list-of-strings flag as an input value; `None` when the flag was not given.
pub fn optional_strings(flag: &str, values: &[String]) -> Result<Option<Value>, CliError> {
    if values.is_empty() {
        Ok(None)
    } else {
        string_list(flag, values).map(Some)
    }
}

/// A list-of-structures flag as an input value; `None` when the flag was not given.
pub fn optional_structures(flag: &str, values: &[String]) -> Result<Option<Value>, CliError> {
    if values.is_empty() {
        Ok(None)
    } else {
        structure_list(flag, values).map(Some)
    }
}

/// A structure flag as an input value; `None` when the flag was not given.
pub fn optional_structure(flag: &str, raw: Option<&str>) -> Result<Option<Value>, CliError> {
    raw.map(|raw| structure(flag, raw)).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::io::Write;

    fn usage(r: Result<impl std::fmt::Debug, CliError>) -> String {
        match r {
            Err(CliError::Usage(m)) => m,
            other => panic!("expected a usage error, got {other:?}"),
        }
    }

    #[test]
    fn file_values_are_read_and_missing_files_named() -> anyhow::Result<()> {
        let mut f = tempfile::NamedTempFile::new()?;
        write!(f, "[{{\"name\": \"web\"}}]")?;
        let raw = format!("file://{}", f.path().display());
        assert_eq!(
            structure_list("--container-definitions", &[raw])?,
            json!([{"name": "web"}])
        );
        let m = usage(read_param(
            "--cli-input-json",
            "file:///nonexistent/td.json",
        ));
        assert!(
            m.contains("--cli-input-json") && m.contains("/nonexistent/td.json"),
            "{m}"
        );
        Ok(())
    }

    #[test]
    fn structures_take_json_or_shorthand() -> anyhow::Result<()> {
        assert_eq!(
            structure("--runtime-platform", "{\"cpuArchitecture\": \"X86_64\"}")?,
            json!({"cpuArchitecture": "X86_64"})
        );
        assert_eq!(
            structure("--ephemeral-storage", "sizeInGiB=30")?,
            json!({"sizeInGiB": 30})
        );
        let values = [
            "key=a,value=1".to_string(),
            "{\"key\": \"b\", \"value\": \"2\"}".to_string(),
        ];
        assert_eq!(
            structure_list("--tags", &values)?,
            json!([{"key": "a", "value": "1"}, {"key": "b", "value": "2"}])
        );
        assert_eq!(
            string_list("--include", &["TAGS".into(), "[\"X\"]".into()])?,
            json!(["TAGS", "X"])
        );
        assert!(usage(structure("--tags", "key"))
            .starts_with("Error parsing parameter '--tags': Expected: '='"));
        assert!(usage(structure("--tags", "{bad json")).contains("'--tags': Invalid JSON"));
        assert!(usage(json_object("--cli-input-json", "[1]")).contains("expected a JSON object"));
        Ok(())
    }
}

//! The AWS CLI's `text` output, ported from awscli's `text.py`: a record per line,
//! its scalar values tab-separated (keys sorted), prefixed by the upper-cased key
//! it sits under; nested lists and objects follow on their own lines.

use serde_json::{Map, Value};

pub fn render(response: &Value) -> String {
    let mut out = String::new();
    format_value(&mut out, response, None, None);
    out
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Object(_) | Value::Array(_))
}

/// Python's `str()` of a JSON value, which is what the AWS CLI prints.
fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "None".to_string(),
        Value::Bool(true) => "True".to_string(),
        Value::Bool(false) => "False".to_string(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn format_value(
    out: &mut String,
    v: &Value,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
) {
    match v {
        Value::Object(map) => format_object(out, map, identifier, scalar_keys),
        Value::Array(items) => format_list(out, items, identifier),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
}

fn format_list(out: &mut String, items: &[Value], identifier: Option<&str>) {
    if items.is_empty() {
        return;
    }
    if items.iter().any(Value::is_object) {
        let mut keys: Vec<String> = items
            .iter()
            .filter_map(Value::as_object)
            .flat_map(|m| {
                m.iter()
                    .filter(|(_, v)| is_scalar(v))
                    .map(|(k, _)| k.clone())
            })
            .collect();
        keys.sort();
        keys.dedup();
        for item in items {
            format_value(out, item, identifier, Some(&keys));
        }
    } else if items.iter().any(Value::is_array) {
        let scalars: Vec<&Value> = items.iter().filter(|v| is_scalar(v)).collect();
        if !scalars.is_empty() {
            format_scalar_list(out, &scalars, identifier);
        }
        for item in items.iter().filter(|v| !is_scalar(v)) {
            format_value(out, item, identifier, None);
        }
    } else {
        format_scalar_list(out, &items.iter().collect::<Vec<_>>(), identifier);
    }
}

fn format_scalar_list(out: &mut String, items: &[&Value], identifier: Option<&str>) {
    match identifier {
        Some(id) => {
            for item in items {
                out.push_str(&format!("{}\t{}\n", id.to_uppercase(), scalar(item)));
            }
        }
        None => {
            let line: Vec<String> = items.iter().map(|v| scalar(v)).collect();
            out.push_str(&line.join("\t"));
            out.push('\n');
        }
    }
}

fn format_object(
    out: &mut String,
    map: &Map<String, Value>,
    identifier: Option<&str>,
    scalar_keys: Option<&[String]>,
) {
    let mut scalars: Vec<String> = Vec::new();
    let mut nested: Vec<(&String, &Value)> = Vec::new();
    match scalar_keys {
        None => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            for (k, v) in entries {
                if is_scalar(v) {
                    scalars.push(scalar(v));
                } else {
                    nested.push((k, v));
                }
            }
        }
        Some(keys) => {
            for k in keys {
                scalars.push(match map.get(k) {
                    Some(v) if is_scalar(v) => scalar(v),
                    Some(v) => v.to_string(),
                    None => String::new(),
                });
            }
            let mut rest: Vec<(&String, &Value)> =
                map.iter().filter(|(k, _)| !keys.contains(k)).collect();
            rest.sort_by(|a, b| a.0.cmp(b.0));
            nested = rest;
        }
    }
    if !scalars.is_empty() {
        if let Some(id) = identifier {
            scalars.insert(0, id.to_uppercase());
        }
        out.push_str(&scalars.join("\t"));
        out.push('\n');
    }
    for (k, v) in nested {
        format_value(out, v, Some(k), None);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_of_scalars_and_top_level_scalars() {
        assert_eq!(
            render(&json!({"clusterArns": ["a", "b"]})),
            "CLUSTERARNS\ta\nCLUSTERARNS\tb\n"
        );
        assert_eq!(
            render(&json!({"NextToken": "t", "families": ["f"]})),
            "t\nFAMILIES\tf\n"
        );
        assert_eq!(
            render(&json!({"x": {"ok": true, "n": null}})),
            "X\tNone\tTrue\n"
        );
        assert_eq!(render(&json!({"empty": []})), "");
    }
}

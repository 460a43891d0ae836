//! `table` output: the operation name as a title, then one boxed table per
//! section of the response. An object's scalars (and lists of scalars, joined
//! with ", ", except at the top level) form a two-column key/value table; a list of flat objects forms one
//! table with a column per key; anything more nested becomes its own section,
//! titled by its path (`clusters[0].settings`). Empty lists and objects are left out.

use comfy_table::{presets, Table};
use serde_json::{Map, Value};

pub fn render(operation: &str, response: &Value) -> String {
    let mut out = format!("{operation}\n");
    match response {
        Value::Object(map) => object(&mut out, "", map, true),
        other => section(&mut out, "", other),
    }
    out
}

/// A value that fits in one cell.
fn is_cell(v: &Value) -> bool {
    match v {
        Value::Object(_) => false,
        Value::Array(items) => items.iter().all(|i| !i.is_object() && !i.is_array()),
        _ => true,
    }
}

fn is_empty(v: &Value) -> bool {
    match v {
        Value::Object(m) => m.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(", "),
        other => other.to_string(),
    }
}

fn child(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

fn new_table() -> Table {
    let mut t = Table::new();
    t.load_preset(presets::ASCII_FULL_CONDENSED);
    t
}

fn push_table(out: &mut String, title: &str, table: &Table) {
    if !title.is_empty() {
        out.push_str(title);
        out.push('\n');
    }
    out.push_str(&table.to_string());
    out.push('\n');
}

/// At the root, lists (of ARNs, say) get their own one-column table rather than one cell.
fn object(out: &mut String, path: &str, map: &Map<String, Value>, root: bool) {
    let is_cell = |v: &Value| is_cell(v) && !(root && v.is_array());
    let rows: Vec<(&String, &Value)> = map
        .iter()
        .filter(|(_, v)| is_cell(v) && !is_empty(v))
        .collect();
    if !rows.is_empty() {
        let mut t = new_table();
        for (k, v) in rows {
            t.add_row(vec![k.clone(), cell(v)]);
        }
        push_table(out, path, &t);
    }
    for (k, v) in map.iter().filter(|(_, v)| !is_cell(v) && !is_empty(v)) {
        section(out, &child(path, k), v);
    }
}

fn section(out: &mut String, path: &str, v: &Value) {
    match v {
        Value::Object(map) => object(out, path, map, false),
        Value::Array(items) if items.is_empty() => {}
        Value::Array(items) if items.iter().all(|i| !i.is_object() && !i.is_array()) => {
            let mut t = new_table();
            t.set_header(vec![path.rsplit('.').next().unwrap_or(path).to_string()]);
            for item in items {
                t.add_row(vec![cell(item)]);
            }
            push_table(out, path, &t);
        }
        Value::Array(items)
            if items
                .iter()
                .all(|i| i.as_object().is_some_and(|m| m.values().all(is_cell))) =>
        {
            let mut columns: Vec<&String> = Vec::new();
            for key in items
                .iter()
                .filter_map(Value::as_object)
                .flat_map(Map::keys)
            {
                if !columns.contains(&key) {
                    columns.push(key);
                }
            }
            let mut t = new_table();
            t.set_header(columns.iter().map(|c| c.to_string()));
            for item in items {
                t.add_row(
                    columns
                        .iter()
                        .map(|c| item.get(c.as_str()).map(cell).unwrap_or_default()),
                );
            }
            push_table(out, path, &t);
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                section(out, &format!("{path}[{i}]"), item);
            }
        }
        scalar => {
            let mut t = new_table();
            t.add_row(vec![cell(scalar)]);
            push_table(out, path, &t);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lists_of_scalars_get_one_column_and_top_level_scalars_a_box() {
        let out = render(
            "ListClusters",
            &json!({"clusterArns": ["a", "b"], "NextToken": "t"}),
        );
        assert_eq!(
            out,
            "ListClusters\n+-----------+---+\n| NextToken | t |\n+-----------+---+\nclusterArns\n\
             +-------------+\n| clusterArns |\n+=============+\n| a           |\n| b           |\n+-------------+\n"
        );
    }
}

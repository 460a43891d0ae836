//! Printing a response: `json` (pretty, 2-space indent), `table` (boxed tables,
//! see `table`; tasks and container instances a row each, see `tasks`) or
//! `text` (the AWS CLI's tab-separated text, see `text`).

mod table;
mod tasks;
mod text;

use serde_json::Value;
use std::io::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Json,
    Table,
    Text,
}

/// The response rendered in `format`, ending in a newline; `operation` titles tables.
pub fn render(format: OutputFormat, operation: &str, response: &Value) -> String {
    match format {
        OutputFormat::Json => {
            let mut s =
                serde_json::to_string_pretty(response).unwrap_or_else(|_| response.to_string());
            s.push('\n');
            s
        }
        OutputFormat::Table => {
            tasks::render(operation, response).unwrap_or_else(|| table::render(operation, response))
        }
        OutputFormat::Text => text::render(response),
    }
}

/// Writes the rendered response to stdout; a closed pipe (`| head`) is not an error.
pub fn print(format: OutputFormat, operation: &str, response: &Value) -> std::io::Result<()> {
    write(&render(format, operation, response))
}

/// Writes already rendered output to stdout, like [`print`].
pub fn write(rendered: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    match out
        .write_all(rendered.as_bytes())
        .and_then(|()| out.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A describe-clusters reply as the CLI builds it.
    pub(crate) fn sample() -> Value {
        json!({
            "clusters": [{
                "clusterArn": "arn:aws:ecs:local:000000000000:cluster/prod",
                "clusterName": "prod",
                "status": "ACTIVE",
                "runningTasksCount": 2,
                "statistics": [],
                "tags": [{"key": "team", "value": "core"}],
                "settings": [{"name": "containerInsights", "value": "enabled"}]
            }],
            "failures": [{"arn": "arn:aws:ecs:local:000000000000:cluster/gone", "reason": "MISSING"}]
        })
    }

    #[test]
    fn json_is_pretty_with_two_spaces_and_keeps_key_order() {
        let out = render(
            OutputFormat::Json,
            "DescribeClusters",
            &json!({"z": 1, "a": {"b": [true]}}),
        );
        assert_eq!(
            out,
            "{\n  \"z\": 1,\n  \"a\": {\n    \"b\": [\n      true\n    ]\n  }\n}\n"
        );
    }

    #[test]
    fn text_is_tab_separated_like_the_aws_cli() {
        let out = render(OutputFormat::Text, "DescribeClusters", &sample());
        assert_eq!(
            out,
            "CLUSTERS\tarn:aws:ecs:local:000000000000:cluster/prod\tprod\t2\tACTIVE\n\
             SETTINGS\tcontainerInsights\tenabled\n\
             TAGS\tteam\tcore\n\
             FAILURES\tarn:aws:ecs:local:000000000000:cluster/gone\tMISSING\n"
        );
    }

    #[test]
    fn table_has_a_title_and_a_box_per_section() {
        let out = render(OutputFormat::Table, "DescribeClusters", &sample());
        let expected = "\
DescribeClusters
clusters[0]
+-------------------+---------------------------------------------+
| clusterArn        | arn:aws:ecs:local:000000000000:cluster/prod |
| clusterName       | prod                                        |
| status            | ACTIVE                                      |
| runningTasksCount | 2                                           |
+-------------------+---------------------------------------------+
clusters[0].tags
+------+-------+
| key  | value |
+==============+
| team | core  |
+------+-------+
clusters[0].settings
+-------------------+---------+
| name              | value   |
+=============================+
| containerInsights | enabled |
+-------------------+---------+
failures
+---------------------------------------------+---------+
| arn                                         | reason  |
+=======================================================+
| arn:aws:ecs:local:000000000000:cluster/gone | MISSING |
+---------------------------------------------+---------+
";
        assert_eq!(out, expected, "\n{out}");
    }
}

//! `--query`: a JMESPath expression applied to the response before it is
//! printed, as the aws CLI does (`--query 'services[0].deployments[0].rolloutState'`).

use serde_json::Value;

use crate::exit::CliError;

/// The part of `response` that `expression` selects.
pub fn apply(expression: &str, response: Value) -> Result<Value, CliError> {
    let compiled =
        jmespath::compile(expression).map_err(|e| CliError::Usage(format!("'--query': {e}")))?;
    let found = compiled
        .search(response)
        .map_err(|e| CliError::Usage(format!("'--query': {e}")))?;
    serde_json::to_value(&*found).map_err(|e| CliError::Usage(format!("'--query': {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_as_the_aws_cli_does() -> Result<(), CliError> {
        let response = json!({"services": [{"serviceName": "web", "deployments": [
            {"status": "PRIMARY", "rolloutState": "IN_PROGRESS", "runningCount": 1},
            {"status": "ACTIVE", "rolloutState": "COMPLETED", "runningCount": 2}
        ]}]});
        assert_eq!(
            apply("services[0].deployments[0].rolloutState", response.clone())?,
            json!("IN_PROGRESS")
        );
        assert_eq!(
            apply(
                "services[].deployments[?status=='ACTIVE'].runningCount[]",
                response.clone()
            )?,
            json!([2])
        );
        assert_eq!(
            apply(
                "sum(services[0].deployments[].runningCount)",
                response.clone()
            )?,
            json!(3.0)
        );
        assert_eq!(apply("missing", response)?, Value::Null);
        Ok(())
    }

    #[test]
    fn a_bad_expression_is_a_usage_error_naming_the_flag() {
        assert!(
            matches!(apply("services[", json!({})), Err(CliError::Usage(m)) if m.contains("'--query'"))
        );
    }
}

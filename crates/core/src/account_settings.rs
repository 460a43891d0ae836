//! ECS's account settings (ListAccountSettings, PutAccountSetting,
//! PutAccountSettingDefault): stored as ECS stores them, per principal and
//! as the account's default, with ECS's names, values and AWS's defaults.
//! orca's behaviour does not depend on them (its ARNs are always the long
//! format); scripts that set and read them run unchanged.

use crate::error::{ApiError, Exception};

/// Each setting ECS knows, the values it takes, and AWS's default.
pub const SETTINGS: &[(&str, &[&str], &str)] = &[
    ("serviceLongArnFormat", &["enabled", "disabled"], "enabled"),
    ("taskLongArnFormat", &["enabled", "disabled"], "enabled"),
    (
        "containerInstanceLongArnFormat",
        &["enabled", "disabled"],
        "enabled",
    ),
    ("awsvpcTrunking", &["enabled", "disabled"], "disabled"),
    (
        "containerInsights",
        &["enabled", "disabled", "enhanced"],
        "disabled",
    ),
    ("dualStackIPv6", &["enabled", "disabled"], "disabled"),
    ("fargateFIPSMode", &["enabled", "disabled"], "disabled"),
    ("tagResourceAuthorization", &["on", "off"], "on"),
    ("fargateTaskRetirementWaitPeriod", &["0", "7", "14"], "7"),
    ("guardDutyActivate", &["on", "off"], "off"),
    (
        "defaultLogDriverMode",
        &["blocking", "non-blocking"],
        "blocking",
    ),
];

/// AWS's default for `name`, if ECS knows the setting.
pub fn aws_default(name: &str) -> Option<&'static str> {
    SETTINGS
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, _, d)| *d)
}

/// Checks a setting's name and value against ECS's rules.
pub fn validate(name: &str, value: &str) -> Result<(), ApiError> {
    let Some((_, values, _)) = SETTINGS.iter().find(|(n, _, _)| *n == name) else {
        let names: Vec<&str> = SETTINGS.iter().map(|(n, _, _)| *n).collect();
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            "name",
            format!(
                "unknown setting '{name}': expected one of {}",
                names.join(", ")
            ),
        ));
    };
    if !values.contains(&value) {
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            "value",
            format!(
                "'{value}' is not a value of {name}: expected one of {}",
                values.join(", ")
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_values_follow_ecs() {
        assert!(validate("containerInsights", "enhanced").is_ok());
        assert_eq!(
            validate("nope", "x").unwrap_err().field.as_deref(),
            Some("name")
        );
        assert_eq!(
            validate("taskLongArnFormat", "on")
                .unwrap_err()
                .field
                .as_deref(),
            Some("value")
        );
        assert_eq!(aws_default("tagResourceAuthorization"), Some("on"));
    }
}

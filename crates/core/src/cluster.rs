//! Clusters: ECS's named groupings of container instances, tasks and services.
//! The `default` cluster exists from the start and is used wherever a call
//! names no cluster.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Exception};

pub const DEFAULT_CLUSTER: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ClusterStatus {
    Active,
    /// Deleted: still described (ECS keeps INACTIVE clusters visible), no
    /// longer listed, and re-created by CreateCluster with the same name.
    Inactive,
}

impl ClusterStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClusterStatus::Active => "ACTIVE",
            ClusterStatus::Inactive => "INACTIVE",
        }
    }
}

/// ECS's cluster setting (`containerInsights` is the only name ECS defines).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterSetting {
    pub name: String,
    pub value: String,
}

/// ECS's rule for cluster names: up to 255 letters, numbers, hyphens and
/// underscores.
pub fn validate_cluster_name(name: &str, path: &str) -> Result<(), ApiError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > 255 || !ok_chars {
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            path,
            format!(
                "cluster name '{name}' must be 1 to 255 letters (uppercase and lowercase), numbers, hyphens and underscores"
            ),
        ));
    }
    Ok(())
}

/// ECS's rule for settings: name `containerInsights`, value `enabled`,
/// `disabled` or `enhanced`; each name at most once.
pub fn validate_settings(settings: &[ClusterSetting], path: &str) -> Result<(), ApiError> {
    for (i, s) in settings.iter().enumerate() {
        if s.name != "containerInsights" {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("{path}[{i}].name"),
                format!(
                    "unknown cluster setting '{}': the only setting is containerInsights",
                    s.name
                ),
            ));
        }
        if !matches!(s.value.as_str(), "enabled" | "disabled" | "enhanced") {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("{path}[{i}].value"),
                format!(
                    "containerInsights must be enabled, disabled or enhanced, not '{}'",
                    s.value
                ),
            ));
        }
        if settings[..i].iter().any(|p| p.name == s.name) {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("{path}[{i}].name"),
                format!("setting '{}' is given more than once", s.name),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_ecs_rules() {
        assert!(validate_cluster_name("prod-eu_1", "clusterName").is_ok());
        for bad in ["", "has space", "dot.ted", &"x".repeat(256)] {
            let e = validate_cluster_name(bad, "clusterName").unwrap_err();
            assert_eq!(e.field.as_deref(), Some("clusterName"));
            assert_eq!(e.exception, Exception::InvalidParameterException);
        }
    }

    #[test]
    fn settings_follow_ecs_rules() {
        let s = |n: &str, v: &str| ClusterSetting {
            name: n.into(),
            value: v.into(),
        };
        assert!(validate_settings(&[s("containerInsights", "enabled")], "settings").is_ok());
        let e = validate_settings(&[s("insights", "enabled")], "settings").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings[0].name"));
        let e = validate_settings(&[s("containerInsights", "on")], "settings").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings[0].value"));
        let twice = [
            s("containerInsights", "enabled"),
            s("containerInsights", "disabled"),
        ];
        let e = validate_settings(&twice, "settings").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings[1].name"));
    }
}

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

/// ECS's capacity providers of a cluster: accepted and stored as ECS stores
/// them (FARGATE, FARGATE_SPOT or names of the operator's own), so the
/// commands of ECS tutorials run; orca places every task on its instances.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClusterCapacity {
    pub providers: Vec<String>,
    pub default_strategy: Vec<CapacityProviderStrategyItem>,
}

/// ECS's `capacityProviderStrategy[]` item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CapacityProviderStrategyItem {
    pub capacity_provider: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weight: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<u32>,
}

impl ClusterCapacity {
    /// ECS's rules: at most 20 providers (ECS: 6 per strategy), a strategy
    /// names only the cluster's providers, weight 0 to 1000, base 0 to
    /// 100000 and on at most one item.
    pub fn validate(&self) -> Result<(), crate::ApiError> {
        let invalid = |field: String, rule: String| {
            crate::ApiError::field(crate::Exception::InvalidParameterException, field, rule)
        };
        if self.providers.len() > 20 {
            return Err(invalid(
                "capacityProviders".into(),
                "at most 20 capacity providers are allowed".into(),
            ));
        }
        if self.default_strategy.len() > 6 {
            return Err(invalid(
                "defaultCapacityProviderStrategy".into(),
                "at most 6 items are allowed".into(),
            ));
        }
        for (i, item) in self.default_strategy.iter().enumerate() {
            let path = format!("defaultCapacityProviderStrategy[{i}]");
            if !self.providers.contains(&item.capacity_provider) {
                return Err(invalid(
                    format!("{path}.capacityProvider"),
                    format!(
                        "'{}' is not one of the cluster's capacity providers ({})",
                        item.capacity_provider,
                        self.providers.join(", ")
                    ),
                ));
            }
            if item.weight.is_some_and(|w| w > 1000) {
                return Err(invalid(
                    format!("{path}.weight"),
                    "must be between 0 and 1000".into(),
                ));
            }
            if item.base.is_some_and(|b| b > 100_000) {
                return Err(invalid(
                    format!("{path}.base"),
                    "must be between 0 and 100000".into(),
                ));
            }
        }
        if self
            .default_strategy
            .iter()
            .filter(|i| i.base.is_some_and(|b| b > 0))
            .count()
            > 1
        {
            return Err(invalid(
                "defaultCapacityProviderStrategy".into(),
                "only one item may have a base".into(),
            ));
        }
        Ok(())
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

/// orca's own cluster setting: whether tasks in the cluster may run
/// privileged containers or add capabilities (`enabled` or `disabled`,
/// disabled when unset). Namespaced so it never clashes with a name ECS
/// may add.
pub const PRIVILEGED_CONTAINERS: &str = "orca.privilegedContainers";

/// ECS's rule for settings (name `containerInsights`, value `enabled`,
/// `disabled` or `enhanced`), plus orca's [`PRIVILEGED_CONTAINERS`]
/// (`enabled` or `disabled`); each name at most once.
pub fn validate_settings(settings: &[ClusterSetting], path: &str) -> Result<(), ApiError> {
    for (i, s) in settings.iter().enumerate() {
        let values: &[&str] = match s.name.as_str() {
            "containerInsights" => &["enabled", "disabled", "enhanced"],
            PRIVILEGED_CONTAINERS => &["enabled", "disabled"],
            _ => {
                return Err(ApiError::field(
                    Exception::InvalidParameterException,
                    format!("{path}[{i}].name"),
                    format!(
                        "unknown cluster setting '{}': the settings are containerInsights and {PRIVILEGED_CONTAINERS}",
                        s.name
                    ),
                ))
            }
        };
        if !values.contains(&s.value.as_str()) {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("{path}[{i}].value"),
                format!(
                    "{} must be {}, not '{}'",
                    s.name,
                    values.join(" or "),
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

/// Whether a cluster with `settings` lets its tasks run privileged
/// containers and add capabilities.
pub fn privileges_allowed(settings: &[ClusterSetting]) -> bool {
    settings
        .iter()
        .any(|s| s.name == PRIVILEGED_CONTAINERS && s.value == "enabled")
}

/// Refuses a task definition that asks for privileges (`privileged`, or
/// capabilities added) when its cluster does not allow them, naming the
/// field and the setting that would.
pub fn check_privileges(
    def: &crate::task_definition::TaskDefinition,
    allowed: bool,
    cluster: &str,
) -> Result<(), ApiError> {
    if allowed {
        return Ok(());
    }
    for (i, c) in def.spec.container_definitions.iter().enumerate() {
        let field = if c.privileged == Some(true) {
            format!("containerDefinitions[{i}].privileged")
        } else if c
            .linux_parameters
            .as_ref()
            .and_then(|l| l.capabilities.as_ref())
            .and_then(|c| c.add.as_ref())
            .is_some_and(|add| !add.is_empty())
        {
            format!("containerDefinitions[{i}].linuxParameters.capabilities.add")
        } else {
            continue;
        };
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            field.clone(),
            format!(
                "asks for privileges that cluster '{cluster}' does not allow: set the cluster setting {PRIVILEGED_CONTAINERS}=enabled (UpdateClusterSettings) to allow them"
            ),
        ));
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
        assert!(validate_settings(&[s(PRIVILEGED_CONTAINERS, "enabled")], "settings").is_ok());
        let e = validate_settings(&[s(PRIVILEGED_CONTAINERS, "enhanced")], "settings").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("settings[0].value"));
        assert!(!privileges_allowed(&[s(PRIVILEGED_CONTAINERS, "disabled")]));
        assert!(!privileges_allowed(&[]));
        assert!(privileges_allowed(&[s(PRIVILEGED_CONTAINERS, "enabled")]));
    }

    #[test]
    fn privileges_are_refused_naming_the_field_and_the_setting() {
        let def = |json: &str| -> crate::task_definition::TaskDefinition {
            let mut v: serde_json::Value = serde_json::from_str(
                r#"{"taskDefinitionArn":"a","family":"f","revision":1,"status":"ACTIVE",
                    "requiresAttributes":[],"compatibilities":[],"registeredAt":0,
                    "registeredBy":"x","containerDefinitions":[{"name":"ok","image":"i"}]}"#,
            )
            .unwrap();
            let c: serde_json::Value = serde_json::from_str(json).unwrap();
            v["containerDefinitions"].as_array_mut().unwrap().push(c);
            serde_json::from_value(v).unwrap()
        };
        let privileged = def(r#"{"name":"p","image":"i","privileged":true}"#);
        let e = check_privileges(&privileged, false, "prod").unwrap_err();
        assert_eq!(e.exception, Exception::InvalidParameterException);
        assert_eq!(
            e.field.as_deref(),
            Some("containerDefinitions[1].privileged")
        );
        assert!(e.message.contains(PRIVILEGED_CONTAINERS), "{}", e.message);
        assert!(e.message.contains("'prod'"), "{}", e.message);
        assert!(check_privileges(&privileged, true, "prod").is_ok());
        let caps = def(
            r#"{"name":"c","image":"i","linuxParameters":{"capabilities":{"add":["NET_ADMIN"]}}}"#,
        );
        let e = check_privileges(&caps, false, "prod").unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("containerDefinitions[1].linuxParameters.capabilities.add")
        );
        let dropped = def(
            r#"{"name":"d","image":"i","privileged":false,"linuxParameters":{"capabilities":{"add":[],"drop":["ALL"]}}}"#,
        );
        assert!(check_privileges(&dropped, false, "prod").is_ok());
    }
}

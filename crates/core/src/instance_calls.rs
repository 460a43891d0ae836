//! The inputs and outputs of ECS's container-instance management calls:
//! PutAttributes, DeleteAttributes, ListAttributes,
//! UpdateContainerInstancesState and DeregisterContainerInstance, with
//! ECS's parameter rules.

use serde::{Deserialize, Serialize};

use crate::container_instance::ContainerInstance;
use crate::error::{ApiError, Exception};
use crate::task::Failure;
use crate::task_definition::Attribute;

/// The only target type ECS's attribute calls know.
pub const CONTAINER_INSTANCE_TARGET: &str = "container-instance";
/// ECS: at most 10 attributes in one PutAttributes / DeleteAttributes call,
/// and at most 10 custom attributes on one resource.
pub const MAX_ATTRIBUTES_PER_CALL: usize = 10;
pub const MAX_CUSTOM_ATTRIBUTES: usize = 10;

fn invalid(path: impl Into<String>, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, path, rule)
}

/// ECS's attribute rules: a name of 1 to 128 letters, digits, `-`, `_`,
/// `/`, `\` or `.`; a value of 1 to 128 letters, digits, `-`, `_`, `.`,
/// `@`, `/`, `\`, `:` or spaces, without leading or trailing whitespace.
pub fn validate_attribute(
    attribute: &Attribute,
    path: &str,
    needs_value: bool,
) -> Result<(), ApiError> {
    let name = &attribute.name;
    let name_ok = |c: char| c.is_ascii_alphanumeric() || "-_/\\.".contains(c);
    if name.is_empty() || name.chars().count() > 128 || !name.chars().all(name_ok) {
        return Err(invalid(
            format!("{path}.name"),
            format!("'{name}': 1 to 128 letters, digits, hyphens, underscores, slashes, backslashes or periods"),
        ));
    }
    match attribute.value.as_deref() {
        Some(value) => {
            let value_ok = |c: char| c.is_ascii_alphanumeric() || "-_.@/\\: ".contains(c);
            if value.is_empty()
                || value.chars().count() > 128
                || !value.chars().all(value_ok)
                || value.trim() != value
            {
                return Err(invalid(
                    format!("{path}.value"),
                    format!("'{value}': 1 to 128 letters, digits, hyphens, underscores, periods, at signs, slashes, backslashes, colons or spaces, not starting or ending with a space"),
                ));
            }
        }
        None if needs_value => {
            return Err(invalid(format!("{path}.value"), "a value is required"));
        }
        None => {}
    }
    if let Some(kind) = attribute.target_type.as_deref() {
        if kind != CONTAINER_INSTANCE_TARGET {
            return Err(invalid(
                format!("{path}.targetType"),
                format!("'{kind}': only {CONTAINER_INSTANCE_TARGET} is supported"),
            ));
        }
    }
    if attribute.target_id.as_deref().is_none_or(str::is_empty) {
        return Err(invalid(
            format!("{path}.targetId"),
            "the container instance (id or ARN) the attribute is on is required",
        ));
    }
    Ok(())
}

/// PutAttributes and DeleteAttributes input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub attributes: Vec<Attribute>,
}

impl AttributesInput {
    /// `put`: values are required (DeleteAttributes matches by name).
    pub fn validate(&self, put: bool) -> Result<(), ApiError> {
        if self.attributes.is_empty() || self.attributes.len() > MAX_ATTRIBUTES_PER_CALL {
            return Err(invalid(
                "attributes",
                format!(
                    "{} attributes given: between 1 and {MAX_ATTRIBUTES_PER_CALL} are allowed",
                    self.attributes.len()
                ),
            ));
        }
        for (i, a) in self.attributes.iter().enumerate() {
            validate_attribute(a, &format!("attributes[{i}]"), put)?;
        }
        Ok(())
    }
}

/// PutAttributes, DeleteAttributes and ListAttributes output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AttributesOutput {
    pub attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ListAttributes input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListAttributesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub target_type: String,
    #[serde(default)]
    pub attribute_name: Option<String>,
    #[serde(default)]
    pub attribute_value: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<u32>,
}

impl ListAttributesInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.target_type != CONTAINER_INSTANCE_TARGET {
            return Err(invalid(
                "targetType",
                format!(
                    "'{}': only {CONTAINER_INSTANCE_TARGET} is supported",
                    self.target_type
                ),
            ));
        }
        if self.attribute_value.is_some() && self.attribute_name.is_none() {
            return Err(invalid(
                "attributeValue",
                "filtering by value needs attributeName too",
            ));
        }
        crate::task::requests::check_max_results(self.max_results)
    }
}

/// UpdateContainerInstancesState input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    pub status: String,
}

impl UpdateContainerInstancesStateInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.container_instances.is_empty() || self.container_instances.len() > 10 {
            return Err(invalid(
                "containerInstances",
                format!(
                    "{} container instances given: between 1 and 10 are allowed",
                    self.container_instances.len()
                ),
            ));
        }
        if !["ACTIVE", "DRAINING"].contains(&self.status.as_str()) {
            return Err(invalid(
                "status",
                format!("'{}': expected ACTIVE or DRAINING", self.status),
            ));
        }
        Ok(())
    }
}

/// UpdateContainerInstancesState output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateContainerInstancesStateOutput {
    pub container_instances: Vec<ContainerInstance>,
    pub failures: Vec<Failure>,
}

/// DeregisterContainerInstance input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub container_instance: String,
    #[serde(default)]
    pub force: Option<bool>,
}

impl DeregisterContainerInstanceInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.container_instance.trim().is_empty() {
            return Err(invalid("containerInstance", "is required"));
        }
        Ok(())
    }
}

/// DeregisterContainerInstance output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeregisterContainerInstanceOutput {
    pub container_instance: ContainerInstance,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(name: &str, value: Option<&str>, target: Option<&str>) -> Attribute {
        Attribute {
            name: name.to_string(),
            value: value.map(str::to_string),
            target_type: Some(CONTAINER_INSTANCE_TARGET.to_string()),
            target_id: target.map(str::to_string),
        }
    }

    #[test]
    fn attribute_rules_name_the_field() {
        let ok = attr("stack", Some("prod web"), Some("i-1"));
        assert!(validate_attribute(&ok, "attributes[0]", true).is_ok());
        let cases = [
            (attr("", Some("v"), Some("i")), "attributes[0].name"),
            (attr("bad name", Some("v"), Some("i")), "attributes[0].name"),
            (
                attr(&"n".repeat(129), Some("v"), Some("i")),
                "attributes[0].name",
            ),
            (attr("n", Some(" v"), Some("i")), "attributes[0].value"),
            (attr("n", Some("v!"), Some("i")), "attributes[0].value"),
            (attr("n", None, Some("i")), "attributes[0].value"),
            (attr("n", Some("v"), None), "attributes[0].targetId"),
        ];
        for (a, field) in cases {
            let e = validate_attribute(&a, "attributes[0]", true).expect_err(field);
            assert_eq!(e.field.as_deref(), Some(field), "{e}");
        }
        let mut other = ok.clone();
        other.target_type = Some("task".to_string());
        let e = validate_attribute(&other, "a", true).expect_err("task targets");
        assert_eq!(e.field.as_deref(), Some("a.targetType"));
        // DeleteAttributes needs no value.
        assert!(validate_attribute(&attr("n", None, Some("i")), "a", false).is_ok());
    }

    #[test]
    fn call_limits() {
        let many = AttributesInput {
            cluster: None,
            attributes: (0..11)
                .map(|i| attr(&format!("a{i}"), Some("v"), Some("i")))
                .collect(),
        };
        assert_eq!(
            many.validate(true).expect_err("11").field.as_deref(),
            Some("attributes")
        );
        let drain = UpdateContainerInstancesStateInput {
            cluster: None,
            container_instances: vec!["i".into()],
            status: "DRAINED".into(),
        };
        assert_eq!(
            drain.validate().expect_err("status").field.as_deref(),
            Some("status")
        );
        let list = ListAttributesInput {
            target_type: "task".into(),
            ..Default::default()
        };
        assert_eq!(
            list.validate().expect_err("type").field.as_deref(),
            Some("targetType")
        );
    }
}

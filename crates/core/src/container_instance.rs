//! Container instances (machines running orca-agent) in ECS's shape, and the
//! inputs and outputs of ListContainerInstances / DescribeContainerInstances.

use serde::{Deserialize, Serialize};

use crate::error::{ApiError, Exception};
use crate::task::{Failure, Resources};
use crate::task_definition::{Attribute, Tag, Timestamp};

/// ECS's `containerInstances[]` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerInstance {
    pub container_instance_arn: String,
    /// The machine's hostname (ECS shows the EC2 instance id here).
    pub ec2_instance_id: String,
    pub version: u64,
    pub version_info: VersionInfo,
    pub remaining_resources: Vec<Resource>,
    pub registered_resources: Vec<Resource>,
    /// ACTIVE, DRAINING or INACTIVE.
    pub status: String,
    pub agent_connected: bool,
    pub running_tasks_count: u32,
    pub pending_tasks_count: u32,
    pub attributes: Vec<Attribute>,
    pub registered_at: Timestamp,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<Tag>,
}

/// `versionInfo`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VersionInfo {
    pub agent_version: String,
    /// The container runtime's version (ECS shows Docker's).
    pub docker_version: String,
}

/// ECS's `Resource` (CPU and MEMORY are INTEGER resources, PORTS and
/// PORTS_UDP STRINGSET resources).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Resource {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub double_value: f64,
    pub long_value: i64,
    pub integer_value: i64,
    /// A STRINGSET resource's members (ports as decimal strings).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub string_set_value: Option<Vec<String>>,
}

impl Resource {
    fn integer(name: &str, value: u64) -> Resource {
        let v = i64::try_from(value).unwrap_or(i64::MAX);
        Resource {
            name: name.to_string(),
            kind: "INTEGER".to_string(),
            double_value: 0.0,
            long_value: 0,
            integer_value: v,
            string_set_value: None,
        }
    }

    /// A STRINGSET of ports, as ECS shows `PORTS` and `PORTS_UDP`: in
    /// registeredResources the reserved ports, in remainingResources the
    /// ports in use (reserved and held by tasks).
    pub fn ports(name: &str, ports: impl IntoIterator<Item = u16>) -> Resource {
        let mut ports: Vec<u16> = ports.into_iter().collect();
        ports.sort_unstable();
        ports.dedup();
        Resource {
            name: name.to_string(),
            kind: "STRINGSET".to_string(),
            double_value: 0.0,
            long_value: 0,
            integer_value: 0,
            string_set_value: Some(ports.iter().map(u16::to_string).collect()),
        }
    }

    /// `[CPU, MEMORY]` as ECS lists them.
    pub fn list(resources: Resources) -> Vec<Resource> {
        vec![
            Resource::integer("CPU", resources.cpu),
            Resource::integer("MEMORY", resources.memory),
        ]
    }
}

/// ECS's ListContainerInstances input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    /// ECS's cluster query language: only instances it matches are listed.
    #[serde(default)]
    pub filter: Option<String>,
    /// ACTIVE, DRAINING, REGISTERING, DEREGISTERING or REGISTRATION_FAILED.
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub next_token: Option<String>,
    #[serde(default)]
    pub max_results: Option<u32>,
}

impl ListContainerInstancesInput {
    /// The filter expression, parsed (None when absent or blank).
    pub fn parsed_filter(&self) -> Result<Option<crate::placement::expr::Expr>, ApiError> {
        match self.filter.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => crate::placement::expr::parse(text)
                .map(Some)
                .map_err(|e| ApiError::field(Exception::InvalidParameterException, "filter", e)),
        }
    }

    pub fn validate(&self) -> Result<(), ApiError> {
        self.parsed_filter()?;
        if let Some(s) = self.status.as_deref() {
            let known = [
                "ACTIVE",
                "DRAINING",
                "REGISTERING",
                "DEREGISTERING",
                "REGISTRATION_FAILED",
            ];
            if !known.contains(&s) {
                return Err(ApiError::field(
                    Exception::InvalidParameterException,
                    "status",
                    format!("unknown value '{s}': expected one of {}", known.join(", ")),
                ));
            }
        }
        crate::task::requests::check_max_results(self.max_results)
    }
}

/// ECS's ListContainerInstances output.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListContainerInstancesOutput {
    pub container_instance_arns: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_token: Option<String>,
}

/// ECS's DescribeContainerInstances input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesInput {
    #[serde(default)]
    pub cluster: Option<String>,
    pub container_instances: Vec<String>,
    #[serde(default)]
    pub include: Option<Vec<String>>,
}

impl DescribeContainerInstancesInput {
    pub fn validate(&self) -> Result<(), ApiError> {
        if self.container_instances.is_empty() || self.container_instances.len() > 100 {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "containerInstances",
                format!(
                    "{} container instances given: between 1 and 100 are allowed",
                    self.container_instances.len()
                ),
            ));
        }
        crate::task::requests::check_include(self.include.as_deref())
    }
}

/// ECS's DescribeContainerInstances output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DescribeContainerInstancesOutput {
    pub container_instances: Vec<ContainerInstance>,
    pub failures: Vec<Failure>,
}

//! ARNs in ECS's shape, `arn:orca:ecs:<region>:<account>:<resource>`, and the
//! rule that every call taking an ARN also takes the short name.

use crate::error::{ApiError, Exception};

/// The region and account that ARNs are minted in; fixed per controller
/// cluster by its configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArnContext {
    pub region: String,
    pub account: String,
}

impl Default for ArnContext {
    /// orca's single-site default: one region named `local`, account zero.
    fn default() -> Self {
        ArnContext {
            region: "local".to_string(),
            account: "000000000000".to_string(),
        }
    }
}

impl ArnContext {
    fn arn(&self, resource: &str) -> String {
        format!("arn:orca:ecs:{}:{}:{}", self.region, self.account, resource)
    }

    pub fn cluster(&self, name: &str) -> String {
        self.arn(&format!("cluster/{name}"))
    }

    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        self.arn(&format!("task-definition/{family}:{revision}"))
    }

    pub fn task(&self, cluster: &str, task_id: &str) -> String {
        self.arn(&format!("task/{cluster}/{task_id}"))
    }

    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        self.arn(&format!("container/{cluster}/{task_id}/{container_id}"))
    }

    pub fn container_instance(&self, cluster: &str, instance_id: &str) -> String {
        self.arn(&format!("container-instance/{cluster}/{instance_id}"))
    }

    pub fn service(&self, cluster: &str, name: &str) -> String {
        self.arn(&format!("service/{cluster}/{name}"))
    }

    /// A Secrets Manager secret's ARN: its name and the six random
    /// characters Secrets Manager appends, so a secret deleted and created
    /// again under the same name has a new ARN.
    pub fn secret(&self, name: &str, suffix: &str) -> String {
        format!(
            "arn:orca:secretsmanager:{}:{}:secret:{name}-{suffix}",
            self.region, self.account
        )
    }

    /// A Parameter Store parameter's ARN.
    pub fn parameter(&self, name: &str) -> String {
        format!(
            "arn:orca:ssm:{}:{}:{}",
            self.region,
            self.account,
            crate::secrets::parameter_arn_name(name)
        )
    }

    /// The identity recorded as `registeredBy` when a caller names none.
    pub fn default_principal(&self) -> String {
        format!("arn:orca:iam::{}:root", self.account)
    }
}

/// The resource part (`cluster/web`) of an orca or AWS ECS ARN, if `s` is one.
/// AWS ARNs are accepted too so that definitions and scripts written for ECS
/// work unchanged.
fn resource_of(s: &str) -> Option<&str> {
    let rest = s.strip_prefix("arn:")?;
    // partition:service:region:account:resource
    let mut parts = rest.splitn(5, ':');
    let _partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let _account = parts.next()?;
    let resource = parts.next()?;
    (service == "ecs").then_some(resource)
}

/// A cluster reference: a short name or a cluster ARN; empty means `default`.
pub fn cluster_name(reference: &str) -> Result<String, ApiError> {
    if reference.is_empty() {
        return Ok("default".to_string());
    }
    if reference.starts_with("arn:") {
        return match resource_of(reference).and_then(|r| r.strip_prefix("cluster/")) {
            Some(name) if !name.is_empty() => Ok(name.to_string()),
            _ => Err(ApiError::field(
                Exception::InvalidParameterException,
                "cluster",
                format!("'{reference}' is not a cluster ARN"),
            )),
        };
    }
    Ok(reference.to_string())
}

/// A task or container-instance reference: the id, or an ARN
/// `...:task/<cluster>/<id>` (also the old form `...:task/<id>`). `kind` is
/// `task` or `container-instance`; `field` names the request field. Returns
/// the cluster named in the ARN, if any, and the id.
pub fn resource_id(
    reference: &str,
    kind: &str,
    field: &str,
) -> Result<(Option<String>, String), ApiError> {
    let bad = || {
        ApiError::field(
            Exception::InvalidParameterException,
            field,
            format!("'{reference}' is not a {kind} id or ARN"),
        )
    };
    if !reference.starts_with("arn:") {
        if reference.is_empty() || reference.contains('/') {
            return Err(bad());
        }
        return Ok((None, reference.to_string()));
    }
    let rest = resource_of(reference)
        .and_then(|r| r.strip_prefix(kind))
        .and_then(|r| r.strip_prefix('/'))
        .ok_or_else(bad)?;
    match rest.split_once('/') {
        Some((cluster, id)) if !cluster.is_empty() && !id.is_empty() && !id.contains('/') => {
            Ok((Some(cluster.to_string()), id.to_string()))
        }
        None if !rest.is_empty() => Ok((None, rest.to_string())),
        _ => Err(bad()),
    }
}

/// A task-definition reference as ECS takes it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskDefinitionRef {
    pub family: String,
    /// None: the latest ACTIVE revision.
    pub revision: Option<u32>,
}

/// Parses `family`, `family:revision` or a task-definition ARN; `field` names
/// the request field for the error.
pub fn task_definition_ref(reference: &str, field: &str) -> Result<TaskDefinitionRef, ApiError> {
    let bad = |why: &str| {
        ApiError::field(
            Exception::ClientException,
            field,
            format!("'{reference}' is not a valid task definition reference: {why}"),
        )
    };
    let short = if reference.starts_with("arn:") {
        resource_of(reference)
            .and_then(|r| r.strip_prefix("task-definition/"))
            .ok_or_else(|| bad("expected arn:...:task-definition/family:revision"))?
    } else {
        reference
    };
    if short.is_empty() {
        return Err(bad("it is empty"));
    }
    match short.rsplit_once(':') {
        None => Ok(TaskDefinitionRef {
            family: short.to_string(),
            revision: None,
        }),
        Some((family, rev)) => {
            let revision: u32 = rev
                .parse()
                .ok()
                .filter(|r| *r >= 1)
                .ok_or_else(|| bad("the revision must be a whole number of at least 1"))?;
            if family.is_empty() {
                return Err(bad("the family is empty"));
            }
            Ok(TaskDefinitionRef {
                family: family.to_string(),
                revision: Some(revision),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_references_in_every_form() {
        let arn = ArnContext::default().task_definition("web", 3);
        assert_eq!(arn, "arn:orca:ecs:local:000000000000:task-definition/web:3");
        for r in [
            arn.as_str(),
            "web:3",
            "arn:aws:ecs:us-east-1:123456789012:task-definition/web:3",
        ] {
            assert_eq!(
                task_definition_ref(r, "taskDefinition").unwrap(),
                TaskDefinitionRef {
                    family: "web".into(),
                    revision: Some(3)
                }
            );
        }
        assert_eq!(task_definition_ref("web", "t").unwrap().revision, None);
        for bad in ["", "web:0", "web:x", ":3", "arn:orca:ecs:r:a:cluster/x"] {
            let e = task_definition_ref(bad, "taskDefinition").unwrap_err();
            assert_eq!(e.field.as_deref(), Some("taskDefinition"), "{bad}");
        }
    }

    #[test]
    fn cluster_names_from_arns_and_default() {
        assert_eq!(cluster_name("").unwrap(), "default");
        assert_eq!(
            cluster_name(&ArnContext::default().cluster("prod")).unwrap(),
            "prod"
        );
        assert!(cluster_name("arn:orca:ecs:r:a:task-definition/x:1").is_err());
    }
}

/// A resource ECS can tag, as its ARN names it (TagResource,
/// UntagResource, ListTagsForResource).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum TaggedResource {
    Cluster(String),
    TaskDefinition { family: String, revision: u32 },
    Service { cluster: String, name: String },
    Task { cluster: String, id: String },
    ContainerInstance { cluster: String, id: String },
}

/// The resource `arn` names; `field` is the request field (`resourceArn`).
pub fn tagged_resource(arn: &str, field: &str) -> Result<TaggedResource, ApiError> {
    let bad = |why: &str| {
        ApiError::field(
            Exception::InvalidParameterException,
            field,
            format!("'{arn}' {why}"),
        )
    };
    let resource = resource_of(arn).ok_or_else(|| bad("is not an ECS ARN"))?;
    let (kind, rest) = resource
        .split_once('/')
        .ok_or_else(|| bad("names no resource"))?;
    let two = |rest: &str| -> Result<(String, String), ApiError> {
        match rest.split_once('/') {
            Some((a, b)) if !a.is_empty() && !b.is_empty() && !b.contains('/') => {
                Ok((a.to_string(), b.to_string()))
            }
            _ => Err(bad(&format!(
                "is not a {kind} ARN (…:{kind}/<cluster>/<name>)"
            ))),
        }
    };
    match kind {
        "cluster" if !rest.is_empty() && !rest.contains('/') => {
            Ok(TaggedResource::Cluster(rest.to_string()))
        }
        "task-definition" => match task_definition_ref(arn, field)? {
            TaskDefinitionRef {
                family,
                revision: Some(revision),
            } => Ok(TaggedResource::TaskDefinition { family, revision }),
            _ => Err(bad("names no task definition revision")),
        },
        "service" => two(rest).map(|(cluster, name)| TaggedResource::Service { cluster, name }),
        "task" => two(rest).map(|(cluster, id)| TaggedResource::Task { cluster, id }),
        "container-instance" => {
            two(rest).map(|(cluster, id)| TaggedResource::ContainerInstance { cluster, id })
        }
        _ => Err(bad("is not the ARN of a resource ECS tags (cluster, task definition, service, task, container instance)")),
    }
}

#[cfg(test)]
mod tagged_tests {
    use super::*;

    #[test]
    fn arns_of_taggable_resources_parse_and_others_are_refused() {
        let ctx = ArnContext::default();
        assert_eq!(
            tagged_resource(&ctx.cluster("prod"), "resourceArn"),
            Ok(TaggedResource::Cluster("prod".into()))
        );
        assert_eq!(
            tagged_resource(&ctx.task_definition("web", 3), "resourceArn"),
            Ok(TaggedResource::TaskDefinition {
                family: "web".into(),
                revision: 3
            })
        );
        assert_eq!(
            tagged_resource(
                "arn:aws:ecs:us-east-1:123456789012:service/prod/web",
                "resourceArn"
            ),
            Ok(TaggedResource::Service {
                cluster: "prod".into(),
                name: "web".into()
            })
        );
        assert_eq!(
            tagged_resource(&ctx.task("default", "abc"), "resourceArn"),
            Ok(TaggedResource::Task {
                cluster: "default".into(),
                id: "abc".into()
            })
        );
        for bad in [
            "web",
            "arn:aws:s3:::bucket",
            "arn:orca:ecs:local:0:container/a/b/c",
        ] {
            let e = tagged_resource(bad, "resourceArn").unwrap_err();
            assert_eq!(e.field.as_deref(), Some("resourceArn"), "{bad}");
        }
    }
}

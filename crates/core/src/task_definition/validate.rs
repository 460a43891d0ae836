//! ECS's task-level rules for RegisterTaskDefinition, the tag rules shared
//! with clusters, and the normalisation of task `cpu` / `memory`.
//! Container-level rules are in `validate_container.rs`.

use std::collections::BTreeSet;
use std::fmt;

use super::enums::{Compatibility, EfsSetting, NetworkMode, PlacementConstraintType};
use super::model::{Tag, TaskDefinitionSpec, Volume};
use super::units;
use super::validate_container::{validate_containers, TaskContext};
use crate::error::{ApiError, Exception};

/// The most tags a resource may carry.
pub const MAX_TAGS: usize = 50;
/// The most placement constraints a task definition may carry.
pub const MAX_PLACEMENT_CONSTRAINTS: usize = crate::placement::MAX_CONSTRAINTS;

pub(crate) fn client(path: impl Into<String>, rule: impl fmt::Display) -> ApiError {
    ApiError::field(Exception::ClientException, path, rule)
}

pub(crate) fn invalid(path: impl Into<String>, rule: impl fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, path, rule)
}

/// ECS's name rule for families, containers and volumes.
pub(crate) fn check_name(path: &str, value: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
    if value.is_empty() || value.len() > 255 || !value.chars().all(ok_char) {
        return Err(client(
            path,
            format!(
                "'{value}' is not a valid name: use 1 to 255 letters, numbers, hyphens and \
                 underscores"
            ),
        ));
    }
    Ok(())
}

/// Checks every rule and normalises `cpu` and `memory` to CPU units / MiB.
pub(crate) fn validate_spec(spec: &mut TaskDefinitionSpec) -> Result<(), ApiError> {
    check_name("family", &spec.family)?;
    check_role_arn("taskRoleArn", spec.task_role_arn.as_deref())?;
    check_role_arn("executionRoleArn", spec.execution_role_arn.as_deref())?;

    let cpu = match spec.cpu.as_deref() {
        Some(c) => Some(units::parse_cpu(c).map_err(|rule| client("cpu", rule))?),
        None => None,
    };
    let memory = match spec.memory.as_deref() {
        Some(m) => Some(units::parse_memory(m).map_err(|rule| client("memory", rule))?),
        None => None,
    };
    spec.cpu = cpu.map(|c| c.to_string());
    spec.memory = memory.map(|m| m.to_string());

    let mode = spec.effective_network_mode();
    let fargate = spec
        .requires_compatibilities
        .as_ref()
        .is_some_and(|c| c.contains(&Compatibility::Fargate));
    if fargate {
        if mode != NetworkMode::Awsvpc {
            return Err(client(
                "networkMode",
                format!("FARGATE requires networkMode awsvpc, not {mode}"),
            ));
        }
        if cpu.is_none() {
            return Err(client("cpu", "FARGATE requires task-level cpu"));
        }
        if memory.is_none() {
            return Err(client("memory", "FARGATE requires task-level memory"));
        }
    }

    validate_volumes(spec.volumes.as_deref().unwrap_or_default())?;
    validate_placement(spec)?;
    if let Some(storage) = &spec.ephemeral_storage {
        if !(21..=200).contains(&storage.size_in_gib) {
            return Err(invalid(
                "ephemeralStorage.sizeInGiB",
                format!(
                    "{} is out of range: it must be between 21 and 200",
                    storage.size_in_gib
                ),
            ));
        }
    }
    let mut device_names = BTreeSet::new();
    for (i, acc) in spec.inference_accelerators.iter().flatten().enumerate() {
        let p = format!("inferenceAccelerators[{i}]");
        if acc.device_name.is_empty() {
            return Err(client(format!("{p}.deviceName"), "must not be empty"));
        }
        if acc.device_type.is_empty() {
            return Err(client(format!("{p}.deviceType"), "must not be empty"));
        }
        if !device_names.insert(acc.device_name.as_str()) {
            return Err(client(
                format!("{p}.deviceName"),
                format!("duplicate device name '{}'", acc.device_name),
            ));
        }
    }

    let ctx = TaskContext {
        mode,
        cpu,
        memory,
        device_names,
    };
    validate_containers(spec, &ctx)?;

    if let Some(proxy) = &spec.proxy_configuration {
        if spec.container(&proxy.container_name).is_none() {
            return Err(client(
                "proxyConfiguration.containerName",
                format!(
                    "'{}' names no container in containerDefinitions",
                    proxy.container_name
                ),
            ));
        }
        if mode != NetworkMode::Awsvpc {
            return Err(client(
                "proxyConfiguration",
                format!("a proxy configuration requires networkMode awsvpc, not {mode}"),
            ));
        }
        for (i, property) in proxy.properties.iter().flatten().enumerate() {
            if property.name.is_empty() {
                return Err(client(
                    format!("proxyConfiguration.properties[{i}].name"),
                    "must not be empty",
                ));
            }
        }
    }
    Ok(())
}

/// `arn:<partition>:iam::<account>:role/<name>`; anything else is an
/// InvalidParameterException.
fn check_role_arn(path: &str, arn: Option<&str>) -> Result<(), ApiError> {
    let Some(arn) = arn else { return Ok(()) };
    let mut parts = arn.splitn(6, ':');
    let ok = parts.next() == Some("arn")
        && parts.next().is_some_and(|p| {
            !p.is_empty() && p.chars().all(|c| c.is_ascii_lowercase() || c == '-')
        })
        && parts.next() == Some("iam")
        && parts.next() == Some("")
        && parts
            .next()
            .is_some_and(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
        && parts
            .next()
            .and_then(|r| r.strip_prefix("role/"))
            .is_some_and(|name| {
                !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c.is_control())
            });
    if !ok {
        return Err(invalid(
            path,
            format!("'{arn}' is not an IAM role ARN (arn:<partition>:iam::<account>:role/<name>)"),
        ));
    }
    Ok(())
}

fn validate_volumes(volumes: &[Volume]) -> Result<(), ApiError> {
    let mut names = BTreeSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let p = format!("volumes[{i}]");
        check_name(&format!("{p}.name"), &volume.name)?;
        if !names.insert(volume.name.as_str()) {
            return Err(client(
                format!("{p}.name"),
                format!(
                    "duplicate volume name '{}'; volume names must be unique",
                    volume.name
                ),
            ));
        }
        let kinds = [
            volume.host.is_some(),
            volume.docker_volume_configuration.is_some(),
            volume.efs_volume_configuration.is_some(),
            volume
                .fsx_windows_file_server_volume_configuration
                .is_some(),
        ];
        if kinds.iter().filter(|k| **k).count() > 1 {
            return Err(client(
                p,
                "set at most one of host, dockerVolumeConfiguration, efsVolumeConfiguration and \
                 fsxWindowsFileServerVolumeConfiguration",
            ));
        }
        if let Some(docker) = &volume.docker_volume_configuration {
            if docker.autoprovision == Some(true)
                && docker.scope != Some(super::enums::Scope::Shared)
            {
                return Err(client(
                    format!("{p}.dockerVolumeConfiguration.autoprovision"),
                    "autoprovision is only allowed with scope shared",
                ));
            }
        }
        if let Some(efs) = &volume.efs_volume_configuration {
            let pe = format!("{p}.efsVolumeConfiguration");
            if efs.file_system_id.is_empty() {
                return Err(client(format!("{pe}.fileSystemId"), "must not be empty"));
            }
            if let Some(port) = efs.transit_encryption_port {
                if !(1..=65535).contains(&port) {
                    return Err(invalid(
                        format!("{pe}.transitEncryptionPort"),
                        format!("{port} is out of range: it must be between 1 and 65535"),
                    ));
                }
            }
            if let Some(auth) = &efs.authorization_config {
                if auth.iam == Some(EfsSetting::Enabled)
                    && efs.transit_encryption != Some(EfsSetting::Enabled)
                {
                    return Err(client(
                        format!("{pe}.transitEncryption"),
                        "must be ENABLED when authorizationConfig.iam is ENABLED",
                    ));
                }
                let root = efs.root_directory.as_deref().unwrap_or("/");
                if auth.access_point_id.is_some() && root != "/" {
                    return Err(client(
                        format!("{pe}.rootDirectory"),
                        "must be omitted or '/' when authorizationConfig.accessPointId is set",
                    ));
                }
            }
        }
    }
    Ok(())
}

fn validate_placement(spec: &TaskDefinitionSpec) -> Result<(), ApiError> {
    let constraints = spec.placement_constraints.as_deref().unwrap_or_default();
    if constraints.len() > MAX_PLACEMENT_CONSTRAINTS {
        return Err(client(
            "placementConstraints",
            format!(
                "{} constraints given; at most {MAX_PLACEMENT_CONSTRAINTS} are allowed",
                constraints.len()
            ),
        ));
    }
    for (i, constraint) in constraints.iter().enumerate() {
        let p = format!("placementConstraints[{i}]");
        if constraint.r#type != PlacementConstraintType::MemberOf {
            return Err(client(
                format!("{p}.type"),
                format!(
                    "{} is not allowed in a task definition; use memberOf",
                    constraint.r#type
                ),
            ));
        }
        let Some(expression) = constraint
            .expression
            .as_deref()
            .filter(|e| !e.trim().is_empty())
        else {
            return Err(client(
                format!("{p}.expression"),
                "memberOf requires an expression",
            ));
        };
        // Checked now so that a typo fails at registration rather than
        // leaving every task of the definition unplaceable.
        crate::placement::expr::parse(expression)
            .map_err(|e| invalid(format!("{p}.expression"), e))?;
    }
    Ok(())
}

/// ECS's tag rules, used for task definitions and clusters alike: at most 50
/// tags; keys 1 to 128 characters, unique, not starting with `aws:` in any
/// case; values at most 256 characters; both made of letters, digits,
/// spaces and `_ . : / = + - @`. Every failure is an
/// InvalidParameterException at `path` or `path[i].key` / `path[i].value`.
pub fn validate_tags(tags: &[Tag], path: &str) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(invalid(
            path,
            format!("{} tags given; at most {MAX_TAGS} are allowed", tags.len()),
        ));
    }
    let allowed = |c: char| c.is_alphanumeric() || c.is_whitespace() || "_.:/=+-@".contains(c);
    let mut keys = BTreeSet::new();
    for (i, tag) in tags.iter().enumerate() {
        let key_path = format!("{path}[{i}].key");
        let key_len = tag.key.chars().count();
        if !(1..=128).contains(&key_len) {
            return Err(invalid(
                key_path,
                "tag keys must be 1 to 128 characters long",
            ));
        }
        if tag
            .key
            .get(..4)
            .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
        {
            return Err(invalid(
                key_path,
                "tag keys starting with 'aws:' are reserved",
            ));
        }
        if !tag.key.chars().all(allowed) {
            return Err(invalid(
                key_path,
                "tag keys may contain only letters, digits, spaces and _ . : / = + - @",
            ));
        }
        if !keys.insert(tag.key.as_str()) {
            return Err(invalid(
                key_path,
                format!("duplicate tag key '{}'", tag.key),
            ));
        }
        let value_path = format!("{path}[{i}].value");
        if tag.value.chars().count() > 256 {
            return Err(invalid(
                value_path,
                "tag values must be at most 256 characters long",
            ));
        }
        if !tag.value.chars().all(allowed) {
            return Err(invalid(
                value_path,
                "tag values may contain only letters, digits, spaces and _ . : / = + - @",
            ));
        }
    }
    Ok(())
}

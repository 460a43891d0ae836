//! The one model of an ECS task definition, in ECS's JSON verbatim.
//!
//! Users paste what they would send to `aws ecs register-task-definition
//! --cli-input-json`; [`parse_register_input`] reads it into a
//! [`TaskDefinitionSpec`] plus its tags, checks ECS's rules and normalises
//! task `cpu` / `memory`. [`TaskDefinition::new`] turns a spec into the
//! describe shape with ECS's defaults filled in.
//!
//! Files, one job each: `model.rs` (task level and the describe shape),
//! `container.rs` (container level), `enums.rs` (closed vocabularies),
//! `units.rs` (cpu/memory units), `parse.rs` (JSON → model, unknown fields,
//! type errors, size limit), `validate.rs` (task-level rules and tags),
//! `validate_container.rs` (per-container rules), `validate_ports.rs`
//! (port mappings), `validate_across.rs` (rules spanning containers), `defaults.rs` (describe-shape
//! defaults, `requiresAttributes`, `compatibilities`), `timestamp.rs`.
//!
//! # Exceptions
//!
//! Every error names the JSON path of the field at fault
//! (`containerDefinitions[0].healthCheck.interval`; `taskDefinition` for the
//! input as a whole). As ECS does for RegisterTaskDefinition:
//!
//! - **ClientException**: the input's shape and the definition's
//!   consistency — too large, not a JSON object, an unknown field, a wrong
//!   JSON type (including a negative or fractional number where a whole
//!   number is wanted), a missing or empty required field, names
//!   (family, container, volume), container count, essential containers,
//!   cpu/memory (units, minimums, totals), references between parts
//!   (dependsOn, links, volumesFrom, mountPoints, proxy, devices), dependsOn
//!   cycles and conditions, network-mode restrictions (FARGATE, links,
//!   hostname, hostPort), duplicates (container names, ports, volumes), a
//!   malformed healthCheck command, placement constraints.
//! - **InvalidParameterException**: one parameter value that is malformed
//!   or out of range — an unknown enum value (networkMode, protocol,
//!   logDriver, condition, ulimit name, ...), role ARNs that are not IAM
//!   role ARNs, tags, numeric ranges (healthCheck timings, ports,
//!   stopTimeout, ephemeralStorage, restartPolicy, ulimits, swappiness,
//!   GPU counts).
//!
//! # Differences from ECS
//!
//! - `networkMode` defaults to `awsvpc`, not `bridge`: every orca task gets
//!   its own network namespace.
//! - Maps (`dockerLabels`, `options`, ...) come back with sorted keys.
//! - An environment entry without `value` reads as `"value": ""`.
//! - Under `bridge`, the same containerPort may be used by two containers
//!   (they get different host ports); under awsvpc/host it may not.

mod container;
mod defaults;
mod enums;
mod model;
mod parse;
mod timestamp;
mod units;
mod validate;
mod validate_across;
mod validate_container;
mod validate_ports;

#[cfg(test)]
mod tests;

pub use container::{
    ContainerDefinition, ContainerDependency, Device, EnvironmentFile, FirelensConfiguration,
    HealthCheck, HostEntry, KernelCapabilities, LinuxParameters, LogConfiguration, MountPoint,
    PortMapping, RepositoryCredentials, ResourceRequirement, RestartPolicy, Secret, SystemControl,
    Tmpfs, Ulimit, VolumeFrom,
};
pub use defaults::{
    DEFAULT_HEALTH_CHECK_INTERVAL, DEFAULT_HEALTH_CHECK_RETRIES, DEFAULT_HEALTH_CHECK_TIMEOUT,
};
pub use enums::{
    ApplicationProtocol, Compatibility, ContainerCondition, CpuArchitecture, DevicePermission,
    EfsSetting, EnvironmentFileType, FirelensConfigurationType, IpcMode, LogDriver, NetworkMode,
    OsFamily, PidMode, PlacementConstraintType, ProxyConfigurationType, ResourceType, Scope,
    TransportProtocol, UlimitName, VersionConsistency,
};
pub use model::{
    Attribute, DockerVolumeConfiguration, EfsAuthorizationConfig, EfsVolumeConfiguration,
    EphemeralStorage, FsxWindowsFileServerAuthorizationConfig,
    FsxWindowsFileServerVolumeConfiguration, HostVolumeProperties, InferenceAccelerator,
    KeyValuePair, PlacementConstraint, ProxyConfiguration, RuntimePlatform, Tag, TaskDefinition,
    TaskDefinitionSpec, TaskDefinitionStatus, Volume,
};
pub use parse::MAX_INPUT_BYTES;
pub use timestamp::Timestamp;
pub use units::{parse_cpu, parse_memory};
pub use validate::{validate_tags, MAX_TAGS};
pub use validate_container::MAX_CONTAINERS;
pub use validate_ports::parse_port_range;

use crate::error::ApiError;

/// A parsed, validated and normalised RegisterTaskDefinition input.
#[derive(Debug, Clone, PartialEq)]
pub struct RegisterInput {
    pub spec: TaskDefinitionSpec,
    pub tags: Vec<Tag>,
}

/// Parses, validates and normalises ECS's RegisterTaskDefinition input JSON
/// (task `cpu` / `memory` become CPU units / MiB strings). Never panics on
/// any input; every error names the field's JSON path.
pub fn parse_register_input(json: &str) -> Result<RegisterInput, ApiError> {
    let (mut spec, tags) = parse::read_input(json)?;
    validate::validate_spec(&mut spec)?;
    validate_tags(&tags, "tags")?;
    Ok(RegisterInput { spec, tags })
}

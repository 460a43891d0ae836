//! ECS's container-level rules: the container list and names, then each
//! container on its own. Rules spanning containers are in
//! `validate_across.rs`, port rules in `validate_ports.rs`.

use std::collections::{BTreeMap, BTreeSet};

use super::container::{ContainerDefinition, HealthCheck};
use super::enums::{NetworkMode, ResourceType};
use super::model::TaskDefinitionSpec;
use super::units::{MEMORY_MIN_MIB, TASK_CPU_MAX};
use super::validate::{check_name, client, invalid};
use crate::error::ApiError;

/// The most containers a task definition may hold.
pub const MAX_CONTAINERS: usize = 10;

/// Task-level facts the container rules depend on.
pub(crate) struct TaskContext<'a> {
    pub mode: NetworkMode,
    /// Task CPU units, when set.
    pub cpu: Option<u32>,
    /// Task memory in MiB, when set.
    pub memory: Option<u32>,
    /// `inferenceAccelerators[].deviceName`s.
    pub device_names: BTreeSet<&'a str>,
}

pub(crate) fn validate_containers(
    spec: &TaskDefinitionSpec,
    ctx: &TaskContext<'_>,
) -> Result<(), ApiError> {
    let containers = &spec.container_definitions;
    if containers.is_empty() || containers.len() > MAX_CONTAINERS {
        return Err(client(
            "containerDefinitions",
            format!(
                "{} containers given; a task definition holds 1 to {MAX_CONTAINERS}",
                containers.len()
            ),
        ));
    }
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        let path = format!("containerDefinitions[{i}].name");
        check_name(&path, &c.name)?;
        if index.insert(c.name.as_str(), i).is_some() {
            return Err(client(
                path,
                format!(
                    "duplicate container name '{}'; names must be unique",
                    c.name
                ),
            ));
        }
    }
    let volumes: BTreeSet<&str> = spec
        .volumes
        .iter()
        .flatten()
        .map(|v| v.name.as_str())
        .collect();
    for (i, c) in containers.iter().enumerate() {
        let p = format!("containerDefinitions[{i}]");
        validate_container(&p, c, ctx, &index, &volumes)?;
    }
    super::validate_across::validate_across(containers, ctx, &index)
}

fn validate_container(
    p: &str,
    c: &ContainerDefinition,
    ctx: &TaskContext<'_>,
    containers: &BTreeMap<&str, usize>,
    volumes: &BTreeSet<&str>,
) -> Result<(), ApiError> {
    if c.image.trim().is_empty() {
        return Err(client(
            format!("{p}.image"),
            "is required and must not be empty",
        ));
    }
    if c.image.chars().count() > 255
        || c.image
            .chars()
            .any(|ch| ch.is_whitespace() || ch.is_control())
    {
        return Err(client(
            format!("{p}.image"),
            "must be at most 255 characters with no whitespace",
        ));
    }
    if let Some(creds) = &c.repository_credentials {
        if creds.credentials_parameter.is_empty() {
            return Err(client(
                format!("{p}.repositoryCredentials.credentialsParameter"),
                "must not be empty",
            ));
        }
    }
    validate_resources(p, c, ctx)?;

    if let Some(links) = &c.links {
        if ctx.mode != NetworkMode::Bridge {
            return Err(client(
                format!("{p}.links"),
                format!(
                    "links are only supported with networkMode bridge, not {}",
                    ctx.mode
                ),
            ));
        }
        for (j, link) in links.iter().enumerate() {
            let target = link.split(':').next().unwrap_or_default();
            if target == c.name || !containers.contains_key(target) {
                return Err(client(
                    format!("{p}.links[{j}]"),
                    format!("'{link}' must name another container of this task (name[:alias])"),
                ));
            }
        }
    }
    if c.hostname.is_some() && ctx.mode == NetworkMode::Awsvpc {
        return Err(client(
            format!("{p}.hostname"),
            "hostname is not supported with networkMode awsvpc",
        ));
    }
    if ctx.mode == NetworkMode::Awsvpc {
        // ECS: "not supported for tasks that use the awsvpc network mode";
        // the task's resolver and hosts file are the agent's there.
        let set = [
            ("dnsServers", c.dns_servers.is_some()),
            ("dnsSearchDomains", c.dns_search_domains.is_some()),
            ("extraHosts", c.extra_hosts.is_some()),
        ];
        if let Some((field, _)) = set.iter().find(|(_, is_set)| *is_set) {
            return Err(client(
                format!("{p}.{field}"),
                format!("{field} is not supported with networkMode awsvpc"),
            ));
        }
    }
    for (j, server) in c.dns_servers.iter().flatten().enumerate() {
        if server.parse::<std::net::IpAddr>().is_err() {
            return Err(client(
                format!("{p}.dnsServers[{j}]"),
                format!("'{server}' is not an IP address"),
            ));
        }
    }
    for (j, mapping) in c.port_mappings.iter().flatten().enumerate() {
        super::validate_ports::validate_port(&format!("{p}.portMappings[{j}]"), mapping, ctx.mode)?;
    }
    if ctx.mode == NetworkMode::None && c.port_mappings.as_ref().is_some_and(|m| !m.is_empty()) {
        return Err(client(
            format!("{p}.portMappings"),
            "port mappings are not supported with networkMode none",
        ));
    }
    if let Some(policy) = &c.restart_policy {
        if policy
            .ignored_exit_codes
            .as_ref()
            .is_some_and(|codes| codes.len() > 50)
        {
            return Err(invalid(
                format!("{p}.restartPolicy.ignoredExitCodes"),
                "at most 50 exit codes may be ignored",
            ));
        }
        if let Some(period) = policy.restart_attempt_period {
            if !(60..=1800).contains(&period) {
                return Err(invalid(
                    format!("{p}.restartPolicy.restartAttemptPeriod"),
                    format!("{period} is out of range: it must be between 60 and 1800 seconds"),
                ));
            }
        }
    }
    for (j, env) in c.environment.iter().flatten().enumerate() {
        if env.name.is_empty() {
            return Err(client(
                format!("{p}.environment[{j}].name"),
                "must not be empty",
            ));
        }
    }
    let files = c.environment_files.as_deref().unwrap_or_default();
    if files.len() > 10 {
        return Err(client(
            format!("{p}.environmentFiles"),
            "at most 10 environment files",
        ));
    }
    for (j, file) in files.iter().enumerate() {
        if file.value.is_empty() {
            return Err(client(
                format!("{p}.environmentFiles[{j}].value"),
                "must not be empty",
            ));
        }
    }
    for (j, mount) in c.mount_points.iter().flatten().enumerate() {
        let pm = format!("{p}.mountPoints[{j}]");
        match mount.source_volume.as_deref() {
            None | Some("") => return Err(client(format!("{pm}.sourceVolume"), "is required")),
            Some(v) if !volumes.contains(v) => {
                return Err(client(
                    format!("{pm}.sourceVolume"),
                    format!("'{v}' names no volume in volumes"),
                ))
            }
            Some(_) => {}
        }
        if mount.container_path.as_deref().is_none_or(str::is_empty) {
            return Err(client(format!("{pm}.containerPath"), "is required"));
        }
    }
    for (j, from) in c.volumes_from.iter().flatten().enumerate() {
        let path = format!("{p}.volumesFrom[{j}].sourceContainer");
        match from.source_container.as_deref() {
            None | Some("") => return Err(client(path, "is required")),
            Some(s) if s == c.name || !containers.contains_key(s) => {
                return Err(client(
                    path,
                    format!("'{s}' must name another container of this task"),
                ))
            }
            Some(_) => {}
        }
    }
    if let Some(linux) = &c.linux_parameters {
        let pl = format!("{p}.linuxParameters");
        if let Some(swappiness) = linux.swappiness {
            if swappiness > 100 {
                return Err(invalid(
                    format!("{pl}.swappiness"),
                    format!("{swappiness} is out of range: it must be between 0 and 100"),
                ));
            }
        }
        for (j, device) in linux.devices.iter().flatten().enumerate() {
            if device.host_path.is_empty() {
                return Err(client(
                    format!("{pl}.devices[{j}].hostPath"),
                    "must not be empty",
                ));
            }
        }
        for (j, tmpfs) in linux.tmpfs.iter().flatten().enumerate() {
            if tmpfs.container_path.is_empty() {
                return Err(client(
                    format!("{pl}.tmpfs[{j}].containerPath"),
                    "must not be empty",
                ));
            }
            if tmpfs.size == 0 {
                return Err(invalid(
                    format!("{pl}.tmpfs[{j}].size"),
                    "must be at least 1 MiB",
                ));
            }
        }
    }
    for (j, secret) in c.secrets.iter().flatten().enumerate() {
        validate_secret(
            &format!("{p}.secrets[{j}]"),
            &secret.name,
            &secret.value_from,
        )?;
    }
    if crate::secrets::secret_files_dir(p, c)?.is_some() {
        for (j, secret) in c.secrets.iter().flatten().enumerate() {
            if !crate::secrets::files::valid_file_name(&secret.name) {
                return Err(client(
                    format!("{p}.secrets[{j}].name"),
                    format!(
                        "'{}' cannot name a file in {}: no '/' and not . or ..",
                        secret.name,
                        crate::secrets::SECRET_FILES_LABEL
                    ),
                ));
            }
        }
    }
    for (j, dep) in c.depends_on.iter().flatten().enumerate() {
        let path = format!("{p}.dependsOn[{j}].containerName");
        if dep.container_name == c.name {
            return Err(client(path, "a container cannot depend on itself"));
        }
        if !containers.contains_key(dep.container_name.as_str()) {
            return Err(client(
                path,
                format!(
                    "'{}' names no container in containerDefinitions",
                    dep.container_name
                ),
            ));
        }
    }
    if let Some(stop) = c.stop_timeout {
        if stop > 120 {
            return Err(invalid(
                format!("{p}.stopTimeout"),
                format!("{stop} is out of range: it must be between 0 and 120 seconds"),
            ));
        }
    }
    for (j, host) in c.extra_hosts.iter().flatten().enumerate() {
        if host.hostname.is_empty() {
            return Err(client(
                format!("{p}.extraHosts[{j}].hostname"),
                "must not be empty",
            ));
        }
        if host.ip_address.parse::<std::net::IpAddr>().is_err() {
            return Err(client(
                format!("{p}.extraHosts[{j}].ipAddress"),
                format!("'{}' is not an IP address", host.ip_address),
            ));
        }
    }
    for (j, ulimit) in c.ulimits.iter().flatten().enumerate() {
        let pu = format!("{p}.ulimits[{j}]");
        if ulimit.soft_limit < 0 {
            return Err(invalid(format!("{pu}.softLimit"), "must not be negative"));
        }
        if ulimit.hard_limit < 0 {
            return Err(invalid(format!("{pu}.hardLimit"), "must not be negative"));
        }
        if ulimit.soft_limit > ulimit.hard_limit {
            return Err(invalid(
                format!("{pu}.softLimit"),
                format!(
                    "{} exceeds hardLimit {}",
                    ulimit.soft_limit, ulimit.hard_limit
                ),
            ));
        }
    }
    if let Some(log) = &c.log_configuration {
        for (j, secret) in log.secret_options.iter().flatten().enumerate() {
            validate_secret(
                &format!("{p}.logConfiguration.secretOptions[{j}]"),
                &secret.name,
                &secret.value_from,
            )?;
        }
    }
    if let Some(check) = &c.health_check {
        validate_health_check(&format!("{p}.healthCheck"), check)?;
    }
    for (j, control) in c.system_controls.iter().flatten().enumerate() {
        if control.namespace.as_deref().is_none_or(str::is_empty) {
            return Err(client(
                format!("{p}.systemControls[{j}].namespace"),
                "is required",
            ));
        }
    }
    for (j, req) in c.resource_requirements.iter().flatten().enumerate() {
        let path = format!("{p}.resourceRequirements[{j}].value");
        match req.r#type {
            ResourceType::Gpu => {
                if !req.value.parse::<u32>().is_ok_and(|n| n >= 1) {
                    return Err(invalid(
                        path,
                        format!(
                            "'{}' is not a GPU count: use a whole number of at least 1",
                            req.value
                        ),
                    ));
                }
            }
            ResourceType::InferenceAccelerator => {
                if !ctx.device_names.contains(req.value.as_str()) {
                    return Err(client(
                        path,
                        format!("'{}' names no device in inferenceAccelerators", req.value),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// cpu, memory and memoryReservation of one container against the task's.
fn validate_resources(
    p: &str,
    c: &ContainerDefinition,
    ctx: &TaskContext<'_>,
) -> Result<(), ApiError> {
    if let Some(cpu) = c.cpu {
        let limit = ctx.cpu.unwrap_or(TASK_CPU_MAX);
        if cpu > limit {
            return Err(client(
                format!("{p}.cpu"),
                format!("{cpu} CPU units exceeds the task's {limit}"),
            ));
        }
    }
    if ctx.memory.is_none() && c.memory.is_none() && c.memory_reservation.is_none() {
        return Err(client(
            format!("{p}.memory"),
            "at least one of memory and memoryReservation is required when the task sets no \
             memory",
        ));
    }
    for (field, value) in [
        ("memory", c.memory),
        ("memoryReservation", c.memory_reservation),
    ] {
        let Some(value) = value else { continue };
        if value < MEMORY_MIN_MIB {
            return Err(client(
                format!("{p}.{field}"),
                format!(
                    "{value} MiB is too little: a container needs at least {MEMORY_MIN_MIB} MiB"
                ),
            ));
        }
        if let Some(task) = ctx.memory {
            if value > task {
                return Err(client(
                    format!("{p}.{field}"),
                    format!("{value} MiB exceeds the task's memory of {task} MiB"),
                ));
            }
        }
    }
    if let (Some(hard), Some(soft)) = (c.memory, c.memory_reservation) {
        if soft >= hard {
            return Err(client(
                format!("{p}.memoryReservation"),
                format!("{soft} MiB must be less than memory ({hard} MiB)"),
            ));
        }
    }
    Ok(())
}

fn validate_secret(ps: &str, name: &str, value_from: &str) -> Result<(), ApiError> {
    if name.is_empty() {
        return Err(client(format!("{ps}.name"), "is required"));
    }
    if value_from.is_empty() {
        return Err(client(format!("{ps}.valueFrom"), "is required"));
    }
    crate::secrets::ValueFrom::parse(&format!("{ps}.valueFrom"), value_from)?;
    Ok(())
}

fn validate_health_check(ph: &str, check: &HealthCheck) -> Result<(), ApiError> {
    let command_ok = match check.command.first().map(String::as_str) {
        Some("CMD") | Some("CMD-SHELL") => check.command.len() >= 2,
        Some("NONE") => true,
        _ => false,
    };
    if !command_ok {
        return Err(client(
            format!("{ph}.command"),
            "must start with CMD or CMD-SHELL followed by the command, or be [\"NONE\"]",
        ));
    }
    let ranges = [
        ("interval", check.interval, 5, 300),
        ("timeout", check.timeout, 2, 60),
        ("retries", check.retries, 1, 10),
        ("startPeriod", check.start_period, 0, 300),
    ];
    for (field, value, min, max) in ranges {
        if let Some(value) = value {
            if !(min..=max).contains(&value) {
                return Err(invalid(
                    format!("{ph}.{field}"),
                    format!("{value} is out of range: it must be between {min} and {max}"),
                ));
            }
        }
    }
    Ok(())
}

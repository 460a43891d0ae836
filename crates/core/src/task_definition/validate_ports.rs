//! Port-mapping rules: one mapping on its own, and uniqueness across the
//! task (ports and mapping names).

use std::collections::BTreeMap;

use super::container::{ContainerDefinition, PortMapping};
use super::enums::{NetworkMode, TransportProtocol};
use super::validate::{client, invalid};
use crate::error::ApiError;

pub(crate) fn validate_port(pp: &str, m: &PortMapping, mode: NetworkMode) -> Result<(), ApiError> {
    match (m.container_port, m.container_port_range.as_deref()) {
        (Some(_), Some(_)) => {
            return Err(client(
                pp,
                "set either containerPort or containerPortRange, not both",
            ))
        }
        (None, None) => return Err(client(format!("{pp}.containerPort"), "is required")),
        (Some(port), None) => {
            if !(1..=65535).contains(&port) {
                return Err(invalid(
                    format!("{pp}.containerPort"),
                    format!("{port} is out of range: it must be between 1 and 65535"),
                ));
            }
        }
        (None, Some(range)) => {
            if parse_port_range(range).is_none() {
                return Err(invalid(
                    format!("{pp}.containerPortRange"),
                    format!("'{range}' is not a port range such as '8000-8010' within 1-65535"),
                ));
            }
            if m.host_port.is_some() {
                return Err(client(
                    format!("{pp}.hostPort"),
                    "hostPort cannot be set with containerPortRange",
                ));
            }
        }
    }
    if let Some(host) = m.host_port {
        if host > 65535 {
            return Err(invalid(
                format!("{pp}.hostPort"),
                format!("{host} is out of range: it must be between 0 and 65535"),
            ));
        }
        if matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host) && Some(host) != m.container_port
        {
            return Err(client(
                format!("{pp}.hostPort"),
                format!("under networkMode {mode} hostPort must be omitted or equal containerPort"),
            ));
        }
    }
    if m.name.as_deref() == Some("") {
        return Err(client(format!("{pp}.name"), "must not be empty"));
    }
    Ok(())
}

/// `"start-end"` with 1 <= start < end <= 65535.
pub fn parse_port_range(range: &str) -> Option<(u16, u16)> {
    let (start, end) = range.split_once('-')?;
    let start: u16 = start.trim().parse().ok()?;
    let end: u16 = end.trim().parse().ok()?;
    (start >= 1 && start < end).then_some((start, end))
}

/// Under awsvpc and host every container shares the task's ports, so a
/// containerPort/protocol may appear once per task; under bridge it may
/// appear once per container, and a fixed hostPort/protocol once per task.
/// Port-mapping names are unique per task.
pub(crate) fn validate_port_uniqueness(
    containers: &[ContainerDefinition],
    mode: NetworkMode,
) -> Result<(), ApiError> {
    let shared = matches!(mode, NetworkMode::Awsvpc | NetworkMode::Host);
    let mut container_ports: BTreeMap<(usize, u32, TransportProtocol), String> = BTreeMap::new();
    let mut host_ports: BTreeMap<(u32, TransportProtocol), String> = BTreeMap::new();
    let mut names: BTreeMap<&str, String> = BTreeMap::new();
    for (i, c) in containers.iter().enumerate() {
        for (j, m) in c.port_mappings.iter().flatten().enumerate() {
            let pp = format!("containerDefinitions[{i}].portMappings[{j}]");
            let protocol = m.protocol.unwrap_or(TransportProtocol::Tcp);
            if let Some(port) = m.container_port {
                let owner = if shared { 0 } else { i };
                if let Some(first) = container_ports.insert((owner, port, protocol), pp.clone()) {
                    return Err(client(
                        format!("{pp}.containerPort"),
                        format!("{port}/{protocol} is already mapped by {first}"),
                    ));
                }
            }
            if let Some(host) = m.host_port.filter(|h| *h != 0 && !shared) {
                if let Some(first) = host_ports.insert((host, protocol), pp.clone()) {
                    return Err(client(
                        format!("{pp}.hostPort"),
                        format!("host port {host}/{protocol} is already used by {first}"),
                    ));
                }
            }
            if let Some(name) = m.name.as_deref() {
                if let Some(first) = names.insert(name, pp.clone()) {
                    return Err(client(
                        format!("{pp}.name"),
                        format!("port mapping name '{name}' is already used by {first}"),
                    ));
                }
            }
        }
    }
    Ok(())
}

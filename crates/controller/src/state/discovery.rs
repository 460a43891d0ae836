//! Service discovery, the Cloud Map analogue: a service's
//! `serviceRegistries` parsed into a [`ServiceDiscovery`], and [`zone`], the
//! pure function from the applied state to the names a cluster's agents
//! answer (every discoverable service and the tasks that can serve it).

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};
use orca_core::service::ServiceStatus;
use orca_core::task::TaskStatus;
use orca_core::task_definition::{NetworkMode, TaskDefinition};
use orca_core::{ApiError, Exception};

use super::{ClusterState, ServiceDiscovery, ServiceRecord, TaskRecord};

fn invalid(path: String, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, path, rule)
}

/// Whether `label` is one DNS label orca answers for: 1–63 of `[a-z0-9-]`,
/// neither starting nor ending with `-`.
pub fn is_dns_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

/// Parses CreateService's `serviceRegistries` (at most one): the registry
/// ARN's last `/` segment, lowercased, names the service in the namespace.
/// None when the list is empty. The container, if named, is checked against
/// the task definition when the command is applied
/// ([`ServiceDiscovery::check_definition`]).
pub fn parse_registries(
    entries: &[serde_json::Value],
) -> Result<Option<ServiceDiscovery>, ApiError> {
    let Some(entry) = entries.first() else {
        return Ok(None);
    };
    if entries.len() > 1 {
        return Err(invalid(
            "serviceRegistries".to_string(),
            format!("a service has at most one registry, not {}", entries.len()),
        ));
    }
    let at = |field: &str| format!("serviceRegistries[0].{field}");
    let object = entry
        .as_object()
        .ok_or_else(|| invalid("serviceRegistries[0]".to_string(), "must be an object"))?;
    let text = |field: &str| -> Result<Option<&str>, ApiError> {
        match object.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err(invalid(at(field), "must be a string")),
        }
    };
    let port = |field: &str| -> Result<Option<u16>, ApiError> {
        match object.get(field) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| u16::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| invalid(at(field), format!("must be a port, 1-65535, not {v}"))),
        }
    };
    let arn = text("registryArn")?
        .filter(|a| !a.is_empty())
        .ok_or_else(|| invalid(at("registryArn"), "is required"))?;
    let name = arn.rsplit('/').next().unwrap_or(arn).to_ascii_lowercase();
    if !is_dns_label(&name) {
        return Err(invalid(
            at("registryArn"),
            format!(
                "its last segment {name:?} must be a DNS label: 1-63 letters, digits and '-', not starting or ending with '-'"
            ),
        ));
    }
    let container_name = text("containerName")?.map(str::to_string);
    let container_port = port("containerPort")?;
    match (&container_name, container_port) {
        (Some(_), None) => {
            return Err(invalid(
                at("containerPort"),
                "is required with containerName",
            ))
        }
        (None, Some(_)) => {
            return Err(invalid(
                at("containerName"),
                "is required with containerPort",
            ))
        }
        _ => {}
    }
    Ok(Some(ServiceDiscovery {
        name,
        port: port("port")?,
        container_name,
        container_port,
    }))
}

impl ServiceDiscovery {
    /// Refuses a registry whose container is not in `definition` or has no
    /// mapping of its containerPort.
    pub fn check_definition(&self, definition: &TaskDefinition) -> Result<(), ApiError> {
        let (Some(name), Some(port)) = (&self.container_name, self.container_port) else {
            return Ok(());
        };
        let Some(container) = definition
            .spec
            .container_definitions
            .iter()
            .find(|c| c.name == *name)
        else {
            return Err(invalid(
                "serviceRegistries[0].containerName".to_string(),
                format!(
                    "the task definition {}:{} has no container {name:?}",
                    definition.spec.family, definition.revision
                ),
            ));
        };
        let mapped = container
            .port_mappings
            .iter()
            .flatten()
            .any(|m| m.container_port == Some(u32::from(port)));
        if !mapped {
            return Err(invalid(
                "serviceRegistries[0].containerPort".to_string(),
                format!("container {name:?} has no portMapping with containerPort {port}"),
            ));
        }
        Ok(())
    }
}

/// Whether any service of `cluster` (not INACTIVE) has a registry.
pub fn has_discoverable_services(state: &ClusterState, cluster: &str) -> bool {
    state.services.values().any(|s| {
        s.cluster == cluster && s.status != ServiceStatus::Inactive && s.discovery.is_some()
    })
}

/// The clusters with a discoverable service.
pub fn discoverable_clusters(state: &ClusterState) -> BTreeSet<String> {
    state
        .services
        .values()
        .filter(|s| s.status != ServiceStatus::Inactive && s.discovery.is_some())
        .map(|s| s.cluster.clone())
        .collect()
}

/// Every discoverable name of `cluster` and the tasks that can serve it
/// now: RUNNING and wanted running and, when an essential container has a
/// health check, HEALTHY. A service with no such task has an empty list.
pub fn zone(state: &ClusterState, cluster: &str, namespace: &str, ttl: Duration) -> DiscoveryZone {
    // Services by their tasks' group.
    let by_group: BTreeMap<String, &ServiceRecord> = state
        .services
        .values()
        .filter(|s| s.cluster == cluster && s.status != ServiceStatus::Inactive)
        .filter(|s| s.discovery.is_some())
        .map(|s| (s.group(), s))
        .collect();
    let mut services: BTreeMap<String, Vec<ServiceEndpoint>> = by_group
        .values()
        .filter_map(|s| s.discovery.as_ref())
        .map(|d| (d.name.clone(), Vec::new()))
        .collect();
    if !by_group.is_empty() {
        for task in state.tasks.values().filter(|t| t.cluster == cluster) {
            let Some(service) = by_group.get(&task.group) else {
                continue;
            };
            let Some(discovery) = &service.discovery else {
                continue;
            };
            if let Some(endpoint) = endpoint(state, task, discovery) {
                services
                    .entry(discovery.name.clone())
                    .or_default()
                    .push(endpoint);
            }
        }
    }
    for endpoints in services.values_mut() {
        endpoints.sort();
    }
    DiscoveryZone {
        namespace: namespace.to_string(),
        ttl_secs: u32::try_from(ttl.as_secs()).unwrap_or(u32::MAX).max(1),
        services,
    }
}

/// The endpoint of `task` if it can serve now.
fn endpoint(
    state: &ClusterState,
    task: &TaskRecord,
    discovery: &ServiceDiscovery,
) -> Option<ServiceEndpoint> {
    if task.last_status != TaskStatus::Running || task.desired_status != TaskStatus::Running {
        return None;
    }
    let definition = &state
        .families
        .get(&task.family)?
        .revisions
        .get(&task.revision)?
        .task_definition;
    let checked = definition
        .spec
        .container_definitions
        .iter()
        .any(|c| c.is_essential() && c.health_check.is_some());
    if checked && task.health != orca_core::task::HealthStatus::Healthy {
        return None;
    }
    let mapped_port = || {
        discovery
            .container_port
            .filter(|_| discovery.container_name.is_some())
    };
    let (address, port) = match &task.network {
        Some(network) => (
            network.private_ipv4_address.parse::<Ipv4Addr>().ok()?,
            discovery.port.or_else(mapped_port),
        ),
        // Bridge and host mode: the node's address and the host port the
        // named mapping was published on.
        None => {
            let node = state.instances.get(&task.instance_id)?.node_address?;
            let host_port = match definition.spec.effective_network_mode() {
                NetworkMode::Host => mapped_port(),
                _ => task
                    .host_ports
                    .iter()
                    .find(|b| {
                        Some(&b.container_name) == discovery.container_name.as_ref()
                            && Some(b.container_port) == discovery.container_port
                    })
                    .map(|b| b.host_port),
            };
            (node, discovery.port.or(host_port))
        }
    };
    Some(ServiceEndpoint {
        task_id: task.id.clone(),
        address,
        port,
    })
}

#[cfg(test)]
#[path = "discovery_tests.rs"]
mod tests;

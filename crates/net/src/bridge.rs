//! Bridge mode's shared pieces, pure: the task network made of its
//! containers' endpoints, the DNAT entries of its published ports, and the
//! mapping from network keys (task ids and endpoint keys) to task ids.
//! Used identically by the real and the fake configurator.

use crate::names::task_of;
use crate::rules::PortForward;
use crate::{Endpoint, NetworkError, NodeNetworkConfig, PublishedPort, TaskNetwork};

/// The task ids of network keys, deduplicated and sorted.
pub fn tasks_of(keys: impl IntoIterator<Item = String>) -> Vec<String> {
    let tasks: std::collections::BTreeSet<String> = keys
        .into_iter()
        .map(|key| task_of(&key).to_string())
        .collect();
    tasks.into_iter().collect()
}

/// A bridge-mode task's network: its endpoints, the first one's
/// namespace and address standing for the task's.
pub fn bridge_network(
    task_id: &str,
    config: &NodeNetworkConfig,
    endpoints: Vec<Endpoint>,
) -> Result<TaskNetwork, NetworkError> {
    let first = endpoints.first().cloned().ok_or_else(|| {
        NetworkError::Config(format!("bridge-mode task {task_id} has no container"))
    })?;
    Ok(TaskNetwork {
        task_id: task_id.to_string(),
        netns_path: first.netns_path,
        ip: first.ip,
        prefix_len: config.subnet.prefix_len,
        gateway: config.subnet.gateway(),
        mac_address: first.mac_address,
        host_veth: first.host_veth,
        loopback_only: false,
        endpoints,
    })
}

/// The DNAT entries of `published`: each host port to its container's own
/// address.
pub fn forwards_of(
    network: &TaskNetwork,
    published: &[PublishedPort],
) -> Result<Vec<PortForward>, NetworkError> {
    published
        .iter()
        .map(|p| {
            let to = network
                .endpoints
                .iter()
                .find(|e| e.container == p.container)
                .map(|e| e.ip)
                .ok_or_else(|| {
                    NetworkError::Config(format!(
                        "host port {} names container {:?}, which the task does not have",
                        p.host_port, p.container
                    ))
                })?;
            Ok(PortForward {
                protocol: p.protocol,
                host_port: p.host_port,
                to,
                to_port: p.container_port,
            })
        })
        .collect()
}

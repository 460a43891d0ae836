//! The cluster's node map: which node holds which task subnet and where it
//! is reached. Agents program routes (host-gw) or VXLAN entries from it so
//! every task reaches every other task of the cluster by its address.
//!
//! Derived from the instance records on read; `net_version` on the cluster
//! record moves when an input changes, and every session of the cluster is
//! woken then (through the same per-instance wake-ups as assignments), so a
//! session resends the map only when it moved.

use std::net::Ipv4Addr;

use orca_core::agent_protocol::NodeRoute;
use orca_core::{ApiError, Exception};

use super::instances::InstanceStatus;
use super::ClusterState;

/// A registration's `nodeAddress`: an IPv4 address another node can send
/// to (not loopback, unspecified, multicast or broadcast).
pub fn parse_node_address(text: Option<&str>) -> Result<Option<Ipv4Addr>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    let refuse = |rule: &str| {
        ApiError::field(
            Exception::InvalidParameterException,
            "nodeAddress",
            format!("'{text}' {rule}"),
        )
    };
    let address: Ipv4Addr = text.parse().map_err(|_| refuse("is not an IPv4 address"))?;
    if !orca_core::agent_protocol::reachable_from_other_nodes(address) {
        return Err(refuse(
            "cannot be reached from another node: name an address of the network between nodes",
        ));
    }
    Ok(Some(address))
}

impl ClusterState {
    /// Every registered (not deregistered) instance of `cluster`, by
    /// instance id. Disconnected and draining instances stay: their tasks
    /// may still run and must stay reachable.
    pub fn net_map(&self, cluster: &str) -> Vec<NodeRoute> {
        self.instances
            .values()
            .filter(|i| i.cluster == cluster && i.status != InstanceStatus::Inactive)
            .map(|i| NodeRoute {
                instance_id: i.id.clone(),
                subnet: i.task_subnet.to_string(),
                node_address: i.node_address.map(|a| a.to_string()),
                overlay: i.overlay,
            })
            .collect()
    }

    /// The version of `cluster`'s node map (0 for an unknown cluster).
    pub fn net_version(&self, cluster: &str) -> u64 {
        self.clusters.get(cluster).map_or(0, |c| c.net_version)
    }

    /// The node map of `cluster` changed: moves its version and wakes the
    /// session of each of its instances.
    pub(super) fn touch_net_map(&mut self, cluster: &str) {
        if let Some(c) = self.clusters.get_mut(cluster) {
            c.net_version += 1;
        }
        let ids: Vec<String> = self
            .instances
            .values()
            .filter(|i| i.cluster == cluster)
            .map(|i| i.id.clone())
            .collect();
        self.changed_assignments.0.extend(ids);
    }
}

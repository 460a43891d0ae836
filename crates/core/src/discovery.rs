//! Service discovery's data, the Cloud Map analogue: the names a cluster's
//! services with a registry get, and who answers for each. The leader
//! computes a [`DiscoveryZone`] from its view and sends it to every agent;
//! each agent's DNS responder answers tasks' queries from it.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

/// The namespace a cluster's names live under unless it names its own.
pub const DEFAULT_NAMESPACE: &str = "orca.local";

/// Every discoverable name of one cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DiscoveryZone {
    /// The namespace (`orca.local`): a service `web` is `web.orca.local`.
    pub namespace: String,
    /// How long resolvers may keep an answer, in seconds.
    pub ttl_secs: u32,
    /// Registry name → the tasks that can serve now (may be empty: the
    /// name exists and has no address).
    pub services: BTreeMap<String, Vec<ServiceEndpoint>>,
}

/// One task that can serve a name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceEndpoint {
    pub task_id: String,
    /// The task's own address (awsvpc), or its node's (bridge and host
    /// mode, where `port` is the published host port).
    pub address: Ipv4Addr,
    /// The port SRV records carry; None gives A records only.
    #[serde(default)]
    pub port: Option<u16>,
}

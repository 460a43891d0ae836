//! The node's share of the cluster network, beside the task loop: from the
//! leader's node map, the NAT policy (egress masquerade, with every task
//! subnet of the cluster keeping its source) and the routes or VXLAN
//! entries to every other node's task subnet. Rewritten whenever the map
//! changes and every `resync` (which repairs what someone removed); a
//! restarted agent rewrites both from the first map it gets.

use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::{NodeRoute, OverlayMode};
use orca_net::overlay::{OverlayConfig, Peer};
use orca_net::{Ipv4Subnet, NetworkConfigurator, NodePolicy};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The latest node map from the leader (None until the first arrives).
pub type NetMapSink = watch::Sender<Option<Vec<NodeRoute>>>;

/// What the fabric loop needs.
#[derive(Debug, Clone)]
pub struct FabricConfig {
    pub egress: bool,
    /// This node's task subnet.
    pub subnet: Ipv4Subnet,
    /// None: no routes to other nodes are programmed (overlay off).
    pub overlay: Option<OverlayConfig>,
    pub resync: Duration,
}

/// A failed write is tried again this soon rather than at the next resync.
const RETRY: Duration = Duration::from_secs(2);

/// The peers (every other node with an address) and the subnets that keep
/// their source address (every node's, this one's included), from the map.
/// Entries that do not parse are left out: an old or odd controller must
/// not take the node's network down.
pub fn from_map(own: Ipv4Subnet, nodes: &[NodeRoute]) -> (Vec<Peer>, Vec<Ipv4Subnet>) {
    let mut peers = Vec::new();
    let mut keep = vec![own];
    for node in nodes {
        let Ok(subnet) = node.subnet.parse::<Ipv4Subnet>() else {
            continue;
        };
        keep.push(subnet);
        if subnet == own {
            continue;
        }
        let Some(address) = node.node_address.as_deref().and_then(|a| a.parse().ok()) else {
            continue;
        };
        peers.push(Peer {
            subnet,
            address,
            mode: match node.overlay {
                OverlayMode::Vxlan => orca_net::overlay::OverlayMode::Vxlan,
                OverlayMode::HostGw => orca_net::overlay::OverlayMode::HostGw,
            },
        });
    }
    keep.sort();
    keep.dedup();
    peers.sort();
    (peers, keep)
}

/// The policy before any map arrived: egress, with this node's own subnet
/// keeping its source.
pub fn initial_policy(config: &FabricConfig) -> NodePolicy {
    NodePolicy {
        egress: config.egress,
        keep_source: vec![config.subnet],
    }
}

/// Keeps the node's fabric in line with the map until `shutdown`.
pub async fn run(
    network: Arc<dyn NetworkConfigurator>,
    config: FabricConfig,
    mut map: watch::Receiver<Option<Vec<NodeRoute>>>,
    shutdown: CancellationToken,
) {
    loop {
        let nodes = map.borrow_and_update().clone();
        let ok = sync_once(network.as_ref(), &config, nodes.as_deref()).await;
        let pause = if ok { config.resync } else { RETRY };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            changed = map.changed() => {
                if changed.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep(pause) => {}
        }
    }
}

/// One pass: the policy, then (with a map and the overlay on) the peers.
async fn sync_once(
    network: &dyn NetworkConfigurator,
    config: &FabricConfig,
    nodes: Option<&[NodeRoute]>,
) -> bool {
    let (peers, keep_source) = match nodes {
        Some(nodes) => from_map(config.subnet, nodes),
        None => (Vec::new(), vec![config.subnet]),
    };
    let policy = NodePolicy {
        keep_source,
        ..initial_policy(config)
    };
    let mut ok = true;
    if let Err(e) = network.set_policy(policy).await {
        tracing::warn!(error = %e, "node NAT rules not written");
        ok = false;
    }
    if let (Some(overlay), Some(_)) = (&config.overlay, nodes) {
        match network.sync_peers(overlay, &peers).await {
            Ok(ops) if !ops.is_empty() => {
                tracing::info!(
                    peers = peers.len(),
                    changes = ops.len(),
                    "routes to other nodes updated"
                );
                tracing::debug!(?ops, "route changes");
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "routes to other nodes not written");
                ok = false;
            }
        }
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, subnet: &str, address: Option<&str>, overlay: OverlayMode) -> NodeRoute {
        NodeRoute {
            instance_id: id.into(),
            subnet: subnet.into(),
            node_address: address.map(str::to_string),
            overlay,
        }
    }

    fn subnet(s: &str) -> Ipv4Subnet {
        s.parse().expect("subnet")
    }

    #[test]
    fn peers_are_the_other_nodes_with_an_address_and_every_subnet_keeps_its_source() {
        let own = subnet("198.19.1.0/24");
        let nodes = [
            node(
                "c",
                "198.19.3.0/24",
                Some("198.18.0.13"),
                OverlayMode::HostGw,
            ),
            node(
                "a",
                "198.19.1.0/24",
                Some("198.18.0.11"),
                OverlayMode::Vxlan,
            ),
            node(
                "b",
                "198.19.2.0/24",
                Some("198.18.0.12"),
                OverlayMode::Vxlan,
            ),
            node("d", "198.19.4.0/24", None, OverlayMode::Vxlan),
            node("e", "not a subnet", Some("198.18.0.15"), OverlayMode::Vxlan),
            node(
                "f",
                "198.19.6.0/24",
                Some("not an address"),
                OverlayMode::Vxlan,
            ),
        ];
        let (peers, keep) = from_map(own, &nodes);
        assert_eq!(
            peers,
            vec![
                Peer {
                    subnet: subnet("198.19.2.0/24"),
                    address: "198.18.0.12".parse().expect("ip"),
                    mode: orca_net::overlay::OverlayMode::Vxlan,
                },
                Peer {
                    subnet: subnet("198.19.3.0/24"),
                    address: "198.18.0.13".parse().expect("ip"),
                    mode: orca_net::overlay::OverlayMode::HostGw,
                },
            ]
        );
        let keep: Vec<String> = keep.iter().map(ToString::to_string).collect();
        assert_eq!(
            keep,
            [
                "198.19.1.0/24",
                "198.19.2.0/24",
                "198.19.3.0/24",
                "198.19.4.0/24",
                "198.19.6.0/24"
            ]
        );
    }

    #[test]
    fn before_any_map_only_the_own_subnet_keeps_its_source() {
        let config = FabricConfig {
            egress: true,
            subnet: subnet("198.19.1.0/24"),
            overlay: None,
            resync: Duration::from_secs(60),
        };
        let policy = initial_policy(&config);
        assert!(policy.egress);
        assert_eq!(policy.keep_source, vec![subnet("198.19.1.0/24")]);
    }
}

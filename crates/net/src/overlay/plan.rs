//! What the kernel must hold so this node's tasks reach every other node's
//! tasks, and the steps from what it holds. Pure: no I/O.
//!
//! Per peer node (its task subnet and its node address):
//! - **host-gw**, when both ends choose it and the peer is on a connected
//!   link: a route `peer-subnet via peer-address`. Both ends decide alike,
//!   so the path is symmetric (strict reverse-path filters stay happy).
//! - **VXLAN** otherwise (the default): one device for all peers, with the
//!   subnet's network address as its own (`198.19.1.0/32`: a source for
//!   packets the node itself sends to a task elsewhere), and per peer a
//!   route `peer-subnet via peer-subnet.0 dev vxlan onlink`, a permanent
//!   neighbour entry binding `peer-subnet.0` to the peer's VTEP MAC, and a
//!   forwarding entry sending that MAC to the peer's node address. Nothing
//!   is learned or flooded: the entries come from the controller's map.
//!
//! VTEP MACs derive from the subnet (`0a:59` and its four octets), so no
//! node has to publish one. The device exists only while a VXLAN peer does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;

use crate::Ipv4Subnet;

/// How a node wants to be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum OverlayMode {
    /// VXLAN over any routed underlay (the default).
    #[default]
    Vxlan,
    /// Plain routes through the peer's node address; needs a shared link.
    HostGw,
}

/// This node's side of the overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlayConfig {
    /// The VXLAN device's name (at most 15 bytes).
    pub device: String,
    pub vni: u32,
    /// The VXLAN UDP port (4789 by IANA).
    pub port: u16,
    /// This node's address on the underlay (VXLAN packets' source).
    pub local: Ipv4Addr,
    pub mode: OverlayMode,
    /// The VXLAN device's MTU: the underlay's minus the 50 bytes of
    /// VXLAN, UDP, IPv4 and inner Ethernet headers.
    pub mtu: u32,
    /// This node's task subnet.
    pub subnet: Ipv4Subnet,
}

/// Another node of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Peer {
    pub subnet: Ipv4Subnet,
    pub address: Ipv4Addr,
    pub mode: OverlayMode,
}

/// The VXLAN device as wanted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VxlanDevice {
    pub name: String,
    pub vni: u32,
    pub port: u16,
    pub local: Ipv4Addr,
    pub mtu: u32,
    pub mac: [u8; 6],
    /// Its own address (the subnet's network address, /32).
    pub address: Ipv4Addr,
}

/// Where a peer subnet's route points.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Via {
    /// Through the VXLAN device to the peer's VTEP address, on-link.
    Vxlan(Ipv4Addr),
    /// Directly to the peer's node address.
    Direct(Ipv4Addr),
}

/// The overlay state: wanted, or as observed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct OverlayState {
    pub device: Option<VxlanDevice>,
    pub routes: BTreeMap<Ipv4Subnet, Via>,
    /// VTEP address → VTEP MAC, on the device.
    pub neighbours: BTreeMap<Ipv4Addr, [u8; 6]>,
    /// VTEP MAC → peer node address, on the device.
    pub forwarding: BTreeMap<[u8; 6], Ipv4Addr>,
}

/// One change to make.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OverlayOp {
    CreateDevice(VxlanDevice),
    DeleteDevice(String),
    AddForwarding {
        mac: [u8; 6],
        to: Ipv4Addr,
    },
    DeleteForwarding {
        mac: [u8; 6],
        to: Ipv4Addr,
    },
    AddNeighbour {
        address: Ipv4Addr,
        mac: [u8; 6],
    },
    DeleteNeighbour {
        address: Ipv4Addr,
        mac: [u8; 6],
    },
    /// Adds, or replaces a route that points elsewhere.
    SetRoute {
        subnet: Ipv4Subnet,
        via: Via,
    },
    DeleteRoute {
        subnet: Ipv4Subnet,
        via: Via,
    },
}

/// A subnet's VTEP MAC: locally administered, unicast.
pub fn vtep_mac(subnet: Ipv4Subnet) -> [u8; 6] {
    let [a, b, c, d] = subnet.network.octets();
    [0x0a, 0x59, a, b, c, d]
}

/// What the kernel should hold. `on_link` says whether an address is on a
/// link this node is connected to (host-gw needs it).
pub fn desired(
    config: &OverlayConfig,
    peers: &[Peer],
    on_link: impl Fn(Ipv4Addr) -> bool,
) -> OverlayState {
    let mut state = OverlayState::default();
    let mut seen = BTreeSet::new();
    for peer in peers {
        // Ourselves, and a subnet listed twice (the first entry wins).
        if peer.subnet == config.subnet || !seen.insert(peer.subnet) {
            continue;
        }
        let direct = config.mode == OverlayMode::HostGw
            && peer.mode == OverlayMode::HostGw
            && on_link(peer.address);
        if direct {
            state.routes.insert(peer.subnet, Via::Direct(peer.address));
            continue;
        }
        let vtep = peer.subnet.network;
        let mac = vtep_mac(peer.subnet);
        state.routes.insert(peer.subnet, Via::Vxlan(vtep));
        state.neighbours.insert(vtep, mac);
        state.forwarding.insert(mac, peer.address);
    }
    if !state.neighbours.is_empty() {
        state.device = Some(VxlanDevice {
            name: config.device.clone(),
            vni: config.vni,
            port: config.port,
            local: config.local,
            mtu: config.mtu,
            mac: vtep_mac(config.subnet),
            address: config.subnet.network,
        });
    }
    state
}

/// The steps from `observed` to `desired`: the device first and its
/// entries before the routes through them; removals in reverse, the device
/// last (deleting it takes its entries along, but routes are removed
/// explicitly so a failure midway leaves nothing pointing nowhere).
pub fn diff(desired: &OverlayState, observed: &OverlayState) -> Vec<OverlayOp> {
    let mut ops = Vec::new();
    let recreate = match (&desired.device, &observed.device) {
        (Some(want), Some(have)) => want != have,
        _ => false,
    };
    // Routes that go away (a changed one is replaced below).
    for (subnet, via) in &observed.routes {
        if !desired.routes.contains_key(subnet) {
            ops.push(OverlayOp::DeleteRoute {
                subnet: *subnet,
                via: *via,
            });
        }
    }
    if recreate {
        // A device that differs (VNI, port, MTU, address) is made anew;
        // its entries go with it and are added again below.
        let name = observed.device.as_ref().map(|d| d.name.clone());
        ops.push(OverlayOp::DeleteDevice(name.unwrap_or_default()));
    }
    // Entries on a device that stays; a device that goes takes its own.
    let observed_entries = !recreate && observed.device.is_some() && desired.device.is_some();
    if observed_entries {
        for (address, mac) in &observed.neighbours {
            if desired.neighbours.get(address) != Some(mac) {
                ops.push(OverlayOp::DeleteNeighbour {
                    address: *address,
                    mac: *mac,
                });
            }
        }
        for (mac, to) in &observed.forwarding {
            if desired.forwarding.get(mac) != Some(to) {
                ops.push(OverlayOp::DeleteForwarding { mac: *mac, to: *to });
            }
        }
    }
    match (&desired.device, &observed.device) {
        (None, Some(have)) => ops.push(OverlayOp::DeleteDevice(have.name.clone())),
        (Some(want), None) => ops.push(OverlayOp::CreateDevice(want.clone())),
        (Some(want), Some(_)) if recreate => ops.push(OverlayOp::CreateDevice(want.clone())),
        _ => {}
    }
    let empty = OverlayState::default();
    let have = if observed_entries { observed } else { &empty };
    for (mac, to) in &desired.forwarding {
        if have.forwarding.get(mac) != Some(to) {
            ops.push(OverlayOp::AddForwarding { mac: *mac, to: *to });
        }
    }
    for (address, mac) in &desired.neighbours {
        if have.neighbours.get(address) != Some(mac) {
            ops.push(OverlayOp::AddNeighbour {
                address: *address,
                mac: *mac,
            });
        }
    }
    for (subnet, via) in &desired.routes {
        // Routes through a recreated device vanished with it.
        let through_new_device = recreate && matches!(via, Via::Vxlan(_));
        if observed.routes.get(subnet) != Some(via) || through_new_device {
            ops.push(OverlayOp::SetRoute {
                subnet: *subnet,
                via: *via,
            });
        }
    }
    ops
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

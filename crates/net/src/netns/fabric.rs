//! The node-level half of [`NetnsNetwork`]: the NAT rules, held exactly
//! while some task holds a network, and the routes to other nodes' task
//! subnets.
//!
//! The rules are converged under one lock by setup (after the namespace is
//! complete, before `setup` returns: no task's container starts without
//! egress), by teardown (the last task takes them along) and by
//! `set_policy` (which re-applies them whatever this process believes, so
//! a periodic call repairs a rule someone deleted). A restarted agent
//! knows nothing of what the kernel holds, so its first convergence
//! always writes.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::LinkAttribute;
use rtnetlink::Handle;

use super::link::nl_err;
use super::{node_rules, overlay, NetnsNetwork};
use crate::overlay::{desired, OverlayConfig, OverlayOp, Peer};
use crate::published::PublishedPorts;
use crate::rules::{NodeRules, PortForward};
use crate::{NetworkError, NodePolicy};

/// VXLAN over IPv4 adds this much to each frame: outer IPv4 (20), UDP (8),
/// VXLAN (8) and the inner Ethernet header (14).
pub const VXLAN_OVERHEAD: u32 = 50;
/// The VXLAN MTU when the underlay's cannot be found.
const FALLBACK_MTU: u32 = 1450;

/// The rules as this process last made the kernel hold them.
#[derive(Debug)]
pub(super) struct RulesState {
    /// None until the agent sets one: then only published ports are
    /// written (tests of the task namespaces alone touch no rule).
    policy: Option<NodePolicy>,
    /// Bridge-mode tasks' host ports (persisted).
    published: PublishedPorts,
    /// None: unknown (nothing written by this process yet).
    applied: Option<Option<NodeRules>>,
}

impl RulesState {
    pub(super) fn published_tasks(&self) -> Vec<String> {
        self.published.tasks().cloned().collect()
    }

    pub(super) fn new(published: PublishedPorts) -> RulesState {
        RulesState {
            policy: None,
            published,
            applied: None,
        }
    }
}

/// What a convergence changes first.
pub(super) enum RulesChange<'a> {
    None,
    /// The agent's policy (re-applied whatever this process believes, so a
    /// periodic call repairs a rule someone deleted).
    Policy(NodePolicy),
    /// A task's published ports (empty: it has none any more).
    Publish(&'a str, Vec<PortForward>),
}

impl NetnsNetwork {
    /// Makes the kernel hold the rules the policy and the held tasks ask
    /// for, after `change`.
    pub(super) async fn converge_rules(&self, change: RulesChange<'_>) -> Result<(), NetworkError> {
        let mut state = self.rules.lock().await;
        let mut force = false;
        match change {
            RulesChange::None => {}
            RulesChange::Policy(policy) => {
                state.policy = Some(policy);
                force = true;
            }
            RulesChange::Publish(task_id, ports) => {
                state.published.set(task_id, ports)?;
            }
        }
        let forwards = state.published.all();
        let policy = match state.policy.clone() {
            Some(policy) => policy,
            None if forwards.is_empty() => return Ok(()),
            None => NodePolicy::default(),
        };
        // Keys, not `held()`: that takes this lock for the published ports.
        let tasks = !self.held_keys()?.is_empty();
        let want = NodeRules {
            bridge: self.config.bridge.clone(),
            subnet: self.config.subnet,
            egress: policy.egress,
            keep_source: policy.keep_source,
            forwards,
        };
        let want = (tasks && !want.is_empty()).then_some(want);
        if !force && state.applied.as_ref() == Some(&want) {
            return Ok(());
        }
        match &want {
            Some(rules) => node_rules::apply(rules).await?,
            None => node_rules::remove(&self.config.bridge, self.config.subnet).await?,
        }
        tracing::debug!(held = want.is_some(), "node rules converged");
        state.applied = Some(want);
        Ok(())
    }

    /// Routes, VXLAN device and entries for `peers`, in the agent's own
    /// namespace.
    pub(super) async fn sync_peers_here(
        &self,
        overlay: &OverlayConfig,
        peers: &[Peer],
    ) -> Result<Vec<OverlayOp>, NetworkError> {
        let _one_at_a_time = self.peers_lock.lock().await;
        let links = connected(&self.host).await?;
        let mut config = overlay.clone();
        if config.mtu == 0 {
            config.mtu = links
                .iter()
                .find(|l| l.address == config.local)
                .map_or(FALLBACK_MTU, |l| l.mtu.saturating_sub(VXLAN_OVERHEAD));
        }
        // A peer is on-link when one of our own networks (not the task
        // bridge, nor the VXLAN device) contains its address.
        let on_link = |peer: Ipv4Addr| {
            links.iter().any(|l| {
                l.index != self.bridge_index
                    && l.name != config.device
                    && l.prefix_len < 32
                    && crate::Ipv4Subnet::new(mask(l.address, l.prefix_len), l.prefix_len)
                        .is_ok_and(|n| n.contains(peer))
            })
        };
        let want = desired(&config, peers, on_link);
        overlay::sync(&self.host, &config.device, &want).await
    }
}

fn mask(address: Ipv4Addr, prefix_len: u8) -> Ipv4Addr {
    let bits = u32::from(address);
    let mask = u32::MAX
        .checked_shl(32 - u32::from(prefix_len))
        .unwrap_or(0);
    Ipv4Addr::from(bits & mask)
}

/// One IPv4 address of this namespace, with its link.
struct Connected {
    index: u32,
    name: String,
    mtu: u32,
    address: Ipv4Addr,
    prefix_len: u8,
}

/// Every IPv4 address of the namespace with its link's name and MTU.
async fn connected(handle: &Handle) -> Result<Vec<Connected>, NetworkError> {
    let mut links = std::collections::BTreeMap::new();
    let mut stream = handle.link().get().execute();
    while let Some(link) = stream.try_next().await.map_err(nl_err("listing links"))? {
        let mut name = String::new();
        let mut mtu = 0;
        for attribute in &link.attributes {
            match attribute {
                LinkAttribute::IfName(n) => name = n.clone(),
                LinkAttribute::Mtu(m) => mtu = *m,
                _ => {}
            }
        }
        links.insert(link.header.index, (name, mtu));
    }
    let mut out = Vec::new();
    let mut stream = handle.address().get().execute();
    while let Some(a) = stream
        .try_next()
        .await
        .map_err(nl_err("listing addresses"))?
    {
        let address = a.attributes.iter().find_map(|attr| match attr {
            AddressAttribute::Local(IpAddr::V4(ip)) | AddressAttribute::Address(IpAddr::V4(ip)) => {
                Some(*ip)
            }
            _ => None,
        });
        let (Some(address), Some((name, mtu))) = (address, links.get(&a.header.index)) else {
            continue;
        };
        out.push(Connected {
            index: a.header.index,
            name: name.clone(),
            mtu: *mtu,
            address,
            prefix_len: a.header.prefix_len,
        });
    }
    Ok(out)
}

/// The MTU of the link holding `address` in the calling thread's
/// namespace (None when no link holds it).
pub async fn link_mtu_of(address: Ipv4Addr) -> Result<Option<u32>, NetworkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| super::kernel_err("opening rtnetlink", e))?;
    tokio::spawn(connection);
    Ok(connected(&handle)
        .await?
        .into_iter()
        .find(|l| l.address == address)
        .map(|l| l.mtu))
}

//! The netlink requests: the node bridge, a task's veth pair, and the task
//! side's address, loopback and default route.

use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::{AsRawFd, BorrowedFd};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoKind, InfoVeth, LinkAttribute};
use rtnetlink::{
    Handle, LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth, RouteMessageBuilder,
};

use crate::names::mac_for;
use crate::{Ipv4Subnet, NetworkError};

use super::kernel_err;

/// The task side's name inside its namespace.
pub(crate) const TASK_IFNAME: &str = "eth0";

/// The errno a netlink request failed with, if it was a kernel NACK.
pub(crate) fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(msg) => Some(-msg.raw_code()),
        _ => None,
    }
}

pub(crate) fn nl_err(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> NetworkError {
    let op = op.into();
    move |e| match &e {
        rtnetlink::Error::NetlinkError(msg) => kernel_err(op, msg.to_io()),
        _ => kernel_err(op, e),
    }
}

/// A link's index and the index of the bridge it is attached to, if any.
pub(crate) struct LinkInfo {
    pub index: u32,
    pub controller: Option<u32>,
}

/// Looks a link up by name; `None` if there is no such link.
pub(crate) async fn find_link(
    handle: &Handle,
    name: &str,
) -> Result<Option<LinkInfo>, NetworkError> {
    let mut links = handle.link().get().match_name(name.to_string()).execute();
    match links.try_next().await {
        Ok(Some(msg)) => Ok(Some(LinkInfo {
            index: msg.header.index,
            controller: msg.attributes.iter().find_map(|a| match a {
                LinkAttribute::Controller(i) => Some(*i),
                _ => None,
            }),
        })),
        Ok(None) => Ok(None),
        Err(e) if errno(&e) == Some(libc_errno::ENODEV) => Ok(None),
        Err(e) => Err(nl_err(format!("looking up link {name}"))(e)),
    }
}

/// Errno values used to tell expected failures from real ones.
pub(crate) mod libc_errno {
    pub const EEXIST: i32 = nix::errno::Errno::EEXIST as i32;
    pub const ENODEV: i32 = nix::errno::Errno::ENODEV as i32;
}

/// Makes the bridge exist, carry the subnet's gateway address and be up;
/// returns its index. Leaves an existing bridge's other settings alone.
pub(crate) async fn ensure_bridge(
    handle: &Handle,
    name: &str,
    subnet: Ipv4Subnet,
) -> Result<u32, NetworkError> {
    let gateway = subnet.gateway();
    if find_link(handle, name).await?.is_none() {
        // A fixed MAC: a bridge otherwise takes the lowest MAC of its ports,
        // so the gateway's MAC would change as tasks come and go and every
        // task's ARP entry for it would go stale.
        let msg = LinkBridge::new(name)
            .address(mac_for(gateway).to_vec())
            .build();
        match handle.link().add(msg).execute().await {
            Ok(()) => {}
            // Another opener made it between our lookup and our add.
            Err(e) if errno(&e) == Some(libc_errno::EEXIST) => {}
            Err(e) => return Err(nl_err(format!("creating bridge {name}"))(e)),
        }
    }
    let index = find_link(handle, name)
        .await?
        .ok_or_else(|| kernel_err(format!("creating bridge {name}"), "it vanished"))?
        .index;
    let has_gateway = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute()
        .try_filter(|a| {
            futures::future::ready(
                a.header.prefix_len == subnet.prefix_len
                    && a.attributes.iter().any(|attr| {
                        matches!(attr, AddressAttribute::Address(ip) | AddressAttribute::Local(ip)
                            if *ip == IpAddr::V4(gateway))
                    }),
            )
        })
        .try_next()
        .await
        .map_err(nl_err(format!("listing the addresses of {name}")))?
        .is_some();
    if !has_gateway {
        match handle
            .address()
            .add(index, IpAddr::V4(gateway), subnet.prefix_len)
            .execute()
            .await
        {
            Ok(()) => {}
            Err(e) if errno(&e) == Some(libc_errno::EEXIST) => {}
            Err(e) => {
                return Err(nl_err(format!(
                    "adding {gateway}/{} to {name}",
                    subnet.prefix_len
                ))(e))
            }
        }
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("setting {name} up")))?;
    Ok(index)
}

/// Deletes a link by name; not an error if it does not exist.
pub(crate) async fn delete_link(handle: &Handle, name: &str) -> Result<(), NetworkError> {
    let Some(link) = find_link(handle, name).await? else {
        return Ok(());
    };
    match handle.link().del(link.index).execute().await {
        Ok(()) => Ok(()),
        Err(e) if errno(&e) == Some(libc_errno::ENODEV) => Ok(()),
        Err(e) => Err(nl_err(format!("deleting link {name}"))(e)),
    }
}

/// Creates the veth pair in one request: `host_veth` in our namespace (down,
/// not yet on the bridge) and its peer directly inside the task's namespace
/// as `eth0` (down), with its MAC derived from the task's address. Creating the
/// peer in place avoids moving it, which costs ~18 ms per task.
pub(crate) async fn add_veth(
    handle: &Handle,
    host_veth: &str,
    task_netns: BorrowedFd<'_>,
    ip: Ipv4Addr,
    mtu: Option<u32>,
) -> Result<(), rtnetlink::Error> {
    let mut peer = LinkUnspec::new_with_name(TASK_IFNAME)
        .address(mac_for(ip).to_vec())
        .setns_by_fd(task_netns.as_raw_fd());
    if let Some(mtu) = mtu {
        peer = peer.mtu(mtu);
    }
    // Not `.up()`: the kernel configures the peer before it links the
    // pair, and opening an unpaired veth fails with ENOTCONN.
    let peer = peer.build();
    let mut msg = LinkMessageBuilder::<LinkVeth>::new_with_info_kind(InfoKind::Veth)
        .name(host_veth)
        .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)));
    if let Some(mtu) = mtu {
        msg = msg.mtu(mtu);
    }
    let msg = msg.build();
    handle.link().add(msg).execute().await
}

/// Adds `host_veth` to the bridge and sets it up: the last step of a setup,
/// so "attached to the bridge" means "completely set up" (see
/// `NetnsNetwork::is_complete`).
pub(crate) async fn attach(
    handle: &Handle,
    host_veth: &str,
    bridge_index: u32,
) -> Result<(), NetworkError> {
    handle
        .link()
        .set(
            LinkUnspec::new_with_name(host_veth)
                .controller(bridge_index)
                .up()
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("attaching {host_veth} to the bridge")))
}

/// Inside the task's namespace (`netns` is bound to it): loopback and eth0
/// up, the task's address on eth0, and the default route via the gateway.
pub(crate) async fn configure_task_side(
    netns: &Handle,
    ip: Ipv4Addr,
    prefix_len: u8,
    gateway: Ipv4Addr,
) -> Result<(), NetworkError> {
    let index = find_link(netns, TASK_IFNAME)
        .await?
        .ok_or_else(|| kernel_err("configuring eth0", "no eth0 in the task's namespace"))?
        .index;
    let up = |msg, what: &'static str| async move {
        netns
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(nl_err(format!("setting {what} up")))
    };
    let address = async {
        netns
            .address()
            .add(index, IpAddr::V4(ip), prefix_len)
            .execute()
            .await
            .map_err(nl_err(format!("adding {ip}/{prefix_len} to eth0")))
    };
    // Independent requests: pipelined on the one socket.
    futures::try_join!(
        up(LinkUnspec::new_with_name("lo").up().build(), "lo"),
        up(LinkUnspec::new_with_index(index).up().build(), TASK_IFNAME),
        address
    )?;
    // Last: the gateway must be on a connected route of an up device.
    netns
        .route()
        .add(
            RouteMessageBuilder::<Ipv4Addr>::new()
                .gateway(gateway)
                .build(),
        )
        .execute()
        .await
        .map_err(nl_err(format!("adding the default route via {gateway}")))
}

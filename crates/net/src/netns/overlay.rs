//! Programs [`crate::overlay`]'s plan with rtnetlink in the calling
//! thread's network namespace: reads what the kernel holds (our routes are
//! told apart by their protocol number, so an operator's own routes are
//! never touched), diffs, and applies. Each step is idempotent (an entry
//! already there, or already gone, is done), so a restart or a periodic
//! resync simply converges. IPv4 forwarding is switched on: tasks' packets
//! cross the node between the bridge and the underlay.

use std::net::{IpAddr, Ipv4Addr};

use futures::TryStreamExt;
use rtnetlink::packet_route::address::AddressAttribute;
use rtnetlink::packet_route::link::{InfoData, InfoVxlan, LinkAttribute, LinkInfo};
use rtnetlink::packet_route::neighbour::{
    NeighbourAddress, NeighbourAttribute, NeighbourFlags, NeighbourMessage, NeighbourState,
};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteProtocol, RouteScope,
};
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::{Handle, LinkUnspec, LinkVxlan, RouteMessageBuilder};

use super::kernel_err;
use super::link::{delete_link, errno, find_link, libc_errno, nl_err};
use crate::overlay::{diff, OverlayOp, OverlayState, Via, VxlanDevice};
use crate::{Ipv4Subnet, NetworkError};

/// The routing protocol number orca's routes carry (`ip route show proto
/// 190`); numbers above 4 are for routing daemons and 190 is unassigned.
pub const ROUTE_PROTOCOL: u8 = 190;

const ENOENT: i32 = nix::errno::Errno::ENOENT as i32;
const ESRCH: i32 = nix::errno::Errno::ESRCH as i32;

/// [`sync`] over a netlink connection of its own, opened in the calling
/// thread's namespace.
pub async fn sync_here(
    device: &str,
    desired: &OverlayState,
) -> Result<Vec<OverlayOp>, NetworkError> {
    let (connection, handle, _) =
        rtnetlink::new_connection().map_err(|e| kernel_err("opening rtnetlink", e))?;
    // Ends once the handle is dropped, when this returns.
    tokio::spawn(connection);
    sync(&handle, device, desired).await
}

/// Makes the kernel hold `desired`; returns the steps taken.
pub async fn sync(
    handle: &Handle,
    device: &str,
    desired: &OverlayState,
) -> Result<Vec<OverlayOp>, NetworkError> {
    let observed = observe(handle, device).await?;
    let ops = diff(desired, &observed);
    if !ops.is_empty() {
        super::node_rules::ensure_ip_forward()?;
    }
    for op in &ops {
        apply(handle, device, op).await?;
    }
    Ok(ops)
}

/// What the kernel holds of the overlay: the device named `device`, our
/// routes, and the device's permanent neighbour and forwarding entries.
pub async fn observe(handle: &Handle, device: &str) -> Result<OverlayState, NetworkError> {
    let mut state = OverlayState::default();
    let index = match find_link(handle, device).await? {
        Some(link) => {
            state.device = Some(read_device(handle, device, link.index).await?);
            Some(link.index)
        }
        None => None,
    };
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes.try_next().await.map_err(nl_err("listing routes"))? {
        if route.header.protocol != RouteProtocol::Other(ROUTE_PROTOCOL) {
            continue;
        }
        if let Some((subnet, via)) = our_route(&route, index) {
            state.routes.insert(subnet, via);
        }
    }
    let Some(index) = index else {
        return Ok(state);
    };
    for family in [AddressFamily::Inet, AddressFamily::Bridge] {
        let mut entries = handle
            .neighbours()
            .get()
            .set_address_family(family)
            .execute();
        while let Some(entry) = entries
            .try_next()
            .await
            .map_err(nl_err(format!("listing the entries of {device}")))?
        {
            if entry.header.ifindex != index || entry.header.state != NeighbourState::Permanent {
                continue;
            }
            let (mac, ip) = mac_and_ip(&entry);
            let (Some(mac), Some(ip)) = (mac, ip) else {
                continue;
            };
            if family == AddressFamily::Inet {
                state.neighbours.insert(ip, mac);
            } else if mac != [0; 6] {
                state.forwarding.insert(mac, ip);
            }
        }
    }
    Ok(state)
}

async fn read_device(handle: &Handle, name: &str, index: u32) -> Result<VxlanDevice, NetworkError> {
    let link = handle
        .link()
        .get()
        .match_index(index)
        .execute()
        .try_next()
        .await
        .map_err(nl_err(format!("reading {name}")))?
        .ok_or_else(|| kernel_err(format!("reading {name}"), "it vanished"))?;
    let mut device = VxlanDevice {
        name: name.to_string(),
        vni: 0,
        port: 0,
        local: Ipv4Addr::UNSPECIFIED,
        mtu: 0,
        mac: [0; 6],
        address: Ipv4Addr::UNSPECIFIED,
    };
    for attribute in &link.attributes {
        match attribute {
            LinkAttribute::Mtu(mtu) => device.mtu = *mtu,
            LinkAttribute::Address(mac) if mac.len() == 6 => {
                device.mac.copy_from_slice(mac);
            }
            LinkAttribute::LinkInfo(infos) => {
                for info in infos {
                    if let LinkInfo::Data(InfoData::Vxlan(items)) = info {
                        for item in items {
                            match item {
                                InfoVxlan::Id(vni) => device.vni = *vni,
                                InfoVxlan::Port(port) => device.port = *port,
                                InfoVxlan::Local(local) => device.local = *local,
                                _ => {}
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut addresses = handle
        .address()
        .get()
        .set_link_index_filter(index)
        .execute();
    while let Some(a) = addresses
        .try_next()
        .await
        .map_err(nl_err(format!("listing the addresses of {name}")))?
    {
        for attr in &a.attributes {
            if let AddressAttribute::Local(IpAddr::V4(ip))
            | AddressAttribute::Address(IpAddr::V4(ip)) = attr
            {
                if a.header.prefix_len == 32 {
                    device.address = *ip;
                }
            }
        }
    }
    Ok(device)
}

fn our_route(route: &RouteMessage, device: Option<u32>) -> Option<(Ipv4Subnet, Via)> {
    let mut destination = None;
    let mut gateway = None;
    let mut oif = None;
    for attr in &route.attributes {
        match attr {
            RouteAttribute::Destination(RouteAddress::Inet(ip)) => destination = Some(*ip),
            RouteAttribute::Gateway(RouteAddress::Inet(ip)) => gateway = Some(*ip),
            RouteAttribute::Oif(index) => oif = Some(*index),
            _ => {}
        }
    }
    let subnet = Ipv4Subnet::new(destination?, route.header.destination_prefix_length).ok()?;
    let gateway = gateway?;
    let via = if oif.is_some() && oif == device {
        Via::Vxlan(gateway)
    } else {
        Via::Direct(gateway)
    };
    Some((subnet, via))
}

fn mac_and_ip(entry: &NeighbourMessage) -> (Option<[u8; 6]>, Option<Ipv4Addr>) {
    let mut mac = None;
    let mut ip = None;
    for attr in &entry.attributes {
        match attr {
            NeighbourAttribute::LinkLayerAddress(lla) if lla.len() == 6 => {
                let mut m = [0; 6];
                m.copy_from_slice(lla);
                mac = Some(m);
            }
            NeighbourAttribute::Destination(NeighbourAddress::Inet(a)) => ip = Some(*a),
            // A forwarding entry's destination comes raw: its message's
            // family is AF_BRIDGE, which does not say the address's.
            NeighbourAttribute::Destination(NeighbourAddress::Other(raw)) if raw.len() == 4 => {
                ip = Some(Ipv4Addr::new(raw[0], raw[1], raw[2], raw[3]));
            }
            _ => {}
        }
    }
    (mac, ip)
}

fn route_message(subnet: Ipv4Subnet, via: Via, device: Option<u32>) -> RouteMessage {
    let builder = RouteMessageBuilder::<Ipv4Addr>::new()
        .destination_prefix(subnet.network, subnet.prefix_len)
        .protocol(RouteProtocol::Other(ROUTE_PROTOCOL))
        .scope(RouteScope::Universe);
    match (via, device) {
        (Via::Vxlan(gateway), Some(index)) => builder
            .gateway(gateway)
            .output_interface(index)
            .onlink()
            .build(),
        (Via::Vxlan(gateway) | Via::Direct(gateway), _) => builder.gateway(gateway).build(),
    }
}

async fn device_index(handle: &Handle, device: &str) -> Result<u32, NetworkError> {
    Ok(find_link(handle, device)
        .await?
        .ok_or_else(|| kernel_err(format!("finding {device}"), "no such device"))?
        .index)
}

fn done_if(e: rtnetlink::Error, benign: &[i32], op: String) -> Result<(), NetworkError> {
    match errno(&e) {
        Some(code) if benign.contains(&code) => Ok(()),
        _ => Err(nl_err(op)(e)),
    }
}

async fn apply(handle: &Handle, device: &str, op: &OverlayOp) -> Result<(), NetworkError> {
    match op {
        OverlayOp::CreateDevice(d) => create_device(handle, d).await,
        OverlayOp::DeleteDevice(name) => delete_link(handle, name).await,
        OverlayOp::AddForwarding { mac, to } => {
            let index = device_index(handle, device).await?;
            let result = handle
                .neighbours()
                .add_bridge(index, mac)
                .flags(NeighbourFlags::Own)
                .state(NeighbourState::Permanent)
                .destination(IpAddr::V4(*to))
                .replace()
                .execute()
                .await;
            result.or_else(|e| {
                done_if(
                    e,
                    &[libc_errno::EEXIST],
                    format!("forwarding {mac:02x?} to {to}"),
                )
            })
        }
        OverlayOp::DeleteForwarding { mac, to } => {
            let index = device_index(handle, device).await?;
            let mut message = NeighbourMessage::default();
            message.header.family = AddressFamily::Bridge;
            message.header.ifindex = index;
            message.header.flags = NeighbourFlags::Own;
            message.header.state = NeighbourState::Permanent;
            message
                .attributes
                .push(NeighbourAttribute::LinkLayerAddress(mac.to_vec()));
            message
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(*to)));
            let result = handle.neighbours().del(message).execute().await;
            result.or_else(|e| {
                done_if(
                    e,
                    &[ENOENT, libc_errno::ENODEV],
                    format!("removing the entry of {to}"),
                )
            })
        }
        OverlayOp::AddNeighbour { address, mac } => {
            let index = device_index(handle, device).await?;
            let result = handle
                .neighbours()
                .add(index, IpAddr::V4(*address))
                .link_layer_address(mac)
                .state(NeighbourState::Permanent)
                .replace()
                .execute()
                .await;
            result.or_else(|e| {
                done_if(
                    e,
                    &[libc_errno::EEXIST],
                    format!("adding neighbour {address}"),
                )
            })
        }
        OverlayOp::DeleteNeighbour { address, .. } => {
            let index = device_index(handle, device).await?;
            let mut message = NeighbourMessage::default();
            message.header.family = AddressFamily::Inet;
            message.header.ifindex = index;
            message
                .attributes
                .push(NeighbourAttribute::Destination(NeighbourAddress::Inet(
                    *address,
                )));
            let result = handle.neighbours().del(message).execute().await;
            result.or_else(|e| {
                done_if(
                    e,
                    &[ENOENT, libc_errno::ENODEV],
                    format!("removing neighbour {address}"),
                )
            })
        }
        OverlayOp::SetRoute { subnet, via } => {
            let index = match via {
                Via::Vxlan(_) => Some(device_index(handle, device).await?),
                Via::Direct(_) => None,
            };
            let result = handle
                .route()
                .add(route_message(*subnet, *via, index))
                .replace()
                .execute()
                .await;
            result.or_else(|e| done_if(e, &[], format!("routing {subnet} via {via:?}")))
        }
        OverlayOp::DeleteRoute { subnet, via } => {
            let result = handle
                .route()
                .del(route_message(*subnet, *via, None))
                .execute()
                .await;
            result.or_else(|e| {
                done_if(
                    e,
                    &[ESRCH, ENOENT],
                    format!("removing the route to {subnet}"),
                )
            })
        }
    }
}

async fn create_device(handle: &Handle, d: &VxlanDevice) -> Result<(), NetworkError> {
    let message = LinkVxlan::new(&d.name, d.vni)
        .port(d.port)
        .local(d.local)
        .learning(false)
        .mtu(d.mtu)
        .address(d.mac.to_vec())
        .build();
    if let Err(e) = handle.link().add(message).execute().await {
        done_if(e, &[libc_errno::EEXIST], format!("creating {}", d.name))?;
    }
    let index = device_index(handle, &d.name).await?;
    if let Err(e) = handle
        .address()
        .add(index, IpAddr::V4(d.address), 32)
        .execute()
        .await
    {
        done_if(
            e,
            &[libc_errno::EEXIST],
            format!("adding {}/32 to {}", d.address, d.name),
        )?;
    }
    handle
        .link()
        .set(LinkUnspec::new_with_index(index).up().build())
        .execute()
        .await
        .map_err(nl_err(format!("setting {} up", d.name)))
}

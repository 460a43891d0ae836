use super::*;

fn subnet(s: &str) -> Ipv4Subnet {
    s.parse().expect("subnet")
}

fn ip(s: &str) -> Ipv4Addr {
    s.parse().expect("ip")
}

fn config(mode: OverlayMode) -> OverlayConfig {
    OverlayConfig {
        device: "orcavx0".into(),
        vni: 1,
        port: 4789,
        local: ip("198.18.1.2"),
        mode,
        mtu: 1450,
        subnet: subnet("198.19.1.0/24"),
    }
}

fn peer(n: u8, mode: OverlayMode) -> Peer {
    Peer {
        subnet: subnet(&format!("198.19.{n}.0/24")),
        address: ip(&format!("198.18.{n}.2")),
        mode,
    }
}

/// 198.18.2.x is on a link of ours, nothing else is.
fn on_link(a: Ipv4Addr) -> bool {
    a.octets()[2] == 2
}

#[test]
fn vxlan_peers_get_a_route_a_neighbour_and_a_forwarding_entry() {
    let peers = [
        peer(1, OverlayMode::Vxlan), // ourselves: skipped
        peer(2, OverlayMode::Vxlan),
        peer(3, OverlayMode::Vxlan),
    ];
    let d = desired(&config(OverlayMode::Vxlan), &peers, on_link);
    let device = d.device.clone().expect("a device");
    assert_eq!(device.mac, [0x0a, 0x59, 198, 19, 1, 0]);
    assert_eq!(device.address, ip("198.19.1.0"));
    assert_eq!(device.mtu, 1450);
    assert_eq!(
        d.routes,
        BTreeMap::from([
            (subnet("198.19.2.0/24"), Via::Vxlan(ip("198.19.2.0"))),
            (subnet("198.19.3.0/24"), Via::Vxlan(ip("198.19.3.0"))),
        ])
    );
    assert_eq!(d.neighbours[&ip("198.19.3.0")], [0x0a, 0x59, 198, 19, 3, 0]);
    assert_eq!(d.forwarding[&[0x0a, 0x59, 198, 19, 3, 0]], ip("198.18.3.2"));
}

#[test]
fn host_gw_only_when_both_ends_choose_it_and_the_peer_is_on_link() {
    let peers = [
        peer(2, OverlayMode::HostGw), // on link, both host-gw: direct
        peer(3, OverlayMode::HostGw), // not on link: vxlan
    ];
    let d = desired(&config(OverlayMode::HostGw), &peers, on_link);
    assert_eq!(
        d.routes[&subnet("198.19.2.0/24")],
        Via::Direct(ip("198.18.2.2"))
    );
    assert_eq!(
        d.routes[&subnet("198.19.3.0/24")],
        Via::Vxlan(ip("198.19.3.0"))
    );
    // A vxlan node facing a host-gw peer uses vxlan: symmetric paths.
    let d = desired(
        &config(OverlayMode::Vxlan),
        &[peer(2, OverlayMode::HostGw)],
        on_link,
    );
    assert_eq!(
        d.routes[&subnet("198.19.2.0/24")],
        Via::Vxlan(ip("198.19.2.0"))
    );
}

#[test]
fn no_vxlan_peer_means_no_device() {
    let d = desired(
        &config(OverlayMode::HostGw),
        &[peer(2, OverlayMode::HostGw)],
        on_link,
    );
    assert!(d.device.is_none() && d.neighbours.is_empty() && d.forwarding.is_empty());
    let d = desired(&config(OverlayMode::Vxlan), &[], on_link);
    assert_eq!(d, OverlayState::default());
}

#[test]
fn from_nothing_the_device_comes_first_and_routes_last() {
    let d = desired(
        &config(OverlayMode::Vxlan),
        &[peer(2, OverlayMode::Vxlan)],
        on_link,
    );
    let ops = diff(&d, &OverlayState::default());
    assert!(matches!(ops[0], OverlayOp::CreateDevice(_)), "{ops:?}");
    assert!(matches!(ops[1], OverlayOp::AddForwarding { .. }), "{ops:?}");
    assert!(matches!(ops[2], OverlayOp::AddNeighbour { .. }), "{ops:?}");
    assert!(matches!(ops[3], OverlayOp::SetRoute { .. }), "{ops:?}");
    assert_eq!(ops.len(), 4);
    // In sync: nothing to do.
    assert!(diff(&d, &d).is_empty());
}

#[test]
fn a_peer_that_leaves_takes_its_entries_and_the_last_one_the_device() {
    let cfg = config(OverlayMode::Vxlan);
    let two = desired(
        &cfg,
        &[peer(2, OverlayMode::Vxlan), peer(3, OverlayMode::Vxlan)],
        on_link,
    );
    let one = desired(&cfg, &[peer(2, OverlayMode::Vxlan)], on_link);
    let ops = diff(&one, &two);
    assert_eq!(
        ops,
        vec![
            OverlayOp::DeleteRoute {
                subnet: subnet("198.19.3.0/24"),
                via: Via::Vxlan(ip("198.19.3.0"))
            },
            OverlayOp::DeleteNeighbour {
                address: ip("198.19.3.0"),
                mac: vtep_mac(subnet("198.19.3.0/24"))
            },
            OverlayOp::DeleteForwarding {
                mac: vtep_mac(subnet("198.19.3.0/24")),
                to: ip("198.18.3.2")
            },
        ]
    );
    let ops = diff(&desired(&cfg, &[], on_link), &one);
    assert_eq!(
        ops,
        vec![
            OverlayOp::DeleteRoute {
                subnet: subnet("198.19.2.0/24"),
                via: Via::Vxlan(ip("198.19.2.0"))
            },
            OverlayOp::DeleteDevice("orcavx0".into()),
        ]
    );
}

#[test]
fn a_moved_peer_and_a_changed_device_are_repaired() {
    let cfg = config(OverlayMode::Vxlan);
    let before = desired(&cfg, &[peer(2, OverlayMode::Vxlan)], on_link);
    let mut moved = peer(2, OverlayMode::Vxlan);
    moved.address = ip("198.18.9.9");
    let after = desired(&cfg, &[moved], on_link);
    let ops = diff(&after, &before);
    assert_eq!(
        ops,
        vec![
            OverlayOp::DeleteForwarding {
                mac: vtep_mac(moved.subnet),
                to: ip("198.18.2.2")
            },
            OverlayOp::AddForwarding {
                mac: vtep_mac(moved.subnet),
                to: ip("198.18.9.9")
            },
        ]
    );
    let mut other_mtu = cfg.clone();
    other_mtu.mtu = 1400;
    let wanted = desired(&other_mtu, &[peer(2, OverlayMode::Vxlan)], on_link);
    let ops = diff(&wanted, &before);
    assert_eq!(ops[0], OverlayOp::DeleteDevice("orcavx0".into()));
    assert!(
        matches!(&ops[1], OverlayOp::CreateDevice(d) if d.mtu == 1400),
        "{ops:?}"
    );
    assert_eq!(ops.len(), 5, "{ops:?}");
}

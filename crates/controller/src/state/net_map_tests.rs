//! The node map: what registration and deregistration change, what stays
//! (disconnected agents), and when sessions are woken.

use orca_core::agent_protocol::{NodeRoute, OverlayMode};
use orca_core::arn::ArnContext;
use orca_core::task_definition::Timestamp;
use orca_core::Exception;

use super::task_tests::{applied, refused, registration};
use super::*;

fn register(
    s: &mut ClusterState,
    id: &str,
    address: Option<&str>,
    overlay: OverlayMode,
) -> CommandResult {
    let mut r = registration(None, None);
    r.node_address = address.map(str::to_string);
    r.overlay = overlay;
    s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: id.to_string(),
            registration: r,
            at: Timestamp(1),
        },
    )
}

fn woken(s: &mut ClusterState) -> Vec<String> {
    std::mem::take(&mut s.changed_assignments.0)
        .into_iter()
        .collect()
}

#[test]
fn the_map_lists_every_registered_instance_with_its_subnet_address_and_overlay() {
    let mut s = ClusterState::new(ArnContext::default());
    applied(register(
        &mut s,
        "a",
        Some("198.18.0.11"),
        OverlayMode::Vxlan,
    ));
    applied(register(
        &mut s,
        "b",
        Some("198.18.0.12"),
        OverlayMode::HostGw,
    ));
    applied(register(&mut s, "c", None, OverlayMode::Vxlan));
    let map = s.net_map("default");
    assert_eq!(
        map,
        vec![
            NodeRoute {
                instance_id: "a".into(),
                subnet: "198.19.0.0/24".into(),
                node_address: Some("198.18.0.11".into()),
                overlay: OverlayMode::Vxlan,
            },
            NodeRoute {
                instance_id: "b".into(),
                subnet: "198.19.1.0/24".into(),
                node_address: Some("198.18.0.12".into()),
                overlay: OverlayMode::HostGw,
            },
            NodeRoute {
                instance_id: "c".into(),
                subnet: "198.19.2.0/24".into(),
                node_address: None,
                overlay: OverlayMode::Vxlan,
            },
        ]
    );
    assert!(s.net_map("other").is_empty());
}

#[test]
fn a_change_moves_the_version_and_wakes_every_session_of_the_cluster() {
    let mut s = ClusterState::new(ArnContext::default());
    applied(register(
        &mut s,
        "a",
        Some("198.18.0.11"),
        OverlayMode::Vxlan,
    ));
    applied(register(
        &mut s,
        "b",
        Some("198.18.0.12"),
        OverlayMode::Vxlan,
    ));
    let v = s.net_version("default");
    woken(&mut s);
    // The same registration again (an agent restart): nothing moves.
    applied(register(
        &mut s,
        "b",
        Some("198.18.0.12"),
        OverlayMode::Vxlan,
    ));
    assert_eq!(s.net_version("default"), v);
    assert!(woken(&mut s).is_empty());
    // A new address: every instance of the cluster hears of it.
    applied(register(
        &mut s,
        "b",
        Some("198.18.0.22"),
        OverlayMode::Vxlan,
    ));
    assert!(s.net_version("default") > v);
    assert_eq!(woken(&mut s), vec!["a".to_string(), "b".to_string()]);
}

#[test]
fn a_disconnected_instance_stays_and_a_deregistered_one_leaves() {
    let mut s = ClusterState::new(ArnContext::default());
    applied(register(
        &mut s,
        "a",
        Some("198.18.0.11"),
        OverlayMode::Vxlan,
    ));
    applied(register(
        &mut s,
        "b",
        Some("198.18.0.12"),
        OverlayMode::Vxlan,
    ));
    let v = s.net_version("default");
    for connected in [true, false] {
        applied(s.apply(
            1,
            Command::SetAgentConnected {
                instance_id: "b".into(),
                connected,
                decided_in_term: 1,
            },
        ));
    }
    assert_eq!(s.net_version("default"), v);
    assert_eq!(s.net_map("default").len(), 2);
    woken(&mut s);
    applied(s.apply(
        1,
        Command::DeregisterContainerInstance {
            cluster: "default".into(),
            instance_id: "b".into(),
            force: true,
            at: Timestamp(2),
        },
    ));
    let ids: Vec<String> = s
        .net_map("default")
        .into_iter()
        .map(|n| n.instance_id)
        .collect();
    assert_eq!(ids, ["a"]);
    assert!(s.net_version("default") > v);
    assert!(woken(&mut s).contains(&"a".to_string()));
}

#[test]
fn an_address_no_other_node_can_reach_is_refused_naming_the_field() {
    let mut s = ClusterState::new(ArnContext::default());
    for bad in [
        "127.0.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "fe80::1",
        "node-1",
    ] {
        let e = refused(register(&mut s, "a", Some(bad), OverlayMode::Vxlan));
        assert_eq!(e.exception, Exception::InvalidParameterException, "{bad}");
        assert_eq!(e.field.as_deref(), Some("nodeAddress"), "{bad}");
        assert!(e.message.contains(bad), "{bad}: {}", e.message);
    }
    assert!(s.instances.is_empty(), "nothing stored on a refusal");
}

#[test]
fn the_node_address_is_shown_as_an_attribute() {
    let mut s = ClusterState::new(ArnContext::default());
    let record = match applied(register(
        &mut s,
        "a",
        Some("198.18.0.11"),
        OverlayMode::Vxlan,
    )) {
        Outcome::ContainerInstance(i) => *i,
        other => panic!("{other:?}"),
    };
    let view = s.container_instance_view(&record);
    let shown = view
        .attributes
        .iter()
        .find(|a| a.name == "orca.node-address")
        .and_then(|a| a.value.clone());
    assert_eq!(shown.as_deref(), Some("198.18.0.11"));
}

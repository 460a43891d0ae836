//! Host ports through `apply`: a run whose ports are taken or reserved, or
//! that names one port twice on an instance, is a placement conflict that
//! changes nothing; the ports and the dynamic-port cursor are held while
//! the task lives, freed when it is STOPPED (by report or loss), shown by
//! describe-tasks and describe-container-instances, carried by snapshots
//! and rebuilt from the tasks when a snapshot lacks them.

use orca_core::task::{HostPortBinding, TaskStatus};
use orca_core::task_definition::{Timestamp, TransportProtocol};

use super::task_tests::{applied, register_instance, report, run, state_with_definition};
use super::*;

fn binding(container_port: u16, host_port: u16) -> HostPortBinding {
    HostPortBinding {
        container_name: "app".to_string(),
        container_port,
        host_port,
        protocol: TransportProtocol::Tcp,
    }
}

/// A RunTask of one task per (task, instance, host ports).
fn run_with_ports(placements: &[(&str, &str, Vec<HostPortBinding>)], fingerprint: &str) -> Command {
    let pairs: Vec<(&str, &str)> = placements.iter().map(|(t, i, _)| (*t, *i)).collect();
    let mut command = run(&pairs, None, fingerprint);
    if let Command::RunTask(r) = &mut command {
        for (p, (_, _, ports)) in r.placements.iter_mut().zip(placements) {
            p.host_ports = ports.clone();
            p.port_cursor = ports
                .iter()
                .map(|b| b.host_port)
                .filter(|h| *h >= 32768)
                .max()
                .map(|h| h + 1);
        }
    }
    command
}

fn held(s: &ClusterState, instance: &str) -> Vec<u16> {
    s.instances[instance]
        .host_ports
        .ports(TransportProtocol::Tcp)
        .collect()
}

#[test]
fn taken_ports_conflict_and_freed_ports_are_free_again() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    register_instance(&mut s, "b", None);
    let first = vec![binding(80, 8080), binding(81, 32768)];
    applied(s.apply(1, run_with_ports(&[("t1", "a", first.clone())], "f1")));
    assert_eq!(held(&s, "a"), vec![8080, 32768]);
    assert_eq!(s.instances["a"].next_dynamic_port, 32769);
    assert_eq!(s.tasks["t1"].host_ports, first);

    // 8080 again on a: the run is stale, nothing of it is applied.
    let before = s.clone();
    let outcome = applied(s.apply(
        1,
        run_with_ports(
            &[
                ("t2", "b", vec![binding(80, 8080)]),
                ("t3", "a", vec![binding(80, 8080)]),
            ],
            "f2",
        ),
    ));
    assert_eq!(outcome, Outcome::PlacementConflict);
    assert_eq!(s, before);
    // One port twice on one instance within a run conflicts too.
    let outcome = applied(s.apply(
        1,
        run_with_ports(
            &[
                ("t2", "b", vec![binding(80, 9090)]),
                ("t3", "b", vec![binding(80, 9090)]),
            ],
            "f3",
        ),
    ));
    assert_eq!(outcome, Outcome::PlacementConflict);
    // A reserved port conflicts.
    if let Some(b) = s.instances.get_mut("b") {
        b.reserved_ports = vec![22];
    }
    let outcome = applied(s.apply(
        1,
        run_with_ports(&[("t2", "b", vec![binding(22, 22)])], "f4"),
    ));
    assert_eq!(outcome, Outcome::PlacementConflict);
    // The same port on another instance is fine.
    applied(s.apply(
        1,
        run_with_ports(&[("t2", "b", vec![binding(80, 8080)])], "f5"),
    ));
    assert_eq!(held(&s, "b"), vec![8080]);
    assert!(s.check_placement_index().is_ok());

    // describe-tasks and describe-container-instances show them.
    let task = s.render_task(&s.tasks["t1"]);
    let json = serde_json::to_value(&task.containers[0].network_bindings).unwrap_or_default();
    assert_eq!(
        json,
        serde_json::json!([
            {"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"},
            {"bindIP": "0.0.0.0", "containerPort": 81, "hostPort": 32768, "protocol": "tcp"}
        ])
    );
    let view = s.container_instance_view(&s.instances["b"]);
    let ports = |list: &[orca_core::container_instance::Resource], name: &str| {
        list.iter()
            .find(|r| r.name == name)
            .and_then(|r| r.string_set_value.clone())
    };
    assert_eq!(
        ports(&view.registered_resources, "PORTS"),
        Some(vec!["22".to_string()])
    );
    assert_eq!(
        ports(&view.remaining_resources, "PORTS"),
        Some(vec!["22".to_string(), "8080".to_string()])
    );
    assert_eq!(
        ports(&view.remaining_resources, "PORTS_UDP"),
        Some(vec!["22".to_string()])
    );

    // STOPPED frees them; the cursor stays where it was.
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".to_string(),
            reports: vec![report("t1", TaskStatus::Stopped, Some(0))],
        },
    ));
    assert!(held(&s, "a").is_empty());
    assert_eq!(s.instances["a"].next_dynamic_port, 32769);
    applied(s.apply(
        1,
        run_with_ports(&[("t4", "a", vec![binding(80, 8080)])], "f6"),
    ));
    assert_eq!(held(&s, "a"), vec![8080]);

    // A lost instance's tasks free their ports.
    applied(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: "b".to_string(),
            connected: false,
            decided_in_term: 1,
        },
    ));
    applied(s.apply(
        1,
        Command::InstanceLost {
            instance_id: "b".to_string(),
            at: Timestamp(40),
            decided_in_term: 1,
        },
    ));
    assert!(held(&s, "b").is_empty());
    assert!(s.check_placement_index().is_ok());
}

#[test]
fn a_snapshot_without_taken_ports_rebuilds_them_from_the_tasks() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(
        1,
        run_with_ports(
            &[("t1", "a", vec![binding(80, 8080), binding(81, 40000)])],
            "f1",
        ),
    ));
    let mut json = serde_json::to_value(&s).unwrap_or_default();
    // As a snapshot written before instances kept their ports.
    if let Some(instances) = json["instances"].as_object_mut() {
        for instance in instances.values_mut() {
            if let Some(o) = instance.as_object_mut() {
                o.remove("host_ports");
            }
        }
    }
    let mut restored: ClusterState = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert!(restored.instances["a"].host_ports.is_empty());
    restored.rebuild_indexes();
    assert_eq!(held(&restored, "a"), vec![8080, 40000]);
    assert_eq!(restored.instances["a"].next_dynamic_port, 40001);
    assert!(restored.check_placement_index().is_ok());
    assert_eq!(restored.instances, s.instances);
}

#[test]
fn registered_reserved_ports_are_kept_and_assignments_carry_the_bindings() {
    let mut s = state_with_definition();
    let mut with_ports = super::task_tests::registration(None, None);
    with_ports.reserved_ports = vec![22, 2375];
    applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "a".to_string(),
            registration: with_ports.clone(),
            at: Timestamp(1),
        },
    ));
    assert_eq!(s.instances["a"].reserved_ports, vec![22, 2375]);
    // Registering again with another list replaces it.
    with_ports.reserved_ports = vec![22];
    applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "a".to_string(),
            registration: with_ports,
            at: Timestamp(2),
        },
    ));
    assert_eq!(s.instances["a"].reserved_ports, vec![22]);
    applied(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: "a".to_string(),
            connected: true,
            decided_in_term: 1,
        },
    ));
    let ports = vec![binding(80, 8080), binding(81, 32768)];
    applied(s.apply(1, run_with_ports(&[("t1", "a", ports.clone())], "f1")));
    let assignments = s.assignments_for("a");
    assert_eq!(assignments.len(), 1);
    assert_eq!(
        assignments[0].host_ports, ports,
        "the agent publishes what the leader chose"
    );
}

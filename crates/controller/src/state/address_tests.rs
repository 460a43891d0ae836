//! Task addresses through `apply`: a run that takes more addresses than
//! the instance's task subnet has free is a placement conflict that changes
//! nothing; the addresses are held while the task lives, freed when it is
//! STOPPED (by report or loss) with its CPU and memory, and rebuilt from
//! the tasks when a snapshot lacks them.

use orca_core::task::TaskStatus;
use orca_core::task_definition::Timestamp;

use super::task_tests::{applied, register_instance, report, run, state_with};
use super::*;

/// A bridge task of three containers: three addresses.
const BRIDGE: &str = r#"{"family":"web","networkMode":"bridge","containerDefinitions":[
    {"name":"app","image":"busybox","memory":10,"cpu":10},
    {"name":"log","image":"busybox","memory":10,"cpu":10},
    {"name":"proxy","image":"busybox","memory":10,"cpu":10}]}"#;

/// An awsvpc task (the default mode): one address.
const AWSVPC: &str = r#"{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":10,"cpu":10}]}"#;

/// A host-mode task: no address.
const HOST: &str = r#"{"family":"web","networkMode":"host","containerDefinitions":[{"name":"app","image":"busybox","memory":10,"cpu":10}]}"#;

fn in_use(s: &ClusterState, instance: &str) -> u32 {
    s.instances[instance].addresses_in_use
}

/// What the scheduler reads: the placement index's column.
fn indexed_free(s: &ClusterState, instance: &str) -> u32 {
    let cluster = s.placement_index.cluster("default").expect("indexed");
    let p = cluster
        .ids()
        .iter()
        .position(|id| &**id == instance)
        .expect("indexed instance");
    cluster.dense()[p].free_addresses
}

fn stopped(s: &mut ClusterState, instance: &str, task: &str) {
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: instance.to_string(),
            reports: vec![report(task, TaskStatus::Stopped, Some(0))],
        },
    ));
}

#[test]
fn a_bridge_task_holds_an_address_per_container_until_it_stops() {
    let mut s = state_with(BRIDGE);
    // A /29: five task addresses.
    register_instance(&mut s, "a", Some("10.9.0.0/29"));
    assert_eq!(s.instances["a"].free_addresses(), 5);
    applied(s.apply(1, run(&[("t1", "a")], None, "f1")));
    assert_eq!(in_use(&s, "a"), 3);
    assert_eq!(s.instances["a"].free_addresses(), 2);
    assert_eq!(indexed_free(&s, "a"), 2);

    // Another three do not fit in the two left: nothing of the run is
    // applied, and the leader places it again.
    let before = s.clone();
    let outcome = applied(s.apply(1, run(&[("t2", "a")], None, "f2")));
    assert_eq!(outcome, Outcome::PlacementConflict);
    assert_eq!(s, before);

    // STOPPED frees them with the CPU and memory.
    stopped(&mut s, "a", "t1");
    assert_eq!(in_use(&s, "a"), 0);
    assert_eq!(s.instances["a"].remaining, s.instances["a"].registered);
    assert_eq!(indexed_free(&s, "a"), 5);
    applied(s.apply(1, run(&[("t2", "a")], None, "f3")));
    assert_eq!(in_use(&s, "a"), 3);
    assert!(s.check_placement_index().is_ok());
}

#[test]
fn tasks_of_one_run_count_against_each_others_addresses() {
    let mut s = state_with(AWSVPC);
    // A /30: one task address besides the gateway.
    register_instance(&mut s, "a", Some("10.9.0.0/30"));
    let before = s.clone();
    let outcome = applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f1")));
    assert_eq!(outcome, Outcome::PlacementConflict);
    assert_eq!(s, before);
    applied(s.apply(1, run(&[("t1", "a")], None, "f2")));
    assert_eq!(in_use(&s, "a"), 1);
    assert_eq!(indexed_free(&s, "a"), 0);
}

#[test]
fn host_mode_tasks_take_no_address() {
    let mut s = state_with(HOST);
    register_instance(&mut s, "a", Some("10.9.0.0/30"));
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a"), ("t3", "a")], None, "f1")));
    assert_eq!(s.instances["a"].task_ids.len(), 3);
    assert_eq!(in_use(&s, "a"), 0);
    assert_eq!(indexed_free(&s, "a"), 1);
}

#[test]
fn a_lost_instance_frees_its_tasks_addresses() {
    let mut s = state_with(AWSVPC);
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f1")));
    assert_eq!(in_use(&s, "a"), 2);
    assert_eq!(indexed_free(&s, "a"), 251);
    applied(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: "a".to_string(),
            connected: false,
            decided_in_term: 1,
        },
    ));
    applied(s.apply(
        1,
        Command::InstanceLost {
            instance_id: "a".to_string(),
            at: Timestamp(40),
            decided_in_term: 1,
        },
    ));
    assert_eq!(in_use(&s, "a"), 0);
    assert_eq!(indexed_free(&s, "a"), 253);
    assert!(s.check_placement_index().is_ok());
}

#[test]
fn addresses_in_use_are_rebuilt_from_the_tasks_and_checked() {
    let mut s = state_with(BRIDGE);
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f1")));
    assert_eq!(in_use(&s, "a"), 6);
    let mut json = serde_json::to_value(&s).unwrap_or_default();
    // As a snapshot written before instances counted their addresses.
    if let Some(instances) = json["instances"].as_object_mut() {
        for instance in instances.values_mut() {
            if let Some(o) = instance.as_object_mut() {
                assert!(o.remove("addresses_in_use").is_some());
            }
        }
    }
    let mut restored: ClusterState = serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(in_use(&restored, "a"), 0);
    restored.rebuild_indexes();
    assert_eq!(in_use(&restored, "a"), 6);
    assert_eq!(indexed_free(&restored, "a"), 247);
    assert!(restored.check_placement_index().is_ok());
    assert_eq!(restored.instances, s.instances);

    // A count out of step with the tasks is found.
    if let Some(a) = restored.instances.get_mut("a") {
        a.addresses_in_use = 5;
    }
    let mismatch = restored
        .check_placement_index()
        .expect_err("the count no longer matches the tasks");
    assert_eq!(
        mismatch.0,
        "instance a: task addresses kept 5, built from its tasks 6"
    );
}

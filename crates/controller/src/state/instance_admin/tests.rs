//! `apply` for the operator's instance commands and for agent loss:
//! attributes (limits, all or nothing, kept across re-registration),
//! draining, deregistration with and without force, and lost instances
//! (tasks stopped once, resources released once, never resurrected).

use orca_core::task::{StopCode, TaskStatus};
use orca_core::task_definition::Timestamp;
use orca_core::Exception;

use super::super::task_tests::{
    applied, refused, register_instance, registration, report, run, state_with_definition,
};
use super::*;
use crate::state::{Command, Outcome};

fn attr(instance: &str, name: &str, value: Option<&str>) -> InstanceAttribute {
    InstanceAttribute {
        instance_id: instance.to_string(),
        name: name.to_string(),
        value: value.map(str::to_string),
    }
}

fn put(attributes: Vec<InstanceAttribute>) -> Command {
    Command::PutAttributes {
        cluster: "default".into(),
        attributes,
    }
}

fn custom(s: &ClusterState, id: &str) -> Vec<(String, Option<String>)> {
    s.instances[id]
        .custom_attributes
        .iter()
        .map(|a| (a.name.clone(), a.value.clone()))
        .collect()
}

#[test]
fn custom_attributes_are_all_or_nothing_limited_and_survive_re_registration() {
    let mut s = state_with_definition();
    let a = register_instance(&mut s, "a", None);
    applied(s.apply(
        1,
        put(vec![
            attr("a", "stack", Some("prod")),
            attr("a", "tier", None),
        ]),
    ));
    applied(s.apply(1, put(vec![attr("a", "stack", Some("dev"))])));
    assert_eq!(
        custom(&s, "a"),
        vec![("stack".into(), Some("dev".into())), ("tier".into(), None)]
    );
    // Eleven custom attributes: refused whole, nothing changes.
    let many: Vec<_> = (0..9)
        .map(|i| attr("a", &format!("n{i}"), Some("v")))
        .collect();
    let e = refused(s.apply(1, put(many)));
    assert_eq!(e.exception, Exception::AttributeLimitExceededException);
    assert_eq!(custom(&s, "a").len(), 2);
    // An unknown instance anywhere in the call: nothing changes.
    let e = refused(s.apply(
        1,
        put(vec![attr("a", "x", Some("1")), attr("zz", "x", Some("1"))]),
    ));
    assert_eq!(e.exception, Exception::InvalidParameterException);
    assert_eq!(custom(&s, "a").len(), 2);
    // Deleting a name that is not there refuses the whole call.
    let delete = |names: &[&str]| Command::DeleteAttributes {
        cluster: "default".into(),
        attributes: names.iter().map(|n| attr("a", n, None)).collect(),
    };
    let e = refused(s.apply(1, delete(&["tier", "missing"])));
    assert_eq!(e.exception, Exception::ClientException);
    assert_eq!(custom(&s, "a").len(), 2);
    // The agent registering again replaces its own attributes only.
    applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "ignored".into(),
            registration: registration(Some(a.arn.clone()), None),
            at: Timestamp(5),
        },
    ));
    assert_eq!(custom(&s, "a").len(), 2);
    assert_eq!(
        s.instances["a"]
            .attribute("stack")
            .and_then(|x| x.value.clone()),
        Some("dev".to_string())
    );
    match applied(s.apply(1, delete(&["tier"]))) {
        Outcome::Attributes(out) => {
            assert_eq!(out.len(), 1);
            assert_eq!(out[0].target_id.as_deref(), Some(a.arn.as_str()));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(custom(&s, "a"), vec![("stack".into(), Some("dev".into()))]);
    let listed = s.list_attributes("default", Some("stack"), Some("dev"));
    assert_eq!(listed.len(), 1, "{listed:?}");
}

#[test]
fn a_draining_instance_takes_no_new_tasks_and_keeps_its_own() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    applied(s.apply(
        1,
        Command::SetInstancesStatus {
            cluster: "default".into(),
            instance_ids: vec!["a".into()],
            status: InstanceStatus::Draining,
        },
    ));
    // A plan made before the drain committed after it: nothing placed.
    assert_eq!(
        applied(s.apply(1, run(&[("t2", "a")], None, "g"))),
        Outcome::PlacementConflict
    );
    assert_eq!(s.tasks["t1"].desired_status, TaskStatus::Running);
    assert_eq!(
        s.container_instance_view(&s.instances["a"]).status,
        "DRAINING"
    );
    applied(s.apply(
        1,
        Command::SetInstancesStatus {
            cluster: "default".into(),
            instance_ids: vec!["a".into()],
            status: InstanceStatus::Active,
        },
    ));
    assert!(matches!(
        applied(s.apply(1, run(&[("t2", "a")], None, "g"))),
        Outcome::Tasks { .. }
    ));
}

#[test]
fn deregistration_is_refused_with_tasks_unless_forced() {
    let mut s = state_with_definition();
    let a = register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    let deregister = |force| Command::DeregisterContainerInstance {
        cluster: "default".into(),
        instance_id: "a".into(),
        force,
        at: Timestamp(30),
    };
    let e = refused(s.apply(1, deregister(false)));
    assert_eq!(e.field.as_deref(), Some("force"));
    assert_eq!(s.instances["a"].status, InstanceStatus::Active);
    applied(s.apply(1, deregister(true)));
    let t = &s.render_task(&s.tasks["t1"]);
    assert_eq!(t.desired_status, TaskStatus::Stopped);
    assert_eq!(t.stopped_reason.as_deref(), Some(FORCED_DEREGISTRATION));
    assert_eq!(s.instances["a"].status, InstanceStatus::Inactive);
    // Its agent still reports the stop; the reservation comes back once.
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![report("t1", TaskStatus::Stopped, Some(143))],
        },
    ));
    assert_eq!(s.instances["a"].remaining, s.instances["a"].registered);
    // A deregistered instance's agent registering again is a new instance.
    let again = match applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "b".into(),
            registration: registration(Some(a.arn.clone()), None),
            at: Timestamp(40),
        },
    )) {
        Outcome::ContainerInstance(i) => *i,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.id, "b");
    assert_ne!(
        again.task_subnet, a.task_subnet,
        "the old subnet is still held"
    );
}

#[test]
fn a_lost_instance_stops_its_tasks_once_and_never_resurrects_them() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f")));
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![report("t1", TaskStatus::Running, None)],
        },
    ));
    let lost = |term| Command::InstanceLost {
        instance_id: "a".into(),
        at: Timestamp(50),
        decided_in_term: term,
    };
    // Still connected when it commits: nothing happens.
    assert_eq!(
        applied(s.apply(1, lost(1))),
        Outcome::Lost {
            task_ids: Vec::new()
        }
    );
    applied(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: "a".into(),
            connected: false,
            decided_in_term: 1,
        },
    ));
    // A deposed leader's decision never takes effect.
    refused(s.apply(2, lost(1)));
    assert_eq!(s.tasks["t1"].last_status, TaskStatus::Running);
    let outcome = applied(s.apply(2, lost(2)));
    assert_eq!(
        outcome,
        Outcome::Lost {
            task_ids: vec!["t1".into(), "t2".into()]
        }
    );
    for id in ["t1", "t2"] {
        let t = &s.render_task(&s.tasks[id]);
        assert_eq!(t.last_status, TaskStatus::Stopped);
        assert_eq!(t.stop_code, Some(StopCode::InfrastructureHealth));
        assert_eq!(
            t.stopped_reason.as_deref(),
            Some("Container instance a lost contact with the controllers")
        );
        assert_eq!(t.stopped_at, Some(Timestamp(50)));
    }
    let registered = s.instances["a"].registered;
    assert_eq!(s.instances["a"].remaining, registered);
    assert!(
        s.assignments_for("a").is_empty(),
        "the agent is told to drop them"
    );
    // The agent comes back and reports what it saw meanwhile: exit codes
    // are recorded, but nothing moves back and nothing is released twice.
    applied(s.apply(
        2,
        Command::SetAgentConnected {
            instance_id: "a".into(),
            connected: true,
            decided_in_term: 2,
        },
    ));
    applied(s.apply(
        2,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![
                report("t1", TaskStatus::Running, None),
                report("t1", TaskStatus::Stopped, Some(137)),
            ],
        },
    ));
    let t = &s.render_task(&s.tasks["t1"]);
    assert_eq!(t.last_status, TaskStatus::Stopped);
    assert_eq!(t.stop_code, Some(StopCode::InfrastructureHealth));
    assert_eq!(t.containers[0].exit_code, Some(137));
    assert_eq!(s.instances["a"].remaining, registered);
}

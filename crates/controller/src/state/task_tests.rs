//! Tests of `apply` for container instances and tasks: task subnets,
//! reservations released exactly once, stale placements, clientTokens,
//! reports that only move forward, fencing, and snapshots.

use orca_core::agent_protocol::{ContainerStateReport, Registration, TaskStateReport};
use orca_core::arn::ArnContext;
use orca_core::task::{ContainerStatus, Resources, StopCode, TaskOverride, TaskStatus};
use orca_core::task_definition::{parse_register_input, Timestamp};
use orca_core::Exception;

use super::*;

pub(super) fn applied(result: CommandResult) -> Outcome {
    match result {
        CommandResult::Applied(o) => o,
        other => panic!("expected Applied, got {other:?}"),
    }
}

pub(super) fn refused(result: CommandResult) -> orca_core::ApiError {
    match result {
        CommandResult::Refused(e) => e,
        other => panic!("expected Refused, got {other:?}"),
    }
}

pub(super) fn registration(arn: Option<String>, subnet: Option<&str>) -> Registration {
    Registration {
        cluster: "default".to_string(),
        container_instance_arn: arn,
        instance_id: None,
        hostname: "node".to_string(),
        cpu: 2048,
        memory: 1000,
        attributes: Vec::new(),
        agent_version: "test".to_string(),
        runtime_version: "fake".to_string(),
        task_subnet: subnet.map(str::to_string),
        reserved_ports: Vec::new(),
        node_address: None,
        node_api_address: None,
        overlay: Default::default(),
    }
}

/// Registers an instance and marks its agent connected (placements need it).
pub(super) fn register_instance(
    s: &mut ClusterState,
    id: &str,
    subnet: Option<&str>,
) -> InstanceRecord {
    let registered = match applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: id.to_string(),
            registration: registration(None, subnet),
            at: Timestamp(1),
        },
    )) {
        Outcome::ContainerInstance(i) => *i,
        other => panic!("{other:?}"),
    };
    applied(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: registered.id.clone(),
            connected: true,
            decided_in_term: 1,
        },
    ));
    registered
}

pub(super) fn state_with_definition() -> ClusterState {
    state_with(
        r#"{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":300,"cpu":512}]}"#,
    )
}

/// A state holding the definition `input` registers (revision 1).
pub(super) fn state_with(input: &str) -> ClusterState {
    let mut s = ClusterState::new(ArnContext::default());
    let input = parse_register_input(input).expect("valid");
    applied(s.apply(
        1,
        Command::RegisterTaskDefinition {
            spec: Box::new(input.spec),
            tags: Vec::new(),
            registered_at: Timestamp(1),
            registered_by: "t".to_string(),
        },
    ));
    s
}

pub(super) fn run(placements: &[(&str, &str)], token: Option<&str>, fingerprint: &str) -> Command {
    Command::RunTask(Box::new(RunTaskCommand {
        cluster: "default".to_string(),
        family: "web".to_string(),
        revision: 1,
        overrides: TaskOverride::default(),
        started_by: None,
        group: None,
        client_token: token.map(str::to_string),
        fingerprint: fingerprint.to_string(),
        launch_type: "EC2".to_string(),
        network_configuration: None,
        tags: Vec::new(),
        enable_execute_command: false,
        run_timeout_seconds: None,
        created_at: Timestamp(10),
        placements: placements
            .iter()
            .map(|(task, instance)| Placement {
                task_id: task.to_string(),
                instance_id: instance.to_string(),
                container_ids: vec![format!("{task}-c")],
                host_ports: Vec::new(),
                port_cursor: None,
            })
            .collect(),
        failures: Vec::new(),
    }))
}

pub(super) fn report(task_id: &str, status: TaskStatus, exit: Option<i32>) -> TaskStateReport {
    TaskStateReport {
        task_arn: ArnContext::default().task("default", task_id),
        last_status: status,
        containers: vec![ContainerStateReport {
            name: "app".to_string(),
            last_status: if status == TaskStatus::Stopped {
                ContainerStatus::Stopped
            } else {
                ContainerStatus::Running
            },
            exit_code: exit,
            reason: None,
            runtime_id: Some("rt".to_string()),
            image_digest: Some("sha256:00".to_string()),
            health_status: Default::default(),
            health_output: None,
            health_exit_code: None,
            restart_count: 0,
        }],
        network: None,
        pull_started_at: Some(Timestamp(11)),
        pull_stopped_at: Some(Timestamp(12)),
        started_at: None,
        stopping_at: None,
        execution_stopped_at: None,
        stopped_at: None,
        stop_code: exit.map(|_| StopCode::EssentialContainerExited),
        stopped_reason: exit.map(|_| "Essential container in task exited".to_string()),
        health_status: Default::default(),
    }
}

fn remaining(s: &ClusterState, id: &str) -> Resources {
    s.instances[id].remaining
}

#[test]
fn instances_get_distinct_task_subnets_and_keep_them() {
    let mut s = state_with_definition();
    let a = register_instance(&mut s, "a", None);
    let b = register_instance(&mut s, "b", None);
    assert_eq!(a.task_subnet.to_string(), "198.19.0.0/24");
    assert_eq!(b.task_subnet.to_string(), "198.19.1.0/24");
    // A configured subnet that overlaps another instance's is refused.
    let e = refused(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "c".to_string(),
            registration: registration(None, Some("198.19.1.0/25")),
            at: Timestamp(2),
        },
    ));
    assert_eq!(e.field.as_deref(), Some("taskSubnet"));
    // The same agent registering again (by ARN) stays the same instance,
    // keeps its subnet and what its tasks reserve.
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    let again = match applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "ignored".to_string(),
            registration: registration(Some(a.arn.clone()), None),
            at: Timestamp(3),
        },
    )) {
        Outcome::ContainerInstance(i) => *i,
        other => panic!("{other:?}"),
    };
    assert_eq!(again.id, "a");
    assert_eq!(again.task_subnet, a.task_subnet);
    assert_eq!(
        again.remaining,
        Resources {
            cpu: 2048 - 512,
            memory: 1000 - 300
        }
    );
    assert_eq!(s.instances.len(), 2);
}

#[test]
fn reservations_are_released_exactly_once() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f")));
    assert_eq!(
        remaining(&s, "a"),
        Resources {
            cpu: 1024,
            memory: 400
        }
    );
    assert_eq!(s.cluster_usage("default").pending_tasks, 2);
    // Reports move forward only; a stale one changes nothing.
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![report("t1", TaskStatus::Running, None)],
        },
    ));
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![report("t1", TaskStatus::Pending, None)],
        },
    ));
    assert_eq!(s.tasks["t1"].last_status, TaskStatus::Running);
    assert_eq!(s.cluster_usage("default").running_tasks, 1);
    // STOPPED twice (a resent report): released once.
    for _ in 0..2 {
        applied(s.apply(
            1,
            Command::ReportTaskStates {
                instance_id: "a".into(),
                reports: vec![report("t1", TaskStatus::Stopped, Some(3))],
            },
        ));
    }
    assert_eq!(
        remaining(&s, "a"),
        Resources {
            cpu: 1536,
            memory: 700
        }
    );
    let t1 = &s.render_task(&s.tasks["t1"]);
    assert_eq!(t1.containers[0].exit_code, Some(3));
    assert_eq!(t1.stop_code, Some(StopCode::EssentialContainerExited));
    assert_eq!(t1.desired_status, TaskStatus::Stopped);
    assert_eq!(
        s.assignments_for("a").len(),
        1,
        "a stopped task is no longer assigned"
    );
    // A report from another instance for t2 is ignored.
    register_instance(&mut s, "b", None);
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "b".into(),
            reports: vec![report("t2", TaskStatus::Stopped, Some(1))],
        },
    ));
    assert_eq!(s.tasks["t2"].last_status, TaskStatus::Provisioning);
}

#[test]
fn health_is_stored_and_rendered_and_unknown_never_replaces_a_verdict() {
    use orca_core::task::HealthStatus;
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    let with_health = |task: HealthStatus, c: HealthStatus, out: Option<&str>, code| {
        let mut r = report("t1", TaskStatus::Running, None);
        r.health_status = task;
        r.containers[0].health_status = c;
        r.containers[0].health_output = out.map(str::to_string);
        r.containers[0].health_exit_code = code;
        r
    };
    let send = |s: &mut ClusterState, r| {
        applied(s.apply(
            1,
            Command::ReportTaskStates {
                instance_id: "a".into(),
                reports: vec![r],
            },
        ))
    };
    let t = s.render_task(&s.tasks["t1"]);
    assert_eq!(t.health_status, "UNKNOWN");
    assert_eq!(t.containers[0].health_status, "UNKNOWN");
    send(
        &mut s,
        with_health(
            HealthStatus::Unhealthy,
            HealthStatus::Unhealthy,
            Some("down"),
            Some(1),
        ),
    );
    let t = s.render_task(&s.tasks["t1"]);
    assert_eq!(t.health_status, "UNHEALTHY");
    let c = &t.containers[0];
    assert_eq!(c.health_status, "UNHEALTHY");
    assert_eq!(c.health_check_output.as_deref(), Some("down"));
    assert_eq!(c.health_check_exit_code, Some(1));
    let json = serde_json::to_value(c).unwrap_or_default();
    assert_eq!(json["healthCheckOutput"], "down", "{json}");
    assert_eq!(json["healthCheckExitCode"], 1, "{json}");
    // A restarted agent knows no verdict yet: UNKNOWN changes nothing.
    send(
        &mut s,
        with_health(HealthStatus::Unknown, HealthStatus::Unknown, None, None),
    );
    assert_eq!(s.tasks["t1"].health, HealthStatus::Unhealthy);
    assert_eq!(s.tasks["t1"].containers[0].health, HealthStatus::Unhealthy);
    assert_eq!(
        s.tasks["t1"].containers[0].health_output.as_deref(),
        Some("down")
    );
    // A timed-out check has output and no exit code.
    send(
        &mut s,
        with_health(
            HealthStatus::Healthy,
            HealthStatus::Healthy,
            Some("timed out"),
            None,
        ),
    );
    let c = &s.tasks["t1"].containers[0];
    assert_eq!(
        (s.tasks["t1"].health, c.health, c.health_exit_code),
        (HealthStatus::Healthy, HealthStatus::Healthy, None)
    );
    // Stored snapshots from before health checks still load.
    let mut old = serde_json::to_value(c).unwrap_or_default();
    if let Some(o) = old.as_object_mut() {
        o.remove("health_output");
        o.remove("health_exit_code");
    }
    let loaded: ContainerRecord = serde_json::from_value(old).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(loaded.health_output, None);
}

#[test]
fn stale_placements_conflict_and_change_nothing() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a"), ("t3", "a")], None, "f")));
    let before = s.clone();
    // A fourth placement made on an older view no longer fits (memory 100 left).
    assert_eq!(
        applied(s.apply(1, run(&[("t4", "a")], None, "g"))),
        Outcome::PlacementConflict
    );
    assert_eq!(s, before);
    assert_eq!(
        applied(s.apply(1, run(&[("t5", "ghost")], None, "h"))),
        Outcome::PlacementConflict
    );
}

#[test]
fn client_tokens_return_the_same_tasks_and_refuse_other_requests() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    let first = applied(s.apply(1, run(&[("t1", "a")], Some("tok"), "f")));
    let again = applied(s.apply(1, run(&[("t9", "a")], Some("tok"), "f")));
    let arns = |o: &Outcome| match o {
        Outcome::Tasks { tasks, .. } => {
            tasks.iter().map(|t| t.task_arn.clone()).collect::<Vec<_>>()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(arns(&first), arns(&again));
    assert!(
        !s.tasks.contains_key("t9"),
        "a retried token places nothing new"
    );
    let e = refused(s.apply(1, run(&[("t8", "a")], Some("tok"), "other")));
    assert_eq!(
        (e.exception, e.field.as_deref()),
        (Exception::ConflictException, Some("clientToken"))
    );
}

#[test]
fn stop_task_sets_the_stop_once_and_connection_changes_are_fenced() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    let stop = |reason: &str| Command::StopTask {
        cluster: "default".into(),
        task_id: "t1".into(),
        reason: Some(reason.into()),
        stop_code: StopCode::UserInitiated,
        at: Timestamp(20),
    };
    applied(s.apply(1, stop("first")));
    applied(s.apply(1, stop("second")));
    let t = &s.render_task(&s.tasks["t1"]);
    assert_eq!(
        (t.desired_status, t.stopped_reason.as_deref()),
        (TaskStatus::Stopped, Some("first"))
    );
    assert_eq!(t.stop_code, Some(StopCode::UserInitiated));
    let e = refused(s.apply(
        1,
        Command::StopTask {
            cluster: "other".into(),
            task_id: "t1".into(),
            reason: None,
            stop_code: StopCode::UserInitiated,
            at: Timestamp(1),
        },
    ));
    assert_eq!(e.exception, Exception::InvalidParameterException);
    // Connection flags are leader decisions: refused from another term.
    let disconnect = |term| Command::SetAgentConnected {
        instance_id: "a".into(),
        connected: false,
        decided_in_term: term,
    };
    refused(s.apply(2, disconnect(1)));
    assert!(s.instances["a"].agent_connected);
    applied(s.apply(2, disconnect(2)));
    assert!(!s.instances["a"].agent_connected);
}

#[test]
fn tasks_and_tokens_survive_a_snapshot() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], Some("tok"), "f")));
    let json = serde_json::to_string(&s).expect("serialize");
    let mut back: ClusterState = serde_json::from_str(&json).expect("deserialize");
    back.arn = s.arn.clone();
    // Derived indexes are not in the snapshot: restoring rebuilds them.
    back.rebuild_indexes();
    assert_eq!(back, s);
}

#[test]
fn stopped_tasks_are_purged_and_running_ones_keep_their_definition() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a"), ("t2", "a")], None, "f")));
    // The revision is deleted while t1 and t2 run: it is not purgeable yet.
    applied(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web".into(),
            revision: 1,
            at: Timestamp(20),
        },
    ));
    applied(s.apply(
        1,
        Command::DeleteTaskDefinitions {
            revisions: vec![("web".into(), 1)],
            at: Timestamp(21),
        },
    ));
    assert!(s.purgeable_task_definitions(Timestamp(1_000)).is_empty());
    assert_eq!(
        s.assignments_for("a").len(),
        2,
        "running tasks keep their definition"
    );
    let mut stopped = report("t1", TaskStatus::Stopped, Some(0));
    stopped.stopped_at = Some(Timestamp(30));
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![stopped],
        },
    ));
    assert_eq!(s.purgeable_tasks(Timestamp(29), 100), Vec::<String>::new());
    assert_eq!(
        s.purgeable_tasks(Timestamp(30), 100),
        vec!["t1".to_string()]
    );
    // Fenced like all leader work; only STOPPED tasks go.
    let purge = |term| Command::PurgeTasks {
        task_ids: vec!["t1".into(), "t2".into()],
        decided_in_term: term,
    };
    refused(s.apply(3, purge(2)));
    assert_eq!(applied(s.apply(3, purge(3))), Outcome::Purged(1));
    assert!(!s.tasks.contains_key("t1") && s.tasks.contains_key("t2"));
    let mut stopped = report("t2", TaskStatus::Stopped, Some(0));
    stopped.stopped_at = Some(Timestamp(40));
    applied(s.apply(
        3,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![stopped],
        },
    ));
    assert_eq!(
        s.purgeable_task_definitions(Timestamp(1_000)),
        vec![("web".to_string(), 1)]
    );
}

#[test]
fn ephemeral_storage_is_recorded_from_the_definition_and_shown() {
    let mut s = state_with(
        r#"{"family":"web","ephemeralStorage":{"sizeInGiB":30},"containerDefinitions":[{"name":"app","image":"busybox","memory":300}]}"#,
    );
    register_instance(&mut s, "a", None);
    applied(s.apply(1, run(&[("t1", "a")], None, "f")));
    let shown = serde_json::to_value(s.render_task(&s.tasks["t1"])).expect("json");
    assert_eq!(
        shown["ephemeralStorage"],
        serde_json::json!({"sizeInGiB": 30})
    );
    // A definition without it shows none (ECS shows it for Fargate only).
    let mut plain = state_with_definition();
    register_instance(&mut plain, "a", None);
    applied(plain.apply(1, run(&[("t1", "a")], None, "f")));
    let shown = serde_json::to_value(plain.render_task(&plain.tasks["t1"])).expect("json");
    assert!(shown.get("ephemeralStorage").is_none(), "{shown}");
}

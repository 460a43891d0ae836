//! Where an ExecuteCommand may go: only a task started with
//! enableExecuteCommand, running, in a named (or its only) running
//! container, on an agent with a node API; every refusal says why.

use orca_core::task::TaskStatus;

use super::exec_targets::NOT_ENABLED;
use super::task_tests::{applied, register_instance, report, run, state_with_definition};
use super::*;

fn state(exec: bool, node_api: bool) -> ClusterState {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    if node_api {
        if let Some(i) = s.instances.get_mut("a") {
            i.node_api_address = Some("198.18.0.5:7490".parse().expect("address"));
        }
    }
    let mut command = run(&[("t1", "a")], None, "f1");
    if let Command::RunTask(r) = &mut command {
        r.enable_execute_command = exec;
    }
    applied(s.apply(1, command));
    s
}

fn running(s: &mut ClusterState) {
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".to_string(),
            reports: vec![report("t1", TaskStatus::Running, None)],
        },
    ));
}

fn refusal(s: &ClusterState, container: Option<&str>) -> String {
    s.exec_target("default", "t1", container)
        .err()
        .map(|e| e.message)
        .unwrap_or_default()
}

#[test]
fn a_running_task_with_exec_enabled_is_reached_through_its_agent() {
    let mut s = state(true, true);
    assert!(
        refusal(&s, None).contains("is not running"),
        "PROVISIONING yet"
    );
    running(&mut s);
    let t = s
        .exec_target("default", "t1", None)
        .expect("the only container");
    assert_eq!(t.container_name, "app");
    assert_eq!(t.container_index, 0);
    assert_eq!(t.node_api.to_string(), "198.18.0.5:7490");
    assert!(t.task_arn.ends_with("task/default/t1"));
    let by_arn = s.exec_target("default", &t.task_arn, Some("app"));
    assert_eq!(by_arn.map(|b| b.container_arn), Ok(t.container_arn));
    assert!(refusal(&s, Some("db")).contains("has no container 'db'"));
    assert!(
        s.exec_target("other", "t1", None).is_err(),
        "another cluster's"
    );
}

#[test]
fn exec_is_refused_without_enable_execute_command_or_a_node_api() {
    let mut s = state(false, true);
    running(&mut s);
    assert_eq!(refusal(&s, None), NOT_ENABLED);
    let mut s = state(true, false);
    running(&mut s);
    assert!(refusal(&s, None).contains("registered no node API"));
}

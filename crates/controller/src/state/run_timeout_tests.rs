//! RunTask's run timeout: exactly the tasks RUNNING past their timeout are
//! overdue, counted from startedAt, and a stopped one is not any more.

use orca_core::task::{StopCode, TaskStatus};
use orca_core::task_definition::Timestamp;

use super::run_timeouts::{reason, Overdue};
use super::task_tests::{applied, register_instance, report, run, state_with_definition};
use super::*;

fn with_timeout(mut command: Command, secs: Option<u32>) -> Command {
    if let Command::RunTask(cmd) = &mut command {
        cmd.run_timeout_seconds = secs;
    }
    command
}

fn started(s: &mut ClusterState, task: &str, at: i64) {
    let mut r = report(task, TaskStatus::Running, None);
    r.started_at = Some(Timestamp(at));
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".to_string(),
            reports: vec![r],
        },
    ));
}

#[test]
fn a_task_is_overdue_from_started_at_plus_its_timeout() {
    let mut s = state_with_definition();
    register_instance(&mut s, "a", None);
    applied(s.apply(1, with_timeout(run(&[("t1", "a")], None, "f1"), Some(5))));
    applied(s.apply(1, with_timeout(run(&[("t2", "a")], None, "f2"), None)));
    applied(s.apply(1, with_timeout(run(&[("t3", "a")], None, "f3"), Some(1))));
    // Not RUNNING yet: no clock runs.
    assert!(s.overdue_tasks(Timestamp(1_000_000)).is_empty());
    started(&mut s, "t1", 1_000);
    started(&mut s, "t2", 1_000);
    assert!(s.overdue_tasks(Timestamp(5_999)).is_empty());
    let overdue = s.overdue_tasks(Timestamp(6_000));
    assert_eq!(
        overdue,
        [Overdue {
            cluster: "default".to_string(),
            task_id: "t1".to_string(),
            timeout_seconds: 5,
        }]
    );
    assert!(s.tasks["t1"].run_timeout_seconds == Some(5));
    // Stopped as the leader's loop stops it: no longer overdue.
    applied(s.apply(
        1,
        Command::StopTask {
            cluster: "default".to_string(),
            task_id: "t1".to_string(),
            reason: Some(reason(5)),
            stop_code: StopCode::UserInitiated,
            at: Timestamp(6_000),
        },
    ));
    assert!(s.overdue_tasks(Timestamp(60_000)).is_empty());
    let stopped = &s.tasks["t1"];
    assert_eq!(stopped.desired_status, TaskStatus::Stopped);
    assert_eq!(stopped.stop_code, Some(StopCode::UserInitiated));
    assert_eq!(
        stopped.stopped_reason.as_deref(),
        Some("Task stopped: it ran longer than its run timeout of 5 s (runTimeoutSeconds)")
    );
}

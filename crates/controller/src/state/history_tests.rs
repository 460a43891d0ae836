//! Durable task history: a day of STOPPED tasks (50,000 of them) pages
//! through ListTasks STOPPED exactly once in id order while tasks stop and
//! are purged between pages; the purge takes exactly the tasks stopped by
//! its cutoff, oldest first; a stopped task keeps its containers' exit
//! codes and reasons and its timestamps whatever its agent sends or forgets
//! afterwards.

use std::collections::BTreeSet;

use orca_core::task::{StopCode, TaskStatus};
use orca_core::task_definition::Timestamp;

use super::query::{Page, PageRequest};
use super::task_queries::TaskFilter;
use super::task_tests::{applied, register_instance, report, run, state_with};
use super::*;

/// 6 MiB (the least), no CPU: a hundred tasks fit on one instance at once.
const TINY: &str =
    r#"{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":6}]}"#;

/// The first stop time; the i-th task created stops at `BASE + i`.
const BASE: i64 = 1_000_000;

/// The id of the i-th of `n` tasks created: a permutation of 0..n (7919 is
/// prime to 2 and 5), so id order is not stop order and a purge by age
/// removes ids scattered before and after a listing's cursor.
fn history_id(i: usize, n: usize) -> String {
    format!("h{:06}", (i * 7919) % n)
}

/// Runs `ids` on instance "a" in one RunTask (all must be placed).
fn run_all(s: &mut ClusterState, ids: &[String]) {
    let placements: Vec<(&str, &str)> = ids.iter().map(|id| (id.as_str(), "a")).collect();
    match applied(s.apply(1, run(&placements, None, "f"))) {
        Outcome::Tasks { tasks, failures } => {
            assert_eq!((tasks.len(), failures.len()), (ids.len(), 0));
        }
        other => panic!("expected tasks, got {other:?}"),
    }
}

/// A state with `n` tasks that ran and stopped, a hundred at a time, the
/// i-th with exit code i % 256 and stoppedAt `BASE + i`.
fn stopped_history(n: usize) -> ClusterState {
    let mut s = state_with(TINY);
    register_instance(&mut s, "a", None);
    for start in (0..n).step_by(100) {
        let batch: Vec<usize> = (start..n.min(start + 100)).collect();
        let ids: Vec<String> = batch.iter().map(|&i| history_id(i, n)).collect();
        run_all(&mut s, &ids);
        let reports = batch
            .iter()
            .zip(&ids)
            .map(|(&i, id)| {
                let mut r = report(id, TaskStatus::Stopped, Some((i % 256) as i32));
                r.stopped_at = Some(Timestamp(BASE + i as i64));
                r
            })
            .collect();
        let outcome = applied(s.apply(
            1,
            Command::ReportTaskStates {
                instance_id: "a".into(),
                reports,
            },
        ));
        assert_eq!(outcome, Outcome::Reported(ids.len()));
    }
    s
}

fn filter(desired: &str) -> TaskFilter {
    TaskFilter {
        cluster: "default".into(),
        desired_status: desired.into(),
        ..TaskFilter::default()
    }
}

fn list(s: &ClusterState, desired: &str, token: &str, max: u32) -> Page<String> {
    let page = PageRequest {
        next_token: token.into(),
        max_results: max,
    };
    let mut page = s.list_tasks(&filter(desired), &page).expect("lists");
    // ARNs end in the task id.
    for arn in &mut page.items {
        *arn = arn.rsplit('/').next().expect("an id").to_string();
    }
    page
}

fn stop(s: &mut ClusterState, id: &str) {
    applied(s.apply(
        1,
        Command::StopTask {
            cluster: "default".into(),
            task_id: id.into(),
            reason: None,
            stop_code: StopCode::UserInitiated,
            at: Timestamp(BASE),
        },
    ));
}

#[test]
fn a_day_of_stopped_tasks_pages_exactly_once_while_tasks_stop_and_are_purged() {
    // 50,000 rather than the issue's 100,000: built through `apply` one
    // RunTask and one report batch per hundred tasks, 100,000 took about
    // 9 s to build and 1 s to page in a debug build; half keeps the test
    // near 5 s and exercises the same seeks.
    const N: usize = 50_000;
    let mut s = stopped_history(N);
    // Tasks still running, ids among the history's: not listed as STOPPED
    // until stopped.
    let mut running: Vec<String> = (0..20).map(|k| format!("h{:06}r", k * 5_003)).collect();
    run_all(&mut s, &running);
    assert_eq!(s.task_index.sizes(), (N + 20, N));

    // The model: what a listing that started now must return. A task
    // purged ahead of the cursor is never listed; one that comes to be
    // wanted STOPPED ahead of it is.
    let mut expected: BTreeSet<String> = (0..N).map(|i| history_id(i, N)).collect();
    let mut listed: Vec<String> = Vec::new();
    let (mut token, mut pages, mut purged_batches) = (String::new(), 0usize, 0usize);
    loop {
        let page = list(&s, "STOPPED", &token, 100);
        assert!(page.items.len() <= 100);
        listed.extend(page.items);
        pages += 1;
        let Some(next) = page.next_token else { break };
        token = next;
        let cursor = listed.last().cloned().unwrap_or_default();
        if pages % 10 == 0 {
            // The next hundred by stop time: exactly those, oldest first.
            let first = purged_batches * 100;
            let cutoff = Timestamp(BASE + first as i64 + 149);
            let due = s.purgeable_tasks(cutoff, 100);
            let oldest: Vec<String> = (first..first + 100).map(|i| history_id(i, N)).collect();
            assert_eq!(due, oldest);
            for id in due.iter().filter(|id| **id > cursor) {
                expected.remove(id);
            }
            let purge = Command::PurgeTasks {
                task_ids: due,
                decided_in_term: 1,
            };
            assert_eq!(applied(s.apply(1, purge)), Outcome::Purged(100));
            purged_batches += 1;
        }
        if pages % 50 == 0 {
            if let Some(id) = running.pop() {
                stop(&mut s, &id);
                if id > cursor {
                    expected.insert(id);
                }
            }
        }
    }
    let expected: Vec<String> = expected.into_iter().collect();
    assert_eq!(listed.len(), expected.len());
    assert_eq!(listed, expected);
    assert_eq!(purged_batches, (pages - 1) / 10);
    assert_eq!(running.len(), 20 - ((pages - 1) / 50).min(20));
    assert_eq!(s.tasks.len(), N + 20 - 100 * purged_batches);
    assert!(s.check_task_index().is_ok());
    // RUNNING lists only the tasks still wanted running; PENDING nothing.
    let page = list(&s, "RUNNING", "", 100);
    running.sort();
    assert_eq!((page.items, page.next_token), (running, None));
    let page = list(&s, "PENDING", "", 100);
    assert_eq!((page.items.len(), page.next_token), (0, None));
}

#[test]
fn the_purge_takes_exactly_the_tasks_stopped_by_the_cutoff_oldest_first() {
    const N: usize = 1_000;
    let mut s = stopped_history(N);
    let by_age = |range: std::ops::Range<usize>| -> Vec<String> {
        range.map(|i| history_id(i, N)).collect()
    };
    assert!(s.purgeable_tasks(Timestamp(BASE - 1), 100).is_empty());
    // The cutoff is inclusive; the order is stop time's, not id's.
    assert_eq!(s.purgeable_tasks(Timestamp(BASE), 100), by_age(0..1));
    assert_eq!(s.purgeable_tasks(Timestamp(BASE + 49), 100), by_age(0..50));
    assert_eq!(
        s.purgeable_tasks(Timestamp(BASE + 999), 100),
        by_age(0..100)
    );
    assert_eq!(s.purgeable_tasks(Timestamp(BASE + 999), 7), by_age(0..7));

    // Wanted STOPPED but not yet stopped, or running since long before
    // the cutoff: not due.
    let ids = ["old-running".to_string(), "stopping".to_string()];
    run_all(&mut s, &ids);
    stop(&mut s, "stopping");
    // Reported STOPPED without a stoppedAt: its retention starts at its
    // executionStoppedAt, not at its createdAt (10).
    run_all(&mut s, &["no-stopped-at".to_string()]);
    let mut r = report("no-stopped-at", TaskStatus::Stopped, Some(1));
    r.execution_stopped_at = Some(Timestamp(BASE + 10));
    applied(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "a".into(),
            reports: vec![r],
        },
    ));
    // Tied at BASE + 10 with the 11th history task: ids break the tie.
    let mut through_ten = by_age(0..11);
    through_ten.push("no-stopped-at".into());
    assert_eq!(s.purgeable_tasks(Timestamp(BASE + 10), 100), through_ten);
    let everything = s.purgeable_tasks(Timestamp(i64::MAX), usize::MAX);
    assert_eq!(everything.len(), N + 1);
    assert!(!everything.iter().any(|id| ids.contains(id)));
    assert!(s.check_task_index().is_ok());
}

#[test]
fn a_stopped_task_keeps_its_containers_exit_codes_reasons_and_times() {
    let mut s = state_with(
        r#"{"family":"web","containerDefinitions":[
            {"name":"app","image":"busybox","memory":6},
            {"name":"side","image":"busybox","memory":6,"essential":false}]}"#,
    );
    register_instance(&mut s, "a", None);
    let placements = [("t1", "a")];
    let mut command = run(&placements, None, "f");
    if let Command::RunTask(r) = &mut command {
        r.placements[0].container_ids = vec!["c-app".into(), "c-side".into()];
    }
    applied(s.apply(1, command));
    let container = |name: &str, status, exit, reason: Option<&str>| {
        orca_core::agent_protocol::ContainerStateReport {
            name: name.into(),
            last_status: status,
            exit_code: exit,
            reason: reason.map(str::to_string),
            runtime_id: Some(format!("rt-{name}")),
            image_digest: None,
            health_status: Default::default(),
            health_output: None,
            health_exit_code: None,
            restart_count: 0,
        }
    };
    use orca_core::task::ContainerStatus::{Running, Stopped};
    let mut running = report("t1", TaskStatus::Running, None);
    running.containers = vec![
        container("app", Running, None, None),
        container("side", Running, None, None),
    ];
    running.started_at = Some(Timestamp(100));
    let mut stopped = report("t1", TaskStatus::Stopped, Some(1));
    stopped.containers = vec![
        container("app", Stopped, Some(1), Some("Essential container exited")),
        container("side", Stopped, Some(137), Some("OutOfMemoryError: killed")),
    ];
    stopped.started_at = Some(Timestamp(100));
    stopped.stopping_at = Some(Timestamp(200));
    stopped.execution_stopped_at = Some(Timestamp(201));
    stopped.stopped_at = Some(Timestamp(202));
    let reports = |r: Vec<_>| Command::ReportTaskStates {
        instance_id: "a".into(),
        reports: r,
    };
    applied(s.apply(1, reports(vec![running.clone(), stopped])));

    // The agent forgets the task: a restarted agent resends an old RUNNING
    // report, then one for a container it found gone (no exit code, a
    // reason of its own); then it is lost and its instance deregistered.
    applied(s.apply(1, reports(vec![running])));
    let mut forgotten = report("t1", TaskStatus::Stopped, None);
    forgotten.containers = vec![container(
        "app",
        Stopped,
        Some(255),
        Some("CannotInspectContainerError: not found"),
    )];
    applied(s.apply(1, reports(vec![forgotten])));
    for command in [
        Command::SetAgentConnected {
            instance_id: "a".into(),
            connected: false,
            decided_in_term: 1,
        },
        Command::InstanceLost {
            instance_id: "a".into(),
            at: Timestamp(300),
            decided_in_term: 1,
        },
        Command::DeregisterContainerInstance {
            cluster: "default".into(),
            instance_id: "a".into(),
            force: true,
            at: Timestamp(301),
        },
    ] {
        applied(s.apply(1, command));
    }
    // And a snapshot's round trip.
    let json = serde_json::to_string(&s).expect("serializes");
    let mut s: ClusterState = serde_json::from_str(&json).expect("deserializes");
    s.rebuild_indexes();

    let (tasks, failures) = s.describe_tasks("default", &["t1".to_string()]);
    assert!(failures.is_empty());
    let shown = serde_json::to_value(&tasks[0]).expect("json");
    let field = |c: usize, name: &str| shown["containers"][c][name].clone();
    assert_eq!(
        (field(0, "name"), field(0, "exitCode"), field(0, "reason")),
        ("app".into(), 1.into(), "Essential container exited".into())
    );
    assert_eq!(
        (field(1, "name"), field(1, "exitCode"), field(1, "reason")),
        ("side".into(), 137.into(), "OutOfMemoryError: killed".into())
    );
    assert_eq!(field(0, "lastStatus"), "STOPPED");
    let times: Vec<serde_json::Value> =
        ["startedAt", "stoppingAt", "executionStoppedAt", "stoppedAt"]
            .iter()
            .map(|t| shown[t].clone())
            .collect();
    let expected: Vec<serde_json::Value> = [100, 200, 201, 202]
        .iter()
        .map(|&ms| serde_json::to_value(Timestamp(ms)).expect("json"))
        .collect();
    assert_eq!(times, expected);
    assert_eq!(
        (shown["lastStatus"].clone(), shown["stopCode"].clone()),
        ("STOPPED".into(), "EssentialContainerExited".into())
    );
    assert_eq!(shown["stoppedReason"], "Essential container in task exited");
}

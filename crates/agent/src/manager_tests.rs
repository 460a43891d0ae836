//! The manager and runners over the fake runtime and fake network: a task
//! runs once, even when the agent restarts between its end and the
//! controller's acknowledgement.

use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::TaskAssignment;
use orca_core::task::{TaskOverride, TaskStatus};
use orca_core::task_definition::{parse_register_input, TaskDefinition, Timestamp};
use orca_net::fake::FakeNetwork;
use orca_net::{Ipv4Subnet, NodeNetworkConfig};
use orca_runtime::fake::FakeRuntime;
use orca_runtime::ImageConfig;

use crate::finished::FinishedTasks;
use crate::manager::TaskManager;
use crate::reporter::Reporter;
use crate::runner::RunnerContext;

const IMAGE: &str = "registry.test/busybox:1";

fn assignment() -> TaskAssignment {
    let input = parse_register_input(&format!(
        r#"{{"family":"once","containerDefinitions":[{{"name":"app","image":"{IMAGE}","memory":32,"command":["sh","-c","sleep 0.1; exit 0"]}}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    TaskAssignment {
        task_arn: "arn:orca:ecs:local:000000000000:task/default/t1".to_string(),
        task_id: "t1".to_string(),
        desired_status: TaskStatus::Running,
        task_definition: TaskDefinition::new(
            input.spec,
            "arn:td".into(),
            1,
            Timestamp(0),
            "t".into(),
        ),
        overrides: TaskOverride::default(),
        stop_code: None,
        stopped_reason: None,
    }
}

struct Node {
    runtime: FakeRuntime,
    reporter: Arc<Reporter>,
    ctx: Arc<RunnerContext>,
}

fn node(dir: &std::path::Path) -> Node {
    let runtime = FakeRuntime::new();
    runtime.add_image(IMAGE, ImageConfig::default());
    let network = FakeNetwork::open(NodeNetworkConfig {
        bridge: "orca0".to_string(),
        subnet: Ipv4Subnet::new(std::net::Ipv4Addr::new(198, 19, 0, 0), 24)
            .unwrap_or_else(|e| panic!("{e}")),
        netns_prefix: "t".to_string(),
        state_dir: dir.join("network"),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let reporter = Arc::new(Reporter::default());
    let ctx = Arc::new(RunnerContext {
        runtime: Arc::new(runtime.clone()),
        network: Arc::new(network),
        reporter: reporter.clone(),
        logs_dir: dir.join("tasks"),
        default_stop_timeout: Duration::from_secs(1),
        task_subnet: "198.19.0.0/24".to_string(),
        finished: FinishedTasks::new(dir.join("finished")),
    });
    Node {
        runtime,
        reporter,
        ctx,
    }
}

/// The last status reported for t1, taking (and so "sending") the batch.
fn reported_status(reporter: &Reporter) -> Option<TaskStatus> {
    let (seq, batch) = reporter.next_batch()?;
    reporter.ack(seq);
    batch.last().map(|r| r.last_status)
}

/// Takes batches until t1 is reported STOPPED and no runner of `manager`
/// is still at work; panics after five seconds.
async fn wait_stopped_and_idle(reporter: &Reporter, manager: &TaskManager) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut last = None;
    loop {
        if let Some(s) = reported_status(reporter) {
            last = Some(s);
        }
        if last == Some(TaskStatus::Stopped) && manager.active() == 0 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "t1 not reported STOPPED with every runner done after 5 s: last report {last:?}, {} runners active",
            manager.active()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_task_that_ended_is_not_run_again_after_an_agent_restart() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let first = node(dir.path());
    let mut manager = TaskManager::new(first.ctx.clone());
    manager.assign(vec![assignment()]);
    wait_stopped_and_idle(&first.reporter, &manager).await;
    assert_eq!(first.runtime.starts().len(), 1);
    // The agent dies before the controller acknowledged STOPPED: the
    // restarted agent is assigned the task again, desired RUNNING.
    drop(manager);
    let second = node(dir.path());
    let mut manager = TaskManager::new(second.ctx.clone());
    manager.assign(vec![assignment()]);
    // The assignment has been dealt with once STOPPED is reported and no
    // runner is at work: a runner that ran the task again would have
    // started its container before it could finish.
    wait_stopped_and_idle(&second.reporter, &manager).await;
    assert!(
        second.runtime.starts().is_empty(),
        "the task ran a second time"
    );
    // Once the controller stops assigning it, the record goes.
    manager.assign(Vec::new());
    assert!(second.ctx.finished.get("t1").is_none());
}

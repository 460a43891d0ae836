//! The node loop on the fake runtime and fake network (no root, no
//! containerd): StopTask at every stage, restarts of the agent at awkward
//! moments, and containerd going away under running tasks. Each test waits
//! for conditions with deadlines; "agent restarts" drop one loop and start
//! another on the same runtime and data directory, as a SIGKILL and a new
//! process would.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::{TaskAssignment, TaskStateReport};
use orca_core::task::{StopCode, TaskOverride, TaskStatus};
use orca_core::task_definition::{parse_register_input, TaskDefinition, Timestamp};
use orca_net::fake::FakeNetwork;
use orca_net::{Ipv4Subnet, NetworkConfigurator, NodeNetworkConfig};
use orca_runtime::fake::FakeRuntime;
use orca_runtime::{ContainerRuntime, ImageConfig};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::finished::FinishedTasks;
use crate::gc::GcConfig;
use crate::node::{LoopConfig, Node, NodeParts};
use crate::reconcile::Settings;
use crate::reporter::Reporter;

pub(crate) const IMAGE: &str = "registry.test/busybox:1";
const WAIT: Duration = Duration::from_secs(10);

fn assignment(id: &str, script: &str, desired: TaskStatus) -> TaskAssignment {
    let input = parse_register_input(&format!(
        r#"{{"family":"f","containerDefinitions":[{{"name":"app","image":"{IMAGE}","memory":32,"stopTimeout":1,"command":["sh","-c","{script}"]}}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    TaskAssignment {
        task_arn: format!("arn:orca:ecs:local:0:task/default/{id}"),
        task_id: id.to_string(),
        desired_status: desired,
        task_definition: TaskDefinition::new(
            input.spec,
            "arn:td".into(),
            1,
            Timestamp(0),
            "t".into(),
        ),
        overrides: TaskOverride::default(),
        stop_code: (desired == TaskStatus::Stopped).then_some(StopCode::UserInitiated),
        stopped_reason: (desired == TaskStatus::Stopped).then(|| "asked".to_string()),
        host_ports: Vec::new(),
        deregistration_delay_ms: None,
        secrets: Vec::new(),
        secrets_error: None,
        privileges_allowed: false,
    }
}

/// One agent process, as far as the loop goes.
pub(crate) struct Agent {
    pub(crate) runtime: FakeRuntime,
    network: Arc<FakeNetwork>,
    reporter: Arc<Reporter>,
    assignments: watch::Sender<Option<Vec<TaskAssignment>>>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
    /// The latest report of each task the "controller" took.
    seen: BTreeMap<String, TaskStateReport>,
}

impl Agent {
    pub(crate) fn start(dir: &std::path::Path, runtime: &FakeRuntime) -> Agent {
        let network = Arc::new(
            FakeNetwork::open(NodeNetworkConfig {
                bridge: "orca0".into(),
                subnet: Ipv4Subnet::new(std::net::Ipv4Addr::new(198, 19, 0, 0), 24)
                    .unwrap_or_else(|e| panic!("{e}")),
                netns_prefix: "t".into(),
                state_dir: dir.join("network"),
                mtu: None,
            })
            .unwrap_or_else(|e| panic!("{e}")),
        );
        let reporter = Arc::new(Reporter::default());
        let (assignments, rx) = watch::channel(None);
        let node = Node::new(NodeParts {
            runtime: Arc::new(runtime.clone()),
            network: network.clone(),
            reporter: reporter.clone(),
            finished: FinishedTasks::new(dir.join("finished")),
            settings: Settings {
                default_stop_timeout: Duration::from_secs(1),
                kill_resend: Duration::from_millis(500),
                task_subnet: "198.19.0.0/24".into(),
                logs_dir: dir.join("tasks"),
                volumes: crate::volumes::VolumeSettings {
                    volumes_dir: dir.join("volumes"),
                    files_dir: dir.join("task-files"),
                    host_volume_paths: Vec::new(),
                    dns_servers: vec![std::net::Ipv4Addr::new(192, 0, 2, 53)],
                },
                max_restart_attempt_period: None,
                pids_limit: None,
                log_rotation: None,
            },
            config: LoopConfig {
                relist_interval: Duration::from_millis(50),
                gc_interval: Duration::from_secs(3600),
            },
            gc: GcConfig {
                task_log_retention: Duration::from_secs(3600),
                image_gc_high_threshold_percent: 100,
                image_gc_low_threshold_percent: 100,
                image_gc_min_unused: Duration::from_secs(3600),
                image_gc_disk_path: dir.to_path_buf(),
            },
            assignments: rx,
        })
        .unwrap_or_else(|e| panic!("{e}"));
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(node.run(shutdown.clone()));
        Agent {
            runtime: runtime.clone(),
            network,
            reporter,
            assignments,
            shutdown,
            handle,
            seen: BTreeMap::new(),
        }
    }

    pub(crate) fn assign(&self, tasks: Vec<TaskAssignment>) {
        self.assignments.send_replace(Some(tasks));
    }

    /// A crash: the loop and its operations are gone at once.
    pub(crate) async fn kill(self) {
        self.handle.abort();
        let _ = self.handle.await;
    }

    pub(crate) async fn stop(self) {
        self.shutdown.cancel();
        let _ = self.handle.await;
    }

    /// Takes (and acknowledges) report batches until `done` holds for the
    /// task's latest report.
    pub(crate) async fn wait_for(
        &mut self,
        task: &str,
        what: &str,
        done: impl Fn(&TaskStateReport) -> bool,
    ) -> TaskStateReport {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            while let Some((seq, batch)) = self.reporter.next_batch() {
                for r in batch {
                    let id = r
                        .task_arn
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    self.seen.insert(id, r);
                }
                self.reporter.ack(seq);
            }
            if let Some(r) = self.seen.get(task).filter(|r| done(r)) {
                return r.clone();
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{task}: not {what} within {WAIT:?}; last report {:#?}; containers {:?}",
                self.seen.get(task),
                self.runtime.container_ids()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub(crate) async fn wait_stopped(&mut self, task: &str) -> TaskStateReport {
        self.wait_for(task, "STOPPED", |r| r.last_status == TaskStatus::Stopped)
            .await
    }

    /// Nothing of any task is left: no container, no address.
    pub(crate) async fn assert_clean(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while !(self.runtime.container_ids().is_empty() && self.network.allocated().is_empty()) {
            assert!(
                tokio::time::Instant::now() < deadline,
                "left over: containers {:?}, addresses {:?}",
                self.runtime.container_ids(),
                self.network.allocated()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

pub(crate) fn fake_runtime() -> FakeRuntime {
    let runtime = FakeRuntime::new();
    runtime.add_image(IMAGE, ImageConfig::default());
    runtime
}

fn exit_code(r: &TaskStateReport) -> Option<i32> {
    r.containers[0].exit_code
}

#[tokio::test]
async fn stop_task_is_honoured_at_every_stage() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    let slow = Duration::from_millis(400);
    // Network setup, pull, create: each made slow in turn; StopTask lands
    // while the task is there.
    for (stage, task) in [("network", "n1"), ("pull", "p1"), ("create", "c1")] {
        match stage {
            "network" => agent.network.set_setup_delay(slow),
            "pull" => runtime.set_pull_delay(slow),
            _ => runtime.set_create_delay(slow),
        }
        agent.assign(vec![assignment(task, "sleep 60", TaskStatus::Running)]);
        agent
            .wait_for(task, "PROVISIONING or later", |_| true)
            .await;
        agent.assign(vec![assignment(task, "sleep 60", TaskStatus::Stopped)]);
        let r = agent.wait_stopped(task).await;
        assert_eq!(
            r.stop_code,
            Some(StopCode::UserInitiated),
            "{stage}: {r:#?}"
        );
        assert_eq!(exit_code(&r), None, "{stage}: it never ran: {r:#?}");
        agent.network.set_setup_delay(Duration::ZERO);
        runtime.set_pull_delay(Duration::ZERO);
        runtime.set_create_delay(Duration::ZERO);
        agent.assign(Vec::new());
        agent.assert_clean().await;
        // A new image reference per stage, so each one pulls.
        runtime
            .remove_image(IMAGE)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        runtime.starts().is_empty(),
        "a stopped task ran: {:?}",
        runtime.starts()
    );
    // Running: SIGTERM, and its exit code is the one reported.
    agent.assign(vec![assignment("r1", "sleep 60", TaskStatus::Running)]);
    agent
        .wait_for("r1", "RUNNING", |r| r.last_status == TaskStatus::Running)
        .await;
    agent.assign(vec![assignment("r1", "sleep 60", TaskStatus::Stopped)]);
    let r = agent.wait_stopped("r1").await;
    assert_eq!(exit_code(&r), Some(143), "{r:#?}");
    agent.assign(Vec::new());
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn a_stop_while_the_agent_is_down_stops_the_container_then_its_network() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    let stubborn = "ignore-sigterm; sleep 60";
    agent.assign(vec![
        assignment("a", stubborn, TaskStatus::Running),
        assignment("b", "sleep 60", TaskStatus::Running),
    ]);
    for t in ["a", "b"] {
        agent
            .wait_for(t, "RUNNING", |r| r.last_status == TaskStatus::Running)
            .await;
    }
    agent.kill().await;
    // While it is down, a is stopped by the user.
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![
        assignment("a", stubborn, TaskStatus::Stopped),
        assignment("b", "sleep 60", TaskStatus::Running),
    ]);
    let r = agent.wait_stopped("a").await;
    // SIGTERM ignored, SIGKILL after its stopTimeout: 137, really.
    assert_eq!(exit_code(&r), Some(137), "{r:#?}");
    assert!(!agent.network.allocated().contains(&"a".to_string()));
    assert_eq!(agent.seen["b"].last_status, TaskStatus::Running);
    assert_eq!(runtime.starts().len(), 2, "adopted, not started again");
    // The controller forgot b while the agent was down (lost): the
    // restarted agent stops it all the same.
    agent.kill().await;
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(Vec::new());
    let r = agent.wait_stopped("b").await;
    assert_eq!(exit_code(&r), Some(143), "{r:#?}");
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn a_task_that_ended_never_runs_again_whatever_the_moment_of_the_crash() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![assignment(
        "t",
        "sleep 0.1; exit 3",
        TaskStatus::Running,
    )]);
    agent.wait_stopped("t").await;
    assert_eq!(runtime.starts().len(), 1);
    // The controller did not take the report in: a restarted agent is
    // assigned the task again, desired RUNNING, and only reports its end.
    agent.kill().await;
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![assignment(
        "t",
        "sleep 0.1; exit 3",
        TaskStatus::Running,
    )]);
    let r = agent.wait_stopped("t").await;
    assert_eq!(exit_code(&r), Some(3), "{r:#?}");
    assert_eq!(runtime.starts().len(), 1, "the task ran a second time");
    agent.assign(Vec::new());
    agent.assert_clean().await;
    // The record goes once the controller no longer assigns the task.
    let records = FinishedTasks::new(dir.path().join("finished"));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !records
        .load_all()
        .unwrap_or_else(|e| panic!("{e}"))
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the final report stays on disk"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    agent.stop().await;
}

#[tokio::test]
async fn a_container_created_but_never_started_is_started_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    // A crash after the create and before the start: starts hang, and the
    // loop is killed as soon as the container exists.
    let agent = Agent::start(dir.path(), &runtime);
    runtime.set_start_delay(Duration::from_secs(3600));
    let task = assignment("t", "sleep 60", TaskStatus::Running);
    agent.assign(vec![task.clone()]);
    let deadline = tokio::time::Instant::now() + WAIT;
    while runtime.container_ids().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "never created");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    agent.kill().await;
    runtime.set_start_delay(Duration::ZERO);
    assert!(runtime.starts().is_empty(), "started before the crash");
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![task]);
    agent
        .wait_for("t", "RUNNING", |r| r.last_status == TaskStatus::Running)
        .await;
    assert_eq!(runtime.starts().len(), 1, "{:?}", runtime.starts());
    agent.assign(vec![assignment("t", "sleep 60", TaskStatus::Stopped)]);
    agent.wait_stopped("t").await;
    agent.assign(Vec::new());
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn containerd_away_concludes_nothing_and_exits_meanwhile_are_reported_with_their_code() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![
        assignment("dies", "sleep 60", TaskStatus::Running),
        assignment("lives", "sleep 60", TaskStatus::Running),
        assignment("lost", "sleep 60", TaskStatus::Running),
    ]);
    for t in ["dies", "lives", "lost"] {
        agent
            .wait_for(t, "RUNNING", |r| r.last_status == TaskStatus::Running)
            .await;
    }
    runtime.set_unavailable(true);
    runtime.exit_now("dies-0-app", 5);
    runtime.lose_task("lost-0-app");
    // While containerd is away the agent relists in vain and concludes
    // nothing: no report moves.
    tokio::time::sleep(Duration::from_millis(300)).await;
    agent
        .wait_for("dies", "still RUNNING", |r| {
            r.last_status == TaskStatus::Running
        })
        .await;
    runtime.set_unavailable(false);
    let r = agent.wait_stopped("dies").await;
    assert_eq!(exit_code(&r), Some(5), "{r:#?}");
    let r = agent.wait_stopped("lost").await;
    assert_eq!(exit_code(&r), None, "no made-up exit code: {r:#?}");
    assert_eq!(
        r.containers[0].reason.as_deref(),
        Some(crate::reconcile::report::LOST_REASON)
    );
    assert_eq!(agent.seen["lives"].last_status, TaskStatus::Running);
    assert_eq!(runtime.running_ids(), ["lives-0-app"]);
    agent.assign(vec![assignment("lives", "sleep 60", TaskStatus::Stopped)]);
    agent.wait_stopped("lives").await;
    agent.assign(Vec::new());
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn a_tasks_volumes_and_etc_files_are_mounted_then_removed_with_it() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    let mut a = assignment("v1", "sleep 60", TaskStatus::Running);
    let input = parse_register_input(&format!(
        r#"{{"family":"f","volumes":[{{"name":"scratch"}}],"containerDefinitions":[{{"name":"app","image":"{IMAGE}","memory":32,"stopTimeout":1,
            "command":["sh","-c","sleep 60"],"mountPoints":[{{"sourceVolume":"scratch","containerPath":"/s","readOnly":true}}]}}]}}"#
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    a.task_definition =
        TaskDefinition::new(input.spec, "arn:td".into(), 1, Timestamp(0), "t".into());
    agent.assign(vec![a.clone()]);
    agent
        .wait_for("v1", "RUNNING", |r| r.last_status == TaskStatus::Running)
        .await;
    let scratch = dir.path().join("volumes/tasks/v1/scratch");
    let files = dir.path().join("task-files/v1/app");
    let spec = runtime
        .spec("v1-0-app")
        .unwrap_or_else(|| panic!("no container"));
    let mounts: Vec<(String, orca_runtime::MountKind)> = spec
        .mounts
        .iter()
        .map(|m| (m.destination.clone(), m.kind.clone()))
        .collect();
    let bind =
        |source: std::path::PathBuf, readonly| orca_runtime::MountKind::Bind { source, readonly };
    assert_eq!(
        mounts,
        vec![
            ("/s".to_string(), bind(scratch.clone(), true)),
            (
                "/etc/resolv.conf".to_string(),
                bind(files.join("resolv.conf"), false)
            ),
            ("/etc/hosts".to_string(), bind(files.join("hosts"), false)),
            (
                "/etc/hostname".to_string(),
                bind(files.join("hostname"), false)
            ),
        ]
    );
    assert!(scratch.is_dir());
    assert_eq!(
        std::fs::read_to_string(files.join("resolv.conf"))
            .ok()
            .as_deref(),
        Some("# written by orca-agent\nnameserver 192.0.2.53\n")
    );
    assert_eq!(
        std::fs::read_to_string(files.join("hostname"))
            .ok()
            .as_deref(),
        Some("v1\n")
    );

    // The agent restarts: the volume is still there, and still removed
    // with its task.
    agent.kill().await;
    let mut agent = Agent::start(dir.path(), &runtime);
    a.desired_status = TaskStatus::Stopped;
    a.stop_code = Some(StopCode::UserInitiated);
    agent.assign(vec![a]);
    assert!(scratch.is_dir());
    agent.wait_stopped("v1").await;
    assert!(!dir.path().join("volumes/tasks/v1").exists());
    assert!(!dir.path().join("task-files/v1").exists());
    agent.assign(Vec::new());
    agent.assert_clean().await;
    agent.stop().await;
}

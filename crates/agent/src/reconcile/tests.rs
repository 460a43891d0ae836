//! The reconcile step, data-driven: each case is a world (assignments,
//! containers as containerd lists them, networks, final reports, memory)
//! and the actions expected, written one per line.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use orca_core::agent_protocol::{TaskAssignment, TaskStateReport};
use orca_core::task::{HostPortBinding, StopCode, TaskOverride, TaskStatus};
use orca_core::task_definition::{
    parse_register_input, TaskDefinition, Timestamp, TransportProtocol,
};
use orca_net::TaskNetwork;
use orca_runtime::{ContainerExit, ImageConfig, ImageInfo, ProcessState, StopSignal};
use tokio::time::Instant;

use super::*;

fn settings() -> Settings {
    Settings {
        default_stop_timeout: Duration::from_secs(30),
        kill_resend: Duration::from_secs(10),
        task_subnet: "198.19.0.0/24".into(),
        logs_dir: PathBuf::from("/logs"),
        volumes: crate::volumes::VolumeSettings {
            volumes_dir: PathBuf::from("/data/volumes"),
            files_dir: PathBuf::from("/data/task-files"),
            host_volume_paths: vec![PathBuf::from("/srv")],
            dns_servers: vec![Ipv4Addr::new(192, 0, 2, 53)],
        },
        max_restart_attempt_period: None,
        pids_limit: None,
        log_rotation: None,
    }
}

/// A task `id` of one or more containers `name:essential:dependsOn`.
fn assignment(id: &str, desired: TaskStatus, containers: &[&str]) -> TaskAssignment {
    let defs: Vec<String> = containers
        .iter()
        .map(|c| {
            let mut parts = c.split(':');
            let name = parts.next().unwrap_or("app");
            let essential = parts.next() != Some("optional");
            let deps = parts
                .next()
                .map(|d| format!(r#","dependsOn":[{{"containerName":"{d}","condition":"SUCCESS"}}]"#))
                .unwrap_or_default();
            format!(
                r#"{{"name":"{name}","image":"img/{name}","memory":32,"essential":{essential},"stopTimeout":5{deps}}}"#
            )
        })
        .collect();
    let input = parse_register_input(&format!(
        r#"{{"family":"f","containerDefinitions":[{}]}}"#,
        defs.join(",")
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    TaskAssignment {
        task_arn: format!("arn:orca:ecs:r:1:task/default/{id}"),
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

fn exit(code: i32) -> ContainerExit {
    ContainerExit {
        exit_code: code,
        oom_killed: false,
        exited_at: SystemTime::UNIX_EPOCH,
    }
}

fn observed(task: &str, index: usize, name: &str, state: ProcessState) -> (String, Observed) {
    (
        format!("{task}-{index}-{name}"),
        Observed {
            task_id: Some(task.to_string()),
            task_arn: Some(format!("arn:orca:ecs:r:1:task/default/{task}")),
            name: name.to_string(),
            index: Some(index),
            stop_timeout: Some(Duration::from_secs(7)),
            image: format!("img/{name}"),
            state,
            starts: 1,
            started_at: None,
        },
    )
}

fn network(task: &str) -> TaskNetwork {
    TaskNetwork {
        task_id: task.to_string(),
        netns_path: PathBuf::from(format!("/run/netns/n-{task}")),
        ip: Ipv4Addr::new(198, 19, 0, 2),
        prefix_len: 24,
        gateway: Ipv4Addr::new(198, 19, 0, 1),
        mac_address: "0a:58:c6:13:00:02".into(),
        host_veth: "orcax".into(),
        loopback_only: false,
        endpoints: Vec::new(),
    }
}

fn image(name: &str) -> ImageInfo {
    ImageInfo {
        reference: format!("img/{name}"),
        digest: format!("sha256:{name}"),
        config: ImageConfig {
            cmd: vec!["sh".into()],
            ..ImageConfig::default()
        },
    }
}

/// Memory of a task whose network is up, whose images are pulled and
/// whose volumes and files are made.
fn ready(names: &[&str], task: &str) -> TaskMemory {
    TaskMemory {
        network: Some(network(task)),
        mounts: Some(BTreeMap::new()),
        images: names
            .iter()
            .enumerate()
            .map(|(i, n)| (i, image(n)))
            .collect(),
        ..TaskMemory::default()
    }
}

fn final_report(task: &str, code: i32) -> TaskStateReport {
    TaskStateReport {
        task_arn: format!("arn:orca:ecs:r:1:task/default/{task}"),
        last_status: TaskStatus::Stopped,
        containers: vec![orca_core::agent_protocol::ContainerStateReport {
            name: "app".into(),
            last_status: orca_core::task::ContainerStatus::Stopped,
            exit_code: Some(code),
            reason: None,
            runtime_id: Some(format!("{task}-0-app")),
            image_digest: None,
            health_status: Default::default(),
            health_output: None,
            health_exit_code: None,
            restart_count: 0,
        }],
        network: None,
        pull_started_at: None,
        pull_stopped_at: None,
        started_at: None,
        stopping_at: None,
        execution_stopped_at: None,
        stopped_at: Some(Timestamp(9)),
        stop_code: Some(StopCode::EssentialContainerExited),
        stopped_reason: None,
        health_status: Default::default(),
    }
}

/// One line per action, short enough to read in a table.
fn line(a: &Action) -> String {
    match a {
        Action::SetupNetwork { task_id, request } => match request {
            NetworkRequest::Task => format!("network {task_id}"),
            NetworkRequest::Loopback => format!("network {task_id} loopback"),
            NetworkRequest::Bridge {
                containers,
                published,
            } => {
                let ports: Vec<String> = published
                    .iter()
                    .map(|p| format!("{}:{}->{}", p.container, p.host_port, p.container_port))
                    .collect();
                format!(
                    "network {task_id} bridge {} {}",
                    containers.join(","),
                    ports.join(",")
                )
            }
        },
        Action::Pull {
            task_id,
            index,
            image,
        } => format!("pull {task_id}/{index} {image}"),
        Action::CancelPulls { task_id } => format!("cancel-pulls {task_id}"),
        Action::Create { spec, .. } => format!("create {}", spec.id),
        Action::Start { id, .. } => format!("start {id}"),
        Action::Signal { id, signal, .. } => format!("signal {id} {signal:?}"),
        Action::Reap { id, .. } => format!("reap {id}"),
        Action::Remove { id, .. } => format!("remove {id}"),
        Action::RecordFinished { task_id, report } => {
            let exits: Vec<String> = report
                .containers
                .iter()
                .map(|c| {
                    format!(
                        "{}={}",
                        c.name,
                        c.exit_code.map_or("-".into(), |e| e.to_string())
                    )
                })
                .collect();
            format!(
                "record {task_id} {:?} {}",
                report.stop_code,
                exits.join(",")
            )
        }
        Action::TeardownNetwork { task_id } => format!("teardown {task_id}"),
        Action::PrepareTask { task_id, setup } => match setup {
            Ok(s) => format!(
                "prepare {task_id} dirs={} files={}",
                s.task_dirs.len(),
                s.files.len()
            ),
            Err(e) => format!("prepare {task_id} refused: {}", e.reason()),
        },
        Action::RemoveTaskFiles { task_id } => format!("remove-files {task_id}"),
        Action::Report(r) => format!(
            "report {} {}",
            r.task_arn.rsplit('/').next().unwrap_or_default(),
            r.last_status.name()
        ),
        Action::DecideStop { task_id, code, .. } => format!("stop {task_id} {code:?}"),
        Action::Forget { task_id } => format!("forget {task_id}"),
    }
}

struct Case {
    name: &'static str,
    world: World,
    expected: &'static str,
}

fn world(
    assigned: Vec<TaskAssignment>,
    containers: Vec<(String, Observed)>,
    networks: &[&str],
    finished: Vec<(&str, TaskStateReport)>,
    tasks: Vec<(&str, TaskMemory)>,
) -> World {
    World {
        assignments: Some(
            assigned
                .into_iter()
                .map(|a| (a.task_id.clone(), a))
                .collect(),
        ),
        containers: containers.into_iter().collect(),
        networks: networks.iter().map(|s| s.to_string()).collect(),
        task_dirs: BTreeSet::new(),
        finished: finished
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        tasks: tasks.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
    }
}

fn check(cases: Vec<Case>, now: Instant) {
    let mut failures = Vec::new();
    for case in cases {
        let plan = reconcile(&case.world, &settings(), now, Timestamp(1));
        let got: Vec<String> = plan.actions.iter().map(line).collect();
        let expected: Vec<&str> = case
            .expected
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect();
        if got != expected {
            failures.push(format!(
                "{}:\n  expected {expected:#?}\n  got {got:#?}",
                case.name
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

use TaskStatus::{Running as RUN, Stopped as STOP};

#[test]
fn the_task_lifecycle_step_by_step() {
    let now = Instant::now();
    let t = "t1";
    let one = |d| assignment(t, d, &["app"]);
    let running = ProcessState::Running { pid: 42 };
    let cases = vec![
        Case {
            name: "nothing is decided before the first assignments",
            world: World {
                containers: [observed(t, 0, "app", running.clone())].into(),
                ..World::default()
            },
            expected: "",
        },
        Case {
            name: "a new task: network and pulls at once",
            world: world(vec![one(RUN)], vec![], &[], vec![], vec![]),
            expected: "network t1
                       pull t1/0 img/app
                       report t1 PROVISIONING",
        },
        Case {
            name: "network and image ready: create",
            world: world(vec![one(RUN)], vec![], &[t], vec![], vec![(t, ready(&["app"], t))]),
            expected: "create t1-0-app
                       report t1 PENDING",
        },
        Case {
            name: "created, never started: start it",
            world: world(
                vec![one(RUN)],
                vec![observed(t, 0, "app", ProcessState::NotStarted)],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "start t1-0-app
                       report t1 PENDING",
        },
        Case {
            name: "running: nothing to do but report",
            world: world(
                vec![one(RUN)],
                vec![observed(t, 0, "app", running.clone())],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "report t1 RUNNING",
        },
        Case {
            name: "created, never started, and stopped meanwhile: never started, recorded without an exit code",
            world: world(
                vec![one(STOP)],
                vec![observed(t, 0, "app", ProcessState::NotStarted)],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 UserInitiated
                       report t1 DEPROVISIONING
                       record t1 Some(UserInitiated) app=-",
        },
        Case {
            name: "running and stopped: SIGTERM",
            world: world(
                vec![one(STOP)],
                vec![observed(t, 0, "app", running.clone())],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 UserInitiated
                       signal t1-0-app Term
                       report t1 STOPPING",
        },
        Case {
            name: "an essential container exited: stop, make its exit final",
            world: world(
                vec![one(RUN)],
                vec![observed(t, 0, "app", ProcessState::Exited { exit: exit(3), recorded: false })],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 EssentialContainerExited
                       reap t1-0-app
                       report t1 STOPPING",
        },
        Case {
            name: "every exit final: the final report is recorded before anything is removed",
            world: world(
                vec![one(RUN)],
                vec![observed(t, 0, "app", ProcessState::Exited { exit: exit(3), recorded: true })],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 EssentialContainerExited
                       report t1 DEPROVISIONING
                       record t1 Some(EssentialContainerExited) app=3",
        },
        Case {
            name: "ended here before (final report on disk), still assigned RUNNING: never run again, cleaned up",
            world: world(
                vec![one(RUN)],
                vec![observed(t, 0, "app", ProcessState::Exited { exit: exit(3), recorded: true })],
                &[t],
                vec![(t, final_report(t, 3))],
                vec![],
            ),
            expected: "remove t1-0-app",
        },
        Case {
            name: "containers gone: the network goes next",
            world: world(vec![one(RUN)], vec![], &[t], vec![(t, final_report(t, 3))], vec![]),
            expected: "teardown t1",
        },
        Case {
            name: "everything gone: the final report goes up",
            world: world(vec![one(RUN)], vec![], &[], vec![(t, final_report(t, 3))], vec![]),
            expected: "report t1 STOPPED",
        },
        Case {
            name: "no longer assigned: forgotten",
            world: world(vec![], vec![], &[], vec![(t, final_report(t, 3))], vec![]),
            expected: "report t1 STOPPED
                       forget t1",
        },
    ];
    check(cases, now);
}

#[test]
fn stops_at_every_stage_and_leftovers() {
    let now = Instant::now();
    let t = "t1";
    let running = ProcessState::Running { pid: 42 };
    let pulling = TaskMemory {
        in_flight: BTreeSet::from([Op::Pull(0), Op::Network]),
        ..TaskMemory::default()
    };
    let creating = TaskMemory {
        in_flight: BTreeSet::from([Op::Container("t1-0-app".into())]),
        ..ready(&["app"], t)
    };
    let termed = |ago: u64| TaskMemory {
        term_sent: BTreeMap::from([("t1-0-app".to_string(), now - Duration::from_secs(ago))]),
        stop: Some((StopCode::UserInitiated, "asked".into())),
        ..ready(&["app"], t)
    };
    let cases = vec![
        Case {
            name: "stopped while the network is set up and images pulled: pulls abandoned, the network waited for",
            world: world(vec![assignment(t, STOP, &["app"])], vec![], &[], vec![], vec![(t, pulling)]),
            expected: "stop t1 UserInitiated
                       cancel-pulls t1
                       report t1 STOPPING",
        },
        Case {
            name: "stopped while a container is created: waited for",
            world: world(vec![assignment(t, STOP, &["app"])], vec![], &[t], vec![], vec![(t, creating)]),
            expected: "stop t1 UserInitiated
                       report t1 STOPPING",
        },
        Case {
            name: "SIGTERM sent 3 s ago, stopTimeout 5 s: wait",
            world: world(
                vec![assignment(t, STOP, &["app"])],
                vec![observed(t, 0, "app", running.clone())],
                &[t],
                vec![],
                vec![(t, termed(3))],
            ),
            expected: "report t1 STOPPING",
        },
        Case {
            name: "stopTimeout passed: SIGKILL",
            world: world(
                vec![assignment(t, STOP, &["app"])],
                vec![observed(t, 0, "app", running.clone())],
                &[t],
                vec![],
                vec![(t, termed(6))],
            ),
            expected: "signal t1-0-app Kill
                       report t1 STOPPING",
        },
        Case {
            name: "a container of a task the controller forgot (lost while the agent was down): stopped with its labelled timeout",
            world: world(vec![], vec![observed(t, 0, "app", running.clone())], &[t], vec![], vec![]),
            expected: "signal t1-0-app Term
                       report t1 STOPPING",
        },
        Case {
            name: "its exit known: recorded (and reported) though unassigned",
            world: world(
                vec![],
                vec![observed(t, 0, "app", ProcessState::Exited { exit: exit(143), recorded: true })],
                &[t],
                vec![],
                vec![],
            ),
            expected: "report t1 DEPROVISIONING
                       record t1 None app=143",
        },
        Case {
            name: "a namespace nothing names: torn down",
            world: world(vec![], vec![], &["stray"], vec![], vec![]),
            expected: "teardown stray",
        },
        Case {
            name: "a lost essential container: the task stops, no exit code made up",
            world: world(
                vec![assignment(t, RUN, &["app"])],
                vec![observed(t, 0, "app", ProcessState::Lost)],
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 EssentialContainerExited
                       report t1 DEPROVISIONING
                       record t1 Some(EssentialContainerExited) app=-",
        },
        Case {
            name: "looks lost while its start is in flight (replacing a never-started task): not stopped for it",
            world: world(
                vec![assignment(t, RUN, &["app"])],
                vec![observed(t, 0, "app", ProcessState::Lost)],
                &[t],
                vec![],
                vec![(t, {
                    let mut m = ready(&["app"], t);
                    m.in_flight.insert(Op::Container("t1-0-app".to_string()));
                    m
                })],
            ),
            expected: "report t1 RUNNING",
        },
        Case {
            name: "an unrecorded exit seen while its start is in flight (the replaced task's): not stopped for it",
            world: world(
                vec![assignment(t, RUN, &["app"])],
                vec![observed(
                    t,
                    0,
                    "app",
                    ProcessState::Exited {
                        exit: exit(137),
                        recorded: false,
                    },
                )],
                &[t],
                vec![],
                vec![(t, {
                    let mut m = ready(&["app"], t);
                    m.in_flight.insert(Op::Container("t1-0-app".to_string()));
                    m
                })],
            ),
            expected: "report t1 RUNNING",
        },
        Case {
            name: "dependsOn SUCCESS: the app waits for init; a non-essential exit is made final",
            world: world(
                vec![assignment(t, RUN, &["init:optional", "app:essential:init"])],
                vec![
                    observed(t, 0, "init", running.clone()),
                    observed(t, 1, "app", ProcessState::NotStarted),
                ],
                &[t],
                vec![],
                vec![(t, ready(&["init", "app"], t))],
            ),
            expected: "report t1 PENDING",
        },
        Case {
            name: "init exited 0: made final, and the app starts",
            world: world(
                vec![assignment(t, RUN, &["init:optional", "app:essential:init"])],
                vec![
                    observed(t, 0, "init", ProcessState::Exited { exit: exit(0), recorded: false }),
                    observed(t, 1, "app", ProcessState::NotStarted),
                ],
                &[t],
                vec![],
                vec![(t, ready(&["init", "app"], t))],
            ),
            expected: "start t1-1-app
                       reap t1-0-init
                       report t1 PENDING",
        },
        Case {
            name: "init exited 1: SUCCESS can never hold",
            world: world(
                vec![assignment(t, RUN, &["init:optional", "app:essential:init"])],
                vec![
                    observed(t, 0, "init", ProcessState::Exited { exit: exit(1), recorded: true }),
                    observed(t, 1, "app", ProcessState::NotStarted),
                ],
                &[t],
                vec![],
                vec![(t, ready(&["init", "app"], t))],
            ),
            expected: "stop t1 TaskFailedToStart
                       report t1 PENDING",
        },
    ];
    check(cases, now);
}

#[test]
fn a_failed_operation_backs_off_and_wakes_the_loop() {
    let now = Instant::now();
    let t = "t1";
    let mut m = TaskMemory::default();
    m.retry.insert(
        Op::Network,
        (now + Duration::from_secs(1), Duration::from_secs(1)),
    );
    let w = world(
        vec![assignment(t, RUN, &["app"])],
        vec![],
        &[],
        vec![],
        vec![(t, m)],
    );
    let plan = reconcile(&w, &settings(), now, Timestamp(1));
    let got: Vec<String> = plan.actions.iter().map(line).collect();
    assert_eq!(got, ["pull t1/0 img/app", "report t1 PROVISIONING"]);
    assert_eq!(plan.wake_at, Some(now + Duration::from_secs(1)));
}

#[test]
fn completions_move_the_world_forward_never_back() {
    let now = Instant::now();
    let t = "t1";
    let mut w = world(
        vec![assignment(t, RUN, &["app"])],
        vec![observed(
            t,
            0,
            "app",
            ProcessState::Exited {
                exit: exit(3),
                recorded: false,
            },
        )],
        &[t],
        vec![],
        vec![(t, ready(&["app"], t))],
    );
    // A start's result after a relist saw an unrecorded exit: the start
    // made the process now running (the exit seen may be the replaced
    // never-started task's, killed and deleted by the start itself); a
    // real exit of the new process shows again at the next relist.
    w.memory(t)
        .in_flight
        .insert(Op::Container("t1-0-app".into()));
    w.complete(
        Completion::Started {
            task_id: t.into(),
            id: "t1-0-app".into(),
            result: Ok(7),
        },
        now,
        Timestamp(1),
    );
    assert_eq!(
        w.containers["t1-0-app"].state,
        ProcessState::Running { pid: 7 }
    );
    // Started already by an agent process that died mid-start: not a
    // failure, and not "never started" either until a relist says.
    let mut v = world(
        vec![assignment(t, STOP, &["app"])],
        vec![observed(t, 0, "app", ProcessState::NotStarted)],
        &[t],
        vec![],
        vec![(t, ready(&["app"], t))],
    );
    v.memory(t)
        .in_flight
        .insert(Op::Container("t1-0-app".into()));
    v.complete(
        Completion::Started {
            task_id: t.into(),
            id: "t1-0-app".into(),
            result: Err(orca_runtime::RuntimeError::AlreadyStarted {
                id: "t1-0-app".into(),
            }),
        },
        now,
        Timestamp(1),
    );
    assert!(v.tasks[t].stop.is_none(), "not a failure to start");
    let plan = reconcile(&v, &settings(), now, Timestamp(1));
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::RecordFinished { .. })),
        "no final report before its exit is known: {:?}",
        plan.actions
    );
    // containerd unreachable: nothing concluded, retried after a pause.
    w.memory(t)
        .in_flight
        .insert(Op::Container("t1-0-app".into()));
    w.complete(
        Completion::Reaped {
            task_id: t.into(),
            id: "t1-0-app".into(),
            result: Err(orca_runtime::RuntimeError::Unavailable("down".into())),
        },
        now,
        Timestamp(1),
    );
    assert!(w.tasks[t].stop.is_none());
    assert!(!w.tasks[t].ready(&Op::Container("t1-0-app".into()), now));
    // A pull that fails for real ends the task as ECS says.
    w.memory(t).in_flight.insert(Op::Pull(0));
    w.complete(
        Completion::Pulled {
            task_id: t.into(),
            index: 0,
            result: Err(orca_runtime::RuntimeError::Pull {
                reference: "img/app".into(),
                message: "manifest unknown".into(),
            }),
        },
        now,
        Timestamp(1),
    );
    let (code, reason) = w.tasks[t].stop.clone().expect("a stop decision");
    assert_eq!(code, StopCode::TaskFailedToStart);
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");
    assert_eq!(
        w.tasks[t].container_reasons.get("app").map(String::as_str),
        Some(reason.as_str())
    );
    // Signals dispatched are remembered with their time.
    w.dispatched(
        &Action::Signal {
            task_id: t.into(),
            id: "t1-0-app".into(),
            signal: StopSignal::Term,
        },
        now,
        Timestamp(1),
    );
    assert_eq!(w.tasks[t].term_sent.get("t1-0-app"), Some(&now));
}

/// The task definition (revision 1) that `input` registers.
fn definition(input: impl AsRef<str>) -> TaskDefinition {
    let input = parse_register_input(input.as_ref()).unwrap_or_else(|e| panic!("{e}"));
    TaskDefinition::new(input.spec, "arn:td".into(), 1, Timestamp(0), "t".into())
}

/// A task of one container `app` with the given volumes and mount points.
fn with_volumes(id: &str, volumes: &str, mount_points: &str) -> TaskAssignment {
    let mut a = assignment(id, RUN, &["app"]);
    a.task_definition = definition(format!(
        r#"{{"family":"f","volumes":{volumes},"containerDefinitions":[
            {{"name":"app","image":"img/app","memory":32,"mountPoints":{mount_points}}}]}}"#
    ));
    a
}

#[test]
fn volumes_are_made_before_create_and_removed_before_the_network() {
    let now = Instant::now();
    let t = "t1";
    let unprepared = TaskMemory {
        mounts: None,
        ..ready(&["app"], t)
    };
    let scratch = with_volumes(
        t,
        r#"[{"name":"scratch"}]"#,
        r#"[{"sourceVolume":"scratch","containerPath":"/s"}]"#,
    );
    let outside = with_volumes(
        t,
        r#"[{"name":"h","host":{"sourcePath":"/etc"}}]"#,
        r#"[{"sourceVolume":"h","containerPath":"/h"}]"#,
    );
    let mut stray = world(vec![], vec![], &[], vec![], vec![]);
    stray.task_dirs.insert("t9".into());
    let mut finished = world(
        vec![assignment(t, RUN, &["app"])],
        vec![],
        &[t],
        vec![(t, final_report(t, 0))],
        vec![],
    );
    finished.task_dirs.insert(t.into());
    let cases = vec![
        Case {
            name: "network and image ready: volumes and /etc files first, no create yet",
            world: world(vec![scratch.clone()], vec![], &[t], vec![], vec![(t, unprepared.clone())]),
            expected: "prepare t1 dirs=1 files=3
                       report t1 PENDING",
        },
        Case {
            name: "no network yet: nothing prepared (/etc/hosts names the task's address)",
            world: world(vec![scratch], vec![], &[], vec![], vec![]),
            expected: "network t1
                       pull t1/0 img/app
                       report t1 PROVISIONING",
        },
        Case {
            name: "a host path outside the allow-list: refused through the executor",
            world: world(vec![outside], vec![], &[t], vec![], vec![(t, unprepared.clone())]),
            expected: "prepare t1 refused: CannotCreateVolumeError: volume h: host path /etc is not under the agent's host_volume_paths (/srv)
                       report t1 PENDING",
        },
        Case {
            name: "all containers exist (an agent restart): nothing to prepare",
            world: world(
                vec![assignment(t, RUN, &["app"])],
                vec![observed(t, 0, "app", ProcessState::Running { pid: 4 })],
                &[t],
                vec![],
                vec![(t, unprepared)],
            ),
            expected: "report t1 RUNNING",
        },
        Case {
            name: "containers gone: the task's volumes and files go before the network",
            world: finished,
            expected: "remove-files t1",
        },
        Case {
            name: "a stray task directory is removed, then forgotten",
            world: stray,
            expected: "remove-files t9",
        },
    ];
    check(cases, now);
}

#[test]
fn a_volume_that_cannot_be_made_fails_the_task_with_its_reason() {
    let now = Instant::now();
    let t = "t1";
    let mut w = world(
        vec![assignment(t, RUN, &["app"])],
        vec![],
        &[t],
        vec![],
        vec![(
            t,
            TaskMemory {
                mounts: None,
                ..ready(&["app"], t)
            },
        )],
    );
    let refused = crate::volumes::VolumeError::SharedMissing {
        volume: "cache".into(),
    };
    let action = Action::PrepareTask {
        task_id: t.into(),
        setup: Err(refused.clone()),
    };
    w.dispatched(&action, now, Timestamp(1));
    w.complete(
        Completion::Prepared {
            task_id: t.into(),
            result: Err(refused),
        },
        now,
        Timestamp(1),
    );
    let plan = reconcile(&w, &settings(), now, Timestamp(1));
    let record = plan.actions.iter().find_map(|a| match a {
        Action::RecordFinished { report, .. } => Some(report.clone()),
        _ => None,
    });
    let Some(report) = record else {
        panic!(
            "no final report: {:?}",
            plan.actions.iter().map(line).collect::<Vec<_>>()
        )
    };
    let reason = "CannotCreateVolumeError: volume cache: shared volume does not exist and autoprovision is not set";
    assert_eq!(report.stop_code, Some(StopCode::TaskFailedToStart));
    assert_eq!(report.containers[0].reason.as_deref(), Some(reason));
    assert!(w.task_dirs.contains(t), "whatever was made is cleaned up");

    // Once the final report is on disk: the files go, then the network.
    w.finished.insert(t.into(), *report);
    let got: Vec<String> = reconcile(&w, &settings(), now, Timestamp(1))
        .actions
        .iter()
        .map(line)
        .collect();
    assert_eq!(got, ["remove-files t1"]);
    w.dispatched(
        &Action::RemoveTaskFiles { task_id: t.into() },
        now,
        Timestamp(1),
    );
    w.complete(
        Completion::FilesRemoved {
            task_id: t.into(),
            result: Ok(()),
        },
        now,
        Timestamp(1),
    );
    let got: Vec<String> = reconcile(&w, &settings(), now, Timestamp(1))
        .actions
        .iter()
        .map(line)
        .collect();
    assert_eq!(got, ["teardown t1"]);
}

#[test]
fn a_discoverable_task_deactivates_for_its_delay_before_any_sigterm() {
    let now = Instant::now();
    let t = "t1";
    let running = ProcessState::Running { pid: 42 };
    let delayed = |desired| TaskAssignment {
        deregistration_delay_ms: Some(5_000),
        secrets: Vec::new(),
        secrets_error: None,
        privileges_allowed: false,
        ..assignment(t, desired, &["app"])
    };
    let decided = |ago: u64| TaskMemory {
        stop: Some((StopCode::UserInitiated, "asked".into())),
        stop_decided_at: Some(now - Duration::from_secs(ago)),
        ..ready(&["app"], t)
    };
    let up = || vec![observed(t, 0, "app", running.clone())];
    let cases = vec![
        Case {
            name: "asked to stop with a delay: DEACTIVATING, no signal yet",
            world: world(
                vec![delayed(STOP)],
                up(),
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 UserInitiated
                       report t1 DEACTIVATING",
        },
        Case {
            name: "inside the delay: still no signal",
            world: world(
                vec![delayed(STOP)],
                up(),
                &[t],
                vec![],
                vec![(t, decided(4))],
            ),
            expected: "report t1 DEACTIVATING",
        },
        Case {
            name: "the delay has passed: SIGTERM",
            world: world(
                vec![delayed(STOP)],
                up(),
                &[t],
                vec![],
                vec![(t, decided(5))],
            ),
            expected: "signal t1-0-app Term
                       report t1 STOPPING",
        },
        Case {
            name: "no delay: SIGTERM at once",
            world: world(
                vec![assignment(t, STOP, &["app"])],
                up(),
                &[t],
                vec![],
                vec![(t, ready(&["app"], t))],
            ),
            expected: "stop t1 UserInitiated
                       signal t1-0-app Term
                       report t1 STOPPING",
        },
        Case {
            name: "an essential container exited: no wait for the others",
            world: world(
                vec![TaskAssignment {
                    deregistration_delay_ms: Some(5_000),
                    secrets: Vec::new(),
                    secrets_error: None,
                    privileges_allowed: false,
                    ..assignment(t, RUN, &["app", "side:optional"])
                }],
                vec![
                    observed(
                        t,
                        0,
                        "app",
                        ProcessState::Exited {
                            exit: exit(3),
                            recorded: false,
                        },
                    ),
                    observed(t, 1, "side", running.clone()),
                ],
                &[t],
                vec![],
                vec![(t, ready(&["app", "side"], t))],
            ),
            expected: "stop t1 EssentialContainerExited
                       reap t1-0-app
                       signal t1-1-side Term
                       report t1 STOPPING",
        },
    ];
    check(cases, now);
    // The step wakes itself when the delay runs out.
    let w = world(
        vec![delayed(STOP)],
        up(),
        &[t],
        vec![],
        vec![(t, decided(1))],
    );
    let plan = reconcile(&w, &settings(), now, Timestamp(1));
    assert_eq!(plan.wake_at, Some(now + Duration::from_secs(4)));
    // A decision dispatched now starts the wait now.
    let mut w = world(
        vec![delayed(STOP)],
        up(),
        &[t],
        vec![],
        vec![(t, ready(&["app"], t))],
    );
    for action in reconcile(&w, &settings(), now, Timestamp(1)).actions {
        w.dispatched(&action, now, Timestamp(1));
    }
    let later = now + Duration::from_secs(5);
    let got: Vec<String> = reconcile(&w, &settings(), later, Timestamp(2))
        .actions
        .iter()
        .map(line)
        .collect();
    assert_eq!(got, vec!["signal t1-0-app Term", "report t1 STOPPING"]);
}

/// A task of one container `app` in network mode `mode`.
fn in_mode(id: &str, mode: &str) -> TaskAssignment {
    let mut a = assignment(id, RUN, &["app"]);
    a.task_definition = definition(format!(
        r#"{{"family":"f","networkMode":"{mode}","containerDefinitions":[
            {{"name":"app","image":"img/app","memory":32}}]}}"#
    ));
    a
}

/// A bridge-mode task of two containers with the host ports the leader
/// chose (one static, one dynamic).
fn bridge_task(id: &str) -> TaskAssignment {
    let mut a = assignment(id, RUN, &["app", "side"]);
    a.task_definition = definition(
        r#"{"family":"f","networkMode":"bridge","containerDefinitions":[
            {"name":"app","image":"img/app","memory":32,
             "portMappings":[{"containerPort":80,"hostPort":8080}]},
            {"name":"side","image":"img/side","memory":32,
             "portMappings":[{"containerPort":53}]}]}"#,
    );
    a.host_ports = vec![
        HostPortBinding {
            container_name: "app".into(),
            container_port: 80,
            host_port: 8080,
            protocol: TransportProtocol::Tcp,
        },
        HostPortBinding {
            container_name: "side".into(),
            container_port: 53,
            host_port: 32768,
            protocol: TransportProtocol::Tcp,
        },
    ];
    a
}

#[test]
fn a_host_mode_task_gets_no_namespace_and_shares_the_nodes_network() {
    let now = Instant::now();
    let t = "t1";
    let pulled = TaskMemory {
        network: None,
        ..ready(&["app"], t)
    };
    let cases = vec![
        Case {
            name: "a new host-mode task: pulls only, no network setup",
            world: world(vec![in_mode(t, "host")], vec![], &[], vec![], vec![]),
            expected: "pull t1/0 img/app
                       prepare t1 dirs=0 files=3
                       report t1 PENDING",
        },
        Case {
            name: "image and files ready: created without a namespace",
            world: world(
                vec![in_mode(t, "host")],
                vec![],
                &[],
                vec![],
                vec![(t, pulled.clone())],
            ),
            expected: "create t1-0-app
                       report t1 PENDING",
        },
        Case {
            name: "a none-mode task: a namespace with loopback only",
            world: world(vec![in_mode(t, "none")], vec![], &[], vec![], vec![]),
            expected: "network t1 loopback
                       pull t1/0 img/app
                       report t1 PROVISIONING",
        },
        Case {
            name: "the same in awsvpc waits for its network",
            world: world(
                vec![in_mode(t, "awsvpc")],
                vec![],
                &[],
                vec![],
                vec![(t, pulled.clone())],
            ),
            expected: "network t1
                       report t1 PROVISIONING",
        },
        Case {
            name: "a bridge-mode task: a namespace per container, with its host ports",
            world: world(vec![bridge_task(t)], vec![], &[], vec![], vec![]),
            expected: "network t1 bridge app,side app:8080->80,side:32768->53
                       pull t1/0 img/app
                       pull t1/1 img/side
                       report t1 PROVISIONING",
        },
    ];
    check(cases, now);
    let w = world(
        vec![in_mode(t, "host")],
        vec![],
        &[],
        vec![],
        vec![(t, pulled)],
    );
    let plan = reconcile(&w, &settings(), now, Timestamp(1));
    let created = plan.actions.iter().find_map(|a| match a {
        Action::Create { spec, .. } => Some(spec.netns_path.clone()),
        _ => None,
    });
    assert_eq!(
        created,
        Some(None),
        "joins no namespace: {:?}",
        plan.actions
    );
}

/// A running task whose one container has a restartPolicy (period 300 s
/// by default, exit code 7 ignored).
fn with_restart_policy(id: &str) -> TaskAssignment {
    let mut a = assignment(id, RUN, &["app"]);
    a.task_definition = definition(
        r#"{"family":"f","containerDefinitions":[
            {"name":"app","image":"img/app","memory":32,
             "restartPolicy":{"enabled":true,"ignoredExitCodes":[7]}}]}"#,
    );
    a
}

/// `app`'s run of `ran_secs` that ended with `code`.
fn ended_run(task: &str, code: i32, ran_secs: u64, recorded: bool) -> (String, Observed) {
    let end = SystemTime::UNIX_EPOCH + Duration::from_secs(10_000);
    let (id, mut o) = observed(
        task,
        0,
        "app",
        ProcessState::Exited {
            exit: ContainerExit {
                exit_code: code,
                oom_killed: false,
                exited_at: end,
            },
            recorded,
        },
    );
    o.started_at = Some(end - Duration::from_secs(ran_secs));
    (id, o)
}

#[test]
fn a_restart_policy_restarts_in_place_or_lets_the_exit_stop_the_task() {
    let now = Instant::now();
    let t = "t1";
    let case = |name, observed| Case {
        name,
        world: world(
            vec![with_restart_policy(t)],
            vec![observed],
            &[t],
            vec![],
            vec![(t, ready(&["app"], t))],
        ),
        expected: "",
    };
    let cases = vec![
        Case {
            expected: "start t1-0-app
                       report t1 RUNNING",
            ..case(
                "ran the period, exit recorded: started again",
                ended_run(t, 1, 300, true),
            )
        },
        Case {
            expected: "reap t1-0-app
                       report t1 RUNNING",
            ..case(
                "ran the period, exit not final yet: made final, still RUNNING",
                ended_run(t, 1, 300, false),
            )
        },
        Case {
            expected: "stop t1 EssentialContainerExited
                       report t1 DEPROVISIONING
                       record t1 Some(EssentialContainerExited) app=1",
            ..case(
                "ran less than the period: the essential exit stops the task",
                ended_run(t, 1, 299, true),
            )
        },
        Case {
            expected: "stop t1 EssentialContainerExited
                       report t1 DEPROVISIONING
                       record t1 Some(EssentialContainerExited) app=7",
            ..case(
                "an ignored exit code: the essential exit stops the task",
                ended_run(t, 7, 3000, true),
            )
        },
    ];
    check(cases, now);
}

#[test]
fn a_start_counts_its_run_once_whatever_the_relist_saw() {
    let now = Instant::now();
    let t = "t1";
    let started = |observed: (String, Observed)| {
        let mut w = world(
            vec![with_restart_policy(t)],
            vec![observed],
            &[t],
            vec![],
            vec![(t, ready(&["app"], t))],
        );
        w.memory(t)
            .in_flight
            .insert(Op::Container("t1-0-app".into()));
        w.complete(
            Completion::Started {
                task_id: t.into(),
                id: "t1-0-app".into(),
                result: Ok(7),
            },
            now,
            Timestamp(1),
        );
        let c = &w.containers["t1-0-app"];
        (c.state.clone(), c.starts)
    };
    let running = ProcessState::Running { pid: 7 };
    // A restart of a reaped run (the relist predates the start): one more.
    assert_eq!(started(ended_run(t, 1, 300, true)), (running.clone(), 2));
    // A relist taken while the restart was under way already counted it.
    let (id, mut counted) = observed(t, 0, "app", ProcessState::NotStarted);
    counted.starts = 2;
    assert_eq!(started((id.clone(), counted)), (running.clone(), 2));
    // A first start seen before the runtime counted anything.
    let (_, mut fresh) = observed(t, 0, "app", ProcessState::NotStarted);
    fresh.starts = 0;
    assert_eq!(started((id, fresh)), (running, 1));
}

#[test]
fn a_task_whose_secrets_cannot_be_resolved_never_starts() {
    let now = Instant::now();
    let t = "t1";
    let failing = || {
        let mut a = assignment(t, RUN, &["app"]);
        a.secrets_error = Some("ResourceInitializationError: unable to retrieve secrets: x".into());
        a
    };
    let running = ProcessState::Running { pid: 42 };
    check(
        vec![
            Case {
                name: "nothing made yet: the task stops before it starts",
                world: world(vec![failing()], vec![], &[], vec![], vec![]),
                expected: "stop t1 TaskFailedToStart
                           report t1 DEPROVISIONING
                           record t1 Some(TaskFailedToStart) app=-",
            },
            Case {
                name: "a task already running keeps running",
                world: world(
                    vec![failing()],
                    vec![observed(t, 0, "app", running)],
                    &[t],
                    vec![],
                    vec![(t, ready(&["app"], t))],
                ),
                expected: "report t1 RUNNING",
            },
        ],
        now,
    );
}

#[test]
fn a_task_with_names_unfit_for_paths_or_unallowed_privileges_never_starts() {
    let now = Instant::now();
    let t = "t1";
    let privileged = |allowed: bool| {
        let mut a = assignment(t, RUN, &["app"]);
        a.task_definition.spec.container_definitions[0].privileged = Some(true);
        a.privileges_allowed = allowed;
        a
    };
    let refused = "stop t1 TaskFailedToStart
                   report t1 DEPROVISIONING
                   record t1 Some(TaskFailedToStart) app=-";
    check(
        vec![Case {
            name: "privileged in a cluster that does not allow it",
            world: world(vec![privileged(false)], vec![], &[], vec![], vec![]),
            expected: refused,
        }],
        now,
    );
    // Registration refuses such a name; a faulty leader could still send it.
    let mut bad = assignment(t, RUN, &["app"]);
    bad.task_definition.spec.container_definitions[0].name = "../../etc/cron.d/x".into();
    let plan = reconcile(
        &world(vec![bad], vec![], &[], vec![], vec![]),
        &settings(),
        now,
        Timestamp(1),
    );
    assert!(
        plan.actions.iter().any(|a| matches!(a,
            Action::DecideStop { code: StopCode::TaskFailedToStart, reason, .. }
                if reason.contains("container name \"../../etc/cron.d/x\" is not valid"))),
        "{:?}",
        plan.actions
    );
    assert!(
        !plan
            .actions
            .iter()
            .any(|a| matches!(a, Action::PrepareTask { .. } | Action::Create { .. })),
        "nothing is made of a refused task"
    );
    // Allowed: it goes on to be made.
    let plan = reconcile(
        &world(vec![privileged(true)], vec![], &[], vec![], vec![]),
        &settings(),
        now,
        Timestamp(1),
    );
    assert!(!plan
        .actions
        .iter()
        .any(|a| matches!(a, Action::DecideStop { .. })));
}

#[test]
fn an_assignment_whose_task_id_is_unfit_for_paths_is_never_taken_on() {
    let good = assignment("0123abcd", RUN, &["app"]);
    let mut bad = assignment("t2", RUN, &["app"]);
    bad.task_id = "../../etc".into();
    let taken = crate::runner::admit::by_task_id(vec![good, bad]);
    assert_eq!(taken.keys().collect::<Vec<_>>(), vec!["0123abcd"]);
}

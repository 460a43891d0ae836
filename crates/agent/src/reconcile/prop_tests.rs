//! Invariants of the reconcile step over arbitrary worlds (proptest): what
//! it must never decide, whatever containerd, the disk and the controller
//! say.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use orca_core::agent_protocol::{ContainerStateReport, TaskAssignment, TaskStateReport};
use orca_core::task::{ContainerStatus, TaskOverride, TaskStatus};
use orca_core::task_definition::{parse_register_input, TaskDefinition, Timestamp};
use orca_runtime::{ContainerExit, ProcessState};
use proptest::prelude::*;
use tokio::time::Instant;

use super::*;

const TASKS: [&str; 3] = ["ta", "tb", "tc"];
const NAMES: [&str; 2] = ["app", "side"];

fn assignment(id: &str, desired: TaskStatus) -> TaskAssignment {
    let input = parse_register_input(
        r#"{"family":"f","containerDefinitions":[
            {"name":"app","image":"img/app","memory":32},
            {"name":"side","image":"img/side","memory":32,"essential":false}]}"#,
    )
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
        stop_code: None,
        stopped_reason: None,
        host_ports: Vec::new(),
        deregistration_delay_ms: None,
        secrets: Vec::new(),
        secrets_error: None,
        privileges_allowed: false,
    }
}

fn process_state() -> impl Strategy<Value = Option<ProcessState>> {
    let exit = |code: i32| ContainerExit {
        exit_code: code,
        oom_killed: false,
        exited_at: SystemTime::UNIX_EPOCH,
    };
    prop_oneof![
        Just(None),
        Just(Some(ProcessState::NotStarted)),
        Just(Some(ProcessState::Running { pid: 9 })),
        (0..3i32).prop_map(move |c| Some(ProcessState::Exited {
            exit: exit(c),
            recorded: false
        })),
        (0..3i32).prop_map(move |c| Some(ProcessState::Exited {
            exit: exit(c),
            recorded: true
        })),
        Just(Some(ProcessState::Lost)),
        Just(Some(ProcessState::Unknown)),
    ]
}

/// One task's share of a world.
#[derive(Debug, Clone)]
struct TaskFacts {
    /// None: not assigned; Some(true): desired RUNNING.
    assigned: Option<bool>,
    containers: [Option<ProcessState>; 2],
    network: bool,
    finished: bool,
    in_flight: Vec<u8>,
    remembered_network: bool,
}

fn task_facts() -> impl Strategy<Value = TaskFacts> {
    (
        prop_oneof![Just(None), Just(Some(true)), Just(Some(false))],
        [process_state(), process_state()],
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(0u8..5, 0..3),
        any::<bool>(),
    )
        .prop_map(
            |(assigned, containers, network, finished, in_flight, remembered_network)| TaskFacts {
                assigned,
                containers,
                network,
                finished,
                in_flight,
                remembered_network,
            },
        )
}

fn build(facts: &[TaskFacts]) -> World {
    let mut w = World {
        assignments: Some(BTreeMap::new()),
        ..World::default()
    };
    for (id, f) in TASKS.iter().zip(facts) {
        if let Some(running) = f.assigned {
            let desired = if running {
                TaskStatus::Running
            } else {
                TaskStatus::Stopped
            };
            if let Some(a) = w.assignments.as_mut() {
                a.insert(id.to_string(), assignment(id, desired));
            }
        }
        for (i, (name, state)) in NAMES.iter().zip(&f.containers).enumerate() {
            if let Some(state) = state {
                w.containers.insert(
                    format!("{id}-{i}-{name}"),
                    Observed {
                        task_id: Some(id.to_string()),
                        task_arn: Some(format!("arn:orca:ecs:r:1:task/default/{id}")),
                        name: name.to_string(),
                        index: Some(i),
                        stop_timeout: None,
                        image: format!("img/{name}"),
                        state: state.clone(),
                        starts: 0,
                        started_at: None,
                    },
                );
            }
        }
        if f.network {
            w.networks.insert(id.to_string());
        }
        if f.finished {
            w.finished.insert(
                id.to_string(),
                TaskStateReport {
                    task_arn: format!("arn:orca:ecs:r:1:task/default/{id}"),
                    last_status: TaskStatus::Stopped,
                    containers: vec![ContainerStateReport {
                        name: "app".into(),
                        last_status: ContainerStatus::Stopped,
                        exit_code: Some(0),
                        reason: None,
                        runtime_id: None,
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
                    stopped_at: None,
                    stop_code: None,
                    stopped_reason: None,
                    health_status: Default::default(),
                },
            );
        }
        let m = w.memory(id);
        for op in &f.in_flight {
            m.in_flight.insert(match op {
                0 => Op::Network,
                1 => Op::Pull(0),
                2 => Op::Container(format!("{id}-0-app")),
                3 => Op::Record,
                _ => Op::Teardown,
            });
        }
        if f.remembered_network {
            m.network = Some(orca_net::TaskNetwork {
                task_id: id.to_string(),
                netns_path: PathBuf::from(format!("/run/netns/x-{id}")),
                ip: std::net::Ipv4Addr::new(198, 19, 0, 2),
                prefix_len: 24,
                gateway: std::net::Ipv4Addr::new(198, 19, 0, 1),
                mac_address: String::new(),
                host_veth: String::new(),
                loopback_only: false,
                endpoints: Vec::new(),
            });
        }
    }
    w
}

fn settings() -> Settings {
    Settings {
        default_stop_timeout: Duration::from_secs(30),
        kill_resend: Duration::from_secs(10),
        task_subnet: "198.19.0.0/24".into(),
        logs_dir: PathBuf::from("/logs"),
        volumes: crate::volumes::VolumeSettings::default(),
        max_restart_attempt_period: None,
        pids_limit: None,
        log_rotation: None,
    }
}

fn task_of(id: &str) -> String {
    id.split('-').next().unwrap_or_default().to_string()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn the_step_never_decides_what_it_must_not(facts in proptest::collection::vec(task_facts(), 3)) {
        let w = build(&facts);
        let plan = reconcile(&w, &settings(), Instant::now(), Timestamp(1));
        let state = |cid: &str| w.containers.get(cid).map(|c| c.state.clone());
        let containers_of = |t: &str| -> Vec<&Observed> {
            w.containers.values().filter(|c| c.task_id.as_deref() == Some(t)).collect()
        };
        let busy = |t: &str| w.tasks.get(t).map(|m| m.in_flight.clone()).unwrap_or_default();
        let runs = |t: &str| {
            w.assignments.as_ref().and_then(|a| a.get(t)).is_some_and(|a| a.desired_status == TaskStatus::Running)
                && !w.finished.contains_key(t)
        };
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for action in &plan.actions {
            match action {
                Action::Start { task_id, id } => {
                    // A container starts at most once: only one that never did.
                    prop_assert_eq!(state(id), Some(ProcessState::NotStarted), "{:?}", action);
                    prop_assert!(runs(task_id), "{:?}", action);
                }
                Action::Create { task_id, spec } => {
                    prop_assert!(runs(task_id), "{:?}", action);
                    prop_assert!(state(&spec.id).is_none(), "{:?}", action);
                }
                Action::Remove { task_id, .. } => {
                    // Only after the final report is on disk.
                    prop_assert!(w.finished.contains_key(task_id), "{:?}", action);
                }
                Action::RecordFinished { task_id, report } => {
                    for c in containers_of(task_id) {
                        let done = matches!(
                            c.state,
                            ProcessState::NotStarted | ProcessState::Lost | ProcessState::Exited { recorded: true, .. }
                        );
                        prop_assert!(done, "recorded while {:?} is {:?}", c.name, c.state);
                    }
                    prop_assert!(busy(task_id).iter().all(|op| matches!(op, Op::Pull(_) | Op::Teardown)), "{:?}", busy(task_id));
                    prop_assert_eq!(report.last_status, TaskStatus::Stopped);
                }
                Action::TeardownNetwork { task_id } => {
                    // The network goes after the containers that used it.
                    prop_assert!(containers_of(task_id).is_empty(), "{:?}", action);
                    prop_assert!(!runs(task_id) || w.finished.contains_key(task_id));
                }
                Action::Report(r) if r.last_status == TaskStatus::Stopped => {
                    let t = task_of(r.task_arn.rsplit('/').next().unwrap_or_default());
                    prop_assert!(containers_of(&t).is_empty() && !w.networks.contains(&t), "{:?}", r);
                }
                Action::Signal { task_id, .. } => {
                    prop_assert!(!runs(task_id) || w.tasks.get(task_id).is_some_and(|m| m.stop.is_some())
                        || containers_of(task_id).iter().any(|c| matches!(c.state, ProcessState::Exited { .. } | ProcessState::Lost)),
                        "{:?}", action);
                }
                _ => {}
            }
            // One action per container or task step at a time.
            let key = match action {
                Action::Start { id, .. } | Action::Reap { id, .. } | Action::Remove { id, .. } | Action::Signal { id, .. } => Some(id.clone()),
                Action::Create { spec, .. } => Some(spec.id.clone()),
                _ => None,
            };
            if let Some(k) = key {
                prop_assert!(seen.insert(k.clone()), "two actions on {}", k);
                prop_assert!(!busy(&task_of(&k)).contains(&Op::Container(k.clone())), "{} is busy", k);
            }
        }
    }
}

//! The placement index `apply` keeps equals the one built from the records,
//! after every command of random sequences: registrations (in an id order
//! unlike their order), re-registrations with other attributes, agents
//! connecting and lost, ACTIVE/DRAINING, deregistration, custom attributes
//! put and deleted, tasks placed in several groups, stopped, reported
//! STOPPED, tasks holding a host port; and after a snapshot's round trip
//! (the host ports each instance's tasks hold are checked the same way).
//! The task index (ListTasks' order, stopped tasks by time) is checked the
//! same way, with stopped tasks purged too.

use orca_core::arn::ArnContext;
use orca_core::task::{StopCode, TaskOverride, TaskStatus};
use orca_core::task_definition::{Attribute, Timestamp};
use proptest::prelude::*;

use super::instance_admin::InstanceAttribute;
use super::instances::InstanceStatus;
use super::task_tests::{registration, report, state_with_definition};
use super::*;

const CLUSTERS: [&str; 2] = ["default", "other"];
/// Ids that do not sort in the order they are first registered.
const IDS: [&str; 8] = ["m4", "c2", "x9", "a1", "k7", "e3", "z0", "g5"];
const NAMES: [&str; 3] = ["zone", "tier", "flag"];
const VALUES: [&str; 3] = ["a", "b", "c"];
const GROUPS: [&str; 3] = ["family:web", "service:api", "g"];

#[derive(Debug, Clone)]
enum Op {
    /// Register (or register again) an instance with these agent
    /// attributes: (name, value; 3 is name-only).
    Register(usize, usize, Vec<(usize, usize)>),
    Connect(usize, bool),
    Put(usize, usize, Option<usize>),
    Delete(usize, usize),
    Drain(usize, bool),
    Deregister(usize, bool),
    Run(usize, usize),
    Stop(usize),
    ReportStopped(usize),
    Lost(usize),
    /// Purge what is due at this time (as the leader's purge loop does).
    Purge(i64),
}

fn op() -> impl Strategy<Value = Op> {
    let i = 0..IDS.len();
    prop_oneof![
        3 => (i.clone(), 0..2usize, proptest::collection::vec((0..3usize, 0..4usize), 0..4))
            .prop_map(|(i, c, a)| Op::Register(i, c, a)),
        2 => (i.clone(), any::<bool>()).prop_map(|(i, b)| Op::Connect(i, b)),
        2 => (i.clone(), 0..3usize, proptest::option::of(0..3usize))
            .prop_map(|(i, n, v)| Op::Put(i, n, v)),
        1 => (i.clone(), 0..3usize).prop_map(|(i, n)| Op::Delete(i, n)),
        1 => (i.clone(), any::<bool>()).prop_map(|(i, b)| Op::Drain(i, b)),
        1 => (i.clone(), any::<bool>()).prop_map(|(i, b)| Op::Deregister(i, b)),
        4 => (i.clone(), 0..GROUPS.len()).prop_map(|(i, g)| Op::Run(i, g)),
        2 => (0..40usize).prop_map(Op::Stop),
        2 => (0..40usize).prop_map(Op::ReportStopped),
        1 => i.prop_map(Op::Lost),
        1 => (0..40i64).prop_map(Op::Purge),
    ]
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        target_type: None,
        target_id: None,
    }
}

/// The commands an op stands for (refusals are fine: the index must
/// follow whatever `apply` did).
fn commands(s: &ClusterState, op: &Op, next_task: &mut usize) -> Vec<Command> {
    let cluster_of = |i: usize| {
        s.instances
            .get(IDS[i])
            .map_or("default".to_string(), |r| r.cluster.clone())
    };
    let attr = |i: usize, name: usize, value: Option<usize>| InstanceAttribute {
        instance_id: IDS[i].to_string(),
        name: NAMES[name].to_string(),
        value: value.map(|v| VALUES[v].to_string()),
    };
    match op {
        Op::Register(i, c, attributes) => {
            let mut r = registration(None, None);
            r.cluster = CLUSTERS[*c].to_string();
            r.attributes = attributes
                .iter()
                .map(|&(n, v)| attribute(NAMES[n], VALUES.get(v).copied()))
                .collect();
            vec![Command::RegisterContainerInstance {
                instance_id: IDS[*i].to_string(),
                registration: r,
                at: Timestamp(1),
            }]
        }
        Op::Connect(i, connected) => vec![Command::SetAgentConnected {
            instance_id: IDS[*i].to_string(),
            connected: *connected,
            decided_in_term: 1,
        }],
        Op::Put(i, n, v) => vec![Command::PutAttributes {
            cluster: cluster_of(*i),
            attributes: vec![attr(*i, *n, *v)],
        }],
        Op::Delete(i, n) => vec![Command::DeleteAttributes {
            cluster: cluster_of(*i),
            attributes: vec![attr(*i, *n, None)],
        }],
        Op::Drain(i, drain) => vec![Command::SetInstancesStatus {
            cluster: cluster_of(*i),
            instance_ids: vec![IDS[*i].to_string()],
            status: if *drain {
                InstanceStatus::Draining
            } else {
                InstanceStatus::Active
            },
        }],
        Op::Deregister(i, force) => vec![Command::DeregisterContainerInstance {
            cluster: cluster_of(*i),
            instance_id: IDS[*i].to_string(),
            force: *force,
            at: Timestamp(5),
        }],
        Op::Run(i, g) => {
            *next_task += 1;
            let task_id = format!("t{next_task:03}");
            vec![Command::RunTask(Box::new(RunTaskCommand {
                cluster: cluster_of(*i),
                family: "web".to_string(),
                revision: 1,
                overrides: TaskOverride::default(),
                started_by: None,
                group: (*g > 0).then(|| GROUPS[*g].to_string()),
                client_token: None,
                fingerprint: task_id.clone(),
                launch_type: "EC2".to_string(),
                network_configuration: None,
                tags: Vec::new(),
                enable_execute_command: false,
                run_timeout_seconds: None,
                created_at: Timestamp(10),
                placements: vec![Placement {
                    task_id: task_id.clone(),
                    instance_id: IDS[*i].to_string(),
                    container_ids: vec![format!("{task_id}-c")],
                    // Tasks of one group hold a static port: a second one
                    // on an instance is a conflict apply refuses.
                    host_ports: (*g == 1)
                        .then(|| orca_core::task::HostPortBinding {
                            container_name: "app".to_string(),
                            container_port: 80,
                            host_port: 8080,
                            protocol: orca_core::task_definition::TransportProtocol::Tcp,
                        })
                        .into_iter()
                        .collect(),
                    port_cursor: None,
                }],
                failures: Vec::new(),
            }))]
        }
        Op::Stop(k) | Op::ReportStopped(k) => {
            let Some(task) = s.tasks.values().nth(*k % s.tasks.len().max(1)) else {
                return Vec::new();
            };
            if matches!(op, Op::Stop(_)) {
                vec![Command::StopTask {
                    cluster: task.cluster.clone(),
                    task_id: task.id.clone(),
                    reason: None,
                    stop_code: StopCode::UserInitiated,
                    at: Timestamp(20),
                }]
            } else {
                let mut stopped = report(&task.id, TaskStatus::Stopped, Some(0));
                stopped.task_arn = ArnContext::default().task(&task.cluster, &task.id);
                // Stop times vary (or are missing) so the stopped tasks'
                // order is not their id order.
                stopped.stopped_at = (*k % 3 != 0).then(|| Timestamp(20 + (*k % 7) as i64));
                vec![Command::ReportTaskStates {
                    instance_id: task.instance_id.clone(),
                    reports: vec![stopped],
                }]
            }
        }
        Op::Purge(at) => vec![Command::PurgeTasks {
            task_ids: s.purgeable_tasks(Timestamp(*at), 3),
            decided_in_term: 1,
        }],
        Op::Lost(i) => vec![
            Command::SetAgentConnected {
                instance_id: IDS[*i].to_string(),
                connected: false,
                decided_in_term: 1,
            },
            Command::InstanceLost {
                instance_id: IDS[*i].to_string(),
                at: Timestamp(30),
                decided_in_term: 1,
            },
        ],
    }
}

fn state() -> ClusterState {
    let mut s = state_with_definition();
    s.apply(
        1,
        Command::CreateCluster {
            name: "other".to_string(),
            settings: Vec::new(),
            tags: Vec::new(),
            capacity: Default::default(),
        },
    );
    s
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn the_kept_index_is_the_one_built_from_the_records(
        ops in proptest::collection::vec(op(), 1..80),
    ) {
        let mut s = state();
        let mut next_task = 0;
        for (n, op) in ops.iter().enumerate() {
            for command in commands(&s, op, &mut next_task) {
                s.apply(1, command);
            }
            if let Err(e) = s.check_placement_index() {
                return Err(TestCaseError::fail(format!("after op {n} {op:?}: {e}")));
            }
            if let Err(e) = s.check_task_index() {
                return Err(TestCaseError::fail(format!("task index after op {n} {op:?}: {e}")));
            }
        }
        // A snapshot carries no index: the restored state rebuilds it.
        let json = serde_json::to_string(&s).expect("serializes");
        let mut restored: ClusterState = serde_json::from_str(&json).expect("deserializes");
        restored.rebuild_indexes();
        prop_assert!(restored.check_placement_index().is_ok());
        prop_assert_eq!(restored.placement_index.canonical(), s.placement_index.canonical());
        prop_assert!(restored.check_task_index().is_ok());
        prop_assert_eq!(&restored.task_index, &s.task_index);
    }
}

/// A value churned on one instance reuses its freed bucket, so bucket
/// numbers stay bounded by the values in use.
#[test]
fn freed_buckets_are_reused() {
    let mut s = state();
    let mut r = registration(None, None);
    r.attributes = vec![attribute("zone", Some("a"))];
    s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "i".to_string(),
            registration: r,
            at: Timestamp(1),
        },
    );
    for round in 0..20 {
        s.apply(
            1,
            Command::PutAttributes {
                cluster: "default".to_string(),
                attributes: vec![InstanceAttribute {
                    instance_id: "i".to_string(),
                    name: "zone".to_string(),
                    value: Some(format!("v{round}")),
                }],
            },
        );
    }
    let column = s
        .placement_index
        .cluster("default")
        .and_then(|c| c.attribute("zone"))
        .expect("zone column");
    // "", the value before and the value now.
    assert!(column.bucket_count() <= 3, "{}", column.bucket_count());
    assert!(s.check_placement_index().is_ok());
}

//! The fast path against the reference: over random fleets (clusters,
//! statuses, agents, zones and tiers, custom attributes that override the
//! agent's, tasks of several groups already running), random batches of
//! asks (counts, sizes, groups, distinctInstance, memberOf on static and
//! dynamic facts, requiresAttributes, up to five strategies in any order)
//! and static host ports taken, reserved and asked for, task subnets of
//! every size with addresses in use and asks taking 0 to 3 addresses) and
//! random seeds,
//! [`super::schedule`] must return exactly the plan of
//! [`super::reference::schedule`]: the same instances in the same order and
//! the same failures.

use std::collections::{BTreeMap, BTreeSet};

use orca_core::arn::ArnContext;
use orca_core::cidr::Ipv4Cidr;
use orca_core::placement::{
    parse_constraints, parse_strategies, PlacementConstraintInput, PlacementStrategyInput,
};
use orca_core::task::{HostPortBinding, Resources};
use orca_core::task_definition::{Attribute, Timestamp, TransportProtocol};
use proptest::prelude::{
    any, prop_assert, prop_assert_eq, proptest, ProptestConfig, Strategy as _,
};
use proptest::sample::select;

use super::{reference, schedule, PlacementAsk, AVAILABILITY_ZONE};
use crate::state::host_ports::PortKey;
use crate::state::instance_admin::InstanceAttribute;
use crate::state::instances::InstanceStatus;
use crate::state::placement_index::PlacementIndex;
use crate::state::{
    ClusterState, ClusterView, Command, CommandResult, InstanceRecord, Outcome, Placement,
    RunTaskCommand,
};
use orca_core::agent_protocol::Registration;

const GROUPS: [&str; 3] = ["family:web", "service:db", "family:batch"];

const EXPRESSIONS: [&str; 14] = [
    "attribute:ecs.availability-zone != b",
    "attribute:tier == gold",
    "attribute:tier exists",
    "attribute:ecs.availability-zone in [a, c]",
    "runningTasksCount < 3",
    "runningTasksCount == 0 or attribute:tier == gold",
    "attribute:tier == gold or runningTasksCount == 0",
    "task:group == service:db",
    "!(task:group == family:web)",
    "task:group =~ family:.*",
    "not task:group exists",
    "instanceId in [i03, i05, i07, i11, i13]",
    "agentConnected == true",
    "attribute:ecs.availability-zone =~ 'a|b'",
];

const STRATEGIES: [(&str, Option<&str>); 7] = [
    ("binpack", Some("cpu")),
    ("binpack", Some("memory")),
    ("spread", Some("instanceId")),
    ("spread", Some("attribute:ecs.availability-zone")),
    ("spread", Some("attribute:tier")),
    ("random", None),
    ("spread", Some("host")),
];

/// One random instance: (cpu, memory, zone (0..4, 3 = none, 4 = name
/// only), tier (0..3, 2 = none), custom zone override, status, connected,
/// tasks per group, other cluster).
type InstSpec = (u64, u64, u8, u8, bool, u8, bool, [u8; 3], bool);

/// One random ask: (count, cpu, memory, group, distinct, expressions,
/// strategies, requires, other cluster).
type AskSpec = (usize, u64, u64, u8, bool, Vec<u8>, Vec<u8>, u8, bool);

fn inst_spec() -> impl proptest::strategy::Strategy<Value = InstSpec> {
    (
        (select(&[512u64, 1024, 2048, 4096][..]), 0u64..3000),
        (0u8..5, 0u8..3),
        (proptest::bool::weighted(0.15), 0u8..12),
        (proptest::bool::weighted(0.9), [0u8..3, 0u8..3, 0u8..2]),
        proptest::bool::weighted(0.1),
    )
        .prop_map(
            |((cpu, memory), (zone, tier), (custom, status), (connected, groups), other)| {
                (
                    cpu, memory, zone, tier, custom, status, connected, groups, other,
                )
            },
        )
}

fn ask_spec() -> impl proptest::strategy::Strategy<Value = AskSpec> {
    (
        (0usize..12, 0u64..700, 0u64..900, 0u8..3),
        (
            proptest::bool::weighted(0.2),
            proptest::collection::vec(0u8..EXPRESSIONS.len() as u8, 0..3),
        ),
        (
            proptest::collection::vec(0u8..STRATEGIES.len() as u8, 0..6),
            0u8..8,
            proptest::bool::weighted(0.05),
        ),
    )
        .prop_map(
            |((count, cpu, memory, group), (distinct, exprs), (strategies, requires, other))| {
                (
                    count, cpu, memory, group, distinct, exprs, strategies, requires, other,
                )
            },
        )
}

fn attribute(name: &str, value: Option<&str>) -> Attribute {
    Attribute {
        name: name.to_string(),
        value: value.map(str::to_string),
        target_type: None,
        target_id: None,
    }
}

/// The static host ports fleets hold and asks ask for.
const PORTS: [PortKey; 3] = [
    (TransportProtocol::Tcp, 80),
    (TransportProtocol::Tcp, 8080),
    (TransportProtocol::Udp, 80),
];

/// The ports of `mask` (bits over [`PORTS`]); 8 and above: none.
fn ports_of(mask: u8) -> Vec<PortKey> {
    PORTS
        .iter()
        .enumerate()
        .filter(|(i, _)| mask < 8 && mask & (1 << i) != 0)
        .map(|(_, k)| *k)
        .collect()
}

fn binding((protocol, port): PortKey) -> HostPortBinding {
    HostPortBinding {
        container_name: "app".to_string(),
        container_port: port,
        host_port: port,
        protocol,
    }
}

fn fleet_view(fleet: &[InstSpec]) -> ClusterView {
    fleet_view_ports(fleet, &[], &[])
}

/// The task subnet prefixes fleets draw from: room for 253, 5, 1 and 0
/// task addresses.
const PREFIXES: [u8; 4] = [24, 29, 30, 31];

/// Per instance: (ports its tasks hold, ports it reserves), as masks; and
/// (task subnet prefix over [`PREFIXES`], addresses in use).
fn fleet_view_ports(fleet: &[InstSpec], ports: &[(u8, u8)], nets: &[(u8, u32)]) -> ClusterView {
    let mut state = ClusterState::new(ArnContext::default());
    for (n, spec) in fleet.iter().enumerate() {
        let &(cpu, memory, zone, tier, custom, status, connected, groups, other) = spec;
        let id = format!("i{n:02}");
        let mut attributes = vec![attribute("ecs.os-type", Some("linux"))];
        match zone {
            0..=2 => attributes.push(attribute(
                AVAILABILITY_ZONE,
                Some(["a", "b", "c"][zone as usize]),
            )),
            4 => attributes.push(attribute(AVAILABILITY_ZONE, None)),
            _ => {}
        }
        if tier < 2 {
            attributes.push(attribute("tier", Some(["gold", "silver"][tier as usize])));
        }
        if n % 4 == 0 {
            attributes.push(attribute("ecs.capability.efs", None));
        }
        let custom_attributes = if custom {
            vec![attribute(AVAILABILITY_ZONE, Some("d"))]
        } else {
            Vec::new()
        };
        let mut task_ids = BTreeSet::new();
        let mut group_counts = BTreeMap::new();
        for (g, count) in GROUPS.iter().zip(groups) {
            for k in 0..count {
                task_ids.insert(format!("{id}-{g}-{k}"));
            }
            // An entry at 0 (a group whose tasks all stopped) still names
            // the group for `task:group exists`.
            if count > 0 || n % 5 == 0 {
                group_counts.insert(g.to_string(), u32::from(count));
            }
        }
        let mut record = InstanceRecord {
            id: id.clone(),
            cluster: if other { "other" } else { "default" }.to_string(),
            // ARNs in another order than ids, so the closest-by-ARN rule
            // is not the position order.
            arn: format!("arn:{:02}", (n * 7) % 50),
            hostname: id.clone(),
            registered: Resources { cpu, memory },
            remaining: Resources { cpu, memory },
            attributes,
            agent_version: "1.2.0".to_string(),
            runtime_version: "t".to_string(),
            task_subnet: Ipv4Cidr {
                network: std::net::Ipv4Addr::new(198, 19, n as u8, 0),
                prefix_len: nets.get(n).map_or(24, |&(p, _)| PREFIXES[p as usize % 4]),
            },
            agent_connected: connected,
            registered_at: Timestamp(1_700_000_000_000 + n as i64),
            version: 1,
            task_ids,
            status: match status {
                0 => InstanceStatus::Draining,
                1 => InstanceStatus::Inactive,
                _ => InstanceStatus::Active,
            },
            custom_attributes,
            deregistered_at: None,
            group_counts,
            assignments_version: 0,
            node_address: None,
            node_api_address: None,
            overlay: Default::default(),
            reserved_ports: Vec::new(),
            host_ports: Default::default(),
            // More in use than the subnet holds happens after a
            // re-registration with a smaller subnet.
            addresses_in_use: nets.get(n).map_or(0, |&(_, used)| used),
            next_dynamic_port: 0,
        };
        if let Some(&(held, reserved)) = ports.get(n) {
            let held: Vec<HostPortBinding> = ports_of(held).into_iter().map(binding).collect();
            record.host_ports.take(&format!("{id}-held"), &held);
            record.reserved_ports = ports_of(reserved).into_iter().map(|(_, p)| p).collect();
        }
        state.instances.insert(record.id.clone(), record);
    }
    // The records were written directly (their group counts need no
    // tasks): build the index `apply` would have kept.
    state.placement_index = PlacementIndex::build(&state.instances);
    ClusterView::new(3, state)
}

fn build_ask(spec: &AskSpec) -> PlacementAsk {
    let (count, cpu, memory, group, distinct, exprs, strategies, requires, other) = spec;
    let mut inputs: Vec<PlacementConstraintInput> = exprs
        .iter()
        .map(|e| PlacementConstraintInput {
            r#type: "memberOf".to_string(),
            expression: Some(EXPRESSIONS[*e as usize].to_string()),
        })
        .collect();
    if *distinct {
        inputs.push(PlacementConstraintInput {
            r#type: "distinctInstance".to_string(),
            expression: None,
        });
    }
    let strategies: Vec<PlacementStrategyInput> = strategies
        .iter()
        .map(|s| {
            let (kind, field) = STRATEGIES[*s as usize];
            PlacementStrategyInput {
                r#type: kind.to_string(),
                field: field.map(str::to_string),
            }
        })
        .collect();
    let required_attributes = match requires {
        0 => vec![attribute("ecs.capability.efs", None)],
        1 => vec![attribute(AVAILABILITY_ZONE, Some("a"))],
        _ => Vec::new(),
    };
    PlacementAsk {
        cluster: if *other { "other" } else { "default" }.to_string(),
        need: Resources {
            cpu: *cpu,
            memory: *memory,
        },
        count: *count,
        group: GROUPS[*group as usize].to_string(),
        constraints: parse_constraints(&inputs, "placementConstraints").expect("valid"),
        strategies: parse_strategies(&strategies, "placementStrategy").expect("valid"),
        required_attributes,
        static_ports: Vec::new(),
        addresses: 1,
    }
}

fn with_ports(mut ask: PlacementAsk, mask: u8) -> PlacementAsk {
    ask.static_ports = ports_of(mask);
    ask
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1500))]

    #[test]
    fn the_fast_path_places_exactly_as_the_reference(
        fleet in proptest::collection::vec(inst_spec(), 0..40),
        ports in proptest::collection::vec((0u8..24, 0u8..24), 40),
        nets in proptest::collection::vec((0u8..4, 0u32..7), 40),
        asks in proptest::collection::vec((ask_spec(), 0u8..16, 0u32..4), 1..6),
        seed in any::<u64>(),
    ) {
        let view = fleet_view_ports(&fleet, &ports, &nets);
        let asks: Vec<PlacementAsk> = asks
            .iter()
            .map(|(spec, mask, addresses)| PlacementAsk {
                addresses: *addresses,
                ..with_ports(build_ask(spec), *mask)
            })
            .collect();
        prop_assert_eq!(schedule(&view, &asks, seed), reference::schedule(&view, &asks, seed));
    }
}

/// A larger fleet (many classes per zone, long heaps) through a long batch
/// of asks that fill it up, so failures come late and from every reason.
#[test]
fn a_large_fleet_filled_up_places_as_the_reference() {
    let mut rng = 0x5eed_u64;
    let mut next = |n: u64| {
        rng = super::rank::mix(rng, 1);
        rng % n
    };
    let fleet: Vec<InstSpec> = (0..300)
        .map(|_| {
            (
                [1024, 2048, 4096][next(3) as usize],
                500 + next(4000),
                next(5) as u8,
                next(3) as u8,
                next(10) == 0,
                next(12) as u8,
                next(10) != 0,
                [next(3) as u8, next(2) as u8, 0],
                false,
            )
        })
        .collect();
    let view = fleet_view(&fleet);
    for round in 0..12u8 {
        let asks: Vec<AskSpec> = (0..20u8)
            .map(|k| {
                let strategies = match (round + k) % 6 {
                    0 => vec![1],
                    1 => vec![3, 2],
                    2 => vec![],
                    3 => vec![3, 4, 0],
                    4 => vec![5, 1],
                    _ => vec![2, 3],
                };
                let exprs = match k % 5 {
                    0 => vec![1],
                    1 => vec![4],
                    2 => vec![5, 8],
                    _ => vec![],
                };
                (
                    1 + next(30) as usize,
                    next(300),
                    next(600),
                    (k % 3),
                    k % 7 == 0,
                    exprs,
                    strategies,
                    [0, 1, 2, 2, 2][k as usize % 5],
                    false,
                )
            })
            .collect();
        let asks: Vec<PlacementAsk> = asks.iter().map(build_ask).collect();
        let seed = u64::from(round) * 977;
        assert_eq!(
            schedule(&view, &asks, seed),
            reference::schedule(&view, &asks, seed),
            "round {round}"
        );
    }
}

/// One instance registered through `apply`: cpu, memory, zone (3: none),
/// tier (2: none), custom zone, draining, agent connected.
type Registered = (u64, u64, u8, u8, bool, bool, bool);

fn registered_spec() -> impl proptest::strategy::Strategy<Value = Registered> {
    (
        select(vec![512u64, 1024, 2048]),
        select(vec![600u64, 1200, 2400]),
        0..4u8,
        0..3u8,
        proptest::bool::weighted(0.15),
        proptest::bool::weighted(0.1),
        proptest::bool::weighted(0.9),
    )
}

/// A state built only through `apply`, so the scheduler reads the index
/// `apply` kept (ids in another order than registration).
fn applied_state(fleet: &[Registered]) -> ClusterState {
    let mut state = ClusterState::new(ArnContext::default());
    for input in DEFINITIONS {
        let definition = orca_core::task_definition::parse_register_input(input).expect("valid");
        state.apply(
            1,
            Command::RegisterTaskDefinition {
                spec: Box::new(definition.spec),
                tags: Vec::new(),
                registered_at: Timestamp(1),
                registered_by: "t".to_string(),
            },
        );
    }
    for (n, &(cpu, memory, zone, tier, custom, draining, connected)) in fleet.iter().enumerate() {
        let id = format!("i{:02}", (n * 37) % 100);
        let mut attributes = vec![attribute("ecs.os-type", Some("linux"))];
        if zone < 3 {
            attributes.push(attribute(
                AVAILABILITY_ZONE,
                Some(["a", "b", "c"][zone as usize]),
            ));
        }
        if tier < 2 {
            attributes.push(attribute("tier", Some(["gold", "silver"][tier as usize])));
        }
        if n % 4 == 0 {
            attributes.push(attribute("ecs.capability.efs", None));
        }
        let registration = Registration {
            cluster: "default".to_string(),
            container_instance_arn: None,
            instance_id: None,
            hostname: id.clone(),
            cpu,
            memory,
            attributes,
            agent_version: "1.2.0".to_string(),
            runtime_version: "t".to_string(),
            // Some small subnets, so addresses run out before CPU does.
            task_subnet: match n % 3 {
                1 => Some(format!("10.99.{n}.0/30")),
                2 => Some(format!("10.99.{n}.0/29")),
                _ => None,
            },
            reserved_ports: Vec::new(),
            node_address: None,
            node_api_address: None,
            overlay: Default::default(),
        };
        let commands = [
            Some(Command::RegisterContainerInstance {
                instance_id: id.clone(),
                registration,
                at: Timestamp(1_700_000_000_000 + n as i64),
            }),
            Some(Command::SetAgentConnected {
                instance_id: id.clone(),
                connected,
                decided_in_term: 1,
            }),
            custom.then(|| Command::PutAttributes {
                cluster: "default".to_string(),
                attributes: vec![InstanceAttribute {
                    instance_id: id.clone(),
                    name: AVAILABILITY_ZONE.to_string(),
                    value: Some("d".to_string()),
                }],
            }),
            draining.then(|| Command::SetInstancesStatus {
                cluster: "default".to_string(),
                instance_ids: vec![id.clone()],
                status: InstanceStatus::Draining,
            }),
        ];
        for command in commands.into_iter().flatten() {
            state.apply(1, command);
        }
    }
    state
}

/// The task definitions plans are fed back as, each 256 CPU units and
/// 300 MiB: by the addresses a task takes, awsvpc (1), a 2-container
/// bridge task (2) and host mode (0).
const DEFINITIONS: [&str; 3] = [
    r#"{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":300,"cpu":256}]}"#,
    r#"{"family":"pair","networkMode":"bridge","containerDefinitions":[{"name":"app","image":"busybox","memory":150,"cpu":128},{"name":"side","image":"busybox","memory":150,"cpu":128}]}"#,
    r#"{"family":"solo","networkMode":"host","containerDefinitions":[{"name":"app","image":"busybox","memory":300,"cpu":256}]}"#,
];

/// The family of [`DEFINITIONS`] whose tasks take `addresses`, and its
/// containers.
fn family_taking(addresses: u32) -> (&'static str, usize) {
    match addresses {
        0 => ("solo", 1),
        2 => ("pair", 2),
        _ => ("web", 1),
    }
}

/// The plan's placements committed as the leader would (one RunTask per
/// ask, its group), then a few of the tasks stopped and reported STOPPED.
fn feed_back(state: &mut ClusterState, asks: &[PlacementAsk], plan: &super::Plan, round: usize) {
    for (k, (ask, planned)) in asks.iter().zip(&plan.asks).enumerate() {
        let (family, containers) = family_taking(ask.addresses);
        let placements = planned
            .instances
            .iter()
            .enumerate()
            .map(|(t, instance)| Placement {
                task_id: format!("r{round}-a{k}-t{t}"),
                instance_id: instance.clone(),
                container_ids: (0..containers)
                    .map(|c| format!("r{round}-a{k}-t{t}-c{c}"))
                    .collect(),
                host_ports: ask.static_ports.iter().copied().map(binding).collect(),
                port_cursor: None,
            })
            .collect();
        let result = state.apply(
            1,
            Command::RunTask(Box::new(RunTaskCommand {
                cluster: "default".to_string(),
                family: family.to_string(),
                revision: 1,
                overrides: Default::default(),
                started_by: None,
                group: Some(ask.group.clone()),
                client_token: None,
                fingerprint: format!("r{round}-a{k}"),
                launch_type: "EC2".to_string(),
                network_configuration: None,
                tags: Vec::new(),
                enable_execute_command: false,
                run_timeout_seconds: None,
                created_at: Timestamp(10),
                placements,
                failures: Vec::new(),
            })),
        );
        // A plan made on the state fits it: apply re-checks what the
        // scheduler checked (resources, ports, addresses) and agrees.
        assert!(
            matches!(result, CommandResult::Applied(Outcome::Tasks { .. })),
            "apply refused a fresh plan's run {k}: {result:?}"
        );
    }
    let stopping: Vec<(String, String)> = state
        .tasks
        .values()
        .filter(|t| !t.is_stopped())
        .step_by(3)
        .map(|t| (t.id.clone(), t.instance_id.clone()))
        .collect();
    for (task_id, instance_id) in stopping {
        state.apply(
            1,
            Command::ReportTaskStates {
                instance_id,
                reports: vec![stopped_report(&task_id)],
            },
        );
    }
}

fn stopped_report(task_id: &str) -> orca_core::agent_protocol::TaskStateReport {
    orca_core::agent_protocol::TaskStateReport {
        task_arn: ArnContext::default().task("default", task_id),
        last_status: orca_core::task::TaskStatus::Stopped,
        containers: Vec::new(),
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
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Plans fed back through `apply` round after round: the scheduler
    /// reads the index `apply` kept (placements, releases, attributes,
    /// statuses), and still places exactly as the reference, which reads
    /// the records.
    #[test]
    fn plans_fed_back_through_apply_place_as_the_reference(
        fleet in proptest::collection::vec(registered_spec(), 0..30),
        rounds in proptest::collection::vec(
            proptest::collection::vec((ask_spec(), 0u8..16, 0u32..3), 1..4),
            1..5,
        ),
        seed in any::<u64>(),
    ) {
        let mut state = applied_state(&fleet);
        for (round, asks) in rounds.iter().enumerate() {
            let asks: Vec<PlacementAsk> = asks
                .iter()
                .map(|(spec, mask, addresses)| {
                    let mut ask = with_ports(build_ask(spec), *mask);
                    ask.cluster = "default".to_string();
                    ask.need = Resources { cpu: 256, memory: 300 };
                    // What `family_taking` feeds it back as.
                    ask.addresses = *addresses;
                    ask
                })
                .collect();
            prop_assert!(state.check_placement_index().is_ok());
            let view = ClusterView::new(round as u64, state.clone());
            let plan = schedule(&view, &asks, seed);
            prop_assert_eq!(&plan, &reference::schedule(&view, &asks, seed), "round {}", round);
            feed_back(&mut state, &asks, &plan, round);
        }
    }
}

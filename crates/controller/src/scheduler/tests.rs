//! Data-driven scheduler tests: every case goes through [`check`], which
//! builds a view from a compact fleet description, schedules the asks and
//! compares the plan, printed compactly, with the expected text.
//!
//! Plan text: per ask, the instance ids in placement order, then `|` and
//! each failure as `REASON@instance(ruled out)`; asks are separated by `;`.

use std::collections::{BTreeMap, BTreeSet};

use orca_core::arn::ArnContext;
use orca_core::cidr::Ipv4Cidr;
use orca_core::placement::{
    parse_constraints, parse_strategies, PlacementConstraintInput, PlacementStrategyInput,
};
use orca_core::task::Resources;
use orca_core::task_definition::{Attribute, Timestamp, TransportProtocol};
use proptest::prelude::{any, prop_assert, prop_assert_eq, proptest, Strategy as PropStrategy};

use super::*;
use crate::state::instances::InstanceStatus;
use crate::state::{ClusterState, ClusterView, InstanceRecord};

/// One instance of a fixture.
#[derive(Clone)]
struct Inst {
    id: &'static str,
    cpu: u64,
    memory: u64,
    attributes: Vec<(&'static str, &'static str)>,
    connected: bool,
    status: InstanceStatus,
    /// Tasks already running here, by group.
    groups: Vec<(&'static str, u32)>,
    cluster: &'static str,
    /// Host ports a task holds here (tcp).
    held_ports: Vec<u16>,
    /// Reserved host ports.
    reserved_ports: Vec<u16>,
    /// The task subnet's prefix length (/24 unless said).
    prefix_len: u8,
    /// Task addresses its tasks hold.
    addresses_in_use: u32,
}

fn inst(id: &'static str, cpu: u64, memory: u64) -> Inst {
    Inst {
        id,
        cpu,
        memory,
        attributes: Vec::new(),
        connected: true,
        status: InstanceStatus::Active,
        groups: Vec::new(),
        cluster: "default",
        held_ports: Vec::new(),
        reserved_ports: Vec::new(),
        prefix_len: 24,
        addresses_in_use: 0,
    }
}

impl Inst {
    fn attr(mut self, name: &'static str, value: &'static str) -> Self {
        self.attributes.push((name, value));
        self
    }
    fn zone(self, zone: &'static str) -> Self {
        self.attr(AVAILABILITY_ZONE, zone)
    }
    fn running(mut self, group: &'static str, n: u32) -> Self {
        self.groups.push((group, n));
        self
    }
    fn disconnected(mut self) -> Self {
        self.connected = false;
        self
    }
    fn draining(mut self) -> Self {
        self.status = InstanceStatus::Draining;
        self
    }
    fn holding(mut self, port: u16) -> Self {
        self.held_ports.push(port);
        self
    }
    fn reserving(mut self, port: u16) -> Self {
        self.reserved_ports.push(port);
        self
    }
    /// Leaves `free` of the /24's 253 task addresses free.
    fn addresses_free(mut self, free: u32) -> Self {
        self.addresses_in_use = 253 - free;
        self
    }
    fn subnet_prefix(mut self, prefix_len: u8) -> Self {
        self.prefix_len = prefix_len;
        self
    }
    fn in_cluster(mut self, cluster: &'static str) -> Self {
        self.cluster = cluster;
        self
    }
}

fn view(fleet: &[Inst]) -> ClusterView {
    let mut state = ClusterState::new(ArnContext::default());
    for (n, i) in fleet.iter().enumerate() {
        let mut task_ids = BTreeSet::new();
        let mut group_counts = BTreeMap::new();
        for (group, count) in &i.groups {
            for k in 0..*count {
                task_ids.insert(format!("{}-{group}-{k}", i.id));
            }
            group_counts.insert(group.to_string(), *count);
        }
        let mut record = InstanceRecord {
            id: i.id.to_string(),
            cluster: i.cluster.to_string(),
            arn: i.id.to_string(),
            hostname: i.id.to_string(),
            registered: Resources {
                cpu: i.cpu,
                memory: i.memory,
            },
            remaining: Resources {
                cpu: i.cpu,
                memory: i.memory,
            },
            attributes: i
                .attributes
                .iter()
                .map(|(name, value)| Attribute {
                    name: name.to_string(),
                    value: Some(value.to_string()),
                    target_type: None,
                    target_id: None,
                })
                .collect(),
            agent_version: "1.2.0".to_string(),
            runtime_version: "t".to_string(),
            task_subnet: Ipv4Cidr {
                network: std::net::Ipv4Addr::new(198, 19, n as u8, 0),
                prefix_len: i.prefix_len,
            },
            agent_connected: i.connected,
            registered_at: Timestamp(1_700_000_000_000 + n as i64),
            version: 1,
            task_ids,
            status: i.status,
            custom_attributes: Vec::new(),
            deregistered_at: None,
            group_counts,
            assignments_version: 0,
            node_address: None,
            node_api_address: None,
            overlay: Default::default(),
            reserved_ports: i.reserved_ports.clone(),
            host_ports: Default::default(),
            addresses_in_use: i.addresses_in_use,
            next_dynamic_port: 0,
        };
        let held: Vec<orca_core::task::HostPortBinding> = i
            .held_ports
            .iter()
            .map(|&port| orca_core::task::HostPortBinding {
                container_name: "app".to_string(),
                container_port: port,
                host_port: port,
                protocol: TransportProtocol::Tcp,
            })
            .collect();
        record.host_ports.take(&format!("{}-held", i.id), &held);
        state.instances.insert(record.id.clone(), record);
    }
    // The records were written directly: build the index `apply` keeps.
    state.placement_index = crate::state::placement_index::PlacementIndex::build(&state.instances);
    ClusterView::new(7, state)
}

/// An ask for `count` tasks of group `g` needing cpu/memory.
fn ask(count: usize, cpu: u64, memory: u64) -> PlacementAsk {
    PlacementAsk {
        cluster: "default".to_string(),
        need: Resources { cpu, memory },
        count,
        group: "family:web".to_string(),
        constraints: Vec::new(),
        strategies: Vec::new(),
        required_attributes: Vec::new(),
        static_ports: Vec::new(),
        // An awsvpc task (the default network mode).
        addresses: 1,
    }
}

impl PlacementAsk {
    /// The task addresses each task takes (a bridge task: its containers;
    /// host and none mode: 0).
    fn addresses(mut self, n: u32) -> Self {
        self.addresses = n;
        self
    }
    fn port(mut self, protocol: TransportProtocol, port: u16) -> Self {
        self.static_ports.push((protocol, port));
        self
    }
    fn constraint(mut self, kind: &str, expression: Option<&str>) -> Self {
        let input = PlacementConstraintInput {
            r#type: kind.to_string(),
            expression: expression.map(str::to_string),
        };
        self.constraints
            .extend(parse_constraints(&[input], "placementConstraints").expect("valid constraint"));
        self
    }
    fn member_of(self, expression: &str) -> Self {
        self.constraint("memberOf", Some(expression))
    }
    fn strategy(mut self, kind: &str, field: Option<&str>) -> Self {
        let input = PlacementStrategyInput {
            r#type: kind.to_string(),
            field: field.map(str::to_string),
        };
        self.strategies
            .extend(parse_strategies(&[input], "placementStrategy").expect("valid strategy"));
        self
    }
    fn group(mut self, group: &str) -> Self {
        self.group = group.to_string();
        self
    }
    fn requires(mut self, name: &str) -> Self {
        self.required_attributes.push(Attribute {
            name: name.to_string(),
            value: None,
            target_type: None,
            target_id: None,
        });
        self
    }
}

fn render(plan: &Plan) -> String {
    plan.asks
        .iter()
        .map(|a| {
            let mut text = a.instances.join(" ");
            if !a.failures.is_empty() {
                let failures: Vec<String> = a
                    .failures
                    .iter()
                    .map(|f| {
                        let ruled_out = f
                            .detail
                            .as_deref()
                            .and_then(|d| d.strip_prefix("ruled out "))
                            .and_then(|d| d.split(' ').next())
                            .unwrap_or("?");
                        format!(
                            "{}@{}({ruled_out})",
                            f.reason,
                            f.arn.as_deref().unwrap_or("-")
                        )
                    })
                    .collect();
                text.push_str(" | ");
                text.push_str(&failures.join(" "));
            }
            text
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn check(fleet: &[Inst], asks: &[PlacementAsk], expected: &str) {
    let plan = schedule(&view(fleet), asks, 42);
    assert_eq!(plan.based_on_index, 7);
    assert_eq!(render(&plan), expected);
}

#[test]
fn binpack_memory_fills_the_fullest_instance_first() {
    let fleet = [
        inst("a", 4096, 4000),
        inst("b", 4096, 1000),
        inst("c", 4096, 2000),
    ];
    let a = ask(4, 10, 500).strategy("binpack", Some("memory"));
    check(&fleet, &[a], "b b c c");
}

#[test]
fn binpack_cpu_ranks_by_cpu_left() {
    let fleet = [inst("a", 1024, 4000), inst("b", 512, 4000)];
    check(
        &fleet,
        &[ask(3, 256, 10).strategy("binpack", Some("cpu"))],
        "b b a",
    );
}

#[test]
fn spread_by_instance_evens_out_the_group_counting_existing_tasks() {
    let fleet = [
        inst("a", 4096, 4096).running("family:web", 2),
        inst("b", 4096, 4096),
        inst("c", 4096, 4096).running("family:other", 5),
    ];
    let a = ask(4, 10, 10).strategy("spread", Some("instanceId"));
    check(&fleet, &[a], "b c b c");
    let host = ask(1, 10, 10).strategy("spread", Some("host"));
    check(&fleet, &[host], "b");
}

#[test]
fn spread_by_zone_then_instance() {
    let fleet = [
        inst("a1", 4096, 4096).zone("a").running("family:web", 1),
        inst("a2", 4096, 4096).zone("a"),
        inst("b1", 4096, 4096).zone("b"),
        inst("c1", 4096, 4096).zone("c"),
        inst("c2", 4096, 4096).zone("c"),
    ];
    let a = ask(5, 10, 10)
        .strategy("spread", Some("attribute:ecs.availability-zone"))
        .strategy("spread", Some("instanceId"));
    check(&fleet, &[a], "b1 c1 a2 c2 b1");
}

#[test]
fn no_strategy_spreads_over_zones_then_instances() {
    let fleet = [
        inst("a1", 4096, 4096).zone("a"),
        inst("a2", 4096, 4096).zone("a"),
        inst("b1", 4096, 4096).zone("b"),
    ];
    check(&fleet, &[ask(3, 10, 10)], "a1 b1 a2");
}

#[test]
fn spread_then_binpack_packs_inside_the_chosen_zone() {
    let fleet = [
        inst("a1", 4096, 3000).zone("a"),
        inst("a2", 4096, 1000).zone("a"),
        inst("b1", 4096, 4000).zone("b"),
        inst("b2", 4096, 2000).zone("b"),
    ];
    let a = ask(4, 10, 100)
        .strategy("spread", Some("attribute:ecs.availability-zone"))
        .strategy("binpack", Some("memory"));
    check(&fleet, &[a], "a2 b2 a2 b2");
}

#[test]
fn random_is_deterministic_for_a_seed_and_varies_with_it() {
    let fleet: Vec<Inst> = ["i0", "i1", "i2", "i3", "i4", "i5", "i6", "i7", "i8", "i9"]
        .iter()
        .map(|id| inst(id, 4096, 4096))
        .collect();
    let asks = [ask(8, 10, 10).strategy("random", None)];
    let v = view(&fleet);
    let first = schedule(&v, &asks, 1);
    assert_eq!(first, schedule(&v, &asks, 1), "same seed, same plan");
    let others: BTreeSet<Vec<String>> = (2..6)
        .map(|seed| schedule(&v, &asks, seed).asks[0].instances.clone())
        .collect();
    assert!(
        others.iter().any(|o| *o != first.asks[0].instances),
        "other seeds give other plans"
    );
}

#[test]
fn distinct_instance_places_one_per_instance_and_names_the_reason() {
    let fleet = [
        inst("a", 4096, 4096),
        inst("b", 4096, 4096),
        inst("c", 4096, 4096).running("family:web", 1),
    ];
    let a = ask(3, 10, 10).constraint("distinctInstance", None);
    check(
        &fleet,
        &[a],
        "a b | DistinctInstance placement constraint unsatisfied.@a(3)",
    );
}

#[test]
fn member_of_filters_on_attributes() {
    let fleet = [
        inst("a", 4096, 4096).attr("stack", "prod"),
        inst("b", 4096, 4096).attr("stack", "dev"),
        inst("c", 4096, 4096),
    ];
    let a = ask(2, 10, 10).member_of("attribute:stack == prod");
    check(&fleet, &[a], "a a");
    let none = ask(1, 10, 10).member_of("attribute:stack in [qa, staging]");
    check(
        &fleet,
        &[none],
        " | MemberOf placement constraint unsatisfied.@a(3)",
    );
}

#[test]
fn member_of_task_group_places_next_to_the_group() {
    let fleet = [
        inst("a", 4096, 4096),
        inst("b", 4096, 4096).running("service:db", 1),
    ];
    let a = ask(2, 10, 10).member_of("task:group == service:db");
    check(&fleet, &[a], "b b");
    let anti = ask(2, 10, 10).member_of("!(task:group == service:db)");
    check(&fleet, &[anti], "a a");
}

#[test]
fn member_of_is_evaluated_again_after_each_placement_of_the_ask() {
    let fleet = [
        inst("a", 4096, 4096),
        inst("b", 4096, 4096),
        inst("c", 4096, 4096).running("family:other", 1),
    ];
    let a = ask(3, 10, 10)
        .member_of("runningTasksCount == 0")
        .strategy("binpack", Some("memory"));
    check(
        &fleet,
        &[a],
        "a b | MemberOf placement constraint unsatisfied.@a(3)",
    );
}

#[test]
fn draining_disconnected_and_missing_attributes_are_filtered_with_their_reasons() {
    let fleet = [
        inst("a", 4096, 4096).draining(),
        inst("b", 4096, 4096).disconnected(),
        inst("c", 4096, 4096),
        inst("d", 4096, 4096).attr("com.amazonaws.ecs.capability.logging-driver.awslogs", ""),
    ];
    check(&fleet, &[ask(2, 10, 10)], "c d");
    let needs = ask(2, 10, 10).requires("com.amazonaws.ecs.capability.logging-driver.awslogs");
    check(&fleet, &[needs], "d d");
    let nothing = ask(1, 10, 10).requires("ecs.capability.efs");
    check(
        &fleet,
        &[nothing],
        " | DRAINING@a(1) AGENT@b(1) ATTRIBUTE@c(2)",
    );
}

#[test]
fn resource_failures_name_the_closest_instance_once_per_reason() {
    let fleet = [
        inst("a", 4096, 300),
        inst("b", 4096, 900),
        inst("c", 4096, 500),
        inst("d", 100, 4096),
    ];
    check(
        &fleet,
        &[ask(1, 256, 1000)],
        " | RESOURCE:MEMORY@b(3) RESOURCE:CPU@d(1)",
    );
    let plan = schedule(&view(&fleet), &[ask(1, 256, 1000)], 0);
    let detail = plan.asks[0].failures[0].detail.clone().unwrap_or_default();
    assert!(
        detail.contains("900 MiB free, the task needs 1000"),
        "{detail}"
    );
}

#[test]
fn a_partial_placement_reports_why_the_rest_failed() {
    let fleet = [inst("a", 1024, 1024), inst("b", 1024, 512)];
    let a = ask(4, 10, 500).strategy("binpack", Some("memory"));
    check(&fleet, &[a], "b a a | RESOURCE:MEMORY@a(2)");
}

#[test]
fn asks_in_one_plan_never_take_the_same_resources() {
    let fleet = [inst("a", 1024, 1000), inst("b", 1024, 1000)];
    let asks = [ask(1, 10, 800), ask(1, 10, 800), ask(1, 10, 800)];
    check(&fleet, &asks, "a; b;  | RESOURCE:MEMORY@a(2)");
}

#[test]
fn other_clusters_are_invisible() {
    let fleet = [
        inst("a", 4096, 4096).in_cluster("prod"),
        inst("b", 4096, 4096),
    ];
    check(&fleet, &[ask(2, 10, 10)], "b b");
    let mut prod = ask(1, 10, 10);
    prod.cluster = "prod".to_string();
    check(&fleet, &[prod], "a");
}

#[test]
fn groups_are_separate() {
    let fleet = [
        inst("a", 4096, 4096).running("service:api", 3),
        inst("b", 4096, 4096),
    ];
    let a = ask(1, 10, 10)
        .group("service:api")
        .constraint("distinctInstance", None);
    check(&fleet, &[a], "b");
    let b = ask(1, 10, 10)
        .group("service:web")
        .constraint("distinctInstance", None);
    check(&fleet, &[b], "a");
}

/// Per instance: cpu, memory, agent connected, task addresses free.
fn fleet_strategy() -> impl PropStrategy<Value = Vec<(u64, u64, bool, u32)>> {
    proptest::collection::vec((0u64..4096, 0u64..4096, any::<bool>(), 0u32..8), 1..12)
}

/// Per ask: count, cpu, memory, kind, task addresses per task.
fn ask_strategy() -> impl PropStrategy<Value = Vec<(usize, u64, u64, u8, u32)>> {
    proptest::collection::vec((0usize..10, 0u64..2048, 0u64..2048, 0u8..5, 0u32..4), 1..6)
}

const IDS: [&str; 12] = [
    "i00", "i01", "i02", "i03", "i04", "i05", "i06", "i07", "i08", "i09", "i10", "i11",
];

fn build(
    fleet: &[(u64, u64, bool, u32)],
    asks: &[(usize, u64, u64, u8, u32)],
) -> (Vec<Inst>, Vec<PlacementAsk>) {
    let fleet = fleet
        .iter()
        .enumerate()
        .map(|(n, (cpu, memory, connected, free))| {
            let i = inst(IDS[n], *cpu, *memory)
                .zone(["a", "b", "c"][n % 3])
                .addresses_free(*free);
            if *connected {
                i
            } else {
                i.disconnected()
            }
        })
        .collect();
    let asks = asks
        .iter()
        .map(|(count, cpu, memory, kind, addresses)| {
            let a = ask(*count, *cpu, *memory).addresses(*addresses);
            match kind {
                0 => a.strategy("binpack", Some("memory")),
                1 => a.strategy("random", None),
                2 => a.constraint("distinctInstance", None),
                3 => a.member_of("attribute:ecs.availability-zone != b"),
                _ => a,
            }
        })
        .collect();
    (fleet, asks)
}

proptest! {
    #[test]
    fn no_plan_overcommits_an_instance(fleet in fleet_strategy(), asks in ask_strategy(), seed in any::<u64>()) {
        let (fleet, asks) = build(&fleet, &asks);
        let v = view(&fleet);
        let plan = schedule(&v, &asks, seed);
        let mut used: BTreeMap<String, Resources> = BTreeMap::new();
        let mut used_addresses: BTreeMap<String, u32> = BTreeMap::new();
        for (a, planned) in asks.iter().zip(&plan.asks) {
            prop_assert!(planned.instances.len() <= a.count);
            if planned.instances.len() < a.count {
                prop_assert!(!planned.failures.is_empty(), "an unplaced task has a reason");
            }
            for id in &planned.instances {
                let u = used.entry(id.clone()).or_default();
                *u = u.plus(a.need);
                let i = &v.instances[id];
                prop_assert!(i.agent_connected, "placed on a disconnected instance");
                prop_assert!(u.fits_in(i.remaining), "overcommitted {id}");
                let a_used = used_addresses.entry(id.clone()).or_default();
                *a_used += a.addresses;
                prop_assert!(*a_used <= i.free_addresses(), "addresses overcommitted on {id}");
            }
        }
    }

    #[test]
    fn a_seed_gives_the_same_plan(fleet in fleet_strategy(), asks in ask_strategy(), seed in any::<u64>()) {
        let (fleet, asks) = build(&fleet, &asks);
        let v = view(&fleet);
        prop_assert_eq!(schedule(&v, &asks, seed), schedule(&v, &asks, seed));
    }
}

#[test]
fn a_static_port_taken_or_reserved_rules_the_instance_out() {
    let fleet = [
        inst("a", 4096, 4096).holding(8080),
        inst("b", 4096, 4096).reserving(8080),
        inst("c", 4096, 4096),
    ];
    check(
        &fleet,
        &[ask(1, 10, 10).port(TransportProtocol::Tcp, 8080)],
        "c",
    );
    check(
        &fleet,
        &[ask(2, 10, 10).port(TransportProtocol::Tcp, 8080)],
        "c | RESOURCE:PORTS@a(3)",
    );
    // Over UDP, a's TCP 8080 does not clash; b's reservation covers both.
    check(
        &fleet,
        &[ask(2, 10, 10).port(TransportProtocol::Udp, 8080)],
        "a c",
    );
}

#[test]
fn two_tasks_asking_one_static_port_never_share_an_instance() {
    // A static port twice in one call over 2 instances: 2 placed, 1 failure.
    let fleet = [inst("a", 4096, 4096), inst("b", 4096, 4096)];
    check(
        &fleet,
        &[ask(3, 10, 10).port(TransportProtocol::Tcp, 8080)],
        "a b | RESOURCE:PORTS@a(2)",
    );
    // The same across two asks of one call (the call's overlay).
    check(
        &fleet,
        &[
            ask(1, 10, 10).port(TransportProtocol::Tcp, 8080),
            ask(2, 10, 10)
                .port(TransportProtocol::Tcp, 8080)
                .group("family:api"),
        ],
        "a; b | RESOURCE:PORTS@a(2)",
    );
    // Binpack would stack them on one instance; the port does not let it.
    check(
        &fleet,
        &[ask(2, 10, 10)
            .port(TransportProtocol::Tcp, 80)
            .strategy("binpack", Some("memory"))],
        "a b",
    );
}

#[test]
fn host_mode_ports_are_static_ports() {
    // Host mode asks for hostPort == containerPort: the same rule applies,
    // and resources are checked first (the reason is the first misfit).
    let fleet = [
        inst("a", 4096, 100).holding(9000),
        inst("b", 4096, 4096).holding(9000),
    ];
    check(
        &fleet,
        &[ask(1, 10, 200).port(TransportProtocol::Tcp, 9000)],
        " | RESOURCE:MEMORY@a(1) RESOURCE:PORTS@b(1)",
    );
}

#[test]
fn a_node_short_of_addresses_refuses_a_bridge_task_with_resource_eni() {
    let fleet = [inst("a", 4096, 4096).addresses_free(2)];
    // A 3-container bridge task takes 3 addresses: a has 2.
    check(
        &fleet,
        &[ask(1, 10, 10).addresses(3)],
        " | RESOURCE:ENI@a(1)",
    );
    // An awsvpc task takes one.
    check(&fleet, &[ask(1, 10, 10)], "a");
    // A 2-container bridge task fits exactly.
    check(&fleet, &[ask(1, 10, 10).addresses(2)], "a");
}

#[test]
fn host_and_none_mode_tasks_take_no_addresses() {
    let fleet = [inst("a", 4096, 4096).addresses_free(0)];
    check(&fleet, &[ask(3, 10, 10).addresses(0)], "a a a");
    check(&fleet, &[ask(1, 10, 10)], " | RESOURCE:ENI@a(1)");
}

#[test]
fn tasks_of_one_plan_count_against_each_others_addresses() {
    // Within one ask: binpack would stack all three on a, which has room
    // for two awsvpc tasks.
    let fleet = [
        inst("a", 4096, 1000).addresses_free(2),
        inst("b", 4096, 4000).addresses_free(2),
    ];
    let stacked = ask(5, 10, 10).strategy("binpack", Some("memory"));
    check(&fleet, &[stacked], "a a b b | RESOURCE:ENI@a(2)");
    // Across the asks of one call (the call's overlay).
    let one = [inst("a", 4096, 4096).addresses_free(3)];
    check(
        &one,
        &[
            ask(1, 10, 10).addresses(2),
            ask(1, 10, 10).addresses(2).group("family:api"),
            ask(1, 10, 10).group("family:batch"),
        ],
        "a;  | RESOURCE:ENI@a(1); a",
    );
}

#[test]
fn the_task_subnet_sets_the_address_capacity() {
    // A /30: one host address besides the gateway.
    let fleet = [inst("a", 4096, 4096).subnet_prefix(30)];
    check(&fleet, &[ask(2, 10, 10)], "a | RESOURCE:ENI@a(1)");
    // A /29 holds five; a 3-container bridge task leaves room for 2 more
    // addresses.
    let fleet = [inst("a", 4096, 4096).subnet_prefix(29)];
    check(
        &fleet,
        &[ask(2, 10, 10).addresses(3)],
        "a | RESOURCE:ENI@a(1)",
    );
}

#[test]
fn addresses_are_checked_after_the_other_resources() {
    // Each instance is named under its first misfit, in the pipeline's
    // order: memory, CPU, ports, then addresses.
    let fleet = [
        inst("a", 4096, 100).addresses_free(0),
        inst("b", 4096, 4096).holding(80).addresses_free(0),
        inst("c", 4096, 4096).addresses_free(0),
        inst("d", 4096, 4096).addresses_free(1),
    ];
    check(
        &fleet,
        &[ask(1, 10, 200)
            .addresses(2)
            .port(TransportProtocol::Tcp, 80)],
        " | RESOURCE:MEMORY@a(1) RESOURCE:PORTS@b(1) RESOURCE:ENI@c(2)",
    );
}

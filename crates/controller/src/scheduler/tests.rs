use std::collections::BTreeSet;

use orca_core::cidr::Ipv4Cidr;
use orca_core::task::Resources;
use orca_core::task_definition::Timestamp;

use super::*;

fn instance(id: &str, cpu: u64, memory: u64, connected: bool) -> InstanceRecord {
    InstanceRecord {
        id: id.to_string(),
        cluster: "default".to_string(),
        arn: format!("arn:ci/{id}"),
        hostname: id.to_string(),
        registered: Resources { cpu, memory },
        remaining: Resources { cpu, memory },
        attributes: Vec::new(),
        agent_version: "t".to_string(),
        runtime_version: "t".to_string(),
        task_subnet: Ipv4Cidr {
            network: std::net::Ipv4Addr::new(198, 19, 0, 0),
            prefix_len: 24,
        },
        agent_connected: connected,
        registered_at: Timestamp(0),
        version: 1,
        task_ids: BTreeSet::new(),
    }
}

fn need(cpu: u64, memory: u64) -> Resources {
    Resources { cpu, memory }
}

fn check(
    instances: &[InstanceRecord],
    n: Resources,
    count: usize,
    placed: &[&str],
    failures: &[&str],
) {
    let plan = first_fit(instances, n, count);
    assert_eq!(plan.instances, placed, "placements");
    let reasons: Vec<String> = plan
        .failures
        .iter()
        .map(|f| format!("{}={}", f.arn.as_deref().unwrap_or(""), f.reason))
        .collect();
    assert_eq!(reasons, failures, "failures");
}

#[test]
fn fills_the_first_instance_then_the_next() {
    let fleet = [
        instance("a", 1024, 1000, true),
        instance("b", 1024, 1000, true),
    ];
    check(&fleet, need(256, 400), 3, &["a", "a", "b"], &[]);
    check(&fleet, need(256, 400), 4, &["a", "a", "b", "b"], &[]);
}

#[test]
fn reports_why_each_instance_refused() {
    let fleet = [
        instance("a", 1024, 1000, true),
        instance("b", 100, 4000, true),
        instance("c", 4096, 4000, false),
    ];
    check(
        &fleet,
        need(512, 2000),
        1,
        &[],
        &[
            "arn:ci/a=RESOURCE:MEMORY",
            "arn:ci/b=RESOURCE:CPU",
            "arn:ci/c=AGENT",
        ],
    );
    // Partly placed: the failures describe what is left after the placements.
    check(
        &[instance("a", 1024, 1000, true)],
        need(0, 600),
        2,
        &["a"],
        &["arn:ci/a=RESOURCE:MEMORY"],
    );
}

#[test]
fn never_overcommits() {
    // Every placement fits what is left: the sum never exceeds the registration.
    for count in 0..12 {
        let fleet = [
            instance("a", 2048, 3000, true),
            instance("b", 1024, 1500, true),
        ];
        let n = need(300, 700);
        let plan = first_fit(&fleet, n, count);
        for i in &fleet {
            let used = plan.instances.iter().filter(|p| **p == i.id).count() as u64;
            assert!(used * n.cpu <= i.registered.cpu && used * n.memory <= i.registered.memory);
        }
        assert_eq!(plan.instances.len(), count.min(6));
    }
}

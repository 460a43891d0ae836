//! The registry's rules and the zone: who can serve, who leaves.

use std::time::Duration;

use orca_core::discovery::ServiceEndpoint;
use orca_core::service::{SchedulingStrategy, ServiceStatus};
use orca_core::task::{HealthStatus, TaskStatus};
use orca_core::task_definition::Timestamp;
use orca_core::Exception;
use serde_json::json;

use super::*;
use crate::state::task_tests::{applied, register_instance, run, state_with};
use crate::state::{ServiceRecord, TaskNetwork};

const TTL: Duration = Duration::from_secs(1);

fn service(name: &str, discovery: Option<ServiceDiscovery>) -> ServiceRecord {
    ServiceRecord {
        name: name.into(),
        cluster: "default".into(),
        status: ServiceStatus::Active,
        strategy: SchedulingStrategy::Replica,
        desired_count: 1,
        deployments: Vec::new(),
        configuration: Default::default(),
        placement_constraints: Vec::new(),
        placement_strategy: Vec::new(),
        network_configuration: None,
        health_check_grace_period_seconds: None,
        launch_type: None,
        enable_execute_command: false,
        infrastructure: Default::default(),
        tags: Vec::new(),
        created_at: Timestamp(1),
        created_by: "t".into(),
        client_token: None,
        fingerprint: String::new(),
        events: Vec::new(),
        events_recorded: 0,
        throttle: Default::default(),
        last_completed: None,
        version: 1,
        discovery,
    }
}

fn registry(name: &str, port: Option<u16>) -> Option<ServiceDiscovery> {
    Some(ServiceDiscovery {
        name: name.into(),
        port,
        container_name: None,
        container_port: None,
    })
}

/// A state with the `web` definition (a health check on `app` when
/// `checked`), one instance, and tasks `t1`..`tN` RUNNING at 198.19.0.N of
/// service `group_of(i)`.
fn fixture(checked: bool, tasks: &[&str]) -> ClusterState {
    let health = if checked {
        r#","healthCheck":{"command":["CMD","true"]}"#
    } else {
        ""
    };
    let mut s = state_with(&format!(
        r#"{{"family":"web","containerDefinitions":[{{"name":"app","image":"busybox","memory":30,"cpu":10,"portMappings":[{{"containerPort":8080}}]{health}}}]}}"#
    ));
    register_instance(&mut s, "i1", None);
    for (n, group) in tasks.iter().enumerate() {
        let id = format!("t{}", n + 1);
        applied(s.apply(1, run(&[(&id, "i1")], None, &id)));
        let task = s.tasks.get_mut(&id).expect("placed");
        task.group = format!("service:{group}");
        task.last_status = TaskStatus::Running;
        task.network = Some(TaskNetwork {
            netns: id.clone(),
            subnet: "198.19.0.0/24".into(),
            mac_address: "02:00:00:00:00:01".into(),
            private_ipv4_address: format!("198.19.0.{}", n + 1),
        });
    }
    s
}

fn add(s: &mut ClusterState, record: ServiceRecord) {
    s.services.insert(record.key(), record);
}

fn endpoint(task: &str, last_octet: u8, port: Option<u16>) -> ServiceEndpoint {
    ServiceEndpoint {
        task_id: task.into(),
        address: std::net::Ipv4Addr::new(198, 19, 0, last_octet),
        port,
    }
}

fn names(s: &ClusterState) -> BTreeMap<String, Vec<ServiceEndpoint>> {
    let zone = zone(s, "default", "orca.local", TTL);
    assert_eq!(zone.namespace, "orca.local");
    assert_eq!(zone.ttl_secs, 1);
    zone.services
}

#[test]
fn registries_parse_to_a_dns_label_and_refuse_what_cannot_be_answered() {
    let parsed = parse_registries(&[json!({
        "registryArn": "arn:aws:servicediscovery:local:0:service/Web-1",
        "port": 80
    })])
    .expect("valid");
    assert_eq!(parsed, registry("web-1", Some(80)));
    assert_eq!(parse_registries(&[]).expect("none"), None);
    let refusals = [
        (json!([{"port": 80}]), "serviceRegistries[0].registryArn"),
        (
            json!([{"registryArn": "arn:x:service/-bad"}]),
            "serviceRegistries[0].registryArn",
        ),
        (
            json!([{"registryArn": "arn:x:service/a.b"}]),
            "serviceRegistries[0].registryArn",
        ),
        (
            json!([{"registryArn": "arn:x:service/a", "port": 0}]),
            "serviceRegistries[0].port",
        ),
        (
            json!([{"registryArn": "arn:x:service/a", "port": 70000}]),
            "serviceRegistries[0].port",
        ),
        (
            json!([{"registryArn": "arn:x:service/a", "containerName": "app"}]),
            "serviceRegistries[0].containerPort",
        ),
        (
            json!([{"registryArn": "arn:x:service/a", "containerPort": 80}]),
            "serviceRegistries[0].containerName",
        ),
        (
            json!([{"registryArn": "arn:x:service/a"}, {"registryArn": "arn:x:service/b"}]),
            "serviceRegistries",
        ),
    ];
    for (input, path) in refusals {
        let entries: Vec<serde_json::Value> = serde_json::from_value(input.clone()).expect("list");
        let e = parse_registries(&entries).expect_err(&input.to_string());
        assert_eq!(e.exception, Exception::InvalidParameterException, "{input}");
        assert_eq!(e.field.as_deref(), Some(path), "{input}: {}", e.message);
    }
}

#[test]
fn the_container_must_map_the_port_in_the_definition() {
    let s = fixture(false, &[]);
    let definition = &s.families["web"].revisions[&1].task_definition;
    let named = |name: &str, port: u16| ServiceDiscovery {
        name: "web".into(),
        port: None,
        container_name: Some(name.into()),
        container_port: Some(port),
    };
    named("app", 8080)
        .check_definition(definition)
        .expect("mapped");
    let e = named("db", 8080)
        .check_definition(definition)
        .expect_err("no such container");
    assert_eq!(
        e.field.as_deref(),
        Some("serviceRegistries[0].containerName")
    );
    let e = named("app", 9090)
        .check_definition(definition)
        .expect_err("not mapped");
    assert_eq!(
        e.field.as_deref(),
        Some("serviceRegistries[0].containerPort")
    );
}

#[test]
fn running_tasks_of_each_discoverable_service_are_answered_and_others_are_absent() {
    let mut s = fixture(false, &["web", "web", "api", "plain"]);
    add(&mut s, service("web", registry("web", Some(80))));
    add(&mut s, service("api", registry("api", None)));
    add(&mut s, service("plain", None));
    add(&mut s, service("idle", registry("idle", None)));
    let zone = names(&s);
    assert_eq!(
        zone.keys().collect::<Vec<_>>(),
        vec!["api", "idle", "web"],
        "a service without a registry has no name"
    );
    assert_eq!(
        zone["web"],
        vec![endpoint("t1", 1, Some(80)), endpoint("t2", 2, Some(80))]
    );
    assert_eq!(zone["api"], vec![endpoint("t3", 3, None)]);
    assert!(zone["idle"].is_empty(), "a name with no serving task");
    assert!(discoverable_clusters(&s).contains("default"));
    assert!(zone_of_other_cluster_is_empty(&s));
}

fn zone_of_other_cluster_is_empty(s: &ClusterState) -> bool {
    zone(s, "other", "orca.local", TTL).services.is_empty()
}

#[test]
fn a_task_asked_to_stop_leaves_at_once_and_a_pending_one_is_not_yet_there() {
    let mut s = fixture(false, &["web", "web", "web"]);
    add(&mut s, service("web", registry("web", None)));
    s.tasks.get_mut("t2").expect("t2").desired_status = TaskStatus::Stopped;
    s.tasks.get_mut("t3").expect("t3").last_status = TaskStatus::Pending;
    assert_eq!(names(&s)["web"], vec![endpoint("t1", 1, None)]);
    // Reporting DEACTIVATING keeps it out too.
    s.tasks.get_mut("t1").expect("t1").last_status = TaskStatus::Deactivating;
    assert!(names(&s)["web"].is_empty());
}

#[test]
fn with_a_health_check_a_task_appears_once_healthy() {
    let mut s = fixture(true, &["web"]);
    add(
        &mut s,
        service(
            "web",
            Some(ServiceDiscovery {
                name: "web".into(),
                port: None,
                container_name: Some("app".into()),
                container_port: Some(8080),
            }),
        ),
    );
    assert!(names(&s)["web"].is_empty(), "UNKNOWN is not serving");
    s.tasks.get_mut("t1").expect("t1").health = HealthStatus::Healthy;
    assert_eq!(names(&s)["web"], vec![endpoint("t1", 1, Some(8080))]);
    s.tasks.get_mut("t1").expect("t1").health = HealthStatus::Unhealthy;
    assert!(names(&s)["web"].is_empty());
}

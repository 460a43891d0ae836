//! Service discovery end to end on the fake runtime: an in-process
//! controller (1 s TTL) and two in-process agents, each running its DNS
//! responder on a loopback port. A service created with a registry is
//! answered by both responders with exactly its RUNNING tasks' addresses; on
//! scale-in a task leaves the answer while it is DEACTIVATING, before any of
//! its containers gets a signal and before it is STOPPED; a name outside
//! the namespace is REFUSED (no upstreams); a registry naming an unmapped
//! port is refused at CreateService, and any registry at UpdateService.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use orca_dns::client::{query_a, query_message, query_udp};
use orca_tests::agents::{ecs, wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{register, Client};

const WAIT: Duration = Duration::from_secs(30);
const NAME: &str = "web.orca.local.";

/// A loopback port free for both UDP and TCP right now.
fn free_dns_addr() -> SocketAddr {
    loop {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let addr = udp.local_addr().expect("addr");
        if std::net::TcpListener::bind(addr).is_ok() {
            return addr;
        }
    }
}

/// Every task of the service (wanted running or stopped), described.
async fn service_tasks(client: &mut Client) -> Vec<Value> {
    let mut arns = Vec::new();
    for desired in ["RUNNING", "STOPPED"] {
        let listed = ecs(
            client,
            "ListTasks",
            json!({"serviceName": "web", "desiredStatus": desired}),
        )
        .await
        .expect("list-tasks");
        arns.extend(listed["taskArns"].as_array().cloned().unwrap_or_default());
    }
    if arns.is_empty() {
        return Vec::new();
    }
    let described = ecs(client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe-tasks");
    described["tasks"].as_array().cloned().unwrap_or_default()
}

fn address(task: &Value) -> Option<Ipv4Addr> {
    task["attachments"][0]["details"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == "privateIPv4Address")?["value"]
        .as_str()?
        .parse()
        .ok()
}

/// The addresses of tasks RUNNING and wanted running.
fn serving(tasks: &[Value]) -> BTreeSet<Ipv4Addr> {
    tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING" && t["desiredStatus"] == "RUNNING")
        .filter_map(address)
        .collect()
}

async fn answer(dns: SocketAddr) -> BTreeSet<Ipv4Addr> {
    query_a(dns, NAME)
        .await
        .expect("the responder answers")
        .into_iter()
        .collect()
}

/// Waits until every responder answers exactly the serving tasks, `count`
/// of them.
async fn wait_answers(client: &mut Client, responders: &[SocketAddr], count: usize) {
    let deadline = Instant::now() + WAIT;
    loop {
        let expected = serving(&service_tasks(client).await);
        let mut answers = Vec::new();
        for dns in responders {
            answers.push(answer(*dns).await);
        }
        if expected.len() == count && answers.iter().all(|a| *a == expected) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "responders never answered the {count} serving tasks {expected:?}: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_registered_service_resolves_to_its_serving_tasks_and_a_leaving_task_goes_first() {
    let controller = InProcessController::start_with(|c| {
        c.discovery_ttl = Duration::from_secs(1);
        c.discovery_deregistration_margin = Duration::from_secs(1);
        c.services.timers.healthy_after_running_ms = 300;
        c.services.tick = Duration::from_millis(100);
    })
    .await
    .expect("controller");
    let mut responders = Vec::new();
    let mut nodes = Vec::new();
    for _ in 0..2 {
        let dns = free_dns_addr();
        let node = FakeNode::start(&controller.endpoint(), |c| {
            c.dns_listen = Some(dns);
            c.dns_upstreams = Some(Vec::new());
        })
        .await
        .expect("agent");
        responders.push(dns);
        nodes.push(node);
    }
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .expect("instances");
    let td = json!({"family": "web", "containerDefinitions": [{
        "name": "app", "image": FAKE_IMAGE, "memory": 64,
        "command": ["sh", "-c", "sleep 3600"],
        "portMappings": [{"containerPort": 8080}]
    }]});
    register(&mut client, &td.to_string())
        .await
        .expect("register");

    // A registry must map a port of the definition.
    let refused = ecs(
        &mut client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 1,
               "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:local:000000000000:service/web",
                                      "containerName": "app", "containerPort": 9090}]}),
    )
    .await
    .expect_err("an unmapped port");
    assert!(
        refused
            .message
            .contains("serviceRegistries[0].containerPort"),
        "{refused:?}"
    );

    let registries = json!([{"registryArn": "arn:aws:servicediscovery:local:000000000000:service/web",
                             "containerName": "app", "containerPort": 8080}]);
    let created = ecs(
        &mut client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3,
               "serviceRegistries": registries}),
    )
    .await
    .expect("create-service");
    assert_eq!(created["service"]["serviceRegistries"], registries);
    wait_answers(&mut client, &responders, 3).await;

    // Names outside the namespace: no upstream, refused.
    let query = query_message("example.com.", RecordType::A).expect("query");
    let reply = query_udp(responders[0], &query).await.expect("reply");
    assert_eq!(reply.metadata.response_code, ResponseCode::Refused);

    // A registry is fixed at creation.
    let refused = ecs(
        &mut client,
        "UpdateService",
        json!({"service": "web", "serviceRegistries": registries}),
    )
    .await
    .expect_err("a registry change");
    assert_eq!(
        refused.field.as_deref(),
        Some("serviceRegistries"),
        "{refused:?}"
    );

    // Scale in: the tasks leaving are out of the answer while DEACTIVATING,
    // before any container of theirs is signalled.
    ecs(
        &mut client,
        "UpdateService",
        json!({"service": "web", "desiredCount": 1}),
    )
    .await
    .expect("update-service");
    let deadline = Instant::now() + WAIT;
    let leaving = loop {
        let tasks = service_tasks(&mut client).await;
        let deactivating: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["lastStatus"] == "DEACTIVATING")
            .collect();
        if !deactivating.is_empty() {
            let answered = answer(responders[0]).await;
            for t in &deactivating {
                let ip = address(t).expect("an address");
                assert!(
                    !answered.contains(&ip),
                    "a DEACTIVATING task {ip} is still answered: {answered:?}"
                );
                let runtime_id = t["containers"][0]["runtimeId"].as_str().expect("id");
                for node in &nodes {
                    assert!(
                        node.runtime.signals(runtime_id).is_empty(),
                        "a DEACTIVATING task's container was signalled"
                    );
                }
            }
            break deactivating
                .iter()
                .filter_map(|t| {
                    let arn = t["taskArn"].as_str()?.to_string();
                    let id = t["containers"][0]["runtimeId"].as_str()?.to_string();
                    Some((arn, id))
                })
                .collect::<Vec<_>>();
        }
        assert!(
            Instant::now() < deadline,
            "no task was seen DEACTIVATING: {tasks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    wait_answers(&mut client, &responders, 1).await;
    // The leaving tasks stop once the wait is over.
    let deadline = Instant::now() + WAIT;
    loop {
        let tasks = service_tasks(&mut client).await;
        let stopped = tasks
            .iter()
            .filter(|t| leaving.iter().any(|(a, _)| t["taskArn"] == a.as_str()))
            .all(|t| t["lastStatus"] == "STOPPED");
        if stopped {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the leaving tasks never stopped: {tasks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for node in nodes {
        node.stop().await;
    }
}

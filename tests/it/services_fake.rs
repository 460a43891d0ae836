//! Services end to end through the controller's API and its leader loop,
//! with three in-process agents (three zones) on the fake runtime: a service
//! reaches steady state spread over the zones, a task stopped behind its back
//! is replaced, a rolling update at 50/200 never drops below the minimum, a
//! revision whose tasks cannot start trips the circuit breaker and rolls
//! back, an agent lost has its tasks replaced elsewhere, and delete drains.

use std::time::Duration;

use orca_tests::agents::{ecs, wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{register, Client};

const WAIT: Duration = Duration::from_secs(30);

struct Setup {
    _controller: InProcessController,
    nodes: Vec<Option<FakeNode>>,
    client: Client,
}

async fn setup() -> Setup {
    let controller = InProcessController::start_with(|c| {
        c.agent_heartbeat_timeout = Duration::from_millis(1500);
        c.agent_loss_grace = Duration::from_millis(500);
        c.services.timers.healthy_after_running_ms = 300;
        c.services.timers.throttle_base_ms = 200;
        c.services.timers.throttle_max_ms = 800;
        c.services.tick = Duration::from_millis(100);
    })
    .await
    .expect("controller");
    let mut nodes = Vec::new();
    for zone in ["zone-a", "zone-b", "zone-c"] {
        let node = FakeNode::start(&controller.endpoint(), |c| {
            c.availability_zone = Some(zone.to_string());
        })
        .await
        .expect("agent");
        nodes.push(Some(node));
    }
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 3, WAIT)
        .await
        .expect("instances");
    Setup {
        _controller: controller,
        nodes,
        client,
    }
}

async fn register_revision(client: &mut Client, image: &str) {
    let td = json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": image, "memory": 64, "command": ["sh", "-c", "sleep 3600"]}
    ]});
    register(client, &td.to_string()).await.expect("register");
}

async fn describe(client: &mut Client) -> Value {
    let out = ecs(client, "DescribeServices", json!({"services": ["web"]}))
        .await
        .expect("describe-services");
    out["services"][0].clone()
}

/// Waits until the service satisfies `done`, checking `always` on every look.
async fn wait_service(
    client: &mut Client,
    what: &str,
    mut always: impl FnMut(&Value),
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let s = describe(client).await;
        always(&s);
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "service never {what}; last: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn steady(desired: u64) -> impl Fn(&Value) -> bool {
    move |s: &Value| {
        s["runningCount"] == desired
            && s["pendingCount"] == 0
            && s["deployments"].as_array().map(Vec::len) == Some(1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
    }
}

async fn running_tasks(client: &mut Client) -> Vec<Value> {
    let listed = ecs(client, "ListTasks", json!({"serviceName": "web"}))
        .await
        .expect("list-tasks");
    let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let described = ecs(client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe-tasks");
    described["tasks"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn a_service_keeps_its_tasks_deploys_rolls_back_and_survives_a_lost_node() {
    let mut s = setup().await;
    register_revision(&mut s.client, FAKE_IMAGE).await;
    let created = ecs(
        &mut s.client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 3,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200,
                   "deploymentCircuitBreaker": {"enable": true, "rollback": true}}}),
    )
    .await
    .expect("create-service");
    assert_eq!(created["service"]["status"], "ACTIVE");
    assert_eq!(created["service"]["desiredCount"], 3);
    let first = wait_service(&mut s.client, "reached steady state", |_| {}, steady(3)).await;
    let first_deployment = first["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    assert!(first_deployment.starts_with("ecs-svc/"));
    let events: Vec<&str> = first["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert_eq!(
        events[0], "(service web) has reached a steady state.",
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| e.starts_with("(service web) has started 3 tasks:")));
    let tasks = running_tasks(&mut s.client).await;
    let instances: std::collections::BTreeSet<&str> = tasks
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    assert_eq!(instances.len(), 3, "spread over the three zones");
    for t in &tasks {
        assert_eq!(t["group"], "service:web");
        assert_eq!(t["startedBy"], first_deployment.as_str());
    }

    // A task stopped behind the service's back is replaced.
    let victim = tasks[0]["taskArn"].as_str().expect("arn").to_string();
    ecs(&mut s.client, "StopTask", json!({"task": victim}))
        .await
        .expect("stop-task");
    wait_service(
        &mut s.client,
        "replaced the stopped task",
        |_| {},
        |svc| steady(3)(svc),
    )
    .await;
    let now_running: Vec<String> = running_tasks(&mut s.client)
        .await
        .iter()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    assert!(!now_running.contains(&victim));
    assert_eq!(now_running.len(), 3);

    // A rolling update at 50/200 never has fewer than 2 running.
    register_revision(&mut s.client, FAKE_IMAGE).await;
    ecs(
        &mut s.client,
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await
    .expect("update-service");
    let done = wait_service(
        &mut s.client,
        "completed the update to web:2",
        |svc| {
            let running = svc["runningCount"].as_u64().unwrap_or(0);
            assert!(
                running >= 2,
                "running fell to {running} during the update: {svc:#}"
            );
        },
        |svc| {
            steady(3)(svc)
                && svc["taskDefinition"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("web:2"))
        },
    )
    .await;
    assert_eq!(
        done["deployments"][0]["taskDefinition"]
            .as_str()
            .map(|t| t.ends_with("web:2")),
        Some(true)
    );

    // A revision whose image cannot be pulled trips the breaker (threshold
    // clamp(ceil(0.5 × 3), 3, 200) = 3) and rolls back to web:2.
    register_revision(&mut s.client, "registry.invalid/missing:1").await;
    ecs(
        &mut s.client,
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:3"}),
    )
    .await
    .expect("update-service");
    let rolled_back = wait_service(
        &mut s.client,
        "rolled back to web:2",
        |svc| {
            let running = svc["runningCount"].as_u64().unwrap_or(0);
            assert!(
                running >= 2,
                "running fell to {running} during the failed update"
            );
        },
        |svc| {
            steady(3)(svc)
                && svc["deployments"][0]["taskDefinition"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("web:2"))
        },
    )
    .await;
    let messages: Vec<&str> = rolled_back["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["message"].as_str())
        .collect();
    assert!(
        messages
            .iter()
            .any(|m| m.contains("deployment failed: tasks failed to start.")),
        "{messages:?}"
    );
    assert!(
        messages.iter().any(|m| m.contains("rolling back to web:2")),
        "{messages:?}"
    );
    eprintln!("events after the rollback: {messages:#?}");

    // A node lost: its task runs elsewhere.
    let lost = s.nodes[0].take().expect("node");
    lost.stop().await;
    wait_service(
        &mut s.client,
        "replaced the lost node's task",
        |_| {},
        steady(3),
    )
    .await;
    let tasks = running_tasks(&mut s.client).await;
    assert_eq!(tasks.len(), 3);

    // Delete needs --force above 0, then drains to INACTIVE.
    let refused = ecs(&mut s.client, "DeleteService", json!({"service": "web"})).await;
    assert!(matches!(refused, Err(e) if e.field.as_deref() == Some("force")));
    let deleted = ecs(
        &mut s.client,
        "DeleteService",
        json!({"service": "web", "force": true}),
    )
    .await
    .expect("delete-service");
    assert_eq!(deleted["service"]["status"], "DRAINING");
    wait_service(
        &mut s.client,
        "became INACTIVE",
        |_| {},
        |svc| svc["status"] == "INACTIVE" && svc["runningCount"] == 0,
    )
    .await;
    let listed = ecs(&mut s.client, "ListServices", json!({}))
        .await
        .expect("list-services");
    assert_eq!(listed["serviceArns"], json!([]));
    drop(s.nodes);
}

#[tokio::test]
async fn service_calls_refuse_bad_input_naming_the_field() {
    let mut s = setup().await;
    register_revision(&mut s.client, FAKE_IMAGE).await;
    let e = ecs(
        &mut s.client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "nope:1", "desiredCount": 1}),
    )
    .await
    .expect_err("no such task definition");
    assert_eq!(e.field.as_deref(), Some("taskDefinition"), "{e:?}");
    let e = ecs(
        &mut s.client,
        "UpdateService",
        json!({"service": "missing", "desiredCount": 1}),
    )
    .await
    .expect_err("no such service");
    assert_eq!(e.exception, orca_core::Exception::ServiceNotFoundException);
    let d = ecs(
        &mut s.client,
        "DescribeServices",
        json!({"services": ["missing"]}),
    )
    .await
    .expect("describe");
    assert_eq!(d["failures"][0]["reason"], "MISSING");
    // As ECS: the failure names the service by its full ARN.
    assert_eq!(
        d["failures"][0]["arn"],
        "arn:orca:ecs:local:000000000000:service/default/missing"
    );
    drop(s.nodes);
}

#[tokio::test]
async fn a_daemon_service_runs_one_task_on_each_instance() {
    let mut s = setup().await;
    register_revision(&mut s.client, FAKE_IMAGE).await;
    let created = ecs(
        &mut s.client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "schedulingStrategy": "DAEMON"}),
    )
    .await
    .expect("create-service");
    assert_eq!(created["service"]["schedulingStrategy"], "DAEMON");
    wait_service(
        &mut s.client,
        "ran one task per instance",
        |_| {},
        steady(3),
    )
    .await;
    let tasks = running_tasks(&mut s.client).await;
    let instances: std::collections::BTreeSet<&str> = tasks
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    assert_eq!((tasks.len(), instances.len()), (3, 3));
    let e = ecs(
        &mut s.client,
        "UpdateService",
        json!({"service": "web", "desiredCount": 2}),
    )
    .await
    .expect_err("a daemon has no desired count");
    assert_eq!(e.field.as_deref(), Some("desiredCount"));
    drop(s.nodes);
}

/// The `orca` binary, as a tutorial drives it: create-service and
/// update-service with `--wait`, `--query` with `--output text`, the
/// waiters, and a failed rollout's non-zero exit.
#[tokio::test]
async fn the_cli_creates_waits_queries_and_reports_a_failed_rollout() {
    let mut s = setup().await;
    let endpoint = s._controller.endpoint();
    register_revision(&mut s.client, FAKE_IMAGE).await;
    let created = crate::support::orca(
        &endpoint,
        &[
            "create-service", "--service-name", "web", "--task-definition", "web:1",
            "--desired-count", "2", "--launch-type", "FARGATE",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[subnet-0a1b2c,subnet-0d4e5f],securityGroups=[sg-api-tasks],assignPublicIp=DISABLED}",
            "--health-check-grace-period-seconds", "30",
            "--deployment-configuration", "deploymentCircuitBreaker={enable=true,rollback=true}",
            "--wait",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "stderr: {}", created.stderr);
    assert!(
        created.stderr.contains("has reached a steady state."),
        "{}",
        created.stderr
    );
    let state = crate::support::orca(
        &endpoint,
        &[
            "describe-services",
            "--services",
            "web",
            "--query",
            "services[0].deployments[0].rolloutState",
            "--output",
            "text",
        ],
    )
    .await;
    assert_eq!(
        (state.code, state.stdout.trim()),
        (0, "COMPLETED"),
        "{}",
        state.stderr
    );
    let stable = crate::support::orca(
        &endpoint,
        &[
            "wait",
            "services-stable",
            "--services",
            "web",
            "--delay",
            "0.1",
        ],
    )
    .await;
    assert_eq!(stable.code, 0, "{}", stable.stderr);
    // A revision that cannot start: --wait says so and exits non-zero.
    register_revision(&mut s.client, "registry.invalid/missing:1").await;
    let failed = crate::support::orca(
        &endpoint,
        &[
            "update-service", "--service", "web", "--task-definition", "web:2",
            "--deployment-configuration", "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}",
            "--wait",
        ],
    )
    .await;
    assert_ne!(failed.code, 0);
    assert!(
        failed.stderr.contains("failed") && failed.stderr.contains("tasks failed to start"),
        "{}",
        failed.stderr
    );
    let gone = crate::support::orca(
        &endpoint,
        &[
            "wait",
            "services-stable",
            "--services",
            "nope",
            "--delay",
            "0.1",
        ],
    )
    .await;
    assert_eq!(gone.code, 255);
    assert!(gone.stderr.contains("MISSING"), "{}", gone.stderr);
    drop(s.nodes);
}

/// DAEMON tasks are placed first: on instances full of a replica service's
/// tasks, one replica task per instance moves elsewhere within its
/// service's 100/200 (so only once there is room elsewhere), and the
/// daemon's task takes its place.
#[tokio::test]
async fn a_daemon_task_gets_room_on_instances_full_of_replica_tasks() {
    let controller = InProcessController::start_with(|c| {
        c.services.timers.healthy_after_running_ms = 300;
        c.services.tick = Duration::from_millis(100);
    })
    .await
    .expect("controller");
    // Two instances of 1024 MiB (nothing reserved) each hold 4 tasks.
    let small = |c: &mut orca_agent::AgentConfig| {
        c.memory_mib = Some(1024);
        c.reserved_memory_mib = 0;
    };
    let mut nodes = vec![
        FakeNode::start(&controller.endpoint(), small)
            .await
            .expect("agent"),
        FakeNode::start(&controller.endpoint(), small)
            .await
            .expect("agent"),
    ];
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .expect("instances");
    let web = json!({"family": "web", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 256, "command": ["sh", "-c", "sleep 3600"]}
    ]});
    register(&mut client, &web.to_string())
        .await
        .expect("register");
    let mon = json!({"family": "mon", "containerDefinitions": [
        {"name": "mon", "image": FAKE_IMAGE, "memory": 128, "command": ["sh", "-c", "sleep 3600"]}
    ]});
    register(&mut client, &mon.to_string())
        .await
        .expect("register");
    ecs(
        &mut client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 8}),
    )
    .await
    .expect("create web");
    wait_service(&mut client, "filled both instances", |_| {}, steady(8)).await;

    ecs(
        &mut client,
        "CreateService",
        json!({"serviceName": "mon", "taskDefinition": "mon", "schedulingStrategy": "DAEMON"}),
    )
    .await
    .expect("create mon");
    // Nowhere to move to yet: web keeps its 8 (minimum 100%), mon waits.
    let events = |s: &Value| s["events"].to_string();
    let deadline = Instant::now() + WAIT;
    loop {
        let out = ecs(
            &mut client,
            "DescribeServices",
            json!({"services": ["mon"]}),
        )
        .await
        .expect("describe");
        if events(&out["services"][0]).contains("to make room for its task") {
            break;
        }
        assert!(Instant::now() < deadline, "no room made: {out:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let web_now = describe(&mut client).await;
    assert_eq!(web_now["runningCount"], 8, "{web_now:#}");

    // A third instance: the moved replicas start there, then leave their
    // places to mon's tasks, and mon runs on all three.
    nodes.push(
        FakeNode::start(&controller.endpoint(), small)
            .await
            .expect("agent"),
    );
    wait_for_instances(&mut client, "default", 3, WAIT)
        .await
        .expect("instances");
    let mut lowest = u64::MAX;
    let deadline = Instant::now() + WAIT;
    let mon = loop {
        let web_now = describe(&mut client).await;
        lowest = lowest.min(web_now["runningCount"].as_u64().unwrap_or(0));
        let out = ecs(
            &mut client,
            "DescribeServices",
            json!({"services": ["mon"]}),
        )
        .await
        .expect("describe");
        let s = out["services"][0].clone();
        if steady(3)(&s) {
            break s;
        }
        assert!(Instant::now() < deadline, "mon never ran everywhere: {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(lowest >= 8, "web fell to {lowest} running");
    // The last moved replica may still be running beside its replacement
    // (maximum 200%): web settles back to 8, never below.
    let web_after = wait_service(
        &mut client,
        "settled back to 8 running",
        |s| assert!(s["runningCount"].as_u64() >= Some(8), "{s:#}"),
        |s| s["runningCount"] == 8,
    )
    .await;
    let moved = web_after["events"].to_string();
    assert!(moved.contains("has stopped"), "{moved}");
    assert_eq!(mon["runningCount"], 3);
    drop(nodes);
}

//! Services end to end on real parts (the rig of `containerd_node.rs`: real
//! containerd and runc, a network namespace per task, images from a local
//! registry), driven through the `orca` binary: a 3-replica service reaches
//! steady state, a container SIGKILLed behind orca's back through containerd
//! is replaced, a rolling update at 50/200 never drops below the minimum,
//! and an update to a revision whose image cannot be pulled, then to one
//! whose health check fails, each trips the circuit breaker and rolls back
//! to the old revision with every replica running.

use std::time::Duration;

use orca_tests::agents::{ecs, wait_stopped};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::containerd_node::{AgentKind, Node};
use crate::support::{orca, Client, HEAVY};

const WAIT: Duration = Duration::from_secs(90);

/// A node with service timers short enough for a test: a task counts as
/// healthy 300 ms after RUNNING, crash-loop throttling starts at 200 ms.
async fn start(name: &str) -> Option<Node> {
    Node::start_configured(name, AgentKind::InProcess, |c| {
        c.services.timers.healthy_after_running_ms = 300;
        c.services.timers.throttle_base_ms = 200;
        c.services.timers.throttle_max_ms = 800;
        c.services.tick = Duration::from_millis(100);
    })
    .await
    .expect("setup")
}

/// Registers a revision of `web` whose container runs until SIGTERM (a
/// shell traps it: `sleep` as PID 1 would ignore it), marked with `version`.
async fn register_web(n: &mut Node, image: &str, version: &str) {
    let container = json!({
        "name": "app", "image": image, "memory": 32, "stopTimeout": 2,
        "environment": [{"name": "VERSION", "value": version}],
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"]
    });
    n.register("web", vec![container]).await;
}

async fn describe_service(client: &mut Client) -> Value {
    let out = ecs(client, "DescribeServices", json!({"services": ["web"]}))
        .await
        .expect("describe-services");
    out["services"][0].clone()
}

/// The service's tasks wanted running, as describe-tasks shows them.
async fn live_tasks(client: &mut Client) -> Vec<Value> {
    let listed = ecs(
        client,
        "ListTasks",
        json!({"serviceName": "web", "desiredStatus": "RUNNING"}),
    )
    .await
    .expect("list-tasks");
    let arns = listed["taskArns"].as_array().cloned().unwrap_or_default();
    if arns.is_empty() {
        return Vec::new();
    }
    let out = ecs(client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe-tasks");
    out["tasks"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|t| t["desiredStatus"] == "RUNNING")
        .collect()
}

fn running(tasks: &[Value]) -> Vec<&Value> {
    tasks
        .iter()
        .filter(|t| t["lastStatus"] == "RUNNING")
        .collect()
}

fn revision_of(task: &Value) -> String {
    task["taskDefinitionArn"]
        .as_str()
        .and_then(|a| a.rsplit(':').next())
        .unwrap_or_default()
        .to_string()
}

/// Waits until `done` holds for the service's live tasks and the service.
async fn wait_for(
    client: &mut Client,
    what: &str,
    done: impl Fn(&[Value], &Value) -> bool,
) -> (Vec<Value>, Value) {
    let deadline = Instant::now() + WAIT;
    loop {
        let tasks = live_tasks(client).await;
        let service = describe_service(client).await;
        if done(&tasks, &service) {
            return (tasks, service);
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: service {service:#}\ntasks {tasks:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn steady_on(revision: &'static str) -> impl Fn(&[Value], &Value) -> bool {
    move |tasks, service| {
        let deployments = service["deployments"].as_array().map_or(0, Vec::len);
        let run = running(tasks);
        deployments == 1
            && service["deployments"][0]["rolloutState"] == "COMPLETED"
            && run.len() == 3
            && tasks.len() == 3
            && run.iter().all(|t| revision_of(t) == revision)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_service_keeps_three_replicas_replaces_a_killed_container_and_rolls_at_50_200() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = start("svc").await else {
        return;
    };
    let image = n.image.clone();
    register_web(&mut n, &image, "1").await;
    let endpoint = n.endpoint();

    // create-service as an ECS tutorial writes it, waited on by the CLI.
    let created = orca(
        &endpoint,
        &[
            "create-service", "--service-name", "web", "--task-definition", "web:1",
            "--desired-count", "3", "--launch-type", "FARGATE",
            "--network-configuration",
            "awsvpcConfiguration={subnets=[subnet-0a1b2c],securityGroups=[sg-1],assignPublicIp=DISABLED}",
            "--wait",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}\n{}", created.stdout, created.stderr);
    let (tasks, service) = wait_for(&mut n.client, "3 replicas of web:1", steady_on("1")).await;
    assert_eq!(service["runningCount"], 3, "{service:#}");
    let deployment_id = service["deployments"][0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    for t in &tasks {
        assert_eq!(t["group"], "service:web", "{t:#}");
        assert_eq!(t["startedBy"], deployment_id.as_str(), "{t:#}");
        let ip = t["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
            .as_str()
            .unwrap_or_default();
        assert!(ip.starts_with("198.18."), "a real address: {t:#}");
    }

    // SIGKILL one container through containerd, behind orca's back.
    let victim = tasks[0].clone();
    let victim_arn = victim["taskArn"].as_str().unwrap().to_string();
    let runtime_id = victim["containers"][0]["runtimeId"]
        .as_str()
        .expect("runtimeId")
        .to_string();
    n.kill_container(&runtime_id).await.expect("kill");
    let (after, _) = wait_for(&mut n.client, "a replacement", |tasks, service| {
        steady_on("1")(tasks, service) && tasks.iter().all(|t| t["taskArn"] != victim_arn.as_str())
    })
    .await;
    assert_eq!(after.len(), 3);
    let killed = wait_stopped(&mut n.client, "default", &victim_arn, WAIT)
        .await
        .expect("the killed task stops");
    assert_eq!(killed["stopCode"], "EssentialContainerExited", "{killed:#}");
    assert_eq!(killed["containers"][0]["exitCode"], 137, "{killed:#}");

    // A rolling update at 50/200: never fewer than ceil(50% of 3) = 2
    // running tasks wanted running, while the CLI follows it.
    register_web(&mut n, &image, "2").await;
    let endpoint2 = endpoint.clone();
    let update = tokio::spawn(async move {
        orca(
            &endpoint2,
            &[
                "update-service",
                "--service",
                "web",
                "--task-definition",
                "web:2",
                "--deployment-configuration",
                "minimumHealthyPercent=50,maximumPercent=200",
                "--wait",
            ],
        )
        .await
    });
    let deadline = Instant::now() + WAIT;
    let mut fewest = usize::MAX;
    let mut most = 0;
    let mut looks = 0;
    loop {
        let tasks = live_tasks(&mut n.client).await;
        let service = describe_service(&mut n.client).await;
        let run = running(&tasks).len();
        fewest = fewest.min(run);
        most = most.max(tasks.len());
        looks += 1;
        assert!(
            run >= 2,
            "fewer than the minimum running during the update: {tasks:#?}"
        );
        assert!(
            tasks.len() <= 6,
            "more than maximumPercent allows: {tasks:#?}"
        );
        if steady_on("2")(&tasks, &service) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update did not complete: {service:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let update = update.await.expect("the CLI");
    assert_eq!(update.code, 0, "{}\n{}", update.stdout, update.stderr);
    assert!(
        looks > 3 && fewest >= 2 && most >= 3,
        "{looks} {fewest} {most}"
    );
    let service = describe_service(&mut n.client).await;
    assert_eq!(
        service["deployments"][0]["taskDefinition"]
            .as_str()
            .unwrap_or_default()
            .rsplit(':')
            .next(),
        Some("2"),
        "{service:#}"
    );

    // Scale to zero and delete: every container goes.
    let deleted = orca(
        &endpoint,
        &["delete-service", "--service", "web", "--force"],
    )
    .await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    wait_for(&mut n.client, "the service drained", |tasks, _| {
        tasks.is_empty()
    })
    .await;
    let deadline = Instant::now() + WAIT;
    while !n.runtime_list().await.is_empty() {
        assert!(
            Instant::now() < deadline,
            "containers left: {:?}",
            n.runtime_list().await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_unpullable_and_unhealthy_revisions_trip_the_breaker_and_roll_back() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = start("svcbad").await else {
        return;
    };
    let image = n.image.clone();
    register_web(&mut n, &image, "1").await;
    let endpoint = n.endpoint();
    let created = orca(
        &endpoint,
        &[
            "create-service",
            "--service-name",
            "web",
            "--task-definition",
            "web:1",
            "--desired-count",
            "3",
            "--deployment-configuration",
            "deploymentCircuitBreaker={enable=true,rollback=true}",
            "--wait",
        ],
    )
    .await;
    assert_eq!(created.code, 0, "{}\n{}", created.stdout, created.stderr);

    let host = image.split('/').next().unwrap_or_default().to_string();
    register_web(&mut n, &format!("{host}/orca/nothing:here"), "2").await;
    let failed = orca(
        &endpoint,
        &[
            "update-service", "--service", "web", "--task-definition", "web:2",
            "--deployment-configuration",
            "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}",
            "--wait",
        ],
    )
    .await;
    assert_ne!(failed.code, 0, "the CLI reports the failed rollout");
    assert!(
        failed.stderr.contains("failed"),
        "{}\n{}",
        failed.stdout,
        failed.stderr
    );

    // It ends on the old revision with every replica running.
    let (_, service) = wait_for(&mut n.client, "the rollback to web:1", |tasks, service| {
        steady_on("1")(tasks, service)
    })
    .await;
    let events = service["events"].to_string();
    assert!(
        events.contains("deployment failed: tasks failed to start")
            && events.contains("rolling back to web:1"),
        "{events}"
    );
    // The failed tasks stopped as tasks that could not pull their image.
    let stopped = ecs(
        &mut n.client,
        "ListTasks",
        json!({"serviceName": "web", "desiredStatus": "STOPPED"}),
    )
    .await
    .expect("list-tasks");
    let arns = stopped["taskArns"].as_array().cloned().unwrap_or_default();
    assert!(
        arns.len() >= 3,
        "at least the breaker's threshold failed: {stopped:#}"
    );
    let out = ecs(&mut n.client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe-tasks");
    let failed_to_start = out["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["stopCode"] == "TaskFailedToStart")
        .count();
    assert!(failed_to_start >= 3, "{out:#}");

    // A revision whose health check fails: its tasks run, go UNHEALTHY,
    // are replaced ("Task failed container health checks"), trip the
    // breaker, and the service rolls back to web:1 again.
    let sick = json!({
        "name": "app", "image": image, "memory": 32, "stopTimeout": 2,
        "environment": [{"name": "VERSION", "value": "3"}],
        "command": ["sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"],
        "healthCheck": {"command": ["CMD-SHELL", "echo sick; exit 1"], "interval": 5, "timeout": 2, "retries": 1}
    });
    n.register("web", vec![sick]).await;
    let failed = orca(
        &endpoint,
        &[
            "update-service", "--service", "web", "--task-definition", "web:3",
            "--deployment-configuration",
            "minimumHealthyPercent=50,maximumPercent=200,deploymentCircuitBreaker={enable=true,rollback=true}",
            "--wait",
        ],
    )
    .await;
    assert_ne!(failed.code, 0, "{}\n{}", failed.stdout, failed.stderr);
    let (_, service) = wait_for(
        &mut n.client,
        "the second rollback to web:1",
        |tasks, service| steady_on("1")(tasks, service),
    )
    .await;
    let events = service["events"].to_string();
    assert_eq!(events.matches("deployment failed").count(), 2, "{events}");
    let stopped = ecs(
        &mut n.client,
        "ListTasks",
        json!({"serviceName": "web", "desiredStatus": "STOPPED"}),
    )
    .await
    .expect("list-tasks");
    let arns = stopped["taskArns"].as_array().cloned().unwrap_or_default();
    let out = ecs(&mut n.client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe-tasks");
    let unhealthy: Vec<&Value> = out["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["stoppedReason"] == "Task failed container health checks")
        .collect();
    assert!(unhealthy.len() >= 3, "{out:#}");
    let c = &unhealthy[0]["containers"][0];
    assert_eq!(c["healthStatus"], "UNHEALTHY", "{c:#}");
    assert_eq!(c["healthCheckExitCode"], 1, "{c:#}");
    assert!(
        c["healthCheckOutput"]
            .as_str()
            .unwrap_or_default()
            .contains("sick"),
        "{c:#}"
    );

    let deleted = orca(
        &endpoint,
        &["delete-service", "--service", "web", "--force"],
    )
    .await;
    assert_eq!(deleted.code, 0, "{}", deleted.stderr);
    wait_for(&mut n.client, "the service drained", |tasks, _| {
        tasks.is_empty()
    })
    .await;
    n.finish().await;
}

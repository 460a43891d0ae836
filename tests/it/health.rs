//! Container health checks on real parts (the rig of `containerd_node.rs`:
//! in-process controller and agent, containerd and runc, a network
//! namespace per task, busybox from a local registry): the agent execs
//! each check in the running container, and describe-tasks shows
//! healthStatus on task and containers with the last check's output and
//! exit code (`healthCheckOutput`, `healthCheckExitCode`).
//!
//! ECS's validation holds (interval ≥ 5 s, timeout ≥ 2 s), so these use 5 s
//! intervals; the scenarios of one test run side by side.

use std::cell::RefCell;
use std::time::Duration;

use orca_tests::agents::{container_named, wait_for_task, wait_running, wait_stopped};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::containerd_node::Node;
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(90);

fn with_check(mut container: Value, check: Value) -> Value {
    container["healthCheck"] = check;
    container
}

fn health(task: &Value, container: &str) -> String {
    container_named(task, container)["healthStatus"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

fn output(task: &Value, container: &str) -> String {
    container_named(task, container)["healthCheckOutput"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

async fn stop_and_wait(n: &mut Node, arn: &str) {
    orca_tests::agents::ecs(
        &mut n.client,
        "StopTask",
        json!({"cluster": "default", "task": arn}),
    )
    .await
    .expect("stop-task");
    wait_stopped(&mut n.client, "default", arn, WAIT)
        .await
        .expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_health_checks_on_containerd() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("health").await.expect("setup") else {
        return;
    };
    let failing = with_check(
        n.container("app", "exec sleep 3600"),
        json!({"command": ["CMD-SHELL", "echo not ready; exit 1"], "interval": 5, "timeout": 2, "retries": 2}),
    );
    n.register("hc-failing", vec![failing]).await;
    // Checks fail until the file appears (after 12 s); retries 1 would make
    // the first failure UNHEALTHY, were it not in the start period.
    let starting = with_check(
        n.container("app", "sleep 12; touch /tmp/ready; exec sleep 3600"),
        json!({"command": ["CMD-SHELL", "test -f /tmp/ready && echo ready"], "interval": 5, "timeout": 2, "retries": 1, "startPeriod": 60}),
    );
    n.register("hc-starting", vec![starting]).await;
    let slow = with_check(
        n.container("app", "exec sleep 3600"),
        json!({"command": ["CMD-SHELL", "sleep 10"], "interval": 5, "timeout": 2, "retries": 1}),
    );
    n.register("hc-slow", vec![slow]).await;
    let failing = n.run(json!({"taskDefinition": "hc-failing"})).await;
    let starting = n.run(json!({"taskDefinition": "hc-starting"})).await;
    let slow = n.run(json!({"taskDefinition": "hc-slow"})).await;
    let mut running_at = Vec::new();
    for arn in [&failing, &starting, &slow] {
        let t = wait_running(&mut n.client, "default", arn, WAIT)
            .await
            .expect("running");
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        assert_eq!(t["healthStatus"], "UNKNOWN", "no verdict yet: {t:#}");
        running_at.push(Instant::now());
    }

    // A failing check: the first failure is shown (output, exit code) while
    // the status stays UNKNOWN; UNHEALTHY only after `retries` (2) failures.
    let seen_unknown_failure = RefCell::new(false);
    let t = wait_for_task(&mut n.client, "default", &failing, WAIT, |t| {
        let app = container_named(t, "app");
        if health(t, "app") == "UNKNOWN" && app["healthCheckExitCode"] == 1 {
            *seen_unknown_failure.borrow_mut() = true;
        }
        health(t, "app") == "UNHEALTHY"
    })
    .await
    .expect("UNHEALTHY");
    assert!(
        *seen_unknown_failure.borrow(),
        "one failure did not make it UNHEALTHY"
    );
    assert!(
        running_at[0].elapsed() >= Duration::from_secs(9),
        "UNHEALTHY only after 2 checks 5 s apart: {t:#}"
    );
    assert_eq!(t["healthStatus"], "UNHEALTHY", "{t:#}");
    let app = container_named(&t, "app");
    assert_eq!(app["healthCheckExitCode"], 1, "{t:#}");
    assert_eq!(output(&t, "app").trim(), "not ready", "{t:#}");
    assert_eq!(t["lastStatus"], "RUNNING", "health does not stop a task");

    // Failures within the start period do not count; the first pass makes
    // it HEALTHY at once, well before the start period ends.
    let seen_unhealthy = RefCell::new(false);
    let t = wait_for_task(&mut n.client, "default", &starting, WAIT, |t| {
        if health(t, "app") == "UNHEALTHY" {
            *seen_unhealthy.borrow_mut() = true;
        }
        health(t, "app") == "HEALTHY"
    })
    .await
    .expect("HEALTHY");
    assert!(!*seen_unhealthy.borrow(), "a start-period failure counted");
    assert!(
        running_at[1].elapsed() < Duration::from_secs(60),
        "HEALTHY within the start period"
    );
    assert_eq!(t["healthStatus"], "HEALTHY", "{t:#}");
    assert_eq!(container_named(&t, "app")["healthCheckExitCode"], 0);
    assert_eq!(output(&t, "app").trim(), "ready", "{t:#}");

    // A check past its timeout (sleep 10, timeout 2) is a failure, with no
    // exit code; retries 1 makes it UNHEALTHY at the first one.
    let t = wait_for_task(&mut n.client, "default", &slow, WAIT, |t| {
        health(t, "app") == "UNHEALTHY"
    })
    .await
    .expect("UNHEALTHY by timeout");
    let app = container_named(&t, "app");
    assert!(app.get("healthCheckExitCode").is_none(), "{t:#}");
    assert!(output(&t, "app").contains("timeout"), "{t:#}");
    assert!(
        running_at[2].elapsed() < Duration::from_secs(30),
        "the check was cut at its timeout: {t:#}"
    );

    for arn in [&failing, &starting, &slow] {
        stop_and_wait(&mut n, arn).await;
    }
    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_depends_on_healthy_on_containerd() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("healthdep").await.expect("setup") else {
        return;
    };
    // db turns healthy once /tmp/ready exists (after 8 s); app depends on it.
    let db = with_check(
        n.container("db", "sleep 8; touch /tmp/ready; exec sleep 3600"),
        json!({"command": ["CMD", "test", "-f", "/tmp/ready"], "interval": 5, "timeout": 2, "retries": 10}),
    );
    let mut app = n.container("app", "exec sleep 3600");
    app["dependsOn"] = json!([{"containerName": "db", "condition": "HEALTHY"}]);
    n.register("hc-deps", vec![db, app]).await;
    let arn = n.run(json!({"taskDefinition": "hc-deps"})).await;
    // Every describe is one report: app must never run before db is HEALTHY.
    let early = RefCell::new(None::<Value>);
    let waited = RefCell::new(false);
    let t = wait_for_task(&mut n.client, "default", &arn, WAIT, |t| {
        let app_status = &container_named(t, "app")["lastStatus"];
        let db_running = container_named(t, "db")["lastStatus"] == "RUNNING";
        if app_status == "RUNNING" && health(t, "db") != "HEALTHY" {
            early.borrow_mut().get_or_insert(t.clone());
        }
        if db_running && app_status == "PENDING" {
            *waited.borrow_mut() = true;
        }
        t["lastStatus"] == "RUNNING" || t["lastStatus"] == "STOPPED"
    })
    .await
    .expect("running");
    assert!(
        early.borrow().is_none(),
        "app ran before db was HEALTHY: {:#}",
        early.borrow().clone().unwrap_or_default()
    );
    assert!(*waited.borrow(), "app waited while db was running: {t:#}");
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    assert_eq!(health(&t, "db"), "HEALTHY", "{t:#}");
    assert_eq!(health(&t, "app"), "UNKNOWN", "app has no check: {t:#}");
    assert_eq!(t["healthStatus"], "HEALTHY", "{t:#}");
    stop_and_wait(&mut n, &arn).await;
    n.assert_clean().await;
    n.finish().await;
}

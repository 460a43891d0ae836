//! Host ports decided on the leader, end to end through the controller and
//! two in-process agents on the fake runtime: a bridge-mode task with a
//! static hostPort and a dynamic one lands at most once per instance
//! (RESOURCE:PORTS for the third), describe-tasks shows its
//! networkBindings with the dynamic port in ECS's ephemeral range,
//! describe-container-instances shows the ports in use, and a stopped
//! task's ports are free again.

use std::time::Duration;

use orca_tests::agents::{
    ecs, wait_for_instances, wait_running, wait_stopped, FakeNode, FAKE_IMAGE,
};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

use crate::support::register;

const WAIT: Duration = Duration::from_secs(30);

fn bindings(task: &Value) -> Vec<Value> {
    task["containers"][0]["networkBindings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

fn ports_in_use(instance: &Value) -> Vec<String> {
    instance["remainingResources"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == "PORTS"))
        .and_then(|p| p["stringSetValue"].as_array())
        .map(|v| {
            v.iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn static_and_dynamic_host_ports_are_placed_shown_and_freed() {
    let controller = InProcessController::start().await.expect("controller");
    let mut nodes = Vec::new();
    for _ in 0..2 {
        nodes.push(
            FakeNode::start(&controller.endpoint(), |_| {})
                .await
                .expect("agent"),
        );
    }
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .expect("instances");
    let td = json!({"family": "ports", "networkMode": "bridge", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 3600"],
         "portMappings": [{"containerPort": 80, "hostPort": 8080}, {"containerPort": 81}]}]});
    register(&mut client, &td.to_string())
        .await
        .expect("register");

    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ports", "count": 3}),
    )
    .await
    .expect("run-task");
    let tasks = out["tasks"].as_array().cloned().unwrap_or_default();
    assert_eq!(tasks.len(), 2, "{out:#}");
    let failures = out["failures"].as_array().cloned().unwrap_or_default();
    assert_eq!(failures.len(), 1, "{out:#}");
    assert_eq!(failures[0]["reason"], "RESOURCE:PORTS", "{out:#}");
    let instances: std::collections::BTreeSet<&str> = tasks
        .iter()
        .filter_map(|t| t["containerInstanceArn"].as_str())
        .collect();
    assert_eq!(instances.len(), 2, "one task per instance: {out:#}");

    let mut arns = Vec::new();
    for task in &tasks {
        let arn = task["taskArn"].as_str().expect("taskArn").to_string();
        let running = wait_running(&mut client, "default", &arn, WAIT)
            .await
            .expect("running");
        assert_eq!(running["lastStatus"], "RUNNING", "{running:#}");
        let b = bindings(&running);
        assert_eq!(b.len(), 2, "{running:#}");
        assert_eq!(
            b[0],
            json!({"bindIP": "0.0.0.0", "containerPort": 80, "hostPort": 8080, "protocol": "tcp"})
        );
        assert_eq!(b[1]["bindIP"], "0.0.0.0");
        assert_eq!(b[1]["containerPort"], 81);
        assert_eq!(b[1]["protocol"], "tcp");
        let dynamic = b[1]["hostPort"].as_u64().expect("hostPort");
        assert!((32768..=60999).contains(&dynamic), "{running:#}");
        arns.push((arn, dynamic));
    }

    // The instances show the ports their tasks hold.
    let described = wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .expect("instances");
    for instance in &described {
        let in_use = ports_in_use(instance);
        // The agent's reserved port (sshd's, its default) and the task's two.
        assert!(in_use.contains(&"22".to_string()), "{instance:#}");
        assert!(in_use.contains(&"8080".to_string()), "{instance:#}");
        assert_eq!(in_use.len(), 3, "{instance:#}");
    }

    // A stopped task's ports are free again: a new task takes its place.
    let (stopped_arn, _) = &arns[0];
    ecs(
        &mut client,
        "StopTask",
        json!({"task": stopped_arn, "reason": "free the port"}),
    )
    .await
    .expect("stop-task");
    wait_stopped(&mut client, "default", stopped_arn, WAIT)
        .await
        .expect("stopped");
    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ports", "count": 1}),
    )
    .await
    .expect("run-task");
    assert_eq!(out["tasks"].as_array().map(Vec::len), Some(1), "{out:#}");
    assert_eq!(out["failures"].as_array().map(Vec::len), Some(0), "{out:#}");
    let replacement = &out["tasks"][0];
    let b = bindings(replacement);
    assert_eq!(b[0]["hostPort"], 8080, "{replacement:#}");
    // Round-robin: not the dynamic port just freed on that instance.
    let freed = arns[0].1;
    if tasks[0]["containerInstanceArn"] == replacement["containerInstanceArn"] {
        assert_ne!(b[1]["hostPort"].as_u64(), Some(freed), "{replacement:#}");
    }

    for node in nodes {
        node.stop().await;
    }
}

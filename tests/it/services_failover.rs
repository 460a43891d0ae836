//! A leader killed (SIGKILL) in the middle of a service deployment: the new
//! leader carries the same deployment on to completion from the replicated
//! state, starts no task twice and loses no progress.

use std::collections::BTreeSet;
use std::time::Duration;

use orca_tests::agents::{ecs, wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::cluster::ControllerCluster;
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{register, Client, HEAVY};

const WAIT: Duration = Duration::from_secs(60);

async fn service(client: &mut Client) -> Value {
    ecs(client, "DescribeServices", json!({"services": ["web"]}))
        .await
        .map(|out| out["services"][0].clone())
        .unwrap_or(Value::Null)
}

/// Every task the deployment ever started, running or stopped.
async fn tasks_of(client: &mut Client, deployment: &str) -> BTreeSet<String> {
    let mut all = BTreeSet::new();
    for status in ["RUNNING", "STOPPED"] {
        let out = ecs(
            client,
            "ListTasks",
            json!({"startedBy": deployment, "desiredStatus": status}),
        )
        .await
        .expect("list-tasks");
        for arn in out["taskArns"].as_array().cloned().unwrap_or_default() {
            all.insert(arn.as_str().unwrap_or_default().to_string());
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deployment_survives_a_leader_kill_without_double_starts() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::builder(3)
        .extra_args([
            "--service-healthy-after-secs",
            "2",
            "--service-tick-secs",
            "0.1",
        ])
        .start()
        .await
        .expect("cluster");
    let leader = cluster.wait_leader(WAIT).await.expect("leader");
    let endpoints: Vec<String> = (1..=3).map(|i| cluster.endpoint(i)).collect();
    let mut nodes = Vec::new();
    for zone in ["a", "b", "c"] {
        let all = endpoints.clone();
        nodes.push(
            FakeNode::start(&endpoints[0], |c| {
                c.endpoints = all;
                c.availability_zone = Some(zone.to_string());
            })
            .await
            .expect("agent"),
        );
    }
    let follower = leader % cluster.len() + 1;
    let mut client = cluster.ecs_client(follower).await.expect("client");
    wait_for_instances(&mut client, "default", 3, WAIT)
        .await
        .expect("instances");
    for _ in 0..2 {
        let td = json!({"family": "web", "containerDefinitions": [
            {"name": "app", "image": FAKE_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 3600"]}]});
        register(&mut client, &td.to_string())
            .await
            .expect("register");
    }
    ecs(
        &mut client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 6,
               "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 150}}),
    )
    .await
    .expect("create-service");
    let deadline = Instant::now() + WAIT;
    loop {
        let s = service(&mut client).await;
        if s["runningCount"] == 6 && s["deployments"][0]["rolloutState"] == "COMPLETED" {
            break;
        }
        assert!(Instant::now() < deadline, "never steady: {s:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let updated = ecs(
        &mut client,
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await
    .expect("update-service");
    let deployment = updated["service"]["deployments"][0]["id"]
        .as_str()
        .expect("id")
        .to_string();
    // Kill the leader once the deployment has started tasks but is not done
    // (50/150 of 6: three new tasks at a time, each healthy after 2 s).
    let deadline = Instant::now() + WAIT;
    loop {
        let started = tasks_of(&mut client, &deployment).await.len();
        if started > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the deployment never started a task"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mid = service(&mut client).await;
    assert_eq!(
        mid["deployments"][0]["rolloutState"], "IN_PROGRESS",
        "{mid:#}"
    );
    let former = cluster.leader_record(leader).await.expect("leader record");
    cluster.kill9_and_check_gone(leader).await.expect("kill -9");
    cluster
        .wait_successor(former, WAIT)
        .await
        .expect("successor");

    let deadline = Instant::now() + WAIT;
    let done = loop {
        let s = service(&mut client).await;
        if s["runningCount"] == 6
            && s["deployments"].as_array().map(Vec::len) == Some(1)
            && s["deployments"][0]["rolloutState"] == "COMPLETED"
        {
            break s;
        }
        assert!(
            Instant::now() < deadline,
            "the deployment never completed: {s:#}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        done["deployments"][0]["id"],
        deployment.as_str(),
        "the same deployment finished"
    );
    let started = tasks_of(&mut client, &deployment).await;
    assert_eq!(
        started.len(),
        6,
        "no task of the deployment was started twice: {started:?}"
    );
    for node in nodes {
        node.stop().await;
    }
}

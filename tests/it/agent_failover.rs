//! Agents and a three-controller cluster: an agent that knows only a
//! follower registers through it and is redirected to the leader for its
//! session; when the leader is killed, the agent finds the new leader and
//! tasks keep running to completion.

use std::time::Duration;

use orca_tests::agents::{ecs, wait_for_instances, wait_stopped, FakeNode, FAKE_IMAGE};
use orca_tests::cluster::ControllerCluster;
use serde_json::json;

use crate::support::{register, HEAVY};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_agent_follows_the_leader_through_a_failover() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_loopback(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    // Nodes are numbered 1..=3: the next one after the leader, wrapping.
    let follower = leader % cluster.len() + 1;
    assert_ne!(follower, leader);
    let endpoint = cluster.endpoint(follower);
    let node = FakeNode::start(&endpoint, |c| c.endpoints = vec![endpoint.clone()])
        .await
        .unwrap();
    let mut client = cluster.ecs_client(follower).await.unwrap();
    wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .unwrap();
    let td = json!({"family": "fo", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 0.2; exit 3"]}]});
    register(&mut client, &td.to_string()).await.unwrap();
    let out = ecs(&mut client, "RunTask", json!({"taskDefinition": "fo"}))
        .await
        .unwrap();
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let t = wait_stopped(&mut client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["containers"][0]["exitCode"], 3, "{t:#}");

    // The leader's own word, before it dies: a successor must lead in a
    // later term.
    let former = cluster.leader_record(leader).await.unwrap();
    cluster.kill9_and_check_gone(leader).await.unwrap();
    cluster.wait_successor(former, WAIT).await.unwrap();
    // A task placed after the failover runs on the same agent, which found
    // the new leader on its own (it knows only `follower`'s address).
    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "fo", "overrides": {
        "containerOverrides": [{"name": "app", "command": ["sh", "-c", "sleep 0.2; exit 4"]}]}}),
    )
    .await
    .unwrap();
    let arn = out["tasks"][0]["taskArn"].as_str().unwrap().to_string();
    let t = wait_stopped(&mut client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["containers"][0]["exitCode"], 4, "{t:#}");
    let instances = wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .unwrap();
    assert_eq!(instances[0]["agentConnected"], true);
    node.stop().await;
}

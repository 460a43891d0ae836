//! The leader decides: RunTask through a follower is validated there and
//! placed by the leader's plan applier, with ECS's constraints, strategies
//! and failures, on instances registered by real agents (fake runtime).

use std::time::Duration;

use orca_tests::agents::{ecs, wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::cluster::ControllerCluster;
use serde_json::json;

use crate::support::{register, HEAVY};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_never_places_and_the_leader_applies_its_plans() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::start_loopback(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let followers: Vec<usize> = (1..=3).filter(|i| *i != leader).collect();
    let follower = followers[0];
    let endpoints: Vec<String> = (1..=3).map(|i| cluster.endpoint(i)).collect();
    let mut nodes = Vec::new();
    for zone in ["a", "b"] {
        let endpoints = endpoints.clone();
        let node = FakeNode::start(&cluster.endpoint(follower), move |c| {
            c.endpoints = endpoints;
            c.attributes
                .insert("ecs.availability-zone".to_string(), zone.to_string());
        })
        .await
        .unwrap();
        nodes.push(node);
    }
    let mut client = cluster.ecs_client(follower).await.unwrap();
    wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .unwrap();
    let td = json!({"family": "placed", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 30"]}]});
    register(&mut client, &td.to_string()).await.unwrap();
    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "placed", "count": 4,
               "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}]}),
    )
    .await
    .unwrap();
    let tasks = out["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 4, "{out:#}");
    let mut per_instance = std::collections::BTreeMap::<String, usize>::new();
    for t in tasks {
        *per_instance
            .entry(t["containerInstanceArn"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert_eq!(
        per_instance.values().copied().collect::<Vec<_>>(),
        vec![2, 2],
        "spread over the two zones: {per_instance:?}"
    );
    // A constraint nothing meets fails with ECS's reason, once.
    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "placed",
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == c"}]}),
    )
    .await
    .unwrap();
    assert_eq!(out["tasks"].as_array().map(Vec::len), Some(0), "{out:#}");
    assert_eq!(out["failures"].as_array().map(Vec::len), Some(1), "{out:#}");
    assert_eq!(
        out["failures"][0]["reason"], "MemberOf placement constraint unsatisfied.",
        "{out:#}"
    );
    assert!(
        out["failures"][0]["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("ruled out 2 container instances"),
        "{out:#}"
    );
    // A bad expression is refused where the call arrived, naming the place.
    let e = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "placed",
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}),
    )
    .await
    .unwrap_err();
    assert!(
        e.message.contains("placementConstraints[0].expression"),
        "{}",
        e.message
    );
    // Only the leader's applier made plans; neither follower did.
    for i in &followers {
        let plans = cluster.members(*i).await.unwrap().plans;
        assert_eq!(plans, 0, "follower {i} made {plans} placement plans");
    }
    let plans = cluster.members(leader).await.unwrap().plans;
    assert!(plans >= 2, "the leader made {plans} plans for two RunTasks");
    for node in nodes {
        node.stop().await;
    }
}

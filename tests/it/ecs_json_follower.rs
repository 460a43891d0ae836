//! ECS's JSON endpoint through followers of a three-controller cluster:
//! writes sent to a follower are forwarded to the leader, reads on another
//! follower see them at once (linearizable), errors keep ECS's shape, and
//! after the leader is killed with SIGKILL the surviving endpoints answer
//! again, never hanging, once a successor leads.

use std::time::{Duration, Instant};

use orca_tests::agents::{FakeNode, FAKE_IMAGE};
use orca_tests::cluster::ControllerCluster;
use orca_tests::ecs_http::{EcsHttpClient, Reply};
use serde_json::{json, Value};

use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);
/// No single call may take longer than this, leaderless or not.
const CALL_LIMIT: Duration = Duration::from_secs(15);

async fn call(client: &mut EcsHttpClient, operation: &str, input: Value) -> Reply {
    let reply = tokio::time::timeout(CALL_LIMIT, client.call(operation, &input))
        .await
        .unwrap_or_else(|_| panic!("{operation} hung for {CALL_LIMIT:?}"))
        .unwrap_or_else(|e| panic!("{operation}: {e:#}"));
    assert!(
        reply.request_id.as_deref().is_some_and(|id| !id.is_empty()),
        "{operation}: no x-amzn-RequestId: {reply:?}"
    );
    reply
}

/// Polls `operation` on `client` until `done` holds for its output.
async fn wait_for(
    client: &mut EcsHttpClient,
    operation: &str,
    input: Value,
    what: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + WAIT;
    loop {
        let reply = call(client, operation, input.clone()).await;
        if reply.status == 200 && done(&reply.body) {
            return reply.body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {WAIT:?}; last answer {reply:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn followers_serve_the_json_protocol_and_forward_writes() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::builder(3)
        .ecs_api(true)
        .start()
        .await
        .expect("cluster");
    let leader = cluster.wait_leader(WAIT).await.expect("leader");
    let writer = leader % 3 + 1;
    let reader = writer % 3 + 1;
    assert!(writer != leader && reader != leader && writer != reader);
    let endpoint = cluster.endpoint(writer);
    let node = FakeNode::start(&endpoint, |c| c.endpoints = vec![endpoint.clone()])
        .await
        .expect("agent");
    let connect = |i: usize| EcsHttpClient::connect(cluster.ecs_api_addr(i).expect("endpoint"));
    let mut to_writer = connect(writer).await.expect("connect");
    let mut to_reader = connect(reader).await.expect("connect");

    // A write to one follower, read at once on the other.
    let registered = call(
        &mut to_writer,
        "RegisterTaskDefinition",
        json!({"family": "fo", "containerDefinitions": [{"name": "app", "image": FAKE_IMAGE,
            "memory": 32, "command": ["sh", "-c", "sleep 0.2; exit 3"]}],
            "tags": [{"key": "team", "value": "edge"}]}),
    )
    .await
    .ok()
    .expect("register through a follower");
    let arn = registered["taskDefinition"]["taskDefinitionArn"]
        .as_str()
        .expect("an ARN")
        .to_string();
    let described = call(
        &mut to_reader,
        "DescribeTaskDefinition",
        json!({"taskDefinition": "fo", "include": ["TAGS"]}),
    )
    .await
    .ok()
    .expect("read on the other follower");
    assert_eq!(described["taskDefinition"]["taskDefinitionArn"], arn);
    assert_eq!(described["tags"], json!([{"key": "team", "value": "edge"}]));
    assert!(
        described["taskDefinition"]["registeredAt"].is_f64(),
        "epoch seconds: {described}"
    );

    // A task run through one follower, followed to its end on the other.
    let listed = wait_for(
        &mut to_reader,
        "ListContainerInstances",
        json!({"status": "ACTIVE"}),
        "the agent registered",
        |o| {
            o["containerInstanceArns"]
                .as_array()
                .is_some_and(|a| a.len() == 1)
        },
    )
    .await;
    wait_for(
        &mut to_reader,
        "DescribeContainerInstances",
        json!({"containerInstances": listed["containerInstanceArns"]}),
        "the agent's session with the leader",
        |o| o["containerInstances"][0]["agentConnected"] == true,
    )
    .await;
    let run = call(&mut to_writer, "RunTask", json!({"taskDefinition": "fo"}))
        .await
        .ok()
        .expect("run-task through a follower");
    assert_eq!(run["failures"], json!([]), "{run}");
    let task = run["tasks"][0]["taskArn"]
        .as_str()
        .expect("a task")
        .to_string();
    let stopped = wait_for(
        &mut to_reader,
        "DescribeTasks",
        json!({"tasks": [task]}),
        "the task stopped",
        |o| o["tasks"][0]["lastStatus"] == "STOPPED",
    )
    .await;
    assert_eq!(
        stopped["tasks"][0]["containers"][0]["exitCode"], 3,
        "{stopped}"
    );
    assert!(stopped["tasks"][0]["stoppedAt"].is_f64(), "{stopped}");

    // Errors keep ECS's shape through a follower, for writes and reads.
    let refused = call(
        &mut to_writer,
        "RunTask",
        json!({"cluster": "nope", "taskDefinition": "fo"}),
    )
    .await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert_eq!(refused.error_type(), Some("ClusterNotFoundException"));
    let refused = call(&mut to_reader, "DescribeTaskDefinition", json!({})).await;
    assert_eq!(refused.status, 400, "{refused:?}");
    assert!(
        refused.body["message"]
            .as_str()
            .unwrap_or("")
            .contains("taskDefinition"),
        "{refused:?}"
    );

    // The leader dies; both survivors' endpoints answer every call (an
    // error while no one leads) and take writes again under a successor.
    let former = cluster.leader_record(leader).await.expect("leader record");
    cluster.kill9_and_check_gone(leader).await.expect("kill");
    for (client, name) in [(&mut to_writer, "w"), (&mut to_reader, "r")] {
        let family = format!("after-{name}");
        wait_for(
            client,
            "RegisterTaskDefinition",
            json!({"family": family, "containerDefinitions": [
                {"name": "app", "image": FAKE_IMAGE, "memory": 32}]}),
            "a write after the failover",
            |o| o["taskDefinition"]["revision"] == 1,
        )
        .await;
    }
    let successor = cluster
        .wait_successor(former, WAIT)
        .await
        .expect("successor");
    assert_ne!(successor, leader);
    let families = call(&mut to_writer, "ListTaskDefinitionFamilies", json!({}))
        .await
        .ok()
        .expect("families");
    assert_eq!(
        families["families"],
        json!(["after-r", "after-w", "fo"]),
        "{families}"
    );
    node.stop().await;
}

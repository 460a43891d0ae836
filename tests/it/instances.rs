//! Container instances as an operator manages them, with several agents on
//! the fake runtime in this process: custom attributes and memberOf on them,
//! DRAINING (no new placements, standalone tasks keep running),
//! deregistration refused while tasks run and forced (they stop with ECS's
//! reason), and ListContainerInstances' status and filter.

use std::time::Duration;

use orca_core::Exception;
use orca_tests::agents::{
    ecs, wait_for_instances, wait_running, wait_stopped, FakeNode, FAKE_IMAGE,
};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

use crate::support::register;

const WAIT: Duration = Duration::from_secs(20);

fn arns(v: &Value, key: &str) -> Vec<String> {
    v[key]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|t| t["containerInstanceArn"].as_str().unwrap_or("").to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attributes_draining_and_deregistration() {
    let controller = InProcessController::start().await.expect("controller");
    let mut nodes = Vec::new();
    for zone in ["a", "b", "c"] {
        let node = FakeNode::start(&controller.endpoint(), |c| {
            c.availability_zone = Some(zone.to_string());
        })
        .await
        .expect("agent");
        nodes.push(node);
    }
    let mut client = controller.client().await.expect("client");
    let instances = wait_for_instances(&mut client, "default", 3, WAIT)
        .await
        .expect("instances");
    let arn_in = |zone: &str| -> String {
        instances
            .iter()
            .find(|i| {
                i["attributes"].as_array().is_some_and(|a| {
                    a.iter()
                        .any(|x| x["name"] == "ecs.availability-zone" && x["value"] == zone)
                })
            })
            .and_then(|i| i["containerInstanceArn"].as_str())
            .unwrap_or_else(|| panic!("no instance in zone {zone}: {instances:#?}"))
            .to_string()
    };
    let (a, b, c) = (arn_in("a"), arn_in("b"), arn_in("c"));
    let td = json!({"family": "ops", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 32, "command": ["sh", "-c", "sleep 300"]}]});
    register(&mut client, &td.to_string())
        .await
        .expect("register");

    // Custom attributes: put, list, and placement by memberOf on them.
    let put = ecs(
        &mut client,
        "PutAttributes",
        json!({"attributes": [{"name": "stack", "value": "prod", "targetType": "container-instance", "targetId": c}]}),
    )
    .await
    .expect("put-attributes");
    assert_eq!(put["attributes"][0]["targetId"], c.as_str(), "{put:#}");
    let listed = ecs(
        &mut client,
        "ListAttributes",
        json!({"targetType": "container-instance", "attributeName": "stack"}),
    )
    .await
    .expect("list-attributes");
    assert_eq!(
        listed["attributes"].as_array().map(Vec::len),
        Some(1),
        "{listed:#}"
    );
    let out = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ops", "count": 2,
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:stack == prod"}]}),
    )
    .await
    .expect("run-task");
    assert_eq!(arns(&out, "tasks"), vec![c.clone(), c.clone()], "{out:#}");
    let filtered = ecs(
        &mut client,
        "ListContainerInstances",
        json!({"filter": "attribute:stack == prod"}),
    )
    .await
    .expect("list with a filter");
    assert_eq!(
        filtered["containerInstanceArns"],
        json!([c.clone()]),
        "{filtered:#}"
    );
    let e = ecs(
        &mut client,
        "ListContainerInstances",
        json!({"filter": "(attribute:stack == prod"}),
    )
    .await
    .expect_err("a bad filter");
    assert_eq!(e.field.as_deref(), Some("filter"), "{e}");

    // A task on a, then a drains: it keeps running, nothing new lands there.
    let first = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ops",
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == a"}]}),
    )
    .await
    .expect("run-task on a");
    assert_eq!(arns(&first, "tasks"), vec![a.clone()], "{first:#}");
    let on_a = first["tasks"][0]["taskArn"]
        .as_str()
        .expect("arn")
        .to_string();
    wait_running(&mut client, "default", &on_a, WAIT)
        .await
        .expect("running");
    let drained = ecs(
        &mut client,
        "UpdateContainerInstancesState",
        json!({"containerInstances": [a.clone(), "nope"], "status": "DRAINING"}),
    )
    .await
    .expect("drain");
    assert_eq!(
        drained["containerInstances"][0]["status"], "DRAINING",
        "{drained:#}"
    );
    assert_eq!(drained["failures"][0]["reason"], "MISSING", "{drained:#}");
    let spread = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ops", "count": 4,
               "placementStrategy": [{"type": "spread", "field": "instanceId"}]}),
    )
    .await
    .expect("run-task while a drains");
    let placed = arns(&spread, "tasks");
    assert_eq!(placed.len(), 4, "{spread:#}");
    assert!(
        !placed.contains(&a),
        "a DRAINING instance got a task: {spread:#}"
    );
    let t = ecs(
        &mut client,
        "DescribeTasks",
        json!({"tasks": [on_a.clone()]}),
    )
    .await
    .expect("describe");
    assert_eq!(
        t["tasks"][0]["lastStatus"], "RUNNING",
        "standalone tasks keep running"
    );
    let only_a = ecs(
        &mut client,
        "RunTask",
        json!({"taskDefinition": "ops",
               "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.availability-zone == a"}]}),
    )
    .await
    .expect("run-task on a while it drains");
    assert_eq!(only_a["failures"][0]["reason"], "DRAINING", "{only_a:#}");
    let draining = ecs(
        &mut client,
        "ListContainerInstances",
        json!({"status": "DRAINING"}),
    )
    .await
    .expect("list DRAINING");
    assert_eq!(draining["containerInstanceArns"], json!([a.clone()]));

    // Deregistration: refused while b runs tasks, then forced.
    let e = ecs(
        &mut client,
        "DeregisterContainerInstance",
        json!({"containerInstance": b}),
    )
    .await
    .expect_err("b runs tasks");
    assert_eq!(e.exception, Exception::InvalidParameterException);
    assert_eq!(e.field.as_deref(), Some("force"), "{e}");
    let on_b: Vec<String> = spread["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["containerInstanceArn"] == b.as_str())
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    assert!(!on_b.is_empty(), "spread put tasks on b: {spread:#}");
    let gone = ecs(
        &mut client,
        "DeregisterContainerInstance",
        json!({"containerInstance": b, "force": true}),
    )
    .await
    .expect("forced deregistration");
    assert_eq!(gone["containerInstance"]["status"], "INACTIVE", "{gone:#}");
    for arn in &on_b {
        let t = wait_stopped(&mut client, "default", arn, WAIT)
            .await
            .expect("stopped");
        assert_eq!(
            t["stoppedReason"], "Container instance deregistration forced by user",
            "{t:#}"
        );
    }
    let listed = ecs(&mut client, "ListContainerInstances", json!({}))
        .await
        .expect("list");
    let listed: Vec<String> =
        serde_json::from_value(listed["containerInstanceArns"].clone()).expect("arns");
    assert!(
        !listed.contains(&b),
        "a deregistered instance is not listed"
    );
    assert!(listed.contains(&a) && listed.contains(&c));
    for node in nodes {
        node.stop().await;
    }
}

/// RegisterContainerInstance with an instance id the agent chose (and saved
/// before registering): registering again with it names the same instance
/// (an agent that crashed before saving the reply leaves no ghost); a
/// malformed id is refused naming the field; the id of a deregistered
/// instance is refused, so its agent chooses a new one.
#[tokio::test]
async fn an_agent_chosen_instance_id_names_one_instance() {
    use orca_api::v1::agent_client::AgentClient;
    use orca_api::v1::AgentJson;
    let controller = InProcessController::start().await.expect("controller");
    let mut client = controller.client().await.expect("client");
    let channel = orca_api::client::channel(&controller.endpoint())
        .await
        .expect("channel");
    let agent = AgentClient::new(channel);
    let id = "0123456789abcdef0123456789abcdef";
    let registration = |instance_id: &str| {
        json!({"cluster": "default", "instanceId": instance_id, "hostname": "h",
               "cpu": 1024, "memory": 512, "attributes": [], "agentVersion": "t",
               "runtimeVersion": "t"})
    };
    let register_as = |instance_id: &'static str| {
        let json = registration(instance_id).to_string();
        let mut agent = agent.clone();
        async move {
            agent
                .register_container_instance(AgentJson { json })
                .await
                .map(|r| serde_json::from_str::<Value>(&r.into_inner().json).expect("json"))
                .map_err(|s| orca_api::error::from_status(&s))
        }
    };
    let first = register_as(id).await.expect("register");
    let arn = first["containerInstanceArn"]
        .as_str()
        .unwrap_or("")
        .to_string();
    assert!(arn.ends_with(id), "{first:#}");
    let again = register_as(id).await.expect("register again");
    assert_eq!(again["containerInstanceArn"], first["containerInstanceArn"]);
    let listed = ecs(&mut client, "ListContainerInstances", json!({}))
        .await
        .expect("list");
    assert_eq!(
        listed["containerInstanceArns"].as_array().map(Vec::len),
        Some(1),
        "one instance: {listed:#}"
    );
    let e = register_as("not-an-id").await.expect_err("malformed");
    assert_eq!(e.exception, Exception::InvalidParameterException);
    assert_eq!(e.field.as_deref(), Some("instanceId"), "{e}");
    ecs(
        &mut client,
        "DeregisterContainerInstance",
        json!({"containerInstance": arn, "force": true}),
    )
    .await
    .expect("deregister");
    let e = register_as(id).await.expect_err("deregistered");
    assert_eq!(e.exception, Exception::ClientException);
    assert_eq!(e.field.as_deref(), Some("instanceId"), "{e}");
}

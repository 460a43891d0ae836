//! Agent loss, with agents on the fake runtime in this process and a TCP
//! proxy between an agent and the controllers to cut it off while it keeps
//! running: a short silence loses nothing; a long one marks the instance
//! disconnected, then records its tasks STOPPED (InfrastructureHealth) with
//! their resources freed, never restarted elsewhere; the agent coming back
//! stops them and they stay stopped. A leader change during the grace
//! re-arms the timers instead of deciding early. (That a loss stops and
//! releases each task once is `apply`'s, tested in the state's own tests.)

use std::time::{Duration, Instant};

use orca_tests::agents::{
    ecs, wait_for_instances, wait_for_task, wait_instance, FakeNode, FAKE_IMAGE,
};
use orca_tests::cluster::ControllerCluster;
use orca_tests::controller::InProcessController;
use orca_tests::proxy::Proxy;
use serde_json::{json, Value};

use crate::support::{register, Client, HEAVY};

const WAIT: Duration = Duration::from_secs(30);

fn sleeper() -> String {
    json!({"family": "lossy", "containerDefinitions": [
        {"name": "app", "image": FAKE_IMAGE, "memory": 64, "command": ["sh", "-c", "sleep 600"]}]})
    .to_string()
}

/// Runs `count` sleepers on the instance `arn`; their ARNs once RUNNING.
async fn run_on(client: &mut Client, arn: &str, count: usize) -> Vec<String> {
    let id = arn.rsplit('/').next().unwrap_or_default();
    let out = ecs(
        client,
        "RunTask",
        json!({"taskDefinition": "lossy", "count": count,
               "placementConstraints": [{"type": "memberOf", "expression": format!("instanceId == {id}")}]}),
    )
    .await
    .expect("run-task");
    let tasks: Vec<String> = out["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    assert_eq!(tasks.len(), count, "{out:#}");
    for t in &tasks {
        wait_for_task(client, "default", t, WAIT, |t| t["lastStatus"] == "RUNNING")
            .await
            .expect("running");
    }
    tasks
}

fn remaining_memory(instance: &Value) -> i64 {
    instance["remainingResources"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == "MEMORY"))
        .and_then(|m| m["integerValue"].as_i64())
        .unwrap_or(-1)
}

fn registered_memory(instance: &Value) -> i64 {
    instance["registeredResources"]
        .as_array()
        .and_then(|r| r.iter().find(|x| x["name"] == "MEMORY"))
        .and_then(|m| m["integerValue"].as_i64())
        .unwrap_or(-2)
}

/// The ARN of the connected instance other than `not`.
fn other_instance(instances: &[Value], not: Option<&str>) -> String {
    instances
        .iter()
        .filter_map(|i| i["containerInstanceArn"].as_str())
        .find(|a| Some(*a) != not)
        .expect("an instance")
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_agent_loses_its_tasks_once_and_gets_them_stopped_when_it_returns() {
    let controller = InProcessController::start_with(|c| {
        c.agent_heartbeat_timeout = Duration::from_millis(1000);
        c.agent_loss_grace = Duration::from_millis(1000);
    })
    .await
    .expect("controller");
    let proxy = Proxy::start(controller.running.addr).await.expect("proxy");
    let quick = |c: &mut orca_agent::AgentConfig| c.heartbeat_interval = Duration::from_millis(200);
    let cut_off = FakeNode::start(&proxy.endpoint(), quick)
        .await
        .expect("agent");
    let mut client = controller.client().await.expect("client");
    let instances = wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .expect("instance");
    let lossy = other_instance(&instances, None);
    let steady = FakeNode::start(&controller.endpoint(), quick)
        .await
        .expect("agent");
    let instances = wait_for_instances(&mut client, "default", 2, WAIT)
        .await
        .expect("instances");
    let safe = other_instance(&instances, Some(&lossy));
    register(&mut client, &sleeper()).await.expect("register");
    let tasks = run_on(&mut client, &lossy, 2).await;
    let elsewhere = run_on(&mut client, &safe, 1).await;

    // A silence shorter than the timeout changes nothing.
    let before = wait_instance(&mut client, &lossy, WAIT, "described", |_| true)
        .await
        .expect("described");
    proxy.cut();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let forwarded = proxy.forwarded();
    proxy.heal();
    // Proof the agent is back: a task placed now runs.
    let probe = run_on(&mut client, &lossy, 1).await;
    assert!(proxy.forwarded() > forwarded, "the agent reconnected");
    let after = wait_instance(&mut client, &lossy, WAIT, "described", |_| true)
        .await
        .expect("described");
    assert_eq!(after["agentConnected"], true);
    for t in &tasks {
        let d = ecs(&mut client, "DescribeTasks", json!({"tasks": [t]}))
            .await
            .expect("describe");
        assert_eq!(d["tasks"][0]["lastStatus"], "RUNNING", "{d:#}");
    }
    assert!(
        after["version"].as_i64() > before["version"].as_i64(),
        "the probe changed the instance"
    );

    // A long silence: disconnected first, then lost.
    let cut_at = Instant::now();
    proxy.cut();
    wait_instance(&mut client, &lossy, WAIT, "disconnected", |i| {
        i["agentConnected"] == false
    })
    .await
    .expect("disconnected");
    let mut all = tasks.clone();
    all.extend(probe);
    for t in &all {
        let d = wait_for_task(&mut client, "default", t, WAIT, |t| {
            t["lastStatus"] == "STOPPED"
        })
        .await
        .expect("lost");
        assert_eq!(d["stopCode"], "InfrastructureHealth", "{d:#}");
        let id = lossy.rsplit('/').next().unwrap_or_default();
        assert_eq!(
            d["stoppedReason"],
            format!("Container instance {id} lost contact with the controllers"),
            "{d:#}"
        );
    }
    // Timeout and grace are 2 s from the last heartbeat, which came at most
    // a heartbeat interval (and some scheduling slack) before the cut.
    assert!(
        cut_at.elapsed() >= Duration::from_millis(1500),
        "tasks were declared lost {:?} after the cut, before the timeout and the grace ran out",
        cut_at.elapsed()
    );
    let lost = wait_instance(&mut client, &lossy, WAIT, "described", |_| true)
        .await
        .expect("described");
    assert_eq!(
        remaining_memory(&lost),
        registered_memory(&lost),
        "{lost:#}"
    );
    assert_eq!(lost["runningTasksCount"], 0, "{lost:#}");
    // Standalone tasks are not restarted elsewhere (ECS); others run on.
    let running = ecs(&mut client, "ListTasks", json!({"family": "lossy"}))
        .await
        .expect("list");
    assert_eq!(running["taskArns"], json!(elsewhere), "{running:#}");
    assert!(
        !cut_off.runtime.running_ids().is_empty(),
        "the cut-off agent still runs its containers"
    );

    // It comes back: it is told they are gone, stops them, and they stay
    // STOPPED with the loss recorded.
    proxy.heal();
    wait_instance(&mut client, &lossy, WAIT, "reconnected", |i| {
        i["agentConnected"] == true
    })
    .await
    .expect("reconnected");
    let deadline = Instant::now() + WAIT;
    while !cut_off.runtime.running_ids().is_empty() {
        assert!(
            Instant::now() < deadline,
            "the returning agent did not stop its lost tasks: {:?}",
            cut_off.runtime.running_ids()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A new task there proves its reports were processed since.
    run_on(&mut client, &lossy, 1).await;
    for t in &all {
        let d = ecs(&mut client, "DescribeTasks", json!({"tasks": [t]}))
            .await
            .expect("describe");
        assert_eq!(d["tasks"][0]["lastStatus"], "STOPPED", "{d:#}");
        assert_eq!(d["tasks"][0]["stopCode"], "InfrastructureHealth", "{d:#}");
    }
    cut_off.stop().await;
    steady.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_leader_change_during_the_grace_rearms_the_timers() {
    let _one = HEAVY.lock().await;
    let mut cluster = ControllerCluster::builder(3)
        .extra_args([
            "--agent-heartbeat-timeout-secs",
            "1",
            "--agent-loss-grace-secs",
            "2",
        ])
        .start()
        .await
        .expect("cluster");
    let leader = cluster.wait_leader(WAIT).await.expect("leader");
    let mut proxies = Vec::new();
    for i in 1..=3 {
        proxies.push(Proxy::start(cluster.addr(i)).await.expect("proxy"));
    }
    let endpoints: Vec<String> = proxies.iter().map(Proxy::endpoint).collect();
    let node = FakeNode::start(&endpoints[0], |c| {
        c.endpoints = endpoints.clone();
        c.heartbeat_interval = Duration::from_millis(200);
    })
    .await
    .expect("agent");
    let survivor = leader % 3 + 1;
    let mut client = cluster.ecs_client(survivor).await.expect("client");
    let instances = wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .expect("instance");
    let arn = other_instance(&instances, None);
    register(&mut client, &sleeper()).await.expect("register");
    let tasks = run_on(&mut client, &arn, 2).await;

    for p in &proxies {
        p.cut();
    }
    wait_instance(&mut client, &arn, WAIT, "disconnected", |i| {
        i["agentConnected"] == false
    })
    .await
    .expect("disconnected");
    // Inside the grace: the leader dies before it decides the loss.
    let former = cluster.leader_record(leader).await.expect("leader record");
    let killed_at = Instant::now();
    cluster.kill9_and_check_gone(leader).await.expect("kill");
    cluster
        .wait_successor(former, WAIT)
        .await
        .expect("successor");
    for t in &tasks {
        let d = wait_for_task(&mut client, "default", t, WAIT, |t| {
            t["lastStatus"] == "STOPPED"
        })
        .await
        .expect("lost under the new leader");
        assert_eq!(d["stopCode"], "InfrastructureHealth", "{d:#}");
    }
    // The new leader counted the agent as heard when it took over: the
    // loss came a full timeout plus grace after the kill, not earlier.
    assert!(
        killed_at.elapsed() >= Duration::from_secs(3),
        "the loss was decided {:?} after the leader change, before the re-armed timers ran out",
        killed_at.elapsed()
    );
    node.stop().await;
}

//! The leader's node map reaching agents (fake runtime and network, in
//! this process): every agent is told every other node's task subnet and
//! address, a disconnected agent's stay, a deregistered one's go, and a
//! restarted agent is told again. What each agent's network was asked is
//! read from the file the fake network writes.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_for_instances, FakeNode};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(20);

/// The `peer <subnet> <address> <mode>` lines the node's fake network last
/// recorded, as (subnet, address).
fn peers(data_dir: &Path) -> BTreeSet<(String, String)> {
    let path = orca_net::fake::FakeNetwork::fabric_file(&data_dir.join("network"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut words = l.strip_prefix("peer ")?.split(' ');
            Some((words.next()?.to_string(), words.next()?.to_string()))
        })
        .collect()
}

fn keep(data_dir: &Path) -> BTreeSet<String> {
    let path = orca_net::fake::FakeNetwork::fabric_file(&data_dir.join("network"));
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("keep ").map(str::to_string))
        .collect()
}

async fn wait_peers(node: &FakeNode, want: &BTreeSet<(String, String)>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let have = peers(node.data_dir.path());
        if &have == want {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "peers of {}: {have:?}, want {want:?}",
            node.data_dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn subnet_of(instance: &Value) -> String {
    instance["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "orca.task-subnet"))
        .and_then(|x| x["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

fn address_of(instance: &Value) -> String {
    instance["attributes"]
        .as_array()
        .and_then(|a| a.iter().find(|x| x["name"] == "orca.node-address"))
        .and_then(|x| x["value"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_agent_learns_every_other_node_and_a_deregistered_one_leaves() {
    let controller = InProcessController::start().await.expect("controller");
    let start = |i: u8| {
        let endpoint = controller.endpoint();
        async move {
            FakeNode::start(&endpoint, move |c| {
                c.overlay = orca_agent::OverlayChoice::Vxlan;
                c.node_address = Some(std::net::Ipv4Addr::new(198, 18, 0, 10 + i));
            })
            .await
            .expect("agent")
        }
    };
    let mut nodes = vec![start(1).await, start(2).await, start(3).await];
    let mut client = controller.client().await.expect("client");
    let instances = wait_for_instances(&mut client, "default", 3, WAIT)
        .await
        .expect("instances");
    let all: Vec<(String, String, String)> = instances
        .iter()
        .map(|i| {
            (
                i["containerInstanceArn"].as_str().unwrap_or("").to_string(),
                subnet_of(i),
                address_of(i),
            )
        })
        .collect();
    let by_address = |a: &str| {
        all.iter()
            .find(|(_, _, addr)| addr == a)
            .cloned()
            .unwrap_or_else(|| panic!("no instance at {a}: {all:?}"))
    };
    let others = |me: &str, gone: &[&str]| -> BTreeSet<(String, String)> {
        all.iter()
            .filter(|(_, _, a)| a != me && !gone.contains(&a.as_str()))
            .map(|(_, s, a)| (s.clone(), a.clone()))
            .collect()
    };
    let addresses = ["198.18.0.11", "198.18.0.12", "198.18.0.13"];
    for (node, me) in nodes.iter().zip(addresses) {
        wait_peers(node, &others(me, &[])).await;
        // Every node's subnet keeps its source address, its own included.
        let subnets: BTreeSet<String> = all.iter().map(|(_, s, _)| s.clone()).collect();
        assert_eq!(keep(node.data_dir.path()), subnets);
    }

    // Node 3's agent goes away: disconnected, its routes stay everywhere.
    let third = nodes.pop().expect("node 3");
    third.stop().await;
    let (arn3, _, _) = by_address("198.18.0.13");
    let deadline = Instant::now() + WAIT;
    loop {
        let d = ecs(
            &mut client,
            "DescribeContainerInstances",
            json!({"containerInstances": [arn3]}),
        )
        .await
        .expect("describe");
        if d["containerInstances"][0]["agentConnected"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "not disconnected: {d:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    for (node, me) in nodes.iter().zip(addresses) {
        wait_peers(node, &others(me, &[])).await;
    }

    // Deregistered: its subnet leaves every other node's routes.
    ecs(
        &mut client,
        "DeregisterContainerInstance",
        json!({"containerInstance": arn3, "force": true}),
    )
    .await
    .expect("deregister");
    for (node, me) in nodes.iter().zip(addresses) {
        wait_peers(node, &others(me, &["198.18.0.13"])).await;
    }

    // A restarted agent (same data dir, same instance) is told again.
    let second = nodes.pop().expect("node 2");
    let dir = second.data_dir.path().to_path_buf();
    second.agent.shutdown.cancel();
    let _ = second.agent.handle.await;
    std::fs::remove_file(orca_net::fake::FakeNetwork::fabric_file(
        &dir.join("network"),
    ))
    .expect("the fake network wrote its file");
    let config = {
        let mut c = orca_tests::agents::test_agent_config(&controller.endpoint(), &dir);
        c.overlay = orca_agent::OverlayChoice::Vxlan;
        c.node_address = Some(std::net::Ipv4Addr::new(198, 18, 0, 12));
        c
    };
    let runtime = orca_runtime::fake::FakeRuntime::new();
    let restarted = orca_agent::start(config, std::sync::Arc::new(runtime), "fake".into());
    let want = others("198.18.0.12", &["198.18.0.13"]);
    let deadline = Instant::now() + WAIT;
    while peers(&dir) != want {
        assert!(
            Instant::now() < deadline,
            "restarted agent's peers: {:?}, want {want:?}",
            peers(&dir)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    restarted.shutdown.cancel();
    let _ = restarted.handle.await;
    drop(second.data_dir);
    for node in nodes {
        node.stop().await;
    }
}

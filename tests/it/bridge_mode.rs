//! `bridge` mode end to end, as Docker and ECS run it: a real agent in a
//! test host, a task of three real containers, each in its own namespace
//! with its own address on the node's bridge. `web` publishes container
//! port 80 on static host port 8080 and `api` on a host port the leader
//! picks from ECS's ephemeral range; both answer at the node's address from
//! another host and from the node itself, through the agent's DNAT, and
//! describe-tasks shows the bindings. `client` reaches `web` by the alias
//! its `links` entry names (/etc/hosts). The published ports survive a
//! SIGKILLed agent and its restart, and go with the task. A bridge-mode
//! service with a registry naming a container port is found by SRV at its
//! node's address and the host port the leader chose, and answers there.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_stopped};
use orca_tests::multinode::MultiNode;
use orca_tests::netns::{block_in, TestNet};
use serde_json::{json, Value};

use crate::support::register;

const WAIT: Duration = Duration::from_secs(60);
const STATIC_PORT: u16 = 8080;

fn httpd(name: &str, image: &str, text: &str, mapping: Value) -> Value {
    json!({"name": name, "image": image, "memory": 32,
           "portMappings": [mapping],
           "command": ["sh", "-c", format!("mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p 80 -h /www")]})
}

/// GET / at `addr` from inside the namespace at `netns`, or the error.
fn fetch(netns: PathBuf, addr: SocketAddr) -> Result<String, String> {
    block_in(&netns, move || async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let exchange = async {
            let mut s = tokio::net::TcpStream::connect(addr).await?;
            s.write_all(b"GET / HTTP/1.0\r\n\r\n").await?;
            let mut body = String::new();
            s.read_to_string(&mut body).await?;
            Ok::<_, std::io::Error>(body)
        };
        match tokio::time::timeout(Duration::from_secs(3), exchange).await {
            Ok(Ok(body)) => Ok(body),
            Ok(Err(e)) => Err(e.to_string()),
            Err(_) => Err("timed out".to_string()),
        }
    })
}

/// Waits until GET / at `addr` from `netns` answers with `text`.
async fn wait_serves(netns: PathBuf, addr: SocketAddr, text: &str, what: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let got = fetch(netns.clone(), addr);
        match &got {
            Ok(body) if body.contains(text) && body.contains("200 OK") => return,
            _ => assert!(
                Instant::now() < deadline,
                "{what}: no answer {text:?} at {addr}: {got:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn container<'a>(task: &'a Value, name: &str) -> &'a Value {
    task["containers"]
        .as_array()
        .and_then(|cs| cs.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no container {name}: {task:#}"))
}

/// The SRV answer for `name` from the resolver at `server`, asked from
/// inside `netns`: each target's address (from the additional section)
/// and port.
fn srv(netns: PathBuf, server: SocketAddr, name: &'static str) -> Vec<SocketAddr> {
    use hickory_proto::rr::{RData, RecordType};
    block_in(&netns, move || async move {
        let Ok(query) = orca_dns::client::query_message(name, RecordType::SRV) else {
            return Vec::new();
        };
        let Ok(reply) = orca_dns::client::query_udp(server, &query).await else {
            return Vec::new();
        };
        reply
            .answers
            .iter()
            .filter_map(|r| match &r.data {
                RData::SRV(srv) => reply.additionals.iter().find_map(|a| match &a.data {
                    RData::A(ip) if a.name == srv.target => {
                        Some(SocketAddr::new(ip.0.into(), srv.port))
                    }
                    _ => None,
                }),
                _ => None,
            })
            .collect()
    })
}

/// A bridge-mode service with a registry naming `api`'s container port,
/// placed on host 1 by its node address: SRV gives host 1's address and the
/// published host port, from host 2's resolver, and the service answers
/// there.
async fn discovered_by_srv(net: &mut MultiNode, image: &str, other: PathBuf) {
    let td = json!({"family": "apisvc", "networkMode": "bridge", "containerDefinitions": [
        httpd("api", image, "bridge-srv", json!({"containerPort": 80}))]});
    register(&mut net.client, &td.to_string())
        .await
        .expect("register");
    ecs(
        &mut net.client,
        "CreateService",
        json!({"serviceName": "api", "taskDefinition": "apisvc", "desiredCount": 1,
               // The node address is an attribute like any other.
               "placementConstraints": [{"type": "memberOf",
                   "expression": format!("attribute:orca.node-address == '{}'", net.net.addr(1))}],
               "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:local:000000000000:service/api",
                                      "containerName": "api", "containerPort": 80}]}),
    )
    .await
    .expect("create-service");
    let resolver: orca_net::Ipv4Subnet = net.agents[1].subnet.parse().expect("subnet");
    let resolver = SocketAddr::new(resolver.gateway().into(), 53);
    let deadline = Instant::now() + WAIT;
    let target = loop {
        let found = srv(other.clone(), resolver, "api.orca.local");
        if let [one] = found.as_slice() {
            break *one;
        }
        if Instant::now() >= deadline {
            let services = ecs(
                &mut net.client,
                "DescribeServices",
                json!({"services": ["api"]}),
            )
            .await
            .unwrap_or_default();
            panic!(
                "no single SRV answer for api.orca.local: {found:?}\n{services:#}\n{}",
                net.log(2)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    // The node running the task, by its instance.
    let listed = ecs(&mut net.client, "ListTasks", json!({"serviceName": "api"}))
        .await
        .expect("list");
    let task = describe(net, listed["taskArns"][0].as_str().unwrap_or_default()).await;
    let host = net
        .agents
        .iter()
        .position(|a| task["containerInstanceArn"] == a.instance_arn.as_str())
        .unwrap_or_else(|| panic!("on no known instance: {task:#}"));
    assert_eq!(host, 0, "placed by the node-address constraint: {task:#}");
    assert_eq!(
        target.ip(),
        std::net::IpAddr::from(net.net.addr(1)),
        "{target}"
    );
    assert!((32768..=60999).contains(&target.port()), "{target}");
    wait_serves(other, target, "bridge-srv", "at the SRV target").await;
    ecs(
        &mut net.client,
        "DeleteService",
        json!({"service": "api", "force": true}),
    )
    .await
    .expect("delete-service");
    let deadline = Instant::now() + WAIT;
    loop {
        let listed = ecs(&mut net.client, "ListTasks", json!({"serviceName": "api"}))
            .await
            .expect("list");
        if listed["taskArns"].as_array().is_none_or(Vec::is_empty) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "api's task still listed: {listed:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn describe(net: &mut MultiNode, arn: &str) -> Value {
    let d = ecs(&mut net.client, "DescribeTasks", json!({"tasks": [arn]}))
        .await
        .expect("describe");
    d["tasks"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_bridge_mode_publishes_host_ports_on_the_node_and_links_containers() {
    let _heavy = crate::support::HEAVY.lock().await;
    let net = MultiNode::start("br", || TestNet::new(2), |_| {}, |_, _| {})
        .await
        .expect("nodes");
    let Some(mut net) = net else { return };
    let image = net.image.clone();
    let client = json!({"name": "client", "image": image, "memory": 32, "essential": false,
        "links": ["web:www"],
        "command": ["sh", "-c", "for i in $(seq 100); do wget -q -O - http://www/ | grep -q bridge-web && exit 0; sleep 0.2; done; exit 3"]});
    let td = json!({"family": "bridged", "networkMode": "bridge", "containerDefinitions": [
        httpd("web", &image, "bridge-web", json!({"containerPort": 80, "hostPort": STATIC_PORT})),
        httpd("api", &image, "bridge-api", json!({"containerPort": 80})),
        client]});
    register(&mut net.client, &td.to_string())
        .await
        .expect("register");
    let arn = net.run_on(1, "bridged").await.expect("start");
    let task = net.wait_running(&arn).await.expect("running");
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");

    // Bindings as describe-tasks shows them: the static port as asked, the
    // dynamic one from ECS's ephemeral range.
    let web = &container(&task, "web")["networkBindings"][0];
    assert_eq!(web["hostPort"], STATIC_PORT, "{task:#}");
    assert_eq!(web["containerPort"], 80, "{task:#}");
    assert_eq!(web["protocol"], "tcp", "{task:#}");
    let api = &container(&task, "api")["networkBindings"][0];
    let dynamic = api["hostPort"]
        .as_u64()
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no dynamic port: {task:#}"));
    assert!((32768..=60999).contains(&dynamic), "{task:#}");
    assert!(
        task["attachments"].as_array().is_none_or(Vec::is_empty),
        "a bridge-mode task has no interface of its own: {task:#}"
    );

    // One namespace per container.
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let prefix = net.agents[0].netns_prefix.clone();
    let mut own: Vec<String> = orca_net::netns::list_namespaces(&prefix)
        .unwrap_or_default()
        .into_iter()
        .filter(|n| n.contains(&id))
        .collect();
    own.sort();
    let want: Vec<String> = (0..3).map(|i| format!("{prefix}-{id}.{i}")).collect();
    assert_eq!(own, want);

    // From the other host and from the node itself, at the node's address.
    let node = net.net.addr(1);
    let other = net.net.host(2).netns_path();
    let itself = net.net.host(1).netns_path();
    for (from, what) in [(&other, "from another host"), (&itself, "from the node")] {
        wait_serves(
            from.clone(),
            SocketAddr::new(node.into(), STATIC_PORT),
            "bridge-web",
            what,
        )
        .await;
        wait_serves(
            from.clone(),
            SocketAddr::new(node.into(), dynamic),
            "bridge-api",
            what,
        )
        .await;
    }

    // `client` found `web` by its link alias and exited 0.
    let deadline = Instant::now() + WAIT;
    loop {
        let task = describe(&mut net, &arn).await;
        let c = container(&task, "client");
        if c["lastStatus"] == "STOPPED" {
            assert_eq!(c["exitCode"], 0, "the link did not resolve: {task:#}");
            break;
        }
        assert!(Instant::now() < deadline, "client still running: {task:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A SIGKILLed agent leaves the ports published; its successor keeps
    // them and the task's namespaces.
    net.kill_agent(1).expect("kill");
    wait_serves(
        other.clone(),
        SocketAddr::new(node.into(), STATIC_PORT),
        "bridge-web",
        "while the agent is down",
    )
    .await;
    net.start_agent(1).expect("restart");
    net.wait_registered().await.expect("registered again");
    wait_serves(
        other.clone(),
        SocketAddr::new(node.into(), dynamic),
        "bridge-api",
        "after the agent's restart",
    )
    .await;
    let task = describe(&mut net, &arn).await;
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    let rules = net.host_leftovers(1).join("\n");
    assert!(
        rules.contains(&format!("--dport {STATIC_PORT} -j DNAT")),
        "{rules}"
    );

    ecs(&mut net.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    wait_stopped(&mut net.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    // The ports go with the task (and the chains with the last task); the
    // routes to the other node stay while both are registered.
    let deadline = Instant::now() + WAIT;
    loop {
        let mut left = net.host_leftovers(1);
        left.retain(|l| l.starts_with("rule ") || l.starts_with("netns "));
        if left.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "left on host 1: {left:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let gone = fetch(other.clone(), SocketAddr::new(node.into(), STATIC_PORT));
    assert!(gone.is_err(), "still answering: {gone:?}");

    discovered_by_srv(&mut net, &image, other).await;
    let problems = net.clean().await;
    assert!(problems.is_empty(), "{problems:?}");
}

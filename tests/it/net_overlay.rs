//! Task networking across real nodes: `orca-agent` processes in test hosts,
//! each with its own bridge, task subnet and containerd namespace, tasks
//! running real containers. Over VXLAN on a routed underlay (the hosts
//! share no link) and over host-gw on a shared link, every task reaches
//! every other by address and sees its peer's own address, a 1,400-byte
//! don't-fragment ping passes, 8 MiB arrive intact; removing the VXLAN
//! forwarding entry or the route breaks the path and an agent restart
//! repairs it; a SIGKILLed agent's routes stay, a deregistered instance's
//! go. Egress reaches a "world" namespace from the node's address, and not
//! at all with egress off; the NAT rules go with the last task.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_stopped};
use orca_tests::multinode::MultiNode;
use orca_tests::netns::TestNet;
use orca_tests::probe;
use serde_json::json;

use crate::support::register;

const PORT: u16 = 8000;
const WAIT: Duration = Duration::from_secs(30);

/// A task of `net`: where it runs, its namespace and address.
struct Probe {
    host: usize,
    arn: String,
    netns: PathBuf,
    ip: Ipv4Addr,
}

async fn start_probes(net: &mut MultiNode) -> Vec<Probe> {
    let td = json!({"family": "probe", "containerDefinitions": [
        {"name": "app", "image": net.image, "memory": 32, "command": ["sh", "-c", "sleep 3600"]}]});
    register(&mut net.client, &td.to_string())
        .await
        .expect("register");
    let mut probes = Vec::new();
    for i in 1..=net.agents.len() {
        let arn = net.run_on(i, "probe").await.expect("start task");
        let task = net.wait_running(&arn).await.expect("running");
        assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
        let ip: Ipv4Addr = task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no address: {task:#}"));
        let netns = net.task_netns(i, &task);
        probe::serve(&netns, SocketAddr::new(ip.into(), PORT)).expect("listening in the task");
        probes.push(Probe {
            host: i,
            arn,
            netns,
            ip,
        });
    }
    probes
}

fn send(from: &Probe, to: &Probe, bytes: usize) -> std::io::Result<String> {
    let (payload, _) = probe::payload(bytes);
    probe::send(
        &from.netns,
        SocketAddr::new(to.ip.into(), PORT),
        payload,
        Duration::from_secs(2),
    )
}

/// `from` reaches `to` with 8 MiB intact and is seen with its own address.
fn reaches(from: &Probe, to: &Probe) {
    let (payload, sha) = probe::payload(8 << 20);
    let answer = probe::send(
        &from.netns,
        SocketAddr::new(to.ip.into(), PORT),
        payload,
        Duration::from_secs(2),
    )
    .unwrap_or_else(|e| panic!("task on host {} to host {}: {e}", from.host, to.host));
    assert_eq!(answer, format!("{} {sha}", from.ip), "no NAT, intact bytes");
}

/// Waits until `from` reaches `to` again.
async fn wait_reaches(from: &Probe, to: &Probe, what: &str) {
    let deadline = Instant::now() + WAIT;
    while send(from, to, 1).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what}: host {} never reached host {}",
            from.host,
            to.host
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `ping -M do -s 1400` from a task: the overlay carries full-size
/// packets without fragmenting them.
fn ping_df(from: &Probe, to: &Probe) {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", from.netns.display()))
        .args(["ping", "-M", "do", "-s", "1400", "-c", "1", "-W", "3"])
        .arg(to.ip.to_string())
        .output()
        .expect("ping (iputils-ping, installed by deploy/install-deps.sh)");
    assert!(
        out.status.success(),
        "1400-byte DF ping {} → {}: {out:?}",
        from.host,
        to.host
    );
}

fn host_text(net: &MultiNode, i: usize, args: &[&str]) -> String {
    let out = net
        .net
        .run_in(i, Command::new(args[0]).args(&args[1..]))
        .expect("run in host");
    assert!(out.status.success(), "{args:?} in host {i}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn wait_host(
    net: &MultiNode,
    i: usize,
    args: &[&str],
    what: &str,
    ok: impl Fn(&str) -> bool,
) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text = host_text(net, i, args);
        if ok(&text) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "host {i}: {what}: {text}\nagent log:\n{}",
            net.log(i)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn mac(subnet: &str) -> String {
    let subnet: orca_net::Ipv4Subnet = subnet.parse().expect("subnet");
    orca_net::overlay::vtep_mac(subnet)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

async fn stop_all(net: &mut MultiNode, probes: &[Probe]) {
    for p in probes {
        ecs(&mut net.client, "StopTask", json!({"task": p.arn}))
            .await
            .expect("stop");
    }
    for p in probes {
        wait_stopped(&mut net.client, "default", &p.arn, WAIT)
            .await
            .expect("stopped");
    }
}

async fn finish(net: MultiNode) {
    let problems = net.clean().await;
    assert!(problems.is_empty(), "cleanup: {problems:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vxlan_joins_tasks_of_three_agents_over_a_routed_underlay() {
    let _heavy = crate::support::HEAVY.lock().await;
    let net = MultiNode::start(
        "vx",
        || TestNet::routed(3),
        |_| {},
        |i, c| {
            // The third node's tasks reach only the cluster.
            c.egress = i != 3;
        },
    )
    .await
    .expect("nodes");
    let Some(mut net) = net else { return };
    let probes = start_probes(&mut net).await;
    for from in &probes {
        for to in &probes {
            if from.host != to.host {
                reaches(from, to);
            }
        }
    }
    ping_df(&probes[0], &probes[1]);
    let link = host_text(&net, 1, &["ip", "-o", "link", "show", "orcavx0"]);
    assert!(
        link.contains("mtu 1450"),
        "the underlay's 1500 less VXLAN's 50: {link}"
    );

    // Egress: the world (the router) sees the node's address; with egress
    // off nothing comes back (the world has no route to task subnets).
    let world = net.net.router_netns_path().expect("a routed net");
    let gateway = net.net.gateway(1);
    probe::serve(&world, SocketAddr::new(gateway.into(), 9000)).expect("world listens");
    let answer = probe::send(
        &probes[0].netns,
        SocketAddr::new(gateway.into(), 9000),
        vec![7],
        Duration::from_secs(3),
    )
    .expect("egress from host 1's task");
    assert!(
        answer.starts_with(&format!("{} ", net.net.addr(1))),
        "masqueraded to the node: {answer}"
    );
    let gateway3 = net.net.gateway(3);
    probe::serve(&world, SocketAddr::new(gateway3.into(), 9000)).expect("world listens");
    assert!(
        probe::send(
            &probes[2].netns,
            SocketAddr::new(gateway3.into(), 9000),
            vec![7],
            Duration::from_secs(3)
        )
        .is_err(),
        "egress is off on host 3"
    );

    // The forwarding entry is the path; an agent restart repairs it.
    let t2 = net.agents[1].subnet.clone();
    let addr2 = net.net.addr(2).to_string();
    host_text(
        &net,
        1,
        &[
            "bridge",
            "fdb",
            "del",
            &mac(&t2),
            "dev",
            "orcavx0",
            "dst",
            &addr2,
            "self",
        ],
    );
    assert!(
        send(&probes[0], &probes[1], 1).is_err(),
        "reached host 2 without its entry"
    );
    net.kill_agent(1).expect("kill agent 1");
    net.start_agent(1).expect("restart agent 1");
    wait_reaches(&probes[0], &probes[1], "after the agent's restart").await;

    // A SIGKILLed agent: disconnected, its node's routes stay and its task
    // is still reached.
    net.kill_agent(3).expect("kill agent 3");
    let arn3 = net.agents[2].instance_arn.clone();
    let deadline = Instant::now() + WAIT;
    loop {
        let d = ecs(
            &mut net.client,
            "DescribeContainerInstances",
            json!({"containerInstances": [arn3]}),
        )
        .await
        .expect("describe");
        if d["containerInstances"][0]["agentConnected"] == false {
            break;
        }
        assert!(Instant::now() < deadline, "never disconnected: {d:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let t3 = net.agents[2].subnet.clone();
    let routes = host_text(&net, 1, &["ip", "route", "show", "proto", "190"]);
    assert!(
        routes.contains(&t3),
        "a disconnected node keeps its route: {routes}"
    );
    reaches(&probes[0], &probes[2]);

    // Deregistered: its subnet leaves the other nodes' routes and entries.
    ecs(
        &mut net.client,
        "DeregisterContainerInstance",
        json!({"containerInstance": arn3, "force": true}),
    )
    .await
    .expect("deregister");
    for i in [1, 2] {
        wait_host(
            &net,
            i,
            &["ip", "route", "show", "proto", "190"],
            "route to the deregistered node",
            |r| !r.contains(&t3),
        )
        .await;
        let fdb = host_text(&net, i, &["bridge", "fdb", "show", "dev", "orcavx0"]);
        assert!(
            !fdb.contains(&mac(&t3)),
            "host {i} keeps a forwarding entry: {fdb}"
        );
    }

    // The last task stopped: no task namespace and no NAT rule left.
    stop_all(&mut net, &probes[..2]).await;
    for i in [1, 2] {
        let deadline = Instant::now() + WAIT;
        loop {
            let left: Vec<String> = net
                .host_leftovers(i)
                .into_iter()
                .filter(|l| l.starts_with("netns") || l.starts_with("rule"))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "host {i} keeps {left:?}\n{}",
                net.log(i)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    finish(net).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_gw_routes_tasks_of_two_agents_on_a_shared_link() {
    let _heavy = crate::support::HEAVY.lock().await;
    let net = MultiNode::start(
        "hg",
        || TestNet::new(2),
        |_| {},
        |_, c| {
            c.overlay = orca_agent::OverlayChoice::HostGw;
        },
    )
    .await
    .expect("nodes");
    let Some(mut net) = net else { return };
    let probes = start_probes(&mut net).await;
    reaches(&probes[0], &probes[1]);
    reaches(&probes[1], &probes[0]);
    ping_df(&probes[1], &probes[0]);
    let t2 = net.agents[1].subnet.clone();
    let routes = host_text(&net, 1, &["ip", "route", "show", "proto", "190"]);
    assert!(
        routes.contains(&format!("{t2} via {}", net.net.addr(2))),
        "a direct route through the peer: {routes}"
    );
    let links = host_text(&net, 1, &["ip", "-o", "link", "show"]);
    assert!(
        !links.contains("orcavx0"),
        "host-gw needs no VXLAN device: {links}"
    );

    // The route is the path; an agent restart repairs it.
    host_text(&net, 1, &["ip", "route", "del", &t2]);
    assert!(
        send(&probes[0], &probes[1], 1).is_err(),
        "reached host 2 without a route"
    );
    net.kill_agent(1).expect("kill agent 1");
    net.start_agent(1).expect("restart agent 1");
    wait_reaches(&probes[0], &probes[1], "after the agent's restart").await;

    stop_all(&mut net, &probes).await;
    finish(net).await;
}

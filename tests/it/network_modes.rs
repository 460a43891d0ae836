//! Network modes on real containerd: a `host` mode task shares the node's
//! network (no namespace of its own; its httpd answers on the node's
//! loopback at the port its mapping names, shown as a network binding),
//! and a `none` mode task has a namespace holding loopback only.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_running, wait_stopped};
use serde_json::json;

use crate::containerd_node::Node;
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(30);

fn free_port() -> u16 {
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// GET / from `addr`, or the error.
fn fetch(addr: SocketAddr) -> std::io::Result<String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n")?;
    let mut body = String::new();
    s.read_to_string(&mut body)?;
    Ok(body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_host_mode_task_serves_on_the_nodes_network() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("modes").await.expect("setup") else {
        return;
    };
    let port = free_port();
    let mut web = n.container(
        "web",
        &format!("mkdir -p /www && echo host-mode > /www/index.html && exec httpd -f -p 127.0.0.1:{port} -h /www"),
    );
    web["portMappings"] = json!([{"containerPort": port}]);
    n.register_definition(
        json!({"family": "hostweb", "networkMode": "host", "containerDefinitions": [web]}),
    )
    .await;
    let arn = n.run(json!({"taskDefinition": "hostweb"})).await;
    let task = wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("running");
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    let binding = &task["containers"][0]["networkBindings"][0];
    assert_eq!(binding["hostPort"], port, "{task:#}");
    assert_eq!(binding["containerPort"], port, "{task:#}");
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();
    let own_ns: Vec<String> = orca_net::netns::list_namespaces(&n.netns_prefix)
        .unwrap_or_default()
        .into_iter()
        .filter(|name| name.ends_with(&id))
        .collect();
    assert!(
        own_ns.is_empty(),
        "a host-mode task has no namespace: {own_ns:?}"
    );
    let addr = SocketAddr::new(Ipv4Addr::LOCALHOST.into(), port);
    let deadline = Instant::now() + WAIT;
    let body = loop {
        match fetch(addr) {
            Ok(body) if body.contains("host-mode") => break body,
            other => {
                assert!(
                    Instant::now() < deadline,
                    "no answer on the node's {addr}: {other:?}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(body.contains("200 OK"), "{body}");

    ecs(&mut n.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    assert!(fetch(addr).is_err(), "the port is free again");
    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_none_mode_task_has_loopback_only() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("none").await.expect("setup") else {
        return;
    };
    let app = n.container("app", "ip -o link; sleep 300");
    n.register_definition(
        json!({"family": "isolated", "networkMode": "none", "containerDefinitions": [app]}),
    )
    .await;
    let arn = n.run(json!({"taskDefinition": "isolated"})).await;
    let task = wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("running");
    assert_eq!(task["lastStatus"], "RUNNING", "{task:#}");
    assert!(
        task["containers"][0]["networkInterfaces"]
            .as_array()
            .is_none_or(Vec::is_empty),
        "no address: {task:#}"
    );
    let id = arn.rsplit('/').next().unwrap_or_default();
    let path = orca_net::netns::netns_path(&format!("{}-{id}", n.netns_prefix));
    let out = std::process::Command::new("nsenter")
        .arg(format!("--net={}", path.display()))
        .args(["ip", "-o", "link", "show"])
        .output()
        .expect("ip in the task's namespace");
    let links = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(links.lines().count(), 1, "loopback only: {links}");
    assert!(links.contains("lo:") && links.contains("UP"), "{links}");
    ecs(&mut n.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    n.assert_clean().await;
    n.finish().await;
}

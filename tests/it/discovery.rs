//! Service discovery end to end: two real agents in test hosts joined by a
//! routed underlay, a `web` service with a registry running real httpd
//! containers with a health check, and clients in a task of another
//! service. The name answers exactly the serving tasks (a task appears only
//! once HEALTHY), a container resolves it through the resolver its
//! resolv.conf names, names outside the namespace go to the agent's
//! upstream (a responder in the "world" namespace), and during a rolling
//! update a client resolving and connecting in a loop is never refused: a
//! leaving task drops out of the answers while DEACTIVATING, before its
//! containers get SIGTERM.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};
use orca_tests::agents::{ecs, wait_stopped};
use orca_tests::multinode::MultiNode;
use orca_tests::netns::{block_in, TestNet};
use serde_json::{json, Value};

use crate::support::register;

const WAIT: Duration = Duration::from_secs(60);
const NAME: &str = "web.orca.local";

fn web(image: &str, revision: &str) -> Value {
    json!({"family": "web", "containerDefinitions": [{
        "name": "app", "image": image, "memory": 32,
        "portMappings": [{"containerPort": 80}],
        "command": ["sh", "-c", format!("mkdir -p /www && echo {revision} > /www/index.html && exec httpd -f -p 80 -h /www")],
        "healthCheck": {"command": ["CMD-SHELL", "wget -q -O /dev/null http://127.0.0.1/ || exit 1"],
                        "interval": 5, "timeout": 2, "retries": 1}}]})
}

/// The A answer for `name` from the resolver at `server`, asked from inside
/// the namespace `netns` (as a task asks).
fn resolve(netns: &std::path::Path, server: SocketAddr, name: &'static str) -> Vec<Ipv4Addr> {
    block_in(netns, move || async move {
        orca_dns::client::query_a(server, name)
            .await
            .unwrap_or_default()
    })
}

async fn web_tasks(net: &mut MultiNode) -> Vec<Value> {
    let listed = ecs(&mut net.client, "ListTasks", json!({"serviceName": "web"}))
        .await
        .expect("list");
    let arns = listed["taskArns"].clone();
    if arns.as_array().is_none_or(Vec::is_empty) {
        return Vec::new();
    }
    let d = ecs(&mut net.client, "DescribeTasks", json!({"tasks": arns}))
        .await
        .expect("describe");
    d["tasks"].as_array().cloned().unwrap_or_default()
}

fn ip_of(task: &Value) -> Option<Ipv4Addr> {
    task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()?
        .parse()
        .ok()
}

fn serving(tasks: &[Value]) -> BTreeSet<Ipv4Addr> {
    tasks
        .iter()
        .filter(|t| {
            t["lastStatus"] == "RUNNING"
                && t["desiredStatus"] == "RUNNING"
                && t["healthStatus"] == "HEALTHY"
        })
        .filter_map(ip_of)
        .collect()
}

/// Waits until the answer is exactly the serving tasks' addresses, checking
/// on the way that whatever is answered belongs to a HEALTHY task (asked
/// first, described after: health only moves forward here).
async fn wait_answer_serving(
    net: &mut MultiNode,
    netns: &std::path::Path,
    server: SocketAddr,
    count: usize,
) -> BTreeSet<Ipv4Addr> {
    let deadline = Instant::now() + WAIT;
    loop {
        let answer: BTreeSet<Ipv4Addr> = resolve(netns, server, NAME).into_iter().collect();
        let tasks = web_tasks(net).await;
        for ip in &answer {
            let task = tasks.iter().find(|t| ip_of(t) == Some(*ip));
            let healthy = task.is_some_and(|t| t["healthStatus"] == "HEALTHY");
            assert!(
                healthy,
                "{ip} answered but its task is not serving: {task:#?}"
            );
        }
        let want = serving(&tasks);
        if answer == want && want.len() == count {
            return answer;
        }
        if Instant::now() > deadline {
            let brief: Vec<String> = tasks
                .iter()
                .map(|t| {
                    format!(
                        "{} {} {} {}",
                        t["lastStatus"],
                        t["healthStatus"],
                        t["containers"][0]["reason"],
                        t["stoppedReason"]
                    )
                })
                .collect();
            panic!(
                "answer {answer:?}, serving {want:?}, tasks {brief:?}\nagent 1:\n{}",
                net.log(1)
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_name_answers_its_serving_tasks_and_a_rolling_update_refuses_no_client() {
    let _heavy = crate::support::HEAVY.lock().await;
    let world_resolver = Arc::new(std::sync::OnceLock::<SocketAddr>::new());
    let upstream = world_resolver.clone();
    let net = MultiNode::start(
        "dsc",
        move || {
            let net = TestNet::routed(2)?;
            // The router answers as the world's resolver, on its uplink.
            let _ = upstream.set(SocketAddr::new(
                Ipv4Addr::new(198, 18, net.subnet(), 2).into(),
                53,
            ));
            Ok(net)
        },
        |c| {
            c.discovery_ttl = Duration::from_secs(1);
            c.discovery_deregistration_margin = Duration::from_millis(500);
        },
        {
            let world = world_resolver.clone();
            move |_, c| {
                c.dns_upstreams = Some(vec![*world.get().expect("the net is made first")]);
            }
        },
    )
    .await
    .expect("nodes");
    let Some(mut net) = net else { return };
    // The world's resolver: a responder in the router namespace.
    let world = net.net.router_netns_path().expect("routed");
    let world_addr = *world_resolver.get().expect("set");
    let zone = DiscoveryZone {
        namespace: "world.test".into(),
        ttl_secs: 5,
        services: [(
            "www".to_string(),
            vec![ServiceEndpoint {
                task_id: "w".into(),
                address: Ipv4Addr::new(198, 18, 250, 9),
                port: None,
            }],
        )]
        .into(),
    };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let stop_world = shutdown.clone();
    let world_thread = std::thread::spawn(move || {
        block_in(&world, move || async move {
            let responder = Arc::new(orca_dns::Responder::new(zone, Vec::new()));
            let udp = tokio::net::UdpSocket::bind(world_addr).await.expect("udp");
            let tcp = tokio::net::TcpListener::bind(world_addr)
                .await
                .expect("tcp");
            orca_dns::serve(responder, udp, tcp, stop_world)
                .await
                .expect("serve");
        })
    });

    let image = net.image.clone();
    register(&mut net.client, &web(&image, "one").to_string())
        .await
        .expect("web:1");
    let client_td = json!({"family": "client", "containerDefinitions": [
        {"name": "app", "image": image, "memory": 32, "command": ["sh", "-c", "sleep 3600"]}]});
    register(&mut net.client, &client_td.to_string())
        .await
        .expect("client");
    ecs(
        &mut net.client,
        "CreateService",
        json!({"serviceName": "web", "taskDefinition": "web:1", "desiredCount": 2,
               "deploymentConfiguration": {"minimumHealthyPercent": 100, "maximumPercent": 200},
               "serviceRegistries": [{"registryArn": "arn:aws:servicediscovery:local:000000000000:service/web", "port": 80}]}),
    )
    .await
    .expect("create-service");
    let client_arn = net.run_on(1, "client").await.expect("client task");
    let client = net.wait_running(&client_arn).await.expect("client running");
    let netns = net.task_netns(1, &client);
    let gateway: Ipv4Addr = {
        let subnet: orca_net::Ipv4Subnet = net.agents[0].subnet.parse().expect("subnet");
        subnet.gateway()
    };
    let resolver = SocketAddr::new(gateway.into(), 53);

    // Only serving tasks, and all of them.
    let first = wait_answer_serving(&mut net, &netns, resolver, 2).await;

    // Outside the namespace: the agent's upstream answers.
    assert_eq!(
        resolve(&netns, resolver, "www.world.test"),
        vec![Ipv4Addr::new(198, 18, 250, 9)]
    );

    // A container resolves the name through its resolv.conf and fetches.
    let fetch_td = json!({"family": "fetch", "containerDefinitions": [
        {"name": "app", "image": image, "memory": 32,
         "command": ["sh", "-c", "wget -q -O - http://web.orca.local/ | grep -q one"]}]});
    register(&mut net.client, &fetch_td.to_string())
        .await
        .expect("fetch");
    let fetch = net.run_on(2, "fetch").await.expect("fetch task");
    let done = wait_stopped(&mut net.client, "default", &fetch, WAIT)
        .await
        .expect("fetch stopped");
    assert_eq!(
        done["containers"][0]["exitCode"], 0,
        "the container resolved and fetched: {done:#}"
    );

    // A rolling update while a client resolves and connects in a loop.
    let stop = Arc::new(AtomicBool::new(false));
    let (tries, refused) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let failures = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let looper = {
        let (stop, tries, refused, failures) = (
            stop.clone(),
            tries.clone(),
            refused.clone(),
            failures.clone(),
        );
        let netns = netns.clone();
        std::thread::spawn(move || {
            block_in(&netns, move || async move {
                while !stop.load(Ordering::Relaxed) {
                    let answer = orca_dns::client::query_a(resolver, NAME)
                        .await
                        .unwrap_or_default();
                    for ip in answer {
                        tries.fetch_add(1, Ordering::Relaxed);
                        let target = SocketAddr::new(ip.into(), 80);
                        let ok = tokio::task::spawn_blocking(move || {
                            TcpStream::connect_timeout(&target, Duration::from_secs(2))
                        })
                        .await
                        .map(|r| r.map(|_| ()));
                        if let Ok(Err(e)) | Err(e) = ok.map_err(std::io::Error::other) {
                            refused.fetch_add(1, Ordering::Relaxed);
                            if let Ok(mut f) = failures.lock() {
                                f.push(format!("{target}: {e}"));
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        })
    };
    register(&mut net.client, &web(&image, "two").to_string())
        .await
        .expect("web:2");
    ecs(
        &mut net.client,
        "UpdateService",
        json!({"service": "web", "taskDefinition": "web:2"}),
    )
    .await
    .expect("update-service");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let d = ecs(
            &mut net.client,
            "DescribeServices",
            json!({"services": ["web"]}),
        )
        .await
        .expect("describe");
        let service = &d["services"][0];
        let tasks = web_tasks(&mut net).await;
        let live: Vec<&Value> = tasks
            .iter()
            .filter(|t| t["lastStatus"] != "STOPPED")
            .collect();
        let steady = service["deployments"].as_array().map_or(0, Vec::len) == 1
            && service["deployments"][0]["rolloutState"] == "COMPLETED"
            && live.len() == 2
            && live.iter().all(|t| {
                t["taskDefinitionArn"]
                    .as_str()
                    .is_some_and(|a| a.ends_with("web:2"))
            });
        if steady {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the update did not settle: {service:#}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The answer follows: the new tasks only, once serving.
    let second = wait_answer_serving(&mut net, &netns, resolver, 2).await;
    stop.store(true, Ordering::Relaxed);
    looper.join().expect("the client loop");
    assert!(first.is_disjoint(&second), "old {first:?}, new {second:?}");
    let (tries, refused) = (
        tries.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
    );
    assert!(tries > 20, "the client kept connecting: {tries}");
    assert_eq!(
        refused,
        0,
        "{refused} of {tries} connections failed: {:?}",
        failures.lock().map(|f| f.clone()).unwrap_or_default()
    );

    ecs(
        &mut net.client,
        "DeleteService",
        json!({"service": "web", "force": true}),
    )
    .await
    .expect("delete");
    ecs(&mut net.client, "StopTask", json!({"task": client_arn}))
        .await
        .expect("stop client");
    wait_stopped(&mut net.client, "default", &client_arn, WAIT)
        .await
        .expect("client stopped");
    shutdown.cancel();
    world_thread.join().expect("world resolver");
    let problems = net.clean().await;
    assert!(problems.is_empty(), "cleanup: {problems:?}");
}

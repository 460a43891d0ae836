//! The node's NAT rules (`orca_net::rules`, applied by
//! `orca_net::netns::node_rules`) against the kernel, on a test host: a
//! task namespace behind the host's own bridge reaches "the world" (another
//! test host) only with egress on, and arrives there from the host's
//! address; a published port forwards the world's connection to the task;
//! applying twice changes nothing; removal leaves no chain and no jump.
//! Root only: failed under CI=true when it cannot run, skipped with a
//! printed reason elsewhere.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use orca_net::netns::{in_namespace, node_rules, NetnsNetwork};
use orca_net::rules::{NodeRules, PortForward, PortProtocol};
use orca_net::{NetworkConfigurator, NodeNetworkConfig, TaskNetwork};
use orca_tests::netns::{block_in, lease_subnet, netns_available, TestNet};

const WORLD_PORT: u16 = 9000;
const TASK_PORT: u16 = 8000;
const PUBLISHED: u16 = 18080;

fn connect(from: &Path, to: SocketAddr) -> std::io::Result<String> {
    in_namespace(from, move || -> std::io::Result<String> {
        let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(2))?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        let mut seen = String::new();
        s.read_to_string(&mut seen)?;
        Ok(seen)
    })
    .expect("entering the namespace")
}

/// A listener in `path` that answers each connection with the peer address
/// it saw, until the test ends.
fn echo_peer(path: &Path, addr: SocketAddr) {
    let listener = in_namespace(path, move || TcpListener::bind(addr))
        .expect("entering the namespace")
        .expect("bind");
    std::thread::spawn(move || {
        for (mut stream, peer) in listener.incoming().flatten().filter_map(|s| {
            let peer = s.peer_addr().ok()?;
            Some((s, peer))
        }) {
            let _ = stream.write_all(peer.ip().to_string().as_bytes());
        }
    });
}

fn nat_rules(host: &Path) -> String {
    let out = Command::new("nsenter")
        .arg(format!("--net={}", host.display()))
        .args(["iptables", "-t", "nat", "-S"])
        .output()
        .expect("iptables -S");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The task's namespace and the node's bridge go even when an assertion fails.
struct Node {
    host: PathBuf,
    config: NodeNetworkConfig,
}

impl Node {
    fn network<T, F, Fut>(&self, f: F) -> T
    where
        T: Send + 'static,
        F: FnOnce(NetnsNetwork) -> Fut + Send + 'static,
        Fut: Future<Output = T>,
    {
        let config = self.config.clone();
        block_in(&self.host, move || async move {
            f(NetnsNetwork::open(config).await.expect("open")).await
        })
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let (bridge, subnet) = (self.config.bridge.clone(), self.config.subnet);
        self.network(move |n| async move {
            let _ = node_rules::remove(&bridge, subnet).await;
            let _ = n.teardown("t1").await;
            let _ = n.remove_bridge().await;
        });
    }
}

#[test]
fn egress_is_masqueraded_and_published_ports_reach_the_task() {
    if !netns_available().expect("checking prerequisites") {
        return;
    }
    let net = TestNet::new(2).expect("test hosts");
    let (host, world) = (net.host(1).clone(), net.host(2).clone());
    let bridge = format!("onr{}", std::process::id());
    let lease = lease_subnet(&bridge, &format!("{bridge}-t")).expect("a task subnet");
    let state = tempfile::tempdir().expect("state dir");
    let node = Node {
        host: host.netns_path(),
        config: NodeNetworkConfig {
            bridge: bridge.clone(),
            subnet: lease.cidr().parse().expect("subnet"),
            netns_prefix: format!("{bridge}-t"),
            state_dir: state.path().join("net"),
            mtu: None,
        },
    };
    let subnet = node.config.subnet;
    let task: TaskNetwork = node.network(|n| async move { n.setup("t1").await.expect("setup") });
    let world_service = SocketAddr::new(world.addr.into(), WORLD_PORT);
    echo_peer(&world.netns_path(), world_service);

    // No rules: nothing leaves the node's bridge for another host.
    assert!(
        connect(&task.netns_path, world_service).is_err(),
        "reached the world without egress rules"
    );

    // Egress: the world sees the node's address.
    let mut rules = NodeRules {
        bridge: bridge.clone(),
        subnet,
        egress: true,
        keep_source: vec![subnet],
        forwards: Vec::new(),
    };
    let apply = |rules: &NodeRules| {
        let rules = rules.clone();
        node.network(move |_| async move { node_rules::apply(&rules).await })
            .expect("applying the rules")
    };
    apply(&rules);
    let seen = connect(&task.netns_path, world_service).expect("egress");
    assert_eq!(seen, host.addr.to_string(), "the world saw {seen}");

    // A published port: the world reaches the task at the node's address,
    // and the task sees the world's own address.
    echo_peer(&task.netns_path, SocketAddr::new(task.ip.into(), TASK_PORT));
    rules.forwards.push(PortForward {
        protocol: PortProtocol::Tcp,
        host_port: PUBLISHED,
        to: task.ip,
        to_port: TASK_PORT,
    });
    apply(&rules);
    let published = SocketAddr::new(host.addr.into(), PUBLISHED);
    let seen = connect(&world.netns_path(), published).expect("the published port");
    assert_eq!(seen, world.addr.to_string());

    // Applying again changes nothing: one jump of each kind, same chains.
    let before = nat_rules(&host.netns_path());
    apply(&rules);
    let after = nat_rules(&host.netns_path());
    assert_eq!(before, after);
    assert_eq!(
        after.matches(&format!("-j ORCA-EGR-{bridge}")).count(),
        1,
        "{after}"
    );
    assert_eq!(
        after.matches(&format!("-j ORCA-DNAT-{bridge}")).count(),
        2,
        "{after}"
    );

    // Removed: no chain, no jump, and the task is cut off again (the
    // world's answers have no way back to a task address).
    let b = bridge.clone();
    node.network(move |_| async move { node_rules::remove(&b, subnet).await })
        .expect("removing the rules");
    let left = nat_rules(&host.netns_path());
    assert!(!left.contains("ORCA-"), "{left}");
    assert!(connect(&task.netns_path, world_service).is_err());
    assert!(connect(&world.netns_path(), published).is_err());
    drop(node);
}

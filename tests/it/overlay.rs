//! Task-to-task traffic across nodes (`orca_net::overlay` planned,
//! `orca_net::netns::overlay` programmed) against the kernel: two test
//! hosts, each with its own task bridge and subnet and a task namespace,
//! joined only by the hosts' underlay link. Over VXLAN and over host-gw a
//! task reaches the other host's task by address and is seen with its own
//! address (no NAT), a bulk transfer arrives intact, removing the
//! forwarding entry or route breaks the path (so the test proves it), a
//! resync repairs it, and an empty peer list removes everything.
//! Root only: failed under CI=true when it cannot run.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use orca_net::netns::{overlay, NetnsNetwork};
use orca_net::overlay::{desired, OverlayConfig, OverlayMode, OverlayOp, Peer};
use orca_net::{Ipv4Subnet, NetworkConfigurator, NodeNetworkConfig, TaskNetwork};
use orca_tests::netns::{block_in, lease_subnet, netns_available, SubnetLease, TestNet};

const PORT: u16 = 8000;
const DEVICE: &str = "orcavx0";
const BULK: usize = 8 << 20;

static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// One test host running a node: its bridge, subnet and one task.
struct Node {
    host: PathBuf,
    address: Ipv4Addr,
    config: NodeNetworkConfig,
    task: TaskNetwork,
    _lease: SubnetLease,
    _state: tempfile::TempDir,
}

impl Node {
    fn start(host: PathBuf, address: Ipv4Addr, tag: &str) -> Node {
        // Unique per node of every test in this process (tests run side by side).
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let bridge = format!("ovl{}{tag}{n}", std::process::id());
        let lease = lease_subnet(&bridge, &format!("{bridge}-t")).expect("a task subnet");
        let state = tempfile::tempdir().expect("state");
        let config = NodeNetworkConfig {
            bridge: bridge.clone(),
            subnet: lease.cidr().parse().expect("subnet"),
            netns_prefix: format!("{bridge}-t"),
            state_dir: state.path().join("net"),
            mtu: None,
        };
        let c = config.clone();
        let task = block_in(&host, move || async move {
            let n = NetnsNetwork::open(c).await.expect("open");
            n.setup("t1").await.expect("setup")
        });
        Node {
            host,
            address,
            config,
            task,
            _lease: lease,
            _state: state,
        }
    }

    fn subnet(&self) -> Ipv4Subnet {
        self.config.subnet
    }

    fn peer(&self, mode: OverlayMode) -> Peer {
        Peer {
            subnet: self.subnet(),
            address: self.address,
            mode,
        }
    }

    /// Syncs the overlay to `peers`; returns the steps it took.
    fn sync(&self, mode: OverlayMode, peers: Vec<Peer>) -> Vec<OverlayOp> {
        let config = OverlayConfig {
            device: DEVICE.into(),
            vni: 1,
            port: 4789,
            local: self.address,
            mode,
            mtu: 1450,
            subnet: self.subnet(),
        };
        block_in(&self.host, move || async move {
            // Every peer shares the test hosts' link.
            let want = desired(&config, &peers, |_| true);
            overlay::sync_here(DEVICE, &want).await.expect("sync")
        })
    }

    fn ip(&self, args: &[&str]) -> String {
        let out = Command::new("nsenter")
            .arg(format!("--net={}", self.host.display()))
            .args(args)
            .output()
            .expect("nsenter");
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let c = self.config.clone();
        block_in(&self.host, move || async move {
            let _ = overlay::sync_here(DEVICE, &Default::default()).await;
            if let Ok(n) = NetnsNetwork::open(c).await {
                let _ = n.teardown("t1").await;
                let _ = n.remove_bridge().await;
            }
        });
    }
}

fn serve(task: &TaskNetwork) {
    orca_tests::probe::serve(&task.netns_path, SocketAddr::new(task.ip.into(), PORT))
        .expect("listening in the task");
}

/// Sends `payload` from `from`'s namespace to `to`; the answer.
fn send(from: &TaskNetwork, to: &TaskNetwork, payload: Vec<u8>) -> std::io::Result<String> {
    let target = SocketAddr::new(to.ip.into(), PORT);
    orca_tests::probe::send(&from.netns_path, target, payload, Duration::from_secs(2))
}

fn reaches(from: &Node, to: &Node) {
    let (payload, expected) = orca_tests::probe::payload(BULK);
    let answer = send(&from.task, &to.task, payload).expect("task to task across hosts");
    assert_eq!(
        answer,
        format!("{} {expected}", from.task.ip),
        "no NAT, intact bytes"
    );
}

fn two_nodes(net: &TestNet) -> (Node, Node) {
    let a = Node::start(net.host(1).netns_path(), net.addr(1), "a");
    let b = Node::start(net.host(2).netns_path(), net.addr(2), "b");
    serve(&a.task);
    serve(&b.task);
    (a, b)
}

#[test]
fn tasks_reach_each_other_across_hosts_over_vxlan() {
    if !netns_available().expect("checking prerequisites") {
        return;
    }
    let net = TestNet::new(2).expect("test hosts");
    let (a, b) = two_nodes(&net);
    let mode = OverlayMode::Vxlan;
    // Without the overlay the task subnets are unknown to each other.
    assert!(send(&a.task, &b.task, vec![1]).is_err());
    let peers = vec![a.peer(mode), b.peer(mode)];
    assert!(!a.sync(mode, peers.clone()).is_empty());
    assert!(!b.sync(mode, peers.clone()).is_empty());
    assert_eq!(a.sync(mode, peers.clone()), [], "in sync: nothing to do");
    reaches(&a, &b);
    reaches(&b, &a);
    let mtu = a.ip(&["ip", "-o", "link", "show", DEVICE]);
    assert!(mtu.contains("mtu 1450"), "{mtu}");

    // The forwarding entry is the path: without it nothing arrives.
    let mac = orca_net::overlay::vtep_mac(b.subnet())
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect::<Vec<_>>()
        .join(":");
    a.ip(&[
        "bridge",
        "fdb",
        "del",
        &mac,
        "dev",
        DEVICE,
        "dst",
        &b.address.to_string(),
        "self",
    ]);
    assert!(
        send(&a.task, &b.task, vec![1]).is_err(),
        "reached b without its entry"
    );
    let repaired = a.sync(mode, peers.clone());
    assert!(
        matches!(repaired.as_slice(), [OverlayOp::AddForwarding { .. }]),
        "the resync adds the entry back: {repaired:?}"
    );
    reaches(&a, &b);

    // b leaves the cluster: a keeps nothing of the overlay.
    a.sync(mode, vec![a.peer(mode)]);
    let routes = a.ip(&["ip", "route", "show", "proto", "190"]);
    assert!(routes.trim().is_empty(), "{routes}");
    let links = a.ip(&["ip", "-o", "link", "show"]);
    assert!(!links.contains(DEVICE), "{links}");
}

#[test]
fn tasks_reach_each_other_across_hosts_over_host_gw() {
    if !netns_available().expect("checking prerequisites") {
        return;
    }
    let net = TestNet::new(2).expect("test hosts");
    let (a, b) = two_nodes(&net);
    let mode = OverlayMode::HostGw;
    let peers = vec![a.peer(mode), b.peer(mode)];
    a.sync(mode, peers.clone());
    b.sync(mode, peers.clone());
    reaches(&a, &b);
    reaches(&b, &a);
    let links = a.ip(&["ip", "-o", "link", "show"]);
    assert!(
        !links.contains(DEVICE),
        "host-gw needs no VXLAN device: {links}"
    );
    // The route is the path.
    a.ip(&["ip", "route", "del", &b.subnet().to_string()]);
    assert!(
        send(&a.task, &b.task, vec![1]).is_err(),
        "reached b without a route"
    );
    let repaired = a.sync(mode, peers.clone());
    assert!(
        matches!(repaired.as_slice(), [OverlayOp::SetRoute { .. }]),
        "the resync adds the route back: {repaired:?}"
    );
    reaches(&a, &b);
    a.sync(mode, Vec::new());
    let routes = a.ip(&["ip", "route", "show", "proto", "190"]);
    assert!(routes.trim().is_empty(), "{routes}");
}

//! orca-net's real task networks (`NetnsNetwork`): namespaces, veths, the
//! bridge and the FORWARD rules, exercised against the kernel. Root only:
//! skipped with a printed reason elsewhere, failed under `CI=true`.
//!
//! Each test leases its own `198.18.S.0/24` through the harness's subnet
//! locks, names its bridge and namespaces after the process id, and removes
//! everything in a Drop guard, failures included.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use orca_net::netns::{delete_namespace, in_namespace, list_namespaces, NetnsNetwork};
use orca_net::{NetworkConfigurator, NodeNetworkConfig, TaskNetwork};
use orca_tests::netns::{lease_subnet, netns_available, run, SubnetLease};

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A leased subnet, a state directory and unique names; removes the bridge,
/// its FORWARD rules and every namespace with the prefix on drop.
struct Fixture {
    config: NodeNetworkConfig,
    _state: tempfile::TempDir,
    _lease: SubnetLease,
}

impl Fixture {
    /// `None` when the prerequisites are missing outside CI.
    fn new() -> Option<Fixture> {
        if !netns_available().expect("checking prerequisites") {
            return None;
        }
        let pid = std::process::id();
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // "otn" + up to 10 digits + 2 = at most 15 bytes.
        let bridge = format!("otn{pid}x{n}");
        assert!(bridge.len() <= 15, "{bridge} is too long");
        let netns_prefix = format!("otn{pid}-{n}");
        let lease = lease_subnet(&bridge, &netns_prefix).expect("leasing a subnet");
        let state = tempfile::tempdir().expect("tempdir");
        let config = NodeNetworkConfig {
            bridge,
            subnet: lease.cidr().parse().expect("a valid subnet"),
            netns_prefix,
            state_dir: state.path().join("net"),
            mtu: None,
        };
        Some(Fixture {
            config,
            _state: state,
            _lease: lease,
        })
    }

    fn config(&self) -> NodeNetworkConfig {
        self.config.clone()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for name in list_namespaces(&self.config.netns_prefix).unwrap_or_default() {
            let _ = delete_namespace(&name);
        }
        let br = &self.config.bridge;
        for dir in ["-i", "-o"] {
            while Command::new("iptables")
                .args(["-w", "10", "-D", "FORWARD", dir, br, "-j", "ACCEPT"])
                .output()
                .is_ok_and(|o| o.status.success())
            {}
        }
        let _ = Command::new("ip").args(["link", "del", br]).output();
    }
}

/// `ip -n NAME -j ARGS...` parsed.
fn ip_json(netns: &Path, args: &[&str]) -> serde_json::Value {
    let name = netns
        .file_name()
        .and_then(|n| n.to_str())
        .expect("a namespace name");
    let out = run(Command::new("ip").args(["-n", name, "-j"]).args(args)).expect("running ip");
    serde_json::from_slice(&out.stdout).expect("ip -j prints JSON")
}

/// Checks eth0 (address, MAC, up), lo (up) and the default route inside.
fn assert_configured(net: &TaskNetwork) {
    let links = ip_json(&net.netns_path, &["addr", "show"]);
    let links = links.as_array().expect("an array of links");
    let names: Vec<&str> = links.iter().filter_map(|l| l["ifname"].as_str()).collect();
    assert_eq!(names, ["lo", "eth0"], "interfaces in {}", net.task_id);
    let link = |name: &str| {
        links
            .iter()
            .find(|l| l["ifname"] == name)
            .expect("listed above")
    };
    let is_up = |name: &str| {
        link(name)["flags"]
            .as_array()
            .is_some_and(|f| f.iter().any(|f| f == "UP"))
    };
    assert!(is_up("lo"), "lo is up in {}", net.task_id);
    assert!(is_up("eth0"), "eth0 is up in {}", net.task_id);
    let eth0 = link("eth0");
    assert_eq!(eth0["address"], net.mac_address.as_str());
    let inet: Vec<(String, u64)> = eth0["addr_info"]
        .as_array()
        .expect("addr_info")
        .iter()
        .filter(|a| a["family"] == "inet")
        .map(|a| {
            (
                a["local"].as_str().unwrap_or_default().to_string(),
                a["prefixlen"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(inet, [(net.ip.to_string(), u64::from(net.prefix_len))]);
    let routes = ip_json(&net.netns_path, &["route", "show"]);
    let default = routes
        .as_array()
        .expect("an array of routes")
        .iter()
        .find(|r| r["dst"] == "default")
        .unwrap_or_else(|| panic!("no default route in {}: {routes}", net.task_id));
    assert_eq!(default["gateway"], net.gateway.to_string().as_str());
    assert_eq!(default["dev"], "eth0");
}

/// A listener inside `net`'s namespace on its address, answering `hello`
/// to each of `n` connections on a background thread.
fn serve_hello(net: &TaskNetwork, n: usize) -> (SocketAddr, std::thread::JoinHandle<()>) {
    let ip = net.ip;
    let listener = in_namespace(&net.netns_path, move || TcpListener::bind((ip, 0)))
        .expect("entering the namespace")
        .expect("binding inside the namespace");
    let addr = listener.local_addr().expect("local_addr");
    let server = std::thread::spawn(move || {
        for _ in 0..n {
            let (mut conn, _) = listener.accept().expect("accept");
            conn.write_all(b"hello").expect("write");
        }
    });
    (addr, server)
}

fn fetch_hello(addr: SocketAddr) -> std::io::Result<String> {
    let mut conn = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    conn.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut got = String::new();
    conn.read_to_string(&mut got)?;
    Ok(got)
}

/// Waits up to 5 s for the kernel to free a torn-down namespace's veth.
fn wait_for_veth_gone(veth: &str) -> bool {
    let sys = Path::new("/sys/class/net").join(veth);
    let deadline = Instant::now() + Duration::from_secs(5);
    while sys.exists() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

fn rule_exists(dir: &str, bridge: &str) -> bool {
    Command::new("iptables")
        .args(["-w", "10", "-C", "FORWARD", dir, bridge, "-j", "ACCEPT"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tasks_get_distinct_addresses_and_reach_each_other_and_the_host() {
    let _heavy = crate::support::HEAVY.lock().await;
    let Some(fx) = Fixture::new() else { return };
    let network = NetnsNetwork::open(fx.config()).await.expect("open");
    // Opening again (another agent start) must not duplicate anything.
    let again = NetnsNetwork::open(fx.config()).await.expect("open again");
    drop(again);
    let br = &fx.config.bridge;
    assert!(Path::new("/sys/class/net").join(br).exists());
    assert!(rule_exists("-i", br) && rule_exists("-o", br));

    let a = network.setup("task-a").await.expect("setup a");
    let b = network.setup("task-b").await.expect("setup b");
    let octet = fx.config.subnet.network.octets()[2];
    assert_eq!(a.ip, Ipv4Addr::new(198, 18, octet, 2));
    assert_eq!(b.ip, Ipv4Addr::new(198, 18, octet, 3));
    assert_eq!(a.gateway, Ipv4Addr::new(198, 18, octet, 1));
    assert_eq!(
        a.netns_path,
        Path::new("/run/netns").join(format!("{}-task-a", fx.config.netns_prefix))
    );
    assert_ne!(a.host_veth, b.host_veth);
    for net in [&a, &b] {
        assert_configured(net);
        let master = std::fs::read_link(
            Path::new("/sys/class/net")
                .join(&net.host_veth)
                .join("master"),
        )
        .expect("the host veth has a master");
        assert!(master.ends_with(br), "{} is on {master:?}", net.host_veth);
    }
    // Setting up an existing task changes nothing.
    assert_eq!(network.setup("task-a").await.expect("setup a again"), a);

    // B reaches A by A's address across the bridge; so does the host.
    let (addr, server) = serve_hello(&a, 2);
    let from_b = in_namespace(&b.netns_path, move || fetch_hello(addr)).expect("entering b");
    assert_eq!(from_b.expect("b connects to a"), "hello");
    let from_host = tokio::task::spawn_blocking(move || fetch_hello(addr))
        .await
        .expect("join");
    assert_eq!(from_host.expect("the host connects to a"), "hello");
    server.join().expect("server thread");

    network.teardown("task-a").await.expect("teardown a");
    assert!(!a.netns_path.exists(), "the namespace file is gone");
    assert!(wait_for_veth_gone(&a.host_veth), "{} is gone", a.host_veth);
    assert_eq!(network.allocated(), ["task-b"]);
    network
        .teardown("task-a")
        .await
        .expect("teardown is idempotent");
    // The freed address is the lowest again.
    let c = network.setup("task-c").await.expect("setup c");
    assert_eq!(c.ip, a.ip);
    assert_configured(&c);

    for t in ["task-b", "task-c"] {
        network.teardown(t).await.expect("teardown");
    }
    assert_eq!(
        list_namespaces(&fx.config.netns_prefix).expect("list"),
        Vec::<String>::new()
    );
    network.remove_bridge().await.expect("remove_bridge");
    assert!(!Path::new("/sys/class/net").join(br).exists());
    assert!(!rule_exists("-i", br) && !rule_exists("-o", br));
    network
        .remove_bridge()
        .await
        .expect("remove_bridge is idempotent");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_agent_keeps_its_tasks_and_repairs_half_made_ones() {
    let _heavy = crate::support::HEAVY.lock().await;
    let Some(fx) = Fixture::new() else { return };
    let network = NetnsNetwork::open(fx.config()).await.expect("open");
    let a = network.setup("a").await.expect("setup a");
    let b = network.setup("b").await.expect("setup b");
    drop(network);

    // The restart: same config, same state directory.
    let network = NetnsNetwork::open(fx.config()).await.expect("reopen");
    assert_eq!(network.allocated(), ["a", "b"]);
    assert_eq!(network.setup("a").await.expect("setup a after restart"), a);
    assert_eq!(network.setup("b").await.expect("setup b after restart"), b);
    assert_configured(&a);

    // A crash between creating the namespace file and binding it leaves a
    // plain file; the next setup replaces it.
    let c_path = Path::new("/run/netns").join(format!("{}-c", fx.config.netns_prefix));
    std::fs::write(&c_path, b"").expect("a stale file");
    let c = network.setup("c").await.expect("setup over a stale file");
    assert_configured(&c);

    // A crash before the host veth was attached: setup starts over.
    run(Command::new("ip").args(["link", "set", &b.host_veth, "nomaster"])).expect("detach");
    let b2 = network.setup("b").await.expect("setup repairs b");
    assert_eq!(b2, b);
    assert_configured(&b2);
    let (addr, server) = serve_hello(&b2, 1);
    let from_a = in_namespace(&a.netns_path, move || fetch_hello(addr)).expect("entering a");
    assert_eq!(from_a.expect("a connects to the repaired b"), "hello");
    server.join().expect("server thread");

    for t in ["a", "b", "c"] {
        network.teardown(t).await.expect("teardown");
    }
    assert_eq!(network.allocated(), Vec::<String>::new());
    network.remove_bridge().await.expect("remove_bridge");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_setup_leaves_no_namespace_and_no_address() {
    let _heavy = crate::support::HEAVY.lock().await;
    let Some(fx) = Fixture::new() else { return };
    // A /30 inside the leased /24: the gateway and room for one task.
    let mut config = fx.config();
    config.subnet = format!("{}/30", fx.config.subnet.network)
        .parse()
        .expect("a /30");
    let network = NetnsNetwork::open(config).await.expect("open");
    let only = network.setup("only").await.expect("setup the one task");
    assert_configured(&only);
    match network.setup("one-too-many").await {
        Err(orca_net::NetworkError::Exhausted { subnet }) => {
            assert_eq!(subnet, format!("{}/30", fx.config.subnet.network));
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    // The namespace made alongside the failed allocation was removed.
    assert_eq!(
        list_namespaces(&fx.config.netns_prefix).expect("list"),
        [format!("{}-only", fx.config.netns_prefix)]
    );
    assert_eq!(network.allocated(), ["only"]);
    assert!(matches!(
        network.setup("../escape").await,
        Err(orca_net::NetworkError::InvalidTaskId(_))
    ));
    network.teardown("only").await.expect("teardown");
    network.remove_bridge().await.expect("remove_bridge");
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() - 1) * p / 100]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_tasks_set_up_and_torn_down_leave_nothing_behind() {
    let _heavy = crate::support::HEAVY.lock().await;
    let Some(fx) = Fixture::new() else { return };
    let network = NetnsNetwork::open(fx.config()).await.expect("open");
    let ids: Vec<String> = (0..50).map(|i| format!("t{i:02}")).collect();

    let mut setups = Vec::new();
    let mut nets = Vec::new();
    for id in &ids {
        let started = Instant::now();
        nets.push(network.setup(id).await.expect("setup"));
        setups.push(started.elapsed());
    }
    let ips: std::collections::BTreeSet<Ipv4Addr> = nets.iter().map(|n| n.ip).collect();
    assert_eq!(ips.len(), 50, "fifty distinct addresses");
    assert_eq!(
        list_namespaces(&fx.config.netns_prefix)
            .expect("list")
            .len(),
        50
    );
    assert_configured(&nets[49]);

    let mut teardowns = Vec::new();
    for id in &ids {
        let started = Instant::now();
        network.teardown(id).await.expect("teardown");
        teardowns.push(started.elapsed());
    }
    let freed = Instant::now();
    for net in &nets {
        assert!(
            wait_for_veth_gone(&net.host_veth),
            "{} is gone",
            net.host_veth
        );
    }
    let veths_gone = freed.elapsed();

    setups.sort();
    teardowns.sort();
    println!(
        "orca-net, 50 tasks: setup p50 {:?} p90 {:?} max {:?}; teardown p50 {:?} p90 {:?} max {:?}; \
         all host veths freed by the kernel {:?} after the last teardown",
        percentile(&setups, 50),
        percentile(&setups, 90),
        setups[49],
        percentile(&teardowns, 50),
        percentile(&teardowns, 90),
        teardowns[49],
        veths_gone,
    );
    assert_eq!(
        list_namespaces(&fx.config.netns_prefix).expect("list"),
        Vec::<String>::new()
    );
    assert_eq!(network.allocated(), Vec::<String>::new());
    network.remove_bridge().await.expect("remove_bridge");
}

//! Times `NetnsNetwork::setup` and `teardown` for N tasks on a bridge of its
//! own, next to the same steps done with iproute2 commands (one `ip` process
//! per step, what a shell script or a simple CNI-less agent does), then
//! removes everything. Root only.
//!
//! `cargo run --release -p orca-net --example setup_bench -- BRIDGE SUBNET [N]`
//! e.g. `... -- orcabench0 198.19.251.0/24 100`: pick a bridge name and a
//! subnet nothing else on the machine uses.

use std::time::{Duration, Instant};

use orca_net::netns::{list_namespaces, NetnsNetwork};
use orca_net::{NetworkConfigurator, NodeNetworkConfig};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let usage = "usage: setup_bench BRIDGE SUBNET [N]";
    let bridge = args.next().ok_or(usage)?;
    let subnet = args.next().ok_or(usage)?.parse()?;
    let n: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(50);
    let state = tempfile::tempdir()?;
    let config = NodeNetworkConfig {
        bridge,
        subnet,
        netns_prefix: format!("orcabench{}", std::process::id()),
        state_dir: state.path().to_path_buf(),
        mtu: None,
    };
    let network = NetnsNetwork::open(config.clone()).await?;
    let result = bench(&network, n).await;
    for i in 0..n {
        let _ = network.teardown(&format!("t{i}")).await;
    }
    network.remove_bridge().await?;
    assert!(list_namespaces(&config.netns_prefix)?.is_empty());
    result
}

async fn bench(network: &NetnsNetwork, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut setups = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        network.setup(&format!("t{i}")).await?;
        setups.push(started.elapsed());
    }
    let mut teardowns = Vec::with_capacity(n);
    for i in 0..n {
        let started = Instant::now();
        network.teardown(&format!("t{i}")).await?;
        teardowns.push(started.elapsed());
    }
    report("orca setup", &mut setups);
    report("orca teardown", &mut teardowns);
    iproute2_peer(network, n.min(20))
}

/// The same per-task work with `ip` commands, on addresses .200 and up.
fn iproute2_peer(network: &NetnsNetwork, n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let config = network.config();
    let gateway = config.subnet.gateway().to_string();
    let prefix = config.subnet.prefix_len;
    let base = u32::from(config.subnet.network) + 200;
    let ip = |args: &[&str]| -> Result<(), Box<dyn std::error::Error>> {
        let status = std::process::Command::new("ip").args(args).status()?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("ip {} failed: {status}", args.join(" ")).into())
        }
    };
    let mut setups = Vec::with_capacity(n);
    let mut teardowns = Vec::with_capacity(n);
    for i in 0..n {
        let ns = format!("{}-peer{i}", config.netns_prefix);
        let veth = format!("orcabp{}x{i}", std::process::id() % 10_000);
        let addr = format!("{}/{prefix}", std::net::Ipv4Addr::from(base + i as u32));
        let started = Instant::now();
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", &veth, "master", &config.bridge, "up"])?;
        ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
        ip(&["-n", &ns, "link", "set", "lo", "up"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        ip(&["-n", &ns, "route", "add", "default", "via", &gateway])?;
        setups.push(started.elapsed());
        let started = Instant::now();
        ip(&["netns", "del", &ns])?;
        teardowns.push(started.elapsed());
    }
    report("ip setup", &mut setups);
    report("ip teardown", &mut teardowns);
    Ok(())
}

fn report(what: &str, times: &mut [Duration]) {
    times.sort();
    let at = |p: usize| times[(times.len() - 1) * p / 100];
    println!(
        "{what:>13} x{}: p50 {:?}  p90 {:?}  max {:?}",
        times.len(),
        at(50),
        at(90),
        at(100)
    );
}

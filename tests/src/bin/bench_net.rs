//! Network benchmark (not a test), every figure next to a floor measured in
//! the same run:
//!
//! 1. task network setup: p50/p99 of `NetnsNetwork::setup` and `teardown`
//!    for N tasks on a node configured as the agent configures it (egress
//!    on, four keep-source subnets, two VXLAN peers), inside a test host's
//!    namespace; floor: the same per-task steps as `ip` commands there;
//! 2. TCP between tasks: bulk throughput and 1-byte ping-pong round trips
//!    between two orca tasks on one node and on two nodes of a routed
//!    underlay over VXLAN (real `orca-agent`s, real containers), against two
//!    bare namespaces on a plain bridge the bench makes;
//! 3. DNS from a task: an orca-dns `Responder` (one service, three
//!    endpoints) on the task bridge's gateway, asked A questions over UDP
//!    from inside a task: queries per second with several clients, p50/p99
//!    latency with one; floor: a UDP echo on the same address.
//!
//! Run as root with containerd up (deploy/start-containerd.sh):
//! `cargo build --release --bins -p orca-agent -p orca-runtime -p orca-tests &&
//!  ./target/release/bench-net [--tasks 100] [--bytes 256] [--rounds 2000]`
//! (`--bytes` in MiB per transfer). Progress goes to stderr, results to
//! stdout.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use orca_core::discovery::{DiscoveryZone, ServiceEndpoint};
use orca_net::netns::{delete_namespace, in_namespace, list_namespaces, NetnsNetwork};
use orca_net::overlay::{OverlayConfig, OverlayMode, Peer};
use orca_net::{Ipv4Subnet, NetworkConfigurator, NodeNetworkConfig, NodePolicy};
use orca_tests::multinode::MultiNode;
use orca_tests::netns::{block_in, lease_subnet, netns_available, run, TestNet};
use serde_json::{json, Value};

/// Transfers per pair for the throughput figure (the median is printed).
const TRANSFERS: usize = 3;
/// Concurrent DNS clients for the queries-per-second figure.
const DNS_CLIENTS: usize = 8;
/// How long the queries-per-second figure runs.
const DNS_WINDOW: Duration = Duration::from_secs(2);
/// Round trips before timing starts (connection warm-up).
const WARMUP: usize = 100;
const CONNECT_WAIT: Duration = Duration::from_secs(30);

struct Args {
    tasks: usize,
    mib: u64,
    rounds: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        tasks: 100,
        mib: 256,
        rounds: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--tasks" => args.tasks = it.next().context("--tasks N")?.parse()?,
            "--bytes" => args.mib = it.next().context("--bytes MIB")?.parse()?,
            "--rounds" => args.rounds = it.next().context("--rounds N")?.parse()?,
            other => bail!(
                "unknown argument {other:?}: bench-net [--tasks N] [--bytes MIB] [--rounds N]"
            ),
        }
    }
    ensure!(
        (1..=200).contains(&args.tasks),
        "--tasks is 1 to 200 (one /24)"
    );
    ensure!(
        args.mib >= 1 && args.rounds >= 10,
        "--bytes ≥ 1, --rounds ≥ 10"
    );
    Ok(args)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}", a / b)
    } else {
        "-".into()
    }
}

fn sorted(mut v: Vec<Duration>) -> Vec<Duration> {
    v.sort();
    v
}

// ---------------------------------------------------------------- 1. setup

struct SetupFigures {
    first: Duration,
    orca_setup: Vec<Duration>,
    orca_teardown: Vec<Duration>,
    ip_setup: Vec<Duration>,
    ip_teardown: Vec<Duration>,
}

/// Everything runs inside test host 1's namespace, so the bridge, rules,
/// VXLAN device and routes vanish with it; only the task namespaces'
/// handles under /run/netns are global, and are removed here too.
fn bench_setup(n: usize) -> anyhow::Result<SetupFigures> {
    let net = TestNet::new(1)?;
    let pid = std::process::id();
    let bridge = format!("obn{pid}");
    let prefix = format!("obn{pid}");
    let lease = lease_subnet(&bridge, &prefix)?;
    let subnet: Ipv4Subnet = lease.cidr().parse()?;
    let local = net.addr(1);
    let underlay = net.subnet();
    let host = net.host(1).netns_path();
    let state = tempfile::tempdir()?;
    let config = NodeNetworkConfig {
        bridge,
        subnet,
        netns_prefix: prefix.clone(),
        state_dir: state.path().to_path_buf(),
        // As the agent sets it with the VXLAN overlay on a 1500 underlay.
        mtu: Some(1450),
    };
    let result = block_in(&host, move || async move {
        setup_in_host(config, local, underlay, n).await
    });
    for ns in list_namespaces(&prefix).unwrap_or_default() {
        let _ = delete_namespace(&ns);
    }
    drop(net);
    drop(lease);
    result
}

async fn setup_in_host(
    config: NodeNetworkConfig,
    local: Ipv4Addr,
    underlay: u8,
    n: usize,
) -> anyhow::Result<SetupFigures> {
    let subnet = config.subnet;
    let network = NetnsNetwork::open(config.clone()).await?;
    // Two other nodes' task subnets, reached over VXLAN through underlay
    // addresses nobody holds: only routes and FDB entries, never a packet.
    let peers: Vec<Peer> = [(254u8, 201u8), (253, 202)]
        .into_iter()
        .map(|(s, host)| -> anyhow::Result<Peer> {
            Ok(Peer {
                subnet: format!("198.19.{s}.0/24").parse()?,
                address: Ipv4Addr::new(198, 18, underlay, host),
                mode: OverlayMode::Vxlan,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let mut keep_source = vec![subnet, format!("198.18.{underlay}.0/24").parse()?];
    keep_source.extend(peers.iter().map(|p| p.subnet));
    network
        .set_policy(NodePolicy {
            egress: true,
            keep_source,
        })
        .await?;
    let overlay = OverlayConfig {
        device: "orcavx0".into(),
        vni: 1,
        port: 4789,
        local,
        mode: OverlayMode::Vxlan,
        mtu: 0,
        subnet,
    };
    network.sync_peers(&overlay, &peers).await?;
    let result = measure_setup(&network, n).await;
    for i in 0..n {
        let _ = network.teardown(&format!("t{i}")).await;
    }
    let _ = network.teardown("anchor").await;
    let _ = network.sync_peers(&overlay, &[]).await;
    let _ = network.remove_bridge().await;
    let (first, orca_setup, orca_teardown) = result?;
    let (ip_setup, ip_teardown) = ip_floor(&config, n)?;
    Ok(SetupFigures {
        first,
        orca_setup,
        orca_teardown,
        ip_setup,
        ip_teardown,
    })
}

async fn measure_setup(
    network: &NetnsNetwork,
    n: usize,
) -> anyhow::Result<(Duration, Vec<Duration>, Vec<Duration>)> {
    // The first task applies the node's NAT rules; it stays up so that the
    // measured tasks find them in place, as on a node running tasks.
    let started = Instant::now();
    network.setup("anchor").await?;
    let first = started.elapsed();
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
    Ok((first, setups, teardowns))
}

/// The per-task steps with one `ip` process each (as
/// crates/net/examples/setup_bench.rs does), on a bridge of the same name
/// made again for it; runs in the calling thread's namespace.
fn ip_floor(
    config: &NodeNetworkConfig,
    n: usize,
) -> anyhow::Result<(Vec<Duration>, Vec<Duration>)> {
    let ip = |args: &[&str]| run(Command::new("ip").args(args)).map(|_| ());
    let bridge = &config.bridge;
    let gateway = config.subnet.gateway().to_string();
    ip(&["link", "add", bridge, "type", "bridge"])?;
    ip(&["addr", "add", &format!("{gateway}/24"), "dev", bridge])?;
    ip(&["link", "set", bridge, "up"])?;
    let base = u32::from(config.subnet.network) + 2;
    let mut setups = Vec::with_capacity(n);
    let mut teardowns = Vec::with_capacity(n);
    let result = (|| -> anyhow::Result<()> {
        for i in 0..n {
            let ns = format!("{}-p{i}", config.netns_prefix);
            let veth = format!("obp{}x{i}", std::process::id() % 10_000);
            let addr = format!("{}/24", Ipv4Addr::from(base + i as u32));
            let started = Instant::now();
            ip(&["netns", "add", &ns])?;
            ip(&[
                "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &ns,
            ])?;
            ip(&["link", "set", &veth, "master", bridge, "up"])?;
            ip(&["-n", &ns, "addr", "add", &addr, "dev", "eth0"])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
            ip(&["-n", &ns, "route", "add", "default", "via", &gateway])?;
            setups.push(started.elapsed());
            let started = Instant::now();
            ip(&["netns", "del", &ns])?;
            teardowns.push(started.elapsed());
        }
        Ok(())
    })();
    let _ = ip(&["link", "del", bridge]);
    result?;
    Ok((setups, teardowns))
}

// ------------------------------------------------------------- 2. TCP

/// Connects from inside `netns` to `target`, retrying while the path comes
/// up (an agent writes routes once the node map arrives).
fn connect_from(netns: &Path, target: SocketAddr) -> anyhow::Result<TcpStream> {
    let deadline = Instant::now() + CONNECT_WAIT;
    loop {
        let attempt = in_namespace(netns, move || {
            TcpStream::connect_timeout(&target, Duration::from_secs(1))
        })?;
        match attempt {
            Ok(s) => {
                s.set_read_timeout(Some(Duration::from_secs(30)))?;
                s.set_write_timeout(Some(Duration::from_secs(30)))?;
                return Ok(s);
            }
            Err(e) if Instant::now() > deadline => {
                bail!("connecting to {target} from {}: {e}", netns.display())
            }
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

fn listen_in(netns: &Path, ip: Ipv4Addr) -> anyhow::Result<(TcpListener, SocketAddr)> {
    let listener = in_namespace(netns, move || TcpListener::bind((ip, 0)))??;
    let addr = listener.local_addr()?;
    Ok((listener, addr))
}

/// Bytes per second of one bulk transfer from `tx` to a listener at `rx_ip`
/// in `rx`, timed from the first byte written to the receiver's EOF.
fn throughput(rx: &Path, rx_ip: Ipv4Addr, tx: &Path, bytes: u64) -> anyhow::Result<f64> {
    let (listener, target) = listen_in(rx, rx_ip)?;
    let receiver = std::thread::spawn(move || -> std::io::Result<u64> {
        let (mut s, _) = listener.accept()?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut buf = vec![0u8; 256 << 10];
        let mut total = 0u64;
        loop {
            match s.read(&mut buf)? {
                0 => return Ok(total),
                n => total += n as u64,
            }
        }
    });
    let mut stream = connect_from(tx, target)?;
    let started = Instant::now();
    let sender = std::thread::spawn(move || -> std::io::Result<()> {
        let chunk = vec![0x5au8; 256 << 10];
        let mut left = bytes;
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            stream.write_all(&chunk[..n])?;
            left -= n as u64;
        }
        stream.shutdown(Shutdown::Write)
    });
    sender
        .join()
        .map_err(|_| anyhow::anyhow!("sender panicked"))??;
    let got = receiver
        .join()
        .map_err(|_| anyhow::anyhow!("receiver panicked"))??;
    let elapsed = started.elapsed();
    ensure!(got == bytes, "received {got} of {bytes} bytes");
    Ok(bytes as f64 / elapsed.as_secs_f64())
}

/// `rounds` timed 1-byte ping-pongs (TCP_NODELAY) from `tx` to an echo in
/// `rx`, after a warm-up.
fn round_trips(
    rx: &Path,
    rx_ip: Ipv4Addr,
    tx: &Path,
    rounds: usize,
) -> anyhow::Result<Vec<Duration>> {
    let (listener, target) = listen_in(rx, rx_ip)?;
    let echo = std::thread::spawn(move || -> std::io::Result<()> {
        let (mut s, _) = listener.accept()?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(30)))?;
        let mut b = [0u8; 1];
        loop {
            match s.read(&mut b)? {
                0 => return Ok(()),
                _ => s.write_all(&b)?,
            }
        }
    });
    let mut s = connect_from(tx, target)?;
    s.set_nodelay(true)?;
    let mut times = Vec::with_capacity(rounds);
    let mut b = [1u8; 1];
    for i in 0..WARMUP + rounds {
        let started = Instant::now();
        s.write_all(&b)?;
        s.read_exact(&mut b)?;
        if i >= WARMUP {
            times.push(started.elapsed());
        }
    }
    s.shutdown(Shutdown::Write)?;
    echo.join()
        .map_err(|_| anyhow::anyhow!("echo panicked"))??;
    Ok(times)
}

/// Two namespaces on a plain bridge in a third (the floor), all named
/// `obf<pid>-*` and removed on drop.
struct BarePair {
    prefix: String,
    _lease: orca_tests::netns::SubnetLease,
    /// The two ends: namespace path and address.
    ends: [(PathBuf, Ipv4Addr); 2],
}

impl BarePair {
    fn new() -> anyhow::Result<BarePair> {
        let prefix = format!("obf{}", std::process::id());
        let bridge = format!("{prefix}br");
        let lease = lease_subnet(&bridge, &prefix)?;
        let s = lease.octet();
        let ends = [
            (
                orca_net::netns::netns_path(&format!("{prefix}-a")),
                Ipv4Addr::new(198, 18, s, 11),
            ),
            (
                orca_net::netns::netns_path(&format!("{prefix}-b")),
                Ipv4Addr::new(198, 18, s, 12),
            ),
        ];
        let pair = BarePair {
            prefix,
            _lease: lease,
            ends,
        };
        pair.build(&bridge)?;
        Ok(pair)
    }

    fn build(&self, bridge: &str) -> anyhow::Result<()> {
        let ip = |args: &[&str]| run(Command::new("ip").args(args)).map(|_| ());
        let host = format!("{}-h", self.prefix);
        ip(&["netns", "add", &host])?;
        ip(&["-n", &host, "link", "set", "lo", "up"])?;
        ip(&["-n", &host, "link", "add", bridge, "type", "bridge"])?;
        ip(&["-n", &host, "link", "set", bridge, "up"])?;
        for (end, (_, addr)) in ["a", "b"].iter().zip(&self.ends) {
            let ns = format!("{}-{end}", self.prefix);
            let veth = format!("v{end}");
            ip(&["netns", "add", &ns])?;
            ip(&[
                "-n", &host, "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                &ns,
            ])?;
            ip(&["-n", &host, "link", "set", &veth, "master", bridge, "up"])?;
            ip(&[
                "-n",
                &ns,
                "addr",
                "add",
                &format!("{addr}/24"),
                "dev",
                "eth0",
            ])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["-n", &ns, "link", "set", "eth0", "up"])?;
        }
        Ok(())
    }
}

impl Drop for BarePair {
    fn drop(&mut self) {
        for end in ["a", "b", "h"] {
            let _ = delete_namespace(&format!("{}-{end}", self.prefix));
        }
    }
}

/// One pair of task namespaces to measure between (receiver, sender).
struct Pair {
    name: &'static str,
    rx: (PathBuf, Ipv4Addr),
    tx: PathBuf,
}

struct TcpFigures {
    name: &'static str,
    bytes_per_sec: f64,
    rtt: Vec<Duration>,
}

fn bench_tcp(pairs: &[Pair], bytes: u64, rounds: usize) -> anyhow::Result<Vec<TcpFigures>> {
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); pairs.len()];
    // Interleaved, so drift on a shared machine hits every pair alike.
    for round in 0..TRANSFERS {
        for (p, rate) in pairs.iter().zip(&mut rates) {
            eprintln!(
                "  transfer {}/{TRANSFERS}: {} ({} MiB)",
                round + 1,
                p.name,
                bytes >> 20
            );
            rate.push(throughput(&p.rx.0, p.rx.1, &p.tx, bytes)?);
        }
    }
    let mut out = Vec::new();
    for (p, mut rate) in pairs.iter().zip(rates) {
        eprintln!("  {rounds} round trips: {}", p.name);
        let rtt = sorted(round_trips(&p.rx.0, p.rx.1, &p.tx, rounds)?);
        rate.sort_by(f64::total_cmp);
        out.push(TcpFigures {
            name: p.name,
            bytes_per_sec: rate[rate.len() / 2],
            rtt,
        });
    }
    Ok(out)
}

// ------------------------------------------------------------- 3. DNS

/// A standard query for `web.orca.local` A with recursion desired, id `id`.
fn dns_query(id: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(32);
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]);
    for label in ["web", "orca", "local"] {
        q.push(label.len() as u8);
        q.extend_from_slice(label.as_bytes());
    }
    q.extend_from_slice(&[0, 0, 1, 0, 1]);
    q
}

/// Sends `query` and waits for the reply with its id; Ok(false) for a
/// reply that is not NOERROR with `answers` answers.
fn exchange(s: &UdpSocket, query: &[u8], answers: u16, buf: &mut [u8]) -> std::io::Result<bool> {
    s.send(query)?;
    loop {
        let n = s.recv(buf)?;
        if n >= 12 && buf[..2] == query[..2] {
            let rcode = buf[3] & 0x0f;
            let ancount = u16::from_be_bytes([buf[6], buf[7]]);
            return Ok(rcode == 0 && ancount == answers);
        }
    }
}

fn udp_client(netns: &Path, server: SocketAddr) -> anyhow::Result<UdpSocket> {
    let s = in_namespace(netns, move || -> std::io::Result<UdpSocket> {
        let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0))?;
        s.connect(server)?;
        s.set_read_timeout(Some(Duration::from_secs(2)))?;
        Ok(s)
    })??;
    Ok(s)
}

struct DnsFigures {
    name: &'static str,
    qps: f64,
    latency: Vec<Duration>,
}

/// Latency of `rounds` sequential queries from one client, then answers
/// per second from [`DNS_CLIENTS`] closed-loop clients over [`DNS_WINDOW`].
fn bench_dns_server(
    name: &'static str,
    netns: &Path,
    server: SocketAddr,
    answers: u16,
    rounds: usize,
) -> anyhow::Result<DnsFigures> {
    let s = udp_client(netns, server)?;
    let mut buf = vec![0u8; 2048];
    let mut latency = Vec::with_capacity(rounds);
    for i in 0..WARMUP + rounds {
        let query = dns_query(i as u16);
        let started = Instant::now();
        ensure!(
            exchange(&s, &query, answers, &mut buf)?,
            "{name}: unexpected reply {:?}",
            &buf[..12]
        );
        if i >= WARMUP {
            latency.push(started.elapsed());
        }
    }
    let mut clients = Vec::new();
    let deadline = Instant::now() + DNS_WINDOW;
    let started = Instant::now();
    for c in 0..DNS_CLIENTS {
        let s = udp_client(netns, server)?;
        clients.push(std::thread::spawn(
            move || -> std::io::Result<(u64, u64)> {
                let mut buf = vec![0u8; 2048];
                let (mut ok, mut bad) = (0u64, 0u64);
                let mut id = (c as u16) << 12;
                while Instant::now() < deadline {
                    id = id.wrapping_add(1);
                    if exchange(&s, &dns_query(id), answers, &mut buf)? {
                        ok += 1;
                    } else {
                        bad += 1;
                    }
                }
                Ok((ok, bad))
            },
        ));
    }
    let (mut ok, mut bad) = (0, 0);
    for c in clients {
        let (o, b) = c.join().map_err(|_| anyhow::anyhow!("client panicked"))??;
        ok += o;
        bad += b;
    }
    let elapsed = started.elapsed();
    ensure!(bad == 0, "{name}: {bad} wrong replies of {}", ok + bad);
    Ok(DnsFigures {
        name,
        qps: ok as f64 / elapsed.as_secs_f64(),
        latency: sorted(latency),
    })
}

/// Binds UDP and TCP on `ip:53` inside `netns` (port 0 if 53 is taken).
fn bind_dns(netns: &Path, ip: Ipv4Addr) -> anyhow::Result<(UdpSocket, TcpListener)> {
    let (udp, tcp) = in_namespace(netns, move || -> std::io::Result<_> {
        let udp = UdpSocket::bind((ip, 53)).or_else(|_| UdpSocket::bind((ip, 0)))?;
        let tcp = TcpListener::bind((ip, udp.local_addr()?.port()))
            .or_else(|_| TcpListener::bind((ip, 0)))?;
        Ok((udp, tcp))
    })??;
    udp.set_nonblocking(true)?;
    tcp.set_nonblocking(true)?;
    Ok((udp, tcp))
}

/// The responder on a runtime of its own (two workers, like the agent's),
/// stopped and joined on drop.
struct ResponderThread {
    stop: tokio_util::sync::CancellationToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ResponderThread {
    fn start(zone: DiscoveryZone, udp: UdpSocket, tcp: TcpListener) -> anyhow::Result<Self> {
        let stop = tokio_util::sync::CancellationToken::new();
        let token = stop.clone();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()?;
        let thread = std::thread::spawn(move || {
            runtime.block_on(async move {
                let udp = match tokio::net::UdpSocket::from_std(udp) {
                    Ok(s) => s,
                    Err(e) => return eprintln!("responder udp: {e}"),
                };
                let tcp = match tokio::net::TcpListener::from_std(tcp) {
                    Ok(s) => s,
                    Err(e) => return eprintln!("responder tcp: {e}"),
                };
                let responder = Arc::new(orca_dns::Responder::new(zone, Vec::new()));
                if let Err(e) = orca_dns::serve(responder, udp, tcp, token).await {
                    eprintln!("responder: {e}");
                }
            })
        });
        Ok(ResponderThread {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for ResponderThread {
    fn drop(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A UDP echo on `ip` inside `netns` (the floor): one blocking thread,
/// ended by a zero-length datagram.
fn udp_echo(
    netns: &Path,
    ip: Ipv4Addr,
) -> anyhow::Result<(SocketAddr, std::thread::JoinHandle<()>)> {
    let s = in_namespace(netns, move || UdpSocket::bind((ip, 0)))??;
    let addr = s.local_addr()?;
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; 2048];
        while let Ok((n, from)) = s.recv_from(&mut buf) {
            if n == 0 {
                return;
            }
            let _ = s.send_to(&buf[..n], from);
        }
    });
    Ok((addr, thread))
}

fn bench_dns(
    host: &Path,
    gateway: Ipv4Addr,
    task: &Path,
    rounds: usize,
) -> anyhow::Result<Vec<DnsFigures>> {
    let endpoints = (0..3)
        .map(|i| ServiceEndpoint {
            task_id: format!("t{i}"),
            address: Ipv4Addr::new(198, 18, 255, 10 + i),
            port: Some(80),
        })
        .collect();
    let zone = DiscoveryZone {
        namespace: orca_core::discovery::DEFAULT_NAMESPACE.into(),
        ttl_secs: 10,
        services: [("web".to_string(), endpoints)].into(),
    };
    let (udp, tcp) = bind_dns(host, gateway)?;
    let server = udp.local_addr()?;
    let responder = ResponderThread::start(zone, udp, tcp)?;
    eprintln!("  orca-dns on {server}");
    let dns = bench_dns_server("orca-dns Responder (A, 3 answers)", task, server, 3, rounds);
    drop(responder);
    let (echo_addr, echo) = udp_echo(host, gateway)?;
    eprintln!("  UDP echo on {echo_addr}");
    // The echo returns the query itself: NOERROR, no answers.
    let floor = bench_dns_server("floor: UDP echo, same address", task, echo_addr, 0, rounds);
    if let Ok(s) = udp_client(task, echo_addr) {
        let _ = s.send(&[]);
    }
    let _ = echo.join();
    Ok(vec![floor?, dns?])
}

// ------------------------------------------------------------- the fleet

/// Address and namespace of a RUNNING task.
fn task_end(net: &MultiNode, host: usize, task: &Value) -> anyhow::Result<(PathBuf, Ipv4Addr)> {
    let ip: Ipv4Addr = task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no address: {task:#}"))?;
    Ok((net.task_netns(host, task), ip))
}

async fn start_task(net: &mut MultiNode, host: usize) -> anyhow::Result<(PathBuf, Ipv4Addr)> {
    let arn = net.run_on(host, "netbench").await?;
    let task = net.wait_running(&arn).await?;
    task_end(net, host, &task)
}

struct FleetFigures {
    tcp: Vec<TcpFigures>,
    dns: Vec<DnsFigures>,
}

async fn bench_fleet(net: &mut MultiNode, args: &Args) -> anyhow::Result<FleetFigures> {
    let td = json!({"family": "netbench", "containerDefinitions": [
        {"name": "app", "image": net.image, "memory": 32,
         "command": ["sh", "-c", "trap 'exit 0' TERM; sleep 3600 & wait"]}]});
    net.client
        .register_task_definition(orca_api::v1::RegisterTaskDefinitionRequest {
            input_json: td.to_string(),
            registered_by: String::new(),
        })
        .await?;
    eprintln!("starting three tasks (two on node 1, one on node 2)");
    let a = start_task(net, 1).await?;
    let b = start_task(net, 1).await?;
    let c = start_task(net, 2).await?;
    let host1 = net.net.host(1).netns_path();
    let gateway = net.agents[0].subnet.parse::<Ipv4Subnet>()?.gateway();
    let (bytes, rounds) = (args.mib << 20, args.rounds);
    tokio::task::spawn_blocking(move || -> anyhow::Result<FleetFigures> {
        let bare = BarePair::new()?;
        let pairs = [
            Pair {
                name: "floor: bare netns, plain bridge",
                rx: bare.ends[1].clone(),
                tx: bare.ends[0].0.clone(),
            },
            Pair {
                name: "orca tasks, same node",
                rx: b.clone(),
                tx: a.0.clone(),
            },
            Pair {
                name: "orca tasks, two nodes, VXLAN",
                rx: c,
                tx: a.0.clone(),
            },
        ];
        eprintln!("TCP between tasks");
        let tcp = bench_tcp(&pairs, bytes, rounds)?;
        drop(bare);
        eprintln!("DNS from a task");
        let dns = bench_dns(&host1, gateway, &a.0, rounds)?;
        Ok(FleetFigures { tcp, dns })
    })
    .await?
}

// ------------------------------------------------------------- report

fn print_setup(f: &mut SetupFigures, n: usize) {
    println!(
        "1. task network setup, {n} tasks, in a test host (egress on, 4 keep-source subnets, 2 VXLAN peers)"
    );
    println!(
        "   {:<46} {:>9} {:>9} {:>10} {:>10}",
        "(ms)", "p50", "p99", "ratio p50", "ratio p99"
    );
    for v in [
        &mut f.orca_setup,
        &mut f.orca_teardown,
        &mut f.ip_setup,
        &mut f.ip_teardown,
    ] {
        v.sort();
    }
    let row = |name: &str, v: &[Duration], floor: &[Duration]| {
        let (p50, p99) = (percentile(v, 50.0), percentile(v, 99.0));
        println!(
            "   {:<46} {:>9.2} {:>9.2} {:>10} {:>10}",
            name,
            ms(p50),
            ms(p99),
            ratio(ms(p50), ms(percentile(floor, 50.0))),
            ratio(ms(p99), ms(percentile(floor, 99.0)))
        );
    };
    row("floor: ip commands, 7 per task", &f.ip_setup, &f.ip_setup);
    row("orca NetnsNetwork::setup", &f.orca_setup, &f.ip_setup);
    row("floor: ip netns del", &f.ip_teardown, &f.ip_teardown);
    row(
        "orca NetnsNetwork::teardown",
        &f.orca_teardown,
        &f.ip_teardown,
    );
    println!(
        "   first task (applies the NAT rules, kept up during the run): {:.2} ms",
        ms(f.first)
    );
}

fn print_tcp(figures: &[TcpFigures], mib: u64, rounds: usize) {
    println!();
    println!(
        "2. TCP between tasks: {mib} MiB transfers (median of {TRANSFERS}), {rounds} 1-byte round trips"
    );
    println!(
        "   {:<34} {:>9} {:>7} {:>9} {:>9} {:>7} {:>7}",
        "", "MiB/s", "ratio", "RTT p50", "RTT p99", "ratio", "ratio"
    );
    println!(
        "   {:<34} {:>9} {:>7} {:>9} {:>9} {:>7} {:>7}",
        "", "", "", "(µs)", "(µs)", "p50", "p99"
    );
    let Some(floor) = figures.first() else { return };
    for f in figures {
        let (p50, p99) = (percentile(&f.rtt, 50.0), percentile(&f.rtt, 99.0));
        println!(
            "   {:<34} {:>9.0} {:>7} {:>9.1} {:>9.1} {:>7} {:>7}",
            f.name,
            f.bytes_per_sec / (1 << 20) as f64,
            ratio(f.bytes_per_sec, floor.bytes_per_sec),
            us(p50),
            us(p99),
            ratio(us(p50), us(percentile(&floor.rtt, 50.0))),
            ratio(us(p99), us(percentile(&floor.rtt, 99.0)))
        );
    }
}

fn print_dns(figures: &[DnsFigures], rounds: usize) {
    println!();
    println!(
        "3. DNS from a task to the bridge gateway over UDP: {DNS_CLIENTS} clients for {DNS_WINDOW:?} (qps), one client x {rounds} (latency)"
    );
    println!(
        "   {:<34} {:>9} {:>7} {:>9} {:>9} {:>7} {:>7}",
        "", "qps", "ratio", "p50 (µs)", "p99 (µs)", "ratio", "ratio"
    );
    let Some(floor) = figures.first() else { return };
    for f in figures {
        let (p50, p99) = (percentile(&f.latency, 50.0), percentile(&f.latency, 99.0));
        println!(
            "   {:<34} {:>9.0} {:>7} {:>9.1} {:>9.1} {:>7} {:>7}",
            f.name,
            f.qps,
            ratio(f.qps, floor.qps),
            us(p50),
            us(p99),
            ratio(us(p50), us(percentile(&floor.latency, 50.0))),
            ratio(us(p99), us(percentile(&floor.latency, 99.0)))
        );
    }
    println!("   (the responder is run by the bench, as the agent runs it)");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if !netns_available()? {
        bail!("bench-net needs root, ip, iptables and nsenter");
    }
    println!(
        "bench-net --tasks {} --bytes {} --rounds {} ({} cores)",
        args.tasks,
        args.mib,
        args.rounds,
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    eprintln!("1. setup and teardown of {} task networks", args.tasks);
    let n = args.tasks;
    let mut setup = tokio::task::spawn_blocking(move || bench_setup(n)).await??;
    print_setup(&mut setup, n);

    eprintln!("2-3. controller and two agents on a routed underlay (VXLAN)");
    let net = MultiNode::start("bn", || TestNet::routed(2), |_| {}, |_, _| {}).await?;
    let Some(mut net) = net else {
        bail!("containerd or the registry tools are missing (see the messages above)");
    };
    let result = bench_fleet(&mut net, &args).await;
    if result.is_err() {
        for i in 1..=net.agents.len() {
            eprintln!("agent {i} log (tail):");
            let log = net.log(i);
            let lines: Vec<&str> = log.lines().collect();
            for l in &lines[lines.len().saturating_sub(20)..] {
                eprintln!("  {l}");
            }
        }
    }
    eprintln!("cleaning up");
    let problems = net.clean().await;
    let fleet = result?;
    print_tcp(&fleet.tcp, args.mib, args.rounds);
    print_dns(&fleet.dns, args.rounds);
    ensure!(problems.is_empty(), "cleanup: {problems:?}");
    Ok(())
}

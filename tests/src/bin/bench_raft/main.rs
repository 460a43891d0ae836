//! Raft benchmark (not a test): orca's 3-node controller cluster beside a
//! 3-member etcd 3.4 cluster on the same machine, driven by the same harness.
//!
//! 1. Write throughput and latency at 1, 16 and 64 concurrent clients: orca
//!    registers a small task definition (parse, validate, replicate, apply),
//!    etcd puts a value of the same byte size (the very same JSON). Each
//!    client has its own connection and one write in flight. Two placements:
//!    every client to the leader (orca's leader node, etcd's leader member),
//!    and clients spread round-robin over the three nodes (followers forward).
//! 2. Leader failover: SIGKILL the leader, time until the first write is
//!    acknowledged through a survivor, restart the killed node on its data and
//!    wait until all three agree on a leader again; orca and etcd alternate.
//!
//! Everything runs on 127.0.0.1; every process started here is killed by
//! its PID when the benchmark ends, fails or is interrupted.
//!
//! Run: `cargo build --release --bins && ./target/release/bench-raft
//! [--seconds N] [--trials N] [--target leader|spread|both]`
//!
//! Needs Debian's `etcd-server` (/usr/bin/etcd; `deploy/install-deps.sh`).
//! With `BENCH_RAFT_VERBOSE=1` each failover trial also prints the last error
//! seen before the acknowledged write (and orca's logs for a trial over 5 s).

use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orca_api::v1::{self, ecs_client::EcsClient};
use orca_tests::cluster::ControllerCluster;
use tonic::transport::Channel;

mod etcd;
mod measure;

use etcd::*;
use measure::*;

pub(crate) const NODES: usize = 3;
pub(crate) const LEVELS: [usize; 3] = [1, 16, 64];
pub(crate) const ETCD_BIN: &str = "/usr/bin/etcd";
/// Per-call limit while measuring throughput (a write slower than this
/// counts as an error).
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Per-call limit while retrying writes after a leader kill.
pub(crate) const FAILOVER_CALL_TIMEOUT: Duration = Duration::from_millis(500);
/// After a leader kill a new write attempt starts this often, alternating
/// over the survivors (so each survivor gets one every 20 ms).
pub(crate) const FAILOVER_TICK: Duration = Duration::from_millis(10);
/// A failover slower than this fails the benchmark.
pub(crate) const FAILOVER_LIMIT: Duration = Duration::from_secs(30);
/// How long a restarted node may take to rejoin.
pub(crate) const SETTLE_LIMIT: Duration = Duration::from_secs(60);
/// One status or Members call.
pub(crate) const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Target {
    /// Every client to the current leader.
    Leader,
    /// Client `c` to node `c % 3`.
    Spread,
}

pub(crate) struct Args {
    seconds: u64,
    trials: usize,
    targets: Vec<Target>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        seconds: 10,
        trials: 20,
        targets: vec![Target::Leader, Target::Spread],
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--seconds" => args.seconds = value()?.parse().context("--seconds")?,
            "--trials" => args.trials = value()?.parse().context("--trials")?,
            "--target" => {
                args.targets = match value()?.as_str() {
                    "leader" => vec![Target::Leader],
                    "spread" => vec![Target::Spread],
                    "both" => vec![Target::Leader, Target::Spread],
                    other => bail!("--target: leader, spread or both, not {other:?}"),
                }
            }
            "-h" | "--help" => {
                println!("bench-raft [--seconds N (10)] [--trials N (20)] [--target leader|spread|both (both)]");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (see --help)"),
        }
    }
    anyhow::ensure!(args.seconds >= 1, "--seconds must be at least 1");
    Ok(args)
}

/// A small task definition; fixed width, so every request has the same size.
pub(crate) fn definition(seq: u64) -> String {
    let n = seq % 1_000_000;
    format!(
        concat!(
            r#"{{"family":"raft-{:02}","containerDefinitions":[{{"name":"web","#,
            r#""image":"registry.example.com/web:{:06}","cpu":256,"memory":512,"#,
            r#""portMappings":[{{"containerPort":8080}}],"#,
            r#""environment":[{{"name":"SEQ","value":"{:06}"}}]}}]}}"#
        ),
        seq % 100,
        n,
        n
    )
}

/// One client connection to one node of either system.
#[derive(Clone)]
pub(crate) enum Writer {
    Orca(EcsClient<Channel>),
    /// Boxed: the client is large (3.5 KB) and cloned per failover attempt.
    Etcd(Box<etcd_client::Client>),
}

impl Writer {
    async fn orca(endpoint: &str) -> anyhow::Result<Self> {
        Ok(Writer::Orca(orca_api::client::connect(endpoint).await?))
    }

    async fn etcd(endpoint: &str) -> anyhow::Result<Self> {
        Ok(Writer::Etcd(Box::new(etcd_connect(endpoint).await?)))
    }

    /// orca: registers `definition(seq)`; etcd: puts the same JSON (same
    /// size) under one of 100 keys.
    async fn write(&mut self, seq: u64) -> anyhow::Result<()> {
        let json = definition(seq);
        match self {
            Writer::Orca(c) => {
                c.register_task_definition(v1::RegisterTaskDefinitionRequest {
                    input_json: json,
                    registered_by: String::new(),
                })
                .await?;
            }
            Writer::Etcd(c) => {
                c.put(format!("raft-{:02}", seq % 100), json, None).await?;
            }
        }
        Ok(())
    }
}

/// An etcd client of one member only.
pub(crate) async fn etcd_connect(endpoint: &str) -> anyhow::Result<etcd_client::Client> {
    let options = etcd_client::ConnectOptions::new().with_connect_timeout(PROBE_TIMEOUT);
    Ok(etcd_client::Client::connect([endpoint], Some(options)).await?)
}

/// One write attempt of a failover loop (one concrete future type).
pub(crate) async fn attempt(mut w: Writer, seq: u64) -> anyhow::Result<()> {
    match tokio::time::timeout(FAILOVER_CALL_TIMEOUT, w.write(seq)).await {
        Ok(r) => r,
        Err(_) => bail!("timed out after {FAILOVER_CALL_TIMEOUT:?}"),
    }
}

// ---------------------------------------------------------------- orca

/// Waits until all three nodes answer `Members`, name the same leader, the
/// leader counts three voters, and node `via` (if any) acknowledges a write.
async fn orca_settle(
    cluster: &mut ControllerCluster,
    via: Option<usize>,
    seq: &AtomicU64,
) -> anyhow::Result<usize> {
    let deadline = Instant::now() + SETTLE_LIMIT;
    let mut last = String::new();
    while Instant::now() < deadline {
        match orca_agreed_leader(cluster).await {
            Ok(leader) => {
                let Some(via) = via else { return Ok(leader) };
                let put = async {
                    let w = Writer::orca(&cluster.endpoint(via)).await?;
                    attempt(w, seq.fetch_add(1, Ordering::Relaxed)).await
                };
                match put.await {
                    Ok(()) => return Ok(leader),
                    Err(e) => last = format!("write via node {via}: {e:#}"),
                }
            }
            Err(e) => last = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!(
        "orca not settled after {SETTLE_LIMIT:?}: {last}\n{}",
        cluster.logs()
    )
}

async fn orca_agreed_leader(cluster: &mut ControllerCluster) -> anyhow::Result<usize> {
    let mut replies = Vec::new();
    for i in 1..=cluster.len() {
        anyhow::ensure!(cluster.is_running(i), "node {i} is not running");
        replies.push(cluster.members(i).await?);
    }
    let leader = replies[0].leader_id;
    anyhow::ensure!(
        leader != 0 && replies.iter().all(|r| r.leader_id == leader),
        "nodes disagree on the leader: {:?}",
        replies.iter().map(|r| r.leader_id).collect::<Vec<_>>()
    );
    let view = &replies[leader as usize - 1];
    let voters = view.members.iter().filter(|m| m.voter).count();
    anyhow::ensure!(voters == cluster.len(), "the leader counts {voters} voters");
    Ok(leader as usize)
}

// ---------------------------------------------------------------- harness

async fn orca_trial(cluster: &mut ControllerCluster, seq: &AtomicU64) -> anyhow::Result<Duration> {
    let leader = orca_settle(cluster, None, seq).await?;
    let mut survivors = Vec::new();
    for i in (1..=cluster.len()).filter(|&i| i != leader) {
        survivors.push(Writer::orca(&cluster.endpoint(i)).await?);
    }
    let start = Instant::now();
    cluster.kill9(leader)?;
    let (took, last) = first_ack(survivors, start, seq)
        .await
        .map_err(|e| anyhow::anyhow!("orca: {e:#}\n{}", cluster.logs()))?;
    if std::env::var_os("BENCH_RAFT_VERBOSE").is_some() {
        eprintln!("orca: leader {leader} killed; last error before the ack: {last}");
        if took > Duration::from_secs(5) {
            eprintln!("{}", cluster.logs());
        }
    }
    cluster.restart(leader)?;
    orca_settle(cluster, Some(leader), seq).await?;
    Ok(took)
}

async fn etcd_trial(etcd: &mut EtcdCluster, seq: &AtomicU64) -> anyhow::Result<Duration> {
    let leader = etcd.settle(None, seq).await?;
    let mut survivors = Vec::new();
    for i in (0..etcd.members.len()).filter(|&i| i != leader) {
        survivors.push(Writer::etcd(&etcd.endpoint(i)).await?);
    }
    let start = Instant::now();
    etcd.kill9(leader)?;
    let (took, last) = first_ack(survivors, start, seq)
        .await
        .map_err(|e| anyhow::anyhow!("etcd: {e:#}\n{}", etcd.logs()))?;
    if std::env::var_os("BENCH_RAFT_VERBOSE").is_some() {
        eprintln!(
            "etcd: leader m{} killed; last error before the ack: {last}",
            leader + 1
        );
    }
    etcd.spawn(leader)?;
    etcd.settle(Some(leader), seq).await?;
    Ok(took)
}

async fn run(args: Args) -> anyhow::Result<()> {
    let etcd_version = Command::new(ETCD_BIN)
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.lines().next().map(str::to_string))
        .unwrap_or_else(|| "etcd: unknown version".into());
    let request_bytes = definition(0).len();
    let tuning = orca_controller::raft::RaftTuning::default();

    println!("bench-raft: 3 orca-controller nodes and 3 etcd members on 127.0.0.1, same machine, same harness");
    println!(
        "  orca {} (openraft 0.9 + sled; heartbeat {} ms, election timeout {}-{} ms)",
        env!("CARGO_PKG_VERSION"),
        tuning.heartbeat_interval_ms,
        tuning.election_timeout_min_ms,
        tuning.election_timeout_max_ms
    );
    println!("  {etcd_version} ({ETCD_BIN}, defaults: heartbeat 100 ms, election timeout 1000 ms), client: etcd-client crate 0.21");
    println!(
        "  write: orca RegisterTaskDefinition of a {request_bytes} B JSON definition \
         (parse, validate, replicate, apply); etcd put of that same {request_bytes} B JSON under one of 100 keys"
    );
    println!("  each client: its own gRPC connection, one write in flight; per-call timeout {CALL_TIMEOUT:?}");

    let mut etcd = EtcdCluster::start(NODES)?;
    let (fsync_p50, fsync_p99, append_p50) = fsync_probe(etcd.dir(), 2000)?;
    let mut orca = ControllerCluster::start_loopback(NODES).await?;
    let seq = Arc::new(AtomicU64::new(0));
    orca_settle(&mut orca, None, &seq).await?;
    etcd.settle(None, &seq).await?;
    let (_, _, server_version) = etcd.status(0).await?;
    println!("  etcd server reports version {server_version}");
    println!(
        "  fsync here: 4 KiB write + fdatasync p50 {:.3} ms, p99 {:.3} ms (preallocated file, in {}); \
         appending p50 {:.3} ms",
        ms(fsync_p50),
        ms(fsync_p99),
        etcd.dir().display(),
        ms(append_p50)
    );
    println!("  (Raft latencies here are optimistic against real disks: compare ratios, not absolute numbers)");

    // Warm-up (discarded): connections, allocators, first sled/bbolt pages.
    {
        let leader = orca_settle(&mut orca, None, &seq).await?;
        let mut ws = Vec::new();
        for _ in 0..8 {
            ws.push(Writer::orca(&orca.endpoint(leader)).await?);
        }
        drive(ws, 1, seq.clone()).await?;
        let leader = etcd.settle(None, &seq).await?;
        let mut ws = Vec::new();
        for _ in 0..8 {
            ws.push(Writer::etcd(&etcd.endpoint(leader)).await?);
        }
        drive(ws, 1, seq.clone()).await?;
    }

    for &target in &args.targets {
        println!();
        match target {
            Target::Leader => println!(
                "writes to the leader ({} s per row): every orca client to the leader node, every etcd client to the leader member",
                args.seconds
            ),
            Target::Spread => println!(
                "writes spread over all three ({} s per row): client c to node c mod 3, followers forward to the leader",
                args.seconds
            ),
        }
        println!(
            "{:>7} | {:>13} {:>8} {:>8} | {:>13} {:>8} {:>8} | {:>9}",
            "clients",
            "orca writes/s",
            "p50 ms",
            "p99 ms",
            "etcd writes/s",
            "p50 ms",
            "p99 ms",
            "orca/etcd"
        );
        let mut notes = Vec::new();
        for clients in LEVELS {
            let leader = orca_settle(&mut orca, None, &seq).await?;
            let mut ws = Vec::with_capacity(clients);
            for c in 0..clients {
                let node = match target {
                    Target::Leader => leader,
                    Target::Spread => c % NODES + 1,
                };
                ws.push(Writer::orca(&orca.endpoint(node)).await?);
            }
            let o = drive(ws, args.seconds, seq.clone()).await?;

            let leader = etcd.settle(None, &seq).await?;
            let mut ws = Vec::with_capacity(clients);
            for c in 0..clients {
                let member = match target {
                    Target::Leader => leader,
                    Target::Spread => c % NODES,
                };
                ws.push(Writer::etcd(&etcd.endpoint(member)).await?);
            }
            let e = drive(ws, args.seconds, seq.clone()).await?;

            println!(
                "{:>7} | {:>13.0} {:>8.2} {:>8.2} | {:>13.0} {:>8.2} {:>8.2} | {:>9.2}",
                clients,
                o.rate(),
                o.p(0.5),
                o.p(0.99),
                e.rate(),
                e.p(0.5),
                e.p(0.99),
                o.rate() / e.rate()
            );
            for (name, r) in [("orca", &o), ("etcd", &e)] {
                if r.errors > 0 {
                    notes.push(format!(
                        "  {clients} clients, {name}: {} failed writes (not counted), first: {}",
                        r.errors,
                        r.first_error.as_deref().unwrap_or_default()
                    ));
                }
            }
        }
        for note in notes {
            println!("{note}");
        }
    }

    println!();
    println!(
        "leader failover, {} trials each (orca and etcd alternate): SIGKILL the leader, then a write \
         attempt every {} ms over the two survivors (per-call timeout {} ms) until one is acknowledged",
        args.trials,
        FAILOVER_TICK.as_millis(),
        FAILOVER_CALL_TIMEOUT.as_millis()
    );
    let mut orca_times = Vec::with_capacity(args.trials);
    let mut etcd_times = Vec::with_capacity(args.trials);
    for t in 1..=args.trials {
        let o = orca_trial(&mut orca, &seq)
            .await
            .with_context(|| format!("orca failover trial {t}"))?;
        let e = etcd_trial(&mut etcd, &seq)
            .await
            .with_context(|| format!("etcd failover trial {t}"))?;
        eprintln!(
            "  trial {t:>2}: orca {:>7.0} ms   etcd {:>7.0} ms",
            ms(o),
            ms(e)
        );
        orca_times.push(o);
        etcd_times.push(e);
    }
    orca_times.sort();
    etcd_times.sort();
    if args.trials > 0 {
        println!(
            "{:>4} | {:>8} {:>8} {:>8}",
            "", "p50 ms", "max ms", "min ms"
        );
        for (name, times) in [("orca", &orca_times), ("etcd", &etcd_times)] {
            println!(
                "{name:>4} | {:>8.0} {:>8.0} {:>8.0}",
                ms(percentile(times, 0.5)),
                ms(*times.last().unwrap_or(&Duration::ZERO)),
                ms(*times.first().unwrap_or(&Duration::ZERO)),
            );
        }
        println!(
            "ratio orca/etcd p50 {:.2}",
            ms(percentile(&orca_times, 0.5)) / ms(percentile(&etcd_times, 0.5))
        );
    }
    // Dropping `orca` and `etcd` kills every process by PID.
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // Bound the whole run: every step has its own limit; this is the backstop.
    let rows = 3 * 2 * args.targets.len() as u64 * (args.seconds + 10);
    let trials = args.trials as u64 * 2 * (FAILOVER_LIMIT + SETTLE_LIMIT).as_secs();
    let limit = Duration::from_secs(300 + rows + trials);
    tokio::select! {
        result = tokio::time::timeout(limit, run(args)) => {
            result.map_err(|_| anyhow::anyhow!("bench-raft did not finish within {limit:?}"))?
        }
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

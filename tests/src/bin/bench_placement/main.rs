//! Placement benchmark (not a test): placements per second with 10,000
//! tasks onto 10,000 simulated container instances, committed through a
//! 3-node controller cluster while every instance holds its session and
//! heartbeats, printed next to the scheduler alone (in this process, same
//! instances, same asks) measured in the same run; and RunTask throughput
//! (count 10) from 16 clients through the leader and through the followers.
//!
//! Scenarios, each with its own task definition (so its own task group):
//! 1. `binpack(memory)`;
//! 2. `spread(attribute:ecs.availability-zone)` over 10 zones with
//!    `memberOf(attribute:tier == gold)` (half of each zone is gold);
//! 3. RunTask throughput with ECS's default strategy (spread over zones,
//!    then instances), all clients through the leader, then all through the
//!    followers.
//!
//! Every RunTask asks for 10 tasks (ECS's maximum); `--clients` clients
//! each keep one call in flight on their own connection. Results are
//! checked against the benchmark's own map of the instances: every task
//! placed, memberOf respected, zones even within one, binpack packed, and
//! every instance's session told about exactly its tasks.
//!
//! The simulated instances (`fleet.rs`) register like agents and hold
//! `Agent/Session` streams with the leader over a few HTTP/2 connections,
//! heartbeating every `--heartbeat-secs` and reading their assignments.
//! Everything runs on 127.0.0.1; the controllers are killed by PID when the
//! benchmark ends, fails or is interrupted.
//!
//! Run: `cargo build --release --bins && ./target/release/bench-placement
//! [--instances 10000] [--tasks 10000] [--clients 16]`
//! (see `--help`; `BENCH_PLACEMENT_RUST_LOG` sets the controllers' RUST_LOG,
//! `BENCH_PLACEMENT_LOGS=DIR` keeps their logs).

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::{EcsJsonRequest, RegisterTaskDefinitionRequest};
use orca_core::placement::{PlacementConstraintInput, PlacementStrategyInput};
use orca_tests::cluster::ControllerCluster;
use serde_json::{json, Value};
use tonic::transport::Channel;

mod alone;
mod fleet;

use fleet::{Fleet, FleetSpec, Pool};

/// ECS's most tasks per RunTask.
pub(crate) const TASKS_PER_CALL: usize = 10;
const NODES: usize = 3;
/// One RunTask may take this long before it counts as an error.
const CALL_TIMEOUT: Duration = Duration::from_secs(120);

// Published figures (other hardware and setups; not measured here).
const NOMAD_C1M: f64 = 3_750.0;
const NOMAD_C2M: f64 = 1_500.0;
const KUBE_SCHEDULER_FLOOR: f64 = 810.0;
const TARGET: f64 = 10_000.0;

struct Args {
    instances: usize,
    tasks: usize,
    clients: usize,
    zones: usize,
    heartbeat: Duration,
    heartbeat_timeout_secs: u64,
    connections: usize,
    instance_cpu: u64,
    instance_memory: u64,
    task_cpu: u64,
    task_memory: u64,
    alone_batch: usize,
    scheduler_only: bool,
    open_rate: u64,
}

const USAGE: &str =
    "bench-placement [--instances N (10000)] [--tasks N (10000)] [--clients N (16)] \
[--zones N (10)] [--heartbeat-secs N (5)] [--heartbeat-timeout-secs N (30; also the loss grace)] \
[--connections N per controller (16)] [--instance-cpu N (4096)] [--instance-memory MiB (8192)] \
[--task-cpu N (128)] [--task-memory MiB (256)] \
[--alone-batch N asks per plan in the batched scheduler-alone rows (--clients; 0: none)] [--open-rate sessions opened per second (1000; 0: all at once)] [--scheduler-only]";

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        instances: 10_000,
        tasks: 10_000,
        clients: 16,
        zones: 10,
        heartbeat: Duration::from_secs(5),
        heartbeat_timeout_secs: 30,
        connections: 16,
        instance_cpu: 4096,
        instance_memory: 8192,
        task_cpu: 128,
        task_memory: 256,
        alone_batch: usize::MAX,
        scheduler_only: false,
        open_rate: 1000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        if flag == "-h" || flag == "--help" {
            println!("{USAGE}");
            std::process::exit(0);
        }
        if flag == "--scheduler-only" {
            a.scheduler_only = true;
            continue;
        }
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let n = || -> anyhow::Result<u64> { value.parse().with_context(|| flag.clone()) };
        match flag.as_str() {
            "--instances" => a.instances = n()? as usize,
            "--tasks" => a.tasks = n()? as usize,
            "--clients" => a.clients = n()? as usize,
            "--zones" => a.zones = n()? as usize,
            "--heartbeat-secs" => a.heartbeat = Duration::from_secs(n()?),
            "--heartbeat-timeout-secs" => a.heartbeat_timeout_secs = n()?,
            "--connections" => a.connections = n()? as usize,
            "--instance-cpu" => a.instance_cpu = n()?,
            "--instance-memory" => a.instance_memory = n()?,
            "--task-cpu" => a.task_cpu = n()?,
            "--task-memory" => a.task_memory = n()?,
            "--alone-batch" => a.alone_batch = n()? as usize,
            "--open-rate" => a.open_rate = n()?,
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    if a.alone_batch == usize::MAX {
        a.alone_batch = a.clients;
    }
    anyhow::ensure!(
        (1..=65_536).contains(&a.instances),
        "--instances: 1 to 65536 (one 10.x.y.0/24 task subnet each)"
    );
    anyhow::ensure!(a.tasks >= 1 && a.clients >= 1 && a.zones >= 1 && a.connections >= 1);
    anyhow::ensure!(
        a.task_cpu >= 1 && a.task_memory >= 6,
        "--task-memory: at least 6 MiB"
    );
    anyhow::ensure!(
        a.heartbeat_timeout_secs > a.heartbeat.as_secs(),
        "--heartbeat-timeout-secs must exceed --heartbeat-secs"
    );
    Ok(a)
}

/// Which checks a scenario's placements get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Binpack,
    SpreadGold,
    Default,
}

/// One kind of RunTask: its own task definition (task group) and placement.
pub(crate) struct Scenario {
    kind: Kind,
    title: String,
    pub(crate) family: String,
    pub(crate) strategy: Vec<PlacementStrategyInput>,
    pub(crate) constraints: Vec<PlacementConstraintInput>,
}

impl Scenario {
    fn new(kind: Kind, family: &str) -> Self {
        let strategy = |t: &str, f: Option<&str>| PlacementStrategyInput {
            r#type: t.to_string(),
            field: f.map(str::to_string),
        };
        let (title, strategy, constraints) = match kind {
            Kind::Binpack => (
                "binpack(memory)".to_string(),
                vec![strategy("binpack", Some("memory"))],
                Vec::new(),
            ),
            Kind::SpreadGold => (
                format!(
                    "spread(attribute:{}) + memberOf(attribute:{} == gold)",
                    fleet::ZONE_ATTRIBUTE,
                    fleet::TIER_ATTRIBUTE
                ),
                vec![strategy(
                    "spread",
                    Some(&format!("attribute:{}", fleet::ZONE_ATTRIBUTE)),
                )],
                vec![PlacementConstraintInput {
                    r#type: "memberOf".to_string(),
                    expression: Some(format!("attribute:{} == gold", fleet::TIER_ATTRIBUTE)),
                }],
            ),
            Kind::Default => (
                "default strategy (spread zone, then instanceId)".to_string(),
                Vec::new(),
                Vec::new(),
            ),
        };
        Scenario {
            kind,
            title,
            family: family.to_string(),
            strategy,
            constraints,
        }
    }

    fn definition(&self, args: &Args) -> String {
        json!({"family": self.family, "containerDefinitions": [{
            "name": "app", "image": "registry.example.com/app:1",
            "cpu": args.task_cpu, "memory": args.task_memory}]})
        .to_string()
    }

    fn run_task(&self, count: usize) -> String {
        let mut input =
            json!({"cluster": "default", "taskDefinition": self.family, "count": count});
        if !self.strategy.is_empty() {
            input["placementStrategy"] = json!(self.strategy);
        }
        if !self.constraints.is_empty() {
            input["placementConstraints"] = json!(self.constraints);
        }
        input.to_string()
    }
}

/// Calls one of the JSON ECS calls by name.
pub(crate) async fn ecs_json(
    client: &mut EcsClient<Channel>,
    operation: &str,
    input: &Value,
) -> anyhow::Result<Value> {
    let request = EcsJsonRequest {
        input_json: input.to_string(),
    };
    let reply = match operation {
        "RunTask" => client.run_task(request).await,
        "ListContainerInstances" => client.list_container_instances(request).await,
        "DescribeContainerInstances" => client.describe_container_instances(request).await,
        other => bail!("no such call here: {other}"),
    }
    .map_err(|s| anyhow::anyhow!("{operation}: {}", orca_api::error::from_status(&s)))?;
    Ok(serde_json::from_str(&reply.into_inner().output_json)?)
}

/// `sorted` must be sorted.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// CPU seconds (user + system) a process has used so far.
fn cpu_seconds(pid: Option<u32>) -> f64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/stat"),
        None => "/proc/self/stat".to_string(),
    };
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the command name (which may hold spaces): utime is the
    // 14th field, stime the 15th, in USER_HZ (100 on Linux).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The 1, 5 and 15 minute load averages.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// CPU used by the leader, the followers and this process over a span.
struct CpuSpan {
    pids: Vec<(usize, Option<u32>)>,
    before: Vec<f64>,
    me: f64,
    start: Instant,
}

impl CpuSpan {
    fn start(cluster: &ControllerCluster, leader: usize) -> Self {
        let mut pids = vec![(leader, cluster.pid(leader))];
        pids.extend(
            (1..=cluster.len())
                .filter(|&i| i != leader)
                .map(|i| (i, cluster.pid(i))),
        );
        let before = pids.iter().map(|(_, p)| cpu_seconds(*p)).collect();
        CpuSpan {
            pids,
            before,
            me: cpu_seconds(None),
            start: Instant::now(),
        }
    }

    /// CPU seconds the leader used since the start.
    fn leader(&self) -> f64 {
        cpu_seconds(self.pids[0].1) - self.before[0]
    }

    fn line(&self) -> String {
        let used: Vec<String> = self
            .pids
            .iter()
            .zip(&self.before)
            .enumerate()
            .map(|(k, ((node, pid), before))| {
                let role = if k == 0 { "leader" } else { "follower" };
                format!("{role} n{node} {:.1}", cpu_seconds(*pid) - before)
            })
            .collect();
        format!(
            "CPU s: {}, this process {:.1} (wall {:.1} s, 2 cores = {:.1} CPU s)",
            used.join(", "),
            cpu_seconds(None) - self.me,
            self.start.elapsed().as_secs_f64(),
            2.0 * self.start.elapsed().as_secs_f64()
        )
    }
}

/// What the RunTask clients saw.
struct Driven {
    calls: usize,
    /// Fleet index of every placed task.
    placed: Vec<usize>,
    failures: Vec<String>,
    errors: usize,
    first_error: Option<String>,
    latencies: Vec<Duration>,
    elapsed: Duration,
}

impl Driven {
    fn rate(&self) -> f64 {
        self.placed.len() as f64 / self.elapsed.as_secs_f64()
    }
}

/// `clients` each keep one RunTask of `scenario` in flight until `tasks`
/// tasks were asked for.
async fn drive(
    clients: Vec<EcsClient<Channel>>,
    scenario: &Scenario,
    tasks: usize,
    by_arn: Arc<HashMap<String, usize>>,
) -> anyhow::Result<Driven> {
    let calls = tasks.div_ceil(TASKS_PER_CALL);
    let next = Arc::new(AtomicUsize::new(0));
    let bodies: Arc<Vec<String>> = Arc::new(
        (0..calls)
            .map(|c| scenario.run_task(TASKS_PER_CALL.min(tasks - c * TASKS_PER_CALL)))
            .collect(),
    );
    let start = Instant::now();
    let workers: Vec<_> = clients
        .into_iter()
        .map(|mut client| {
            let next = next.clone();
            let bodies = bodies.clone();
            let by_arn = by_arn.clone();
            tokio::spawn(async move {
                let mut out = Driven {
                    calls: 0,
                    placed: Vec::new(),
                    failures: Vec::new(),
                    errors: 0,
                    first_error: None,
                    latencies: Vec::new(),
                    elapsed: Duration::ZERO,
                };
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some(body) = bodies.get(n) else { break };
                    let request = EcsJsonRequest {
                        input_json: body.clone(),
                    };
                    let t0 = Instant::now();
                    let reply = tokio::time::timeout(CALL_TIMEOUT, client.run_task(request)).await;
                    let took = t0.elapsed();
                    out.calls += 1;
                    let reply = match reply {
                        Ok(Ok(r)) => r.into_inner().output_json,
                        Ok(Err(status)) => {
                            out.errors += 1;
                            out.first_error.get_or_insert_with(|| {
                                orca_api::error::from_status(&status).to_string()
                            });
                            continue;
                        }
                        Err(_) => {
                            out.errors += 1;
                            out.first_error
                                .get_or_insert_with(|| format!("timed out after {CALL_TIMEOUT:?}"));
                            continue;
                        }
                    };
                    out.latencies.push(took);
                    let reply: Value = match serde_json::from_str(&reply) {
                        Ok(v) => v,
                        Err(e) => {
                            out.errors += 1;
                            out.first_error
                                .get_or_insert_with(|| format!("bad reply: {e}"));
                            continue;
                        }
                    };
                    for task in reply["tasks"].as_array().into_iter().flatten() {
                        let arn = task["containerInstanceArn"].as_str().unwrap_or_default();
                        match by_arn.get(arn) {
                            Some(&i) => out.placed.push(i),
                            None => out
                                .failures
                                .push(format!("a task on unknown instance {arn:?}")),
                        }
                    }
                    for f in reply["failures"].as_array().into_iter().flatten() {
                        out.failures.push(format!(
                            "{} ({})",
                            f["reason"].as_str().unwrap_or("?"),
                            f["detail"].as_str().unwrap_or("")
                        ));
                    }
                }
                out
            })
        })
        .collect();
    let mut total = Driven {
        calls: 0,
        placed: Vec::with_capacity(tasks),
        failures: Vec::new(),
        errors: 0,
        first_error: None,
        latencies: Vec::with_capacity(calls),
        elapsed: Duration::ZERO,
    };
    for w in workers {
        let out = w.await?;
        total.calls += out.calls;
        total.placed.extend(out.placed);
        total.failures.extend(out.failures);
        total.errors += out.errors;
        if total.first_error.is_none() {
            total.first_error = out.first_error;
        }
        total.latencies.extend(out.latencies);
    }
    total.elapsed = start.elapsed();
    total.latencies.sort();
    Ok(total)
}

/// Checks placements against the fleet; a one-line summary, and problems.
fn check(
    kind: Kind,
    placed: &[usize],
    failures: usize,
    asked: usize,
    spec: &FleetSpec,
    per_instance: u64,
) -> (String, Vec<String>) {
    let mut problems = Vec::new();
    if placed.len() != asked || failures > 0 {
        problems.push(format!(
            "{} of {asked} tasks placed, {failures} failures",
            placed.len()
        ));
    }
    let mut per: HashMap<usize, u64> = HashMap::new();
    for &i in placed {
        *per.entry(i).or_default() += 1;
    }
    let most = per.values().copied().max().unwrap_or(0);
    if most > per_instance {
        problems.push(format!(
            "an instance holds {most} tasks, more than the {per_instance} that fit"
        ));
    }
    let mut zones: BTreeMap<usize, usize> = (0..spec.zones).map(|z| (z, 0)).collect();
    for &i in placed {
        *zones.entry(i % spec.zones).or_default() += 1;
    }
    let zmin = zones.values().copied().min().unwrap_or(0);
    let zmax = zones.values().copied().max().unwrap_or(0);
    let mut summary = format!(
        "{}/{asked} placed, {failures} failures, {} instances used (at most {most} on one), zones {zmin}..{zmax}",
        placed.len(),
        per.len()
    );
    match kind {
        Kind::Binpack => {
            let ideal = (placed.len() as u64).div_ceil(per_instance) as usize;
            summary.push_str(&format!("; packed onto {} (ideal {ideal})", per.len()));
            if per.len() != ideal {
                problems.push(format!(
                    "binpack used {} instances, {ideal} would hold the tasks",
                    per.len()
                ));
            }
        }
        Kind::SpreadGold => {
            let silver = placed.iter().filter(|&&i| !spec.gold(i)).count();
            summary.push_str(&format!("; {silver} on non-gold instances"));
            if silver > 0 {
                problems.push(format!(
                    "memberOf broken: {silver} tasks on non-gold instances"
                ));
            }
            if zmax - zmin > 1 {
                problems.push(format!("zones uneven: {zmin}..{zmax} tasks per zone"));
            }
        }
        Kind::Default => {
            if zmax - zmin > 1 {
                problems.push(format!("zones uneven: {zmin}..{zmax} tasks per zone"));
            }
        }
    }
    (summary, problems)
}

#[derive(Default)]
struct Report {
    problems: Vec<String>,
}

impl Report {
    fn check(&mut self, name: &str, (summary, problems): (String, Vec<String>)) {
        println!("    check {name}: {summary}");
        for p in problems {
            println!("    CHECK FAILED ({name}): {p}");
            self.problems.push(format!("{name}: {p}"));
        }
    }
}

fn row(name: &str, rate: f64, p50: Duration, p99: Duration, cpu_ms_per_task: f64) {
    let cpu = if cpu_ms_per_task.is_finite() {
        format!("{cpu_ms_per_task:.3}")
    } else {
        "-".to_string()
    };
    println!(
        "  {name:<62} {rate:>10.0} {:>9.2} {:>9.2} {cpu:>13}",
        ms(p50),
        ms(p99)
    );
}

fn header(what: &str) {
    println!(
        "  {what:<62} {:>10} {:>9} {:>9} {:>13}",
        "tasks/s", "p50 ms", "p99 ms", "CPU ms/task"
    );
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// The scheduler alone on a fresh in-process state: binpack, spread and
/// the default strategy in that order (the cluster's order), `batch` asks
/// per plan.
fn scheduler_alone(
    spec: &FleetSpec,
    definitions: &[String],
    scenarios: [&Scenario; 3],
    tasks: usize,
    batch: usize,
) -> anyhow::Result<[alone::AloneRun; 3]> {
    let t0 = Instant::now();
    let mut inproc = alone::Alone::build(spec, definitions)?;
    eprintln!(
        "in-process state with {} instances built through apply in {:.1} s",
        spec.instances,
        t0.elapsed().as_secs_f64()
    );
    let mut runs = Vec::with_capacity(3);
    for s in scenarios {
        let r = inproc.run(s, tasks, batch)?;
        eprintln!(
            "scheduler alone, {batch} ask(s) per plan, {}: {:.0} tasks/s",
            s.title,
            r.placed.len() as f64 / r.schedule_time.as_secs_f64()
        );
        runs.push(r);
    }
    let mut runs = runs.into_iter();
    let mut next = || runs.next().context("a scheduler run is missing");
    Ok([next()?, next()?, next()?])
}

/// CPU milliseconds per placed task in `schedule()`.
fn alone_cpu(a: &alone::AloneRun) -> f64 {
    ms(a.schedule_cpu) / a.placed.len().max(1) as f64
}

/// The scheduler-alone rows of one scenario.
fn alone_rows(single: &alone::AloneRun, batched: Option<&alone::AloneRun>, batch: usize) {
    row(
        "scheduler alone, same run (schedule() per ask of 10)",
        single.placed.len() as f64 / single.schedule_time.as_secs_f64(),
        percentile(&single.plan_latencies, 0.5),
        percentile(&single.plan_latencies, 0.99),
        alone_cpu(single),
    );
    if let Some(b) = batched {
        row(
            &format!("scheduler alone, {batch} asks per schedule() (as the leader batches)"),
            b.placed.len() as f64 / b.schedule_time.as_secs_f64(),
            percentile(&b.plan_latencies, 0.5),
            percentile(&b.plan_latencies, 0.99),
            alone_cpu(b),
        );
    }
    row(
        "scheduler + apply in process, per ask (no Raft, no gRPC)",
        single.placed.len() as f64 / single.wall.as_secs_f64(),
        percentile(&single.step_latencies, 0.5),
        percentile(&single.step_latencies, 0.99),
        f64::NAN,
    );
}

async fn run(args: Args) -> anyhow::Result<()> {
    let spec = FleetSpec {
        instances: args.instances,
        zones: args.zones,
        cpu: args.instance_cpu,
        memory: args.instance_memory,
    };
    let per_instance =
        (args.instance_cpu / args.task_cpu).min(args.instance_memory / args.task_memory);
    anyhow::ensure!(
        per_instance * (args.instances as u64 / 2).max(1) >= args.tasks as u64,
        "the gold half of the instances cannot hold --tasks tasks of this size"
    );
    let binpack = Scenario::new(Kind::Binpack, "bench-binpack");
    let spread = Scenario::new(Kind::SpreadGold, "bench-spread");
    let default_leader = Scenario::new(Kind::Default, "bench-default-leader");
    let default_followers = Scenario::new(Kind::Default, "bench-default-followers");
    let all = [&binpack, &spread, &default_leader, &default_followers];
    let definitions: Vec<String> = all.iter().map(|s| s.definition(&args)).collect();
    let batch = args.alone_batch;

    println!(
        "bench-placement: {} simulated instances, {} tasks per scenario, count {TASKS_PER_CALL} per RunTask; {}",
        args.instances,
        args.tasks,
        if args.scheduler_only {
            "the scheduler alone (--scheduler-only)".to_string()
        } else {
            format!(
                "{NODES} orca-controller nodes (release) on 127.0.0.1, the instances' sessions \
                 in this process, {} RunTask clients",
                args.clients
            )
        }
    );
    println!(
        "  instances: cpu {}, memory {} MiB, {} zones ({}), {}=gold on half of each zone, {} attributes each \
         (the agent's own list plus those two)",
        args.instance_cpu,
        args.instance_memory,
        args.zones,
        fleet::ZONE_ATTRIBUTE,
        fleet::TIER_ATTRIBUTE,
        spec.attributes(0).len()
    );
    println!(
        "  tasks: one container, cpu {}, memory {} MiB ({per_instance} fit one instance); \
         each scenario has its own task definition (task group)",
        args.task_cpu, args.task_memory
    );

    println!(
        "  load average at the start: {} (2 cores, shared: timings vary between runs; compare within one)",
        loadavg()
    );

    // 1. The scheduler alone, before any controller runs.
    let three = [&binpack, &spread, &default_leader];
    let [alone_binpack, alone_spread, alone_default] =
        scheduler_alone(&spec, &definitions, three, args.tasks, 1)?;
    let batched = if batch > 1 {
        Some(scheduler_alone(
            &spec,
            &definitions,
            three,
            args.tasks,
            batch,
        )?)
    } else {
        None
    };

    // 2. The cluster and the fleet.
    let measured = if args.scheduler_only {
        None
    } else {
        let mut builder = ControllerCluster::builder(NODES)
            .extra_args([
                "--agent-heartbeat-timeout-secs".to_string(),
                args.heartbeat_timeout_secs.to_string(),
                "--agent-loss-grace-secs".to_string(),
                args.heartbeat_timeout_secs.to_string(),
            ])
            .join_timeout(Duration::from_secs(60));
        if let Ok(filter) = std::env::var("BENCH_PLACEMENT_RUST_LOG") {
            builder = builder.env("RUST_LOG", &filter);
        }
        let mut cluster = builder.start().await?;
        let result = measure_cluster(&args, &spec, &mut cluster, &all).await;
        // The cluster's directory goes with it: keep the logs when asked
        // to, and always after a failure.
        let keep = std::env::var("BENCH_PLACEMENT_LOGS").ok().or_else(|| {
            result.is_err().then(|| {
                std::env::temp_dir()
                    .join(format!("bench-placement-logs-{}", std::process::id()))
                    .display()
                    .to_string()
            })
        });
        if let Some(dir) = keep {
            std::fs::create_dir_all(&dir)?;
            for i in 1..=cluster.len() {
                let _ = std::fs::copy(cluster.log_path(i), format!("{dir}/node-{i}.log"));
            }
            eprintln!("controller logs copied to {dir}");
        }
        match result {
            Ok(m) => Some(m),
            Err(e) => {
                let logs: String = (1..=cluster.len())
                    .map(|i| {
                        format!(
                            "===== node {i} (last lines) =====\n{}\n",
                            tail(&cluster.log_text(i), 30)
                        )
                    })
                    .collect();
                return Err(e.context(logs));
            }
        }
        // Dropping the cluster kills the controllers by PID and removes
        // their data.
    };

    // 3. The tables.
    let mut report = Report::default();
    if let Some(m) = &measured {
        println!(
            "  fleet: {} registered in {:.1} s ({:.0}/s, {} at a time); all connected in the leader's view \
             {:.1} s after the sessions opened; sessions over {} HTTP/2 connections per controller, \
             heartbeat every {} s (controller timeout {} s)",
            args.instances,
            m.registration.as_secs_f64(),
            args.instances as f64 / m.registration.as_secs_f64(),
            fleet::REGISTER_CONCURRENCY,
            m.connected.as_secs_f64(),
            args.connections,
            args.heartbeat.as_secs(),
            args.heartbeat_timeout_secs
        );
    }
    println!();
    println!(
        "placements per second, {} tasks per scenario onto {} instances ({} RunTask-sized asks of {TASKS_PER_CALL}):",
        args.tasks,
        args.instances,
        args.tasks.div_ceil(TASKS_PER_CALL)
    );
    let rows = [
        (
            &binpack,
            measured.as_ref().map(|m| &m.binpack),
            &alone_binpack,
            batched.as_ref().map(|b| &b[0]),
        ),
        (
            &spread,
            measured.as_ref().map(|m| &m.spread),
            &alone_spread,
            batched.as_ref().map(|b| &b[1]),
        ),
    ];
    for (scenario, c, a, b) in rows {
        println!("{}", scenario.title);
        header("");
        let alone_rate = a.placed.len() as f64 / a.schedule_time.as_secs_f64();
        if let Some(c) = c {
            row(
                &format!(
                    "orca, 3-node Raft, {} clients to the leader (RunTask latency)",
                    args.clients
                ),
                c.driven.rate(),
                percentile(&c.driven.latencies, 0.5),
                percentile(&c.driven.latencies, 0.99),
                c.leader_cpu * 1e3 / c.driven.placed.len().max(1) as f64,
            );
        }
        alone_rows(a, b, batch);
        if let Some(c) = c {
            println!(
                "  {:<62} {:>10.3} {:>33.2}",
                "ratio orca / scheduler alone per ask (rate; CPU per task)",
                c.driven.rate() / alone_rate,
                c.leader_cpu * 1e3 / c.driven.placed.len().max(1) as f64 / alone_cpu(a)
            );
            if c.driven.errors > 0 {
                println!(
                    "    {} RunTask calls failed, first: {}",
                    c.driven.errors,
                    c.driven.first_error.as_deref().unwrap_or_default()
                );
            }
            report.check(
                "orca",
                check(
                    scenario.kind,
                    &c.driven.placed,
                    c.driven.failures.len() + c.driven.errors * TASKS_PER_CALL,
                    args.tasks,
                    &spec,
                    per_instance,
                ),
            );
            if let Some(f) = c.driven.failures.first() {
                println!("    first failure: {f}");
            }
        }
        report.check(
            "scheduler alone",
            check(
                scenario.kind,
                &a.placed,
                a.failures,
                args.tasks,
                &spec,
                per_instance,
            ),
        );
        if let Some(b) = b {
            report.check(
                "scheduler alone, batched",
                check(
                    scenario.kind,
                    &b.placed,
                    b.failures,
                    args.tasks,
                    &spec,
                    per_instance,
                ),
            );
        }
        if let Some(c) = c {
            println!(
                "    assignments pushed to the instances: {} messages, {:.1} MB; every instance held its \
                 tasks {:.0} ms after the last RunTask reply",
                c.messages,
                c.bytes as f64 / 1e6,
                ms(c.delivered)
            );
            println!("    {}", c.cpu);
        }
    }

    println!();
    println!(
        "RunTask throughput, count {TASKS_PER_CALL}, {} clients (own connection each, one call in flight), {} calls, {}:",
        args.clients,
        args.tasks.div_ceil(TASKS_PER_CALL),
        default_leader.title
    );
    println!(
        "  {:<62} {:>10} {:>10} {:>9} {:>9} {:>13}",
        "", "calls/s", "tasks/s", "p50 ms", "p99 ms", "CPU ms/task"
    );
    let throughput_row = |name: &str, calls: f64, tasks: f64, lat: &[Duration], cpu: f64| {
        println!(
            "  {name:<62} {calls:>10.0} {tasks:>10.0} {:>9.2} {:>9.2} {cpu:>13.3}",
            ms(percentile(lat, 0.5)),
            ms(percentile(lat, 0.99))
        );
    };
    if let Some(m) = &measured {
        for (name, c) in [
            ("through the leader", &m.default_leader),
            (
                "through the followers (client c to follower c mod 2)",
                &m.default_followers,
            ),
        ] {
            let d = &c.driven;
            throughput_row(
                name,
                d.latencies.len() as f64 / d.elapsed.as_secs_f64(),
                d.rate(),
                &d.latencies,
                c.leader_cpu * 1e3 / d.placed.len().max(1) as f64,
            );
        }
    }
    let a = &alone_default;
    throughput_row(
        "scheduler alone, same run (schedule() per ask of 10)",
        a.plan_latencies.len() as f64 / a.schedule_time.as_secs_f64(),
        a.placed.len() as f64 / a.schedule_time.as_secs_f64(),
        &a.plan_latencies,
        alone_cpu(a),
    );
    if let Some(b) = batched.as_ref().map(|b| &b[2]) {
        throughput_row(
            &format!("scheduler alone, {batch} asks per schedule() (per plan)"),
            (b.placed.len() as f64 / TASKS_PER_CALL as f64) / b.schedule_time.as_secs_f64(),
            b.placed.len() as f64 / b.schedule_time.as_secs_f64(),
            &b.plan_latencies,
            alone_cpu(b),
        );
    }
    if let Some(m) = &measured {
        for (name, c) in [
            ("via leader", &m.default_leader),
            ("via followers", &m.default_followers),
        ] {
            if c.driven.errors > 0 {
                println!(
                    "    {name}: {} RunTask calls failed, first: {}",
                    c.driven.errors,
                    c.driven.first_error.as_deref().unwrap_or_default()
                );
            }
            report.check(
                name,
                check(
                    Kind::Default,
                    &c.driven.placed,
                    c.driven.failures.len() + c.driven.errors * TASKS_PER_CALL,
                    args.tasks,
                    &spec,
                    per_instance,
                ),
            );
            println!("    {}", c.cpu);
        }
    }
    report.check(
        "scheduler alone",
        check(
            Kind::Default,
            &a.placed,
            a.failures,
            args.tasks,
            &spec,
            per_instance,
        ),
    );
    if let Some(b) = batched.as_ref().map(|b| &b[2]) {
        report.check(
            "scheduler alone, batched",
            check(
                Kind::Default,
                &b.placed,
                b.failures,
                args.tasks,
                &spec,
                per_instance,
            ),
        );
    }
    println!();
    if let Some(m) = &measured {
        println!(
            "  sessions during the run: {} heartbeats sent, {} sessions lost (first: {}), {} redirects",
            m.heartbeats, m.lost, m.first_loss, m.redirects
        );
        if m.leader_moves.is_empty() {
            println!("  the leader stayed the same node throughout");
        } else {
            println!(
                "  LEADER MOVED (CPU lines name the first leader): {}",
                m.leader_moves.join("; ")
            );
        }
    }

    println!("  load average at the end: {}", loadavg());
    println!();
    println!(
        "published anchors (other hardware and setups, not measured here); orca's and the scheduler's ratio to each:"
    );
    println!(
        "  {:<38} {:>8} {:>12} {:>12} {:>12} {:>12}",
        "", "tasks/s", "orca binpk", "orca spread", "alone binpk", "alone spread"
    );
    let rate = |a: &alone::AloneRun| a.placed.len() as f64 / a.schedule_time.as_secs_f64();
    let (ab, asp) = (rate(&alone_binpack), rate(&alone_spread));
    for (name, anchor) in [
        ("Nomad C1M (5 servers)", NOMAD_C1M),
        ("Nomad C2M", NOMAD_C2M),
        ("kube-scheduler CI floor, 5,000 nodes", KUBE_SCHEDULER_FLOOR),
        ("the issue's aim", TARGET),
    ] {
        let orca = |r: Option<f64>| match r {
            Some(r) => format!("{:.2}", r / anchor),
            None => "-".to_string(),
        };
        println!(
            "  {name:<38} {anchor:>8.0} {:>12} {:>12} {:>12.2} {:>12.2}",
            orca(measured.as_ref().map(|m| m.binpack.driven.rate())),
            orca(measured.as_ref().map(|m| m.spread.driven.rate())),
            ab / anchor,
            asp / anchor
        );
    }
    if !report.problems.is_empty() {
        bail!(
            "{} check(s) failed: {}",
            report.problems.len(),
            report.problems.join("; ")
        );
    }
    Ok(())
}

/// One scenario run against the cluster.
struct ClusterRun {
    driven: Driven,
    messages: u64,
    bytes: u64,
    delivered: Duration,
    cpu: String,
    /// CPU seconds the leader used during the run.
    leader_cpu: f64,
}

struct Measured {
    registration: Duration,
    connected: Duration,
    binpack: ClusterRun,
    spread: ClusterRun,
    default_leader: ClusterRun,
    default_followers: ClusterRun,
    heartbeats: u64,
    lost: usize,
    redirects: usize,
    first_loss: String,
    /// Where the leader was not the one the run started with.
    leader_moves: Vec<String>,
}

/// Notes a phase after which another node (or none) leads.
async fn note_leader(
    cluster: &mut ControllerCluster,
    leader: usize,
    phase: &str,
    moves: &mut Vec<String>,
) {
    match cluster.leader().await {
        Some(l) if l == leader => {}
        other => {
            let now = other.map_or("no agreed leader".to_string(), |l| {
                format!("node {l} leads")
            });
            eprintln!("after {phase}: {now} (the run started with node {leader})");
            moves.push(format!("after {phase}: {now}"));
        }
    }
}

async fn connect_clients(
    cluster: &ControllerCluster,
    nodes: &[usize],
    n: usize,
) -> anyhow::Result<Vec<EcsClient<Channel>>> {
    let mut clients = Vec::with_capacity(n);
    for c in 0..n {
        clients.push(cluster.ecs_client(nodes[c % nodes.len()]).await?);
    }
    Ok(clients)
}

async fn measure_cluster(
    args: &Args,
    spec: &FleetSpec,
    cluster: &mut ControllerCluster,
    scenarios: &[&Scenario; 4],
) -> anyhow::Result<Measured> {
    let leader = cluster.wait_leader(Duration::from_secs(30)).await?;
    let followers: Vec<usize> = (1..=cluster.len()).filter(|&i| i != leader).collect();
    let leader_ep = cluster.endpoint(leader);
    let pool = Arc::new(Pool::new(args.connections));
    let (arns, registration) = Fleet::register(spec.clone(), &pool, &leader_ep)
        .await
        .context("registering the instances")?;
    let fleet = Fleet::connect(
        arns,
        pool.clone(),
        &leader_ep,
        args.heartbeat,
        args.open_rate,
    );
    let mut ecs = cluster.ecs_client(leader).await?;
    let within = Duration::from_secs(120 + args.instances as u64 / 50);
    let connected = fleet.wait_connected(&mut ecs, within).await?;
    eprintln!(
        "fleet: {} registered in {:.1} s, connected {:.1} s later",
        args.instances,
        registration.as_secs_f64(),
        connected.as_secs_f64()
    );
    for s in scenarios.iter() {
        ecs.register_task_definition(RegisterTaskDefinitionRequest {
            input_json: s.definition(args),
            registered_by: String::new(),
        })
        .await
        .with_context(|| format!("registering {}", s.family))?;
    }
    let mut leader_moves = Vec::new();
    note_leader(cluster, leader, "connecting the fleet", &mut leader_moves).await;
    let by_arn = Arc::new(fleet.by_arn.clone());
    let mut expected_held = 0u64;
    let mut runs = Vec::new();
    for (k, scenario) in scenarios.iter().enumerate() {
        let nodes = if k == 3 {
            followers.clone()
        } else {
            vec![leader]
        };
        let clients = connect_clients(cluster, &nodes, args.clients).await?;
        let (m0, b0) = (
            fleet.stats.assignment_messages.load(Ordering::Relaxed),
            fleet.stats.assignment_bytes.load(Ordering::Relaxed),
        );
        let cpu = CpuSpan::start(cluster, leader);
        let driven = drive(clients, scenario, args.tasks, by_arn.clone()).await?;
        expected_held += driven.placed.len() as u64;
        let delivered = fleet
            .wait_held(expected_held, Duration::from_secs(120))
            .await
            .with_context(|| format!("after {}", scenario.title))?;
        let leader_cpu = cpu.leader();
        let cpu = cpu.line();
        note_leader(cluster, leader, &scenario.title, &mut leader_moves).await;
        eprintln!(
            "{} via {}: {:.0} tasks/s ({} placed, {} errors)",
            scenario.title,
            if k == 3 { "followers" } else { "leader" },
            driven.rate(),
            driven.placed.len(),
            driven.errors
        );
        runs.push(ClusterRun {
            driven,
            messages: fleet.stats.assignment_messages.load(Ordering::Relaxed) - m0,
            bytes: fleet.stats.assignment_bytes.load(Ordering::Relaxed) - b0,
            delivered,
            cpu,
            leader_cpu,
        });
    }
    let still = fleet.count_connected(&mut ecs).await?;
    anyhow::ensure!(
        still == args.instances,
        "only {still} of {} instances still connected at the end (first loss: {})",
        args.instances,
        fleet.first_loss()
    );
    let stats = fleet.stats.clone();
    let first_loss = fleet.first_loss();
    fleet.stop().await;
    let mut runs = runs.into_iter();
    let mut next = || runs.next().context("a scenario run is missing");
    Ok(Measured {
        registration,
        connected,
        binpack: next()?,
        spread: next()?,
        default_leader: next()?,
        default_followers: next()?,
        heartbeats: stats.heartbeats.load(Ordering::Relaxed),
        lost: stats.lost.load(Ordering::Relaxed),
        redirects: stats.redirects.load(Ordering::Relaxed),
        first_loss,
        leader_moves,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    // The backstop over the whole run; every wait has its own limit too.
    let limit = Duration::from_secs(900 + args.instances as u64 / 20 + args.tasks as u64 / 5);
    tokio::select! {
        result = tokio::time::timeout(limit, run(args)) => {
            result.map_err(|_| anyhow::anyhow!("bench-placement did not finish within {limit:?}"))?
        }
        _ = tokio::signal::ctrl_c() => bail!("interrupted"),
    }
}

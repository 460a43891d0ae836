//! ECS JSON endpoint benchmark (not a test): RunTask and DescribeTasks per
//! second and p50 through ECS's JSON 1.1 endpoint (HTTP/1.1, one kept-alive
//! connection per client, as an SDK holds) against the same calls through
//! gRPC (one HTTP/2 connection per client), from 16 concurrent clients, against one real `orca-controller`
//! process with agents on the fake runtime. Each task exits at once (an
//! instance's /24 holds ~250 running tasks), so the agent's reports of
//! starts and exits are written beside the RunTask calls, as on a busy
//! cluster; reads are measured once every task has STOPPED.
//!
//! Rounds go gRPC, JSON, JSON, gRPC (ABBA), so that the state growing with
//! every RunTask favours neither side; each side's figure sums its two rounds.
//!
//! Run: `cargo build --release --bins && ./target/release/bench-ecs-api [--calls N]`
//! (N RunTask calls per round, default 1000; DescribeTasks makes 4 N).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orca_api::v1::ecs_client::EcsClient;
use orca_api::v1::EcsJsonRequest;
use orca_tests::agents::{wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::controller::{free_addr, ControllerProcess, ControllerSpec};
use orca_tests::ecs_http::EcsHttpClient;
use serde_json::{json, Value};
use tonic::transport::Channel;

const CLIENTS: usize = 16;
/// Agents (on the fake runtime, in this process) the tasks are spread over.
const AGENTS: usize = 8;
/// Tasks named in one DescribeTasks call (ECS takes up to 100).
const DESCRIBE_BATCH: usize = 10;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Wire {
    Grpc,
    Json,
}

impl Wire {
    fn name(self) -> &'static str {
        match self {
            Wire::Grpc => "gRPC",
            Wire::Json => "JSON 1.1",
        }
    }
}

/// A client of one wire.
enum Caller {
    Grpc(EcsClient<Channel>),
    Json(EcsHttpClient),
}

impl Caller {
    async fn call(&mut self, operation: &str, input: &Value) -> anyhow::Result<Value> {
        match self {
            Caller::Json(c) => c.call(operation, input).await?.ok(),
            Caller::Grpc(c) => {
                let request = EcsJsonRequest {
                    input_json: input.to_string(),
                };
                let reply = match operation {
                    "RunTask" => c.run_task(request).await,
                    "DescribeTasks" => c.describe_tasks(request).await,
                    other => anyhow::bail!("not benchmarked: {other}"),
                }
                .map_err(|s| anyhow::anyhow!("{operation}: {}", s.message()))?;
                Ok(serde_json::from_str(&reply.into_inner().output_json)?)
            }
        }
    }
}

/// What one round measured.
#[derive(Default)]
struct Round {
    elapsed: Duration,
    latencies: Vec<Duration>,
}

impl Round {
    fn add(&mut self, other: Round) {
        self.elapsed += other.elapsed;
        self.latencies.extend(other.latencies);
    }

    fn rate(&self) -> f64 {
        self.latencies.len() as f64 / self.elapsed.as_secs_f64()
    }

    fn percentile(&mut self, p: f64) -> Duration {
        self.latencies.sort_unstable();
        let rank = ((p / 100.0) * (self.latencies.len() as f64 - 1.0)).round() as usize;
        self.latencies
            .get(rank.min(self.latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    }
}

struct Target {
    grpc: String,
    json: std::net::SocketAddr,
}

impl Target {
    async fn callers(&self, wire: Wire) -> anyhow::Result<Vec<Caller>> {
        let mut callers = Vec::with_capacity(CLIENTS);
        for _ in 0..CLIENTS {
            callers.push(match wire {
                Wire::Grpc => Caller::Grpc(orca_api::client::connect(&self.grpc).await?),
                Wire::Json => Caller::Json(EcsHttpClient::connect(self.json).await?),
            });
        }
        Ok(callers)
    }
}

/// `calls` calls from CLIENTS clients; `input(i)` is call i's input, and
/// `check` what its output must show. Returns the round and every output.
async fn round(
    target: &Target,
    wire: Wire,
    operation: &'static str,
    calls: usize,
    input: Arc<dyn Fn(usize) -> Value + Send + Sync>,
    check: fn(&Value) -> bool,
) -> anyhow::Result<(Round, Vec<Value>)> {
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::new();
    for mut caller in target.callers(wire).await? {
        let next = next.clone();
        let input = input.clone();
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut outputs = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= calls {
                    return Ok::<_, anyhow::Error>((latencies, outputs));
                }
                let input = input(i);
                let sent = Instant::now();
                let output = caller.call(operation, &input).await?;
                latencies.push(sent.elapsed());
                anyhow::ensure!(check(&output), "{operation} {input}: {output}");
                outputs.push(output);
            }
        }));
    }
    let mut result = Round::default();
    let mut outputs = Vec::new();
    for w in workers {
        let (latencies, out) = w.await??;
        result.latencies.extend(latencies);
        outputs.extend(out);
    }
    result.elapsed = start.elapsed();
    Ok((result, outputs))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn report(operation: &str, grpc: &mut Round, json: &mut Round) {
    println!("{operation}, {CLIENTS} concurrent clients:");
    for (wire, r) in [(Wire::Grpc, &mut *grpc), (Wire::Json, &mut *json)] {
        println!(
            "  {:<9} {:>8.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   ({} calls)",
            wire.name(),
            r.rate(),
            ms(r.percentile(50.0)),
            ms(r.percentile(99.0)),
            r.latencies.len()
        );
    }
    println!(
        "  ratio JSON/gRPC: throughput {:.2}, p50 {:.2}",
        json.rate() / grpc.rate(),
        json.percentile(50.0).as_secs_f64() / grpc.percentile(50.0).as_secs_f64()
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let calls: usize = std::env::args()
        .skip_while(|a| a != "--calls")
        .nth(1)
        .map(|n| n.parse())
        .transpose()?
        .unwrap_or(1000);
    let dir = tempfile::tempdir()?;
    let json_addr = free_addr()?;
    let mut controller = ControllerProcess::spawn_with(ControllerSpec {
        data_dir: dir.path().join("controller"),
        listen: Some(free_addr()?),
        extra_args: vec!["--ecs-api-listen".into(), json_addr.to_string()],
        ..ControllerSpec::default()
    })?;
    let mut client = controller.wait_ready(Duration::from_secs(60)).await?;
    // Roomy instances: every task fits. Tasks exit at once, but an agent
    // that falls behind holds addresses of its /24 longer, so the tasks are
    // spread over several.
    let mut nodes = Vec::with_capacity(AGENTS);
    for _ in 0..AGENTS {
        nodes.push(
            FakeNode::start(&controller.endpoint(), |c| {
                c.cpu_units = Some(1 << 30);
                c.memory_mib = Some(1 << 30);
            })
            .await?,
        );
    }
    wait_for_instances(&mut client, "default", AGENTS, Duration::from_secs(30)).await?;
    let target = Target {
        grpc: controller.endpoint(),
        json: json_addr,
    };
    let mut setup = EcsHttpClient::connect(json_addr).await?;
    setup
        .call(
            "RegisterTaskDefinition",
            &json!({"family": "bench", "containerDefinitions": [
                {"name": "app", "image": FAKE_IMAGE, "cpu": 1, "memory": 6,
                 "command": ["sh", "-c", "exit 0"]}]}),
        )
        .await?
        .ok()
        .context("registering the benchmark's task definition")?;
    // Agents whose sessions are up, so RunTask places at once.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let probe = setup
            .call("RunTask", &json!({"taskDefinition": "bench"}))
            .await?
            .ok()?;
        if probe["failures"] == json!([]) {
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "the agent never connected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let run_input: Arc<dyn Fn(usize) -> Value + Send + Sync> =
        Arc::new(|_| json!({"taskDefinition": "bench", "startedBy": "bench"}));
    let placed = |o: &Value| o["failures"] == json!([]) && o["tasks"][0]["taskArn"].is_string();
    let (mut run_grpc, mut run_json) = (Round::default(), Round::default());
    let mut arns = Vec::new();
    for wire in [Wire::Grpc, Wire::Json, Wire::Json, Wire::Grpc] {
        let (r, outputs) =
            round(&target, wire, "RunTask", calls, run_input.clone(), placed).await?;
        arns.extend(
            outputs
                .iter()
                .filter_map(|o| o["tasks"][0]["taskArn"].as_str().map(str::to_string)),
        );
        match wire {
            Wire::Grpc => run_grpc.add(r),
            Wire::Json => run_json.add(r),
        }
    }

    // Reads measured on a settled cluster: every task ran and exited 0, the
    // agent's reports are all in.
    let deadline = Instant::now() + Duration::from_secs(300);
    for chunk in arns.chunks(100) {
        loop {
            let out = setup
                .call("DescribeTasks", &json!({ "tasks": chunk }))
                .await?
                .ok()?;
            let tasks = out["tasks"].as_array().cloned().unwrap_or_default();
            let done =
                |t: &&Value| t["lastStatus"] == "STOPPED" && t["containers"][0]["exitCode"] == 0;
            if tasks.iter().filter(done).count() == chunk.len() {
                break;
            }
            if Instant::now() > deadline {
                let stuck = tasks.iter().find(|t| !done(t));
                anyhow::bail!("a task did not run and exit 0: {stuck:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let arns = Arc::new(arns);
    let describe_input: Arc<dyn Fn(usize) -> Value + Send + Sync> = {
        let arns = arns.clone();
        Arc::new(move |i| {
            let start = (i * DESCRIBE_BATCH * 7) % (arns.len() - DESCRIBE_BATCH);
            json!({"tasks": &arns[start..start + DESCRIBE_BATCH]})
        })
    };
    let found = |o: &Value| {
        o["tasks"]
            .as_array()
            .is_some_and(|t| t.len() == DESCRIBE_BATCH)
            && o["failures"] == json!([])
    };
    let (mut describe_grpc, mut describe_json) = (Round::default(), Round::default());
    for wire in [Wire::Grpc, Wire::Json, Wire::Json, Wire::Grpc] {
        let (r, _) = round(
            &target,
            wire,
            "DescribeTasks",
            calls * 4,
            describe_input.clone(),
            found,
        )
        .await?;
        match wire {
            Wire::Grpc => describe_grpc.add(r),
            Wire::Json => describe_json.add(r),
        }
    }

    println!(
        "one orca-controller process, {AGENTS} agents (fake runtime); {} tasks placed",
        arns.len()
    );
    report(
        "RunTask (one task per call, a Raft write)",
        &mut run_grpc,
        &mut run_json,
    );
    report(
        &format!("DescribeTasks ({DESCRIBE_BATCH} tasks per call, a linearizable read)"),
        &mut describe_grpc,
        &mut describe_json,
    );
    for node in nodes {
        node.stop().await;
    }
    controller.kill9()?;
    Ok(())
}

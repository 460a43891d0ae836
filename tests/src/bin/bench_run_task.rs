//! Run-task benchmark (not a test): run-task → RUNNING latency over N
//! sequential tasks with the image present, through a real `orca-controller`
//! and `orca-agent` (real containerd, a network namespace per task), next to
//! a bare containerd create + start of the same image through the same
//! client library (orca-runtime) in the same run; and the agent's resident
//! memory idle and with N tasks running.
//!
//! Run as root with containerd up (deploy/start-containerd.sh):
//! `cargo build --release --bins && ./target/release/bench-run-task [--tasks 50]`

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime, RegistriesConfig};
use orca_runtime::{ContainerRuntime, ContainerSpec, StopSignal};
use orca_tests::agents::{ecs, wait_for_instances};
use orca_tests::containerd::{containerd_socket, unique_namespace};
use orca_tests::controller::{connect_with_retry, free_addr, ControllerProcess};
use orca_tests::netns::lease_subnet;
use orca_tests::registry::build_busybox_oci_archive;
use serde_json::json;

const IMAGE: &str = "orca-busybox:1";
const SCRIPT: &str = "trap 'exit 0' TERM; sleep 3600 & wait";

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

fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no VmRSS")
}

async fn runtime(socket: &Path, namespace: &str, dir: &Path) -> anyhow::Result<ContainerdRuntime> {
    Ok(ContainerdRuntime::connect(ContainerdConfig {
        socket: socket.to_path_buf(),
        namespace: namespace.to_string(),
        registries: RegistriesConfig::default(),
        state_dir: dir.join(namespace),
        log_driver: orca_tests::bin_path("orca-log-driver").ok(),
    })
    .await?)
}

/// Bare containerd: create + start of the image, host network, N times.
async fn baseline(rt: &ContainerdRuntime, logs: &Path, n: usize) -> anyhow::Result<Vec<Duration>> {
    let image = rt.ensure_image(IMAGE, None).await?;
    let mut times = Vec::with_capacity(n);
    let mut ids = Vec::new();
    for i in 0..n {
        let id = format!("bare-{i}");
        let spec = ContainerSpec {
            command: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
            memory_limit_mib: Some(16),
            ..ContainerSpec::new(id.clone(), image.clone(), logs.join(format!("{id}.log")))
        };
        let started = Instant::now();
        rt.create(&spec).await?;
        rt.start(&id).await?;
        times.push(started.elapsed());
        ids.push(id);
    }
    for id in &ids {
        rt.kill(id, StopSignal::Kill).await.ok();
    }
    for id in &ids {
        rt.remove(id).await.ok();
    }
    Ok(times)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut n = 50usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tasks" => n = args.next().context("--tasks N")?.parse()?,
            other => anyhow::bail!("unknown argument {other}; usage: bench-run-task [--tasks N]"),
        }
    }
    let socket = containerd_socket()?
        .context("containerd is needed (deploy/start-containerd.sh) and root")?;
    let work = tempfile::tempdir()?;
    let archive = build_busybox_oci_archive(work.path())?;

    // Baseline first, in its own namespace.
    let base_ns = unique_namespace("bench-base");
    let base = runtime(&socket, &base_ns, work.path()).await?;
    base.load_archive(&archive).await?;
    baseline(&base, work.path(), 3).await?; // warm-up
    let bare = baseline(&base, work.path(), n).await?;
    if let Err(e) = base.purge_namespace().await {
        eprintln!("cleanup of containerd namespace {base_ns} failed: {e}");
    }

    // orca: a controller and an agent, as processes.
    let agent_ns = unique_namespace("bench-agent");
    let agent_rt = runtime(&socket, &agent_ns, work.path()).await?;
    agent_rt.load_archive(&archive).await?;
    let bridge = format!("ob{}", std::process::id() % 100_000_000);
    let lease = lease_subnet(&bridge, &format!("orca-{agent_ns}"))?;
    let addr = free_addr()?;
    let controller_dir = work.path().join("controller");
    std::fs::create_dir_all(&controller_dir)?;
    let controller = ControllerProcess::spawn(&controller_dir, addr)?;
    let agent_dir = work.path().join("agent");
    std::fs::create_dir_all(&agent_dir)?;
    let config = agent_dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "endpoints = [\"{addr}\"]\ndata_dir = \"{}\"\ncontainerd_namespace = \"{agent_ns}\"\nbridge = \"{bridge}\"\ntask_subnet = \"{}\"\ncpu_units = 1000000\nmemory_mib = 1000000\nreport_batch_window = 2\n",
            agent_dir.display(),
            lease.cidr()
        ),
    )?;
    let log = std::fs::File::create(agent_dir.join("agent.log"))?;
    let mut agent = std::process::Command::new(orca_tests::bin_path("orca-agent")?)
        .args(["--config", &config.display().to_string()])
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()?;
    let agent_pid = agent.id();
    let result = measure_orca(&addr.to_string(), n, agent_pid).await;

    // Clean up whatever happened: the agent by its PID, the tasks' leftovers.
    // SAFETY: kill(2) on the PID of the child this process spawned.
    unsafe { libc_kill(agent_pid as i32, 15) };
    let _ = agent.wait();
    drop(controller);
    if let Err(e) = agent_rt.purge_namespace().await {
        eprintln!("cleanup of containerd namespace {agent_ns}: {e}; trying again");
        tokio::time::sleep(Duration::from_secs(2)).await;
        if let Err(e) = agent_rt.purge_namespace().await {
            eprintln!("cleanup of containerd namespace {agent_ns} failed: {e}");
        }
    }
    for ns in orca_net::netns::list_namespaces(&format!("orca-{agent_ns}")).unwrap_or_default() {
        orca_net::netns::delete_namespace(&ns).ok();
    }
    orca_net::netns::remove_bridge(&bridge).await.ok();
    drop(lease);

    let (orca, rss_idle, rss_busy) = result?;
    let mut bare_sorted = bare.clone();
    bare_sorted.sort();
    let mut orca_sorted = orca.clone();
    orca_sorted.sort();
    println!("run-task -> RUNNING, {n} sequential tasks, image present (ms)");
    println!("{:<44} {:>8} {:>8} {:>8}", "", "p50", "p99", "max");
    let row = |name: &str, s: &[Duration]| {
        println!(
            "{:<44} {:>8.1} {:>8.1} {:>8.1}",
            name,
            ms(percentile(s, 50.0)),
            ms(percentile(s, 99.0)),
            ms(*s.last().unwrap_or(&Duration::ZERO))
        )
    };
    row("bare containerd create+start (orca-runtime)", &bare_sorted);
    row(
        "orca run-task -> RUNNING (netns, Raft, report)",
        &orca_sorted,
    );
    println!(
        "ratio orca/bare: p50 {:.2}, p99 {:.2}",
        ms(percentile(&orca_sorted, 50.0)) / ms(percentile(&bare_sorted, 50.0)).max(0.001),
        ms(percentile(&orca_sorted, 99.0)) / ms(percentile(&bare_sorted, 99.0)).max(0.001)
    );
    println!(
        "agent RSS: idle {:.1} MiB, with {n} running tasks {:.1} MiB",
        rss_idle as f64 / 1024.0,
        rss_busy as f64 / 1024.0
    );
    Ok(())
}

extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

async fn measure_orca(
    endpoint: &str,
    n: usize,
    agent_pid: u32,
) -> anyhow::Result<(Vec<Duration>, u64, u64)> {
    let mut client = connect_with_retry(endpoint, Duration::from_secs(20)).await?;
    wait_for_instances(&mut client, "default", 1, Duration::from_secs(60)).await?;
    let td = json!({"family": "bench", "containerDefinitions": [
        {"name": "app", "image": IMAGE, "memory": 16, "command": ["sh", "-c", SCRIPT]}]});
    orca_api::v1::ecs_client::EcsClient::register_task_definition(
        &mut client,
        orca_api::v1::RegisterTaskDefinitionRequest {
            input_json: td.to_string(),
            registered_by: String::new(),
        },
    )
    .await?;
    let run = |client: &mut orca_tests::agents::Client| {
        let mut c = client.clone();
        async move {
            let started = Instant::now();
            let out = ecs(&mut c, "RunTask", json!({"taskDefinition": "bench"})).await?;
            let arn = out["tasks"][0]["taskArn"]
                .as_str()
                .context("no task placed")?
                .to_string();
            loop {
                let d = ecs(&mut c, "DescribeTasks", json!({"tasks": [arn]})).await?;
                match d["tasks"][0]["lastStatus"].as_str() {
                    Some("RUNNING") => return anyhow::Ok((arn, started.elapsed())),
                    Some("STOPPED") => anyhow::bail!("task stopped: {d:#}"),
                    _ => tokio::time::sleep(Duration::from_millis(1)).await,
                }
            }
        }
    };
    // Warm-up (first use of the namespace and image in the agent).
    let mut arns = Vec::new();
    for _ in 0..3 {
        arns.push(run(&mut client).await?.0);
    }
    for arn in arns.drain(..) {
        ecs(&mut client, "StopTask", json!({"task": arn})).await?;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let rss_idle = rss_kib(agent_pid)?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let (arn, took) = run(&mut client).await?;
        times.push(took);
        arns.push(arn);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_busy = rss_kib(agent_pid)?;
    for arn in &arns {
        ecs(&mut client, "StopTask", json!({"task": arn})).await?;
    }
    for arn in &arns {
        orca_tests::agents::wait_stopped(&mut client, "default", arn, Duration::from_secs(120))
            .await?;
    }
    Ok((times, rss_idle, rss_busy))
}

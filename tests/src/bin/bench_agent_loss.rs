//! Agent-loss benchmark (not a test): how long after an `orca-agent` dies
//! (SIGKILL, no goodbye) the controller (a) marks its instance disconnected
//! and (b) records its tasks STOPPED (stopCode InfrastructureHealth) with
//! the instance's resources free again; p50 and max over N trials, next to
//! the floors the liveness settings imply (timeout, timeout + grace).
//!
//! One real `orca-controller` with its default liveness settings (read from
//! its `--help`); per trial a real `orca-agent` on containerd (its own
//! containerd namespace, bridge, subnet and data dir, default heartbeat)
//! running two busybox `sleep` tasks. The killed agent's containers keep
//! running (by design); each trial removes them, their network namespaces
//! and the bridge, and deregisters the instance (force).
//!
//! Run as root with containerd up (deploy/start-containerd.sh):
//! `cargo build --release --bins && ./target/release/bench-agent-loss [--trials 10]`

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime, RegistriesConfig};
use orca_runtime::ContainerRuntime;
use orca_tests::agents::{ecs, Client};
use orca_tests::containerd::{containerd_socket, unique_namespace};
use orca_tests::controller::{free_addr, ControllerProcess};
use orca_tests::netns::{lease_subnet, SubnetLease};
use orca_tests::registry::build_busybox_oci_archive;
use serde_json::{json, Value};

const IMAGE: &str = "orca-busybox:1";
const FAMILY: &str = "bench-agent-loss";
const TASKS: usize = 2;
const POLL: Duration = Duration::from_millis(10);
const WAIT: Duration = Duration::from_secs(60);
/// What the agent offers (explicit, so "free" is exact).
const AGENT_CPU: u64 = 2048;
const AGENT_MEMORY_MIB: u64 = 4096;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The `[default: X]` clap prints under `flag` in `orca-controller --help`.
fn help_default(help: &str, flag: &str) -> anyhow::Result<f64> {
    let at = help
        .find(&format!("{flag} "))
        .with_context(|| format!("orca-controller --help does not list {flag}"))?;
    let rest = &help[at..];
    // Its text runs until the next line that starts (after spaces) with `-`.
    let body = &rest[rest.find('\n').unwrap_or(rest.len())..];
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| body[i + 1..].trim_start_matches(' ').starts_with('-'))
        .unwrap_or(body.len());
    let section = &body[..end];
    let value = section
        .split("[default: ")
        .nth(1)
        .and_then(|v| v.split(']').next())
        .with_context(|| format!("no [default: ...] for {flag} in orca-controller --help"))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{flag} default {value:?}"))
}

/// `name`'s integerValue in an instance's `field` (registeredResources or
/// remainingResources).
fn resource(instance: &Value, field: &str, name: &str) -> Option<i64> {
    instance[field]
        .as_array()?
        .iter()
        .find(|r| r["name"] == name)?["integerValue"]
        .as_i64()
}

fn resources_free(instance: &Value) -> bool {
    ["CPU", "MEMORY"].iter().all(|name| {
        let registered = resource(instance, "registeredResources", name);
        registered.is_some() && registered == resource(instance, "remainingResources", name)
    })
}

async fn describe_instance(client: &mut Client, arn: &str) -> anyhow::Result<Value> {
    let d = ecs(
        client,
        "DescribeContainerInstances",
        json!({"containerInstances": [arn]}),
    )
    .await?;
    d["containerInstances"]
        .get(0)
        .cloned()
        .with_context(|| format!("instance {arn} not described: {d:#}"))
}

/// DeregisterContainerInstance (force), called directly: the JSON call by
/// name, as `ecs()` does.
async fn deregister(client: &mut Client, arn: &str) -> anyhow::Result<()> {
    client
        .deregister_container_instance(orca_api::v1::EcsJsonRequest {
            input_json: json!({"containerInstance": arn, "force": true}).to_string(),
        })
        .await
        .map_err(|s| orca_api::error::from_status(&s))?;
    Ok(())
}

/// The ARN of a connected instance not in `seen`, once one appears.
async fn wait_new_instance(
    client: &mut Client,
    seen: &BTreeSet<String>,
    agent: &mut Child,
    agent_log: &Path,
) -> anyhow::Result<String> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(status) = agent.try_wait()? {
            anyhow::bail!(
                "the agent exited with {status}; log:\n{}",
                std::fs::read_to_string(agent_log).unwrap_or_default()
            );
        }
        let listed = ecs(client, "ListContainerInstances", json!({})).await?;
        let fresh: Vec<String> = listed["containerInstanceArns"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a.as_str())
            .filter(|a| !seen.contains(*a))
            .map(str::to_string)
            .collect();
        for arn in fresh {
            if describe_instance(client, &arn).await?["agentConnected"] == true {
                return Ok(arn);
            }
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the agent's instance did not connect within {WAIT:?}; log:\n{}",
            std::fs::read_to_string(agent_log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Everything one trial owns, removed by [`Trial::clean`] whatever happened.
struct Trial {
    namespace: String,
    bridge: String,
    observer: Option<ContainerdRuntime>,
    agent: Option<Child>,
    instance: Option<String>,
    lease: Option<SubnetLease>,
    agent_log: PathBuf,
}

struct Measured {
    disconnected: Duration,
    lost_and_free: Duration,
    /// Containers containerd still runs in the killed agent's namespace
    /// when (b) was seen.
    still_running: usize,
    /// From the poll that saw both tasks RUNNING (their reports, the
    /// agent's last messages but for a heartbeat, came before it) to the kill.
    running_to_kill: Duration,
}

impl Trial {
    async fn clean(mut self, client: &mut Client) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        if let Some(mut agent) = self.agent.take() {
            // SIGKILL by the PID of the child this process spawned.
            let _ = agent.kill();
            let _ = agent.wait();
        }
        if let Some(arn) = &self.instance {
            if let Err(e) = deregister(client, arn).await {
                problems.push(format!("deregister {arn}: {e}"));
            }
        }
        if let Some(rt) = &self.observer {
            // The killed agent's containers are still running: kill and
            // delete them, then the images, snapshots and the namespace.
            if let Err(e) = rt.purge_namespace().await {
                tokio::time::sleep(Duration::from_secs(2)).await;
                if let Err(e2) = rt.purge_namespace().await {
                    problems.push(format!(
                        "purge containerd namespace {}: {e}; again: {e2}",
                        self.namespace
                    ));
                }
            }
        }
        let prefix = format!("orca-{}", self.namespace);
        for ns in orca_net::netns::list_namespaces(&prefix).unwrap_or_default() {
            if let Err(e) = orca_net::netns::delete_namespace(&ns) {
                problems.push(format!("delete netns {ns}: {e}"));
            }
        }
        if let Err(e) = orca_net::netns::remove_bridge(&self.bridge).await {
            let exists = Path::new("/sys/class/net").join(&self.bridge).exists();
            if exists {
                problems.push(format!("remove bridge {}: {e}", self.bridge));
            }
        }
        drop(self.lease.take());
        anyhow::ensure!(problems.is_empty(), "cleanup: {}", problems.join("; "));
        Ok(())
    }

    /// Starts the agent, runs the tasks, kills the agent, measures.
    async fn run(
        &mut self,
        client: &mut Client,
        endpoint: &str,
        socket: &Path,
        archive: &Path,
        dir: &Path,
        seen: &mut BTreeSet<String>,
    ) -> anyhow::Result<Measured> {
        let lease = lease_subnet(&self.bridge, &format!("orca-{}", self.namespace))?;
        let subnet = lease.cidr();
        self.lease = Some(lease);
        let observer = ContainerdRuntime::connect(ContainerdConfig {
            socket: socket.to_path_buf(),
            namespace: self.namespace.clone(),
            registries: RegistriesConfig::default(),
            state_dir: dir.join("observer"),
            log_driver: None,
        })
        .await?;
        let observer = self.observer.insert(observer);
        observer.load_archive(archive).await?;

        let agent_dir = dir.join("agent");
        std::fs::create_dir_all(&agent_dir)?;
        let config = agent_dir.join("agent.toml");
        // Everything else (heartbeat_interval: 1 s) is the agent's default.
        std::fs::write(
            &config,
            format!(
                "endpoints = [\"{endpoint}\"]\ndata_dir = \"{}\"\ncontainerd_socket = \"{}\"\ncontainerd_namespace = \"{}\"\nbridge = \"{}\"\ntask_subnet = \"{subnet}\"\ncpu_units = {AGENT_CPU}\nmemory_mib = {AGENT_MEMORY_MIB}\n",
                agent_dir.display(),
                socket.display(),
                self.namespace,
                self.bridge,
            ),
        )?;
        let log = std::fs::File::create(&self.agent_log)?;
        let agent = Command::new(orca_tests::bin_path("orca-agent")?)
            .arg("--config")
            .arg(&config)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let agent = self.agent.insert(agent);
        let arn = wait_new_instance(client, seen, agent, &self.agent_log).await?;
        seen.insert(arn.clone());
        self.instance = Some(arn.clone());

        let id = arn.rsplit('/').next().unwrap_or_default();
        let out = ecs(
            client,
            "RunTask",
            json!({"taskDefinition": FAMILY, "count": TASKS,
                   "placementConstraints": [{"type": "memberOf",
                                             "expression": format!("instanceId == {id}")}]}),
        )
        .await?;
        let tasks: Vec<String> = out["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
            .collect();
        anyhow::ensure!(tasks.len() == TASKS, "run-task placed {out:#}");
        let deadline = Instant::now() + WAIT;
        let running = loop {
            let d = ecs(client, "DescribeTasks", json!({"tasks": tasks})).await?;
            let statuses: Vec<&str> = d["tasks"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|t| t["lastStatus"].as_str())
                .collect();
            anyhow::ensure!(
                !statuses.contains(&"STOPPED"),
                "a task stopped before the kill: {d:#}"
            );
            if statuses.len() == TASKS && statuses.iter().all(|s| *s == "RUNNING") {
                break Instant::now();
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "tasks not RUNNING within {WAIT:?}: {d:#}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let before = describe_instance(client, &arn).await?;
        anyhow::ensure!(
            before["agentConnected"] == true && !resources_free(&before),
            "before the kill the instance should be connected with resources in use: {before:#}"
        );

        // The kill: SIGKILL by the PID of the child this process spawned
        // (std's Child::kill is kill(pid, SIGKILL)); reaped afterwards.
        let agent = self.agent.as_mut().context("the agent")?;
        agent.kill()?;
        let killed = Instant::now();
        agent.wait()?;
        self.agent = None;

        let mut disconnected = None;
        let deadline = killed + WAIT;
        let lost_and_free = loop {
            let d = ecs(client, "DescribeTasks", json!({"tasks": tasks})).await?;
            let instance = describe_instance(client, &arn).await?;
            let seen_at = Instant::now();
            if disconnected.is_none() && instance["agentConnected"] == false {
                disconnected = Some(seen_at - killed);
            }
            let described = d["tasks"].as_array().cloned().unwrap_or_default();
            for t in &described {
                if t["lastStatus"] == "STOPPED" && t["stopCode"] != "InfrastructureHealth" {
                    anyhow::bail!("a task stopped for another reason: {t:#}");
                }
            }
            let all_lost = described.len() == TASKS
                && described.iter().all(|t| {
                    t["lastStatus"] == "STOPPED" && t["stopCode"] == "InfrastructureHealth"
                });
            if all_lost && resources_free(&instance) {
                break seen_at - killed;
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "tasks not lost with resources free within {WAIT:?} of the kill: {d:#}\n{instance:#}"
            );
            tokio::time::sleep(POLL).await;
        };
        let disconnected =
            disconnected.context("tasks were lost but the instance was never seen disconnected")?;
        let still_running = observer
            .list()
            .await?
            .iter()
            .filter(|c| c.is_running())
            .count();
        Ok(Measured {
            disconnected,
            lost_and_free,
            still_running,
            running_to_kill: killed - running,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut trials = 10usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trials" => trials = args.next().context("--trials N")?.parse()?,
            other => {
                anyhow::bail!("unknown argument {other}; usage: bench-agent-loss [--trials N]")
            }
        }
    }
    anyhow::ensure!(trials > 0, "--trials must be at least 1");
    let socket = containerd_socket()?
        .context("containerd is needed (deploy/start-containerd.sh) and root")?;

    // The controller's liveness defaults, as its binary states them.
    let help = Command::new(orca_tests::bin_path("orca-controller")?)
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let timeout = help_default(&help, "--agent-heartbeat-timeout-secs")?;
    let grace = help_default(&help, "--agent-loss-grace-secs")?;
    let heartbeat = orca_agent::AgentConfig::default().heartbeat_interval;
    let timeout_d = Duration::from_secs_f64(timeout);
    let grace_d = Duration::from_secs_f64(grace);
    // As agents/liveness.rs computes it.
    let tick = (timeout_d / 10).clamp(Duration::from_millis(20), Duration::from_millis(500));

    let work = tempfile::tempdir()?;
    let archive = build_busybox_oci_archive(work.path())?;
    let addr = free_addr()?;
    let controller_dir = work.path().join("controller");
    std::fs::create_dir_all(&controller_dir)?;
    // Default flags: the liveness settings are the defaults read above.
    let mut controller = ControllerProcess::spawn(&controller_dir, addr)?;
    let mut client = controller.wait_ready(Duration::from_secs(30)).await?;
    let td = json!({"family": FAMILY, "containerDefinitions": [
        {"name": "app", "image": IMAGE, "cpu": 128, "memory": 32,
         "command": ["sh", "-c", "sleep 600"]}]});
    orca_api::v1::ecs_client::EcsClient::register_task_definition(
        &mut client,
        orca_api::v1::RegisterTaskDefinitionRequest {
            input_json: td.to_string(),
            registered_by: String::new(),
        },
    )
    .await?;

    println!(
        "agent loss: SIGKILL of a real orca-agent running {TASKS} tasks (busybox sleep 600 on containerd)"
    );
    println!(
        "controller: orca-controller defaults --agent-heartbeat-timeout-secs {timeout} --agent-loss-grace-secs {grace} \
         (liveness loop every {} ms); agent: default heartbeat {} s; poll every {} ms",
        tick.as_millis(),
        heartbeat.as_secs_f64(),
        POLL.as_millis()
    );

    let mut seen = BTreeSet::new();
    let mut a = Vec::with_capacity(trials);
    let mut b = Vec::with_capacity(trials);
    let mut running_to_kill = Duration::ZERO;
    let mut failure = None;
    for i in 0..trials {
        let dir = work.path().join(format!("trial-{i}"));
        std::fs::create_dir_all(&dir)?;
        let mut trial = Trial {
            namespace: unique_namespace("agent-loss"),
            bridge: format!("ol{}t{i}", std::process::id() % 10_000_000),
            observer: None,
            agent: None,
            instance: None,
            lease: None,
            agent_log: dir.join("agent.log"),
        };
        let result = trial
            .run(
                &mut client,
                &addr.to_string(),
                &socket,
                &archive,
                &dir,
                &mut seen,
            )
            .await;
        let log = trial.agent_log.clone();
        let cleaned = trial.clean(&mut client).await;
        match (result, cleaned) {
            (Ok(m), Ok(())) => {
                println!(
                    "trial {:>2}: (a) disconnected {:.3} s  (b) tasks STOPPED + resources free {:.3} s  \
                     (killed agent's containers still running: {}/{TASKS})",
                    i + 1,
                    secs(m.disconnected),
                    secs(m.lost_and_free),
                    m.still_running
                );
                a.push(m.disconnected);
                running_to_kill = running_to_kill.max(m.running_to_kill);
                b.push(m.lost_and_free);
            }
            (Err(e), cleaned) => {
                let tail: Vec<String> = std::fs::read_to_string(&log)
                    .unwrap_or_default()
                    .lines()
                    .rev()
                    .take(30)
                    .map(str::to_string)
                    .collect();
                eprintln!(
                    "trial {} failed: {e:#}\nagent log (last lines):\n{}",
                    i + 1,
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
                if let Err(c) = cleaned {
                    eprintln!("{c:#}");
                }
                failure = Some(e);
                break;
            }
            (Ok(_), Err(c)) => {
                failure = Some(c);
                break;
            }
        }
    }
    if let Some(e) = failure {
        eprintln!(
            "controller log (last lines):\n{}",
            controller
                .log_text()
                .lines()
                .rev()
                .take(30)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        );
        let _ = controller.kill9();
        return Err(e);
    }
    let _ = controller.kill9();

    a.sort();
    b.sort();
    let floor_a = timeout_d;
    let floor_b = timeout_d + grace_d;
    println!();
    println!("agent SIGKILL -> ..., {} trials (s)", a.len());
    println!(
        "{:<46} {:>7} {:>7} {:>7} {:>9} {:>9}",
        "", "p50", "max", "floor", "p50/floor", "max/floor"
    );
    let row = |name: &str, s: &[Duration], floor: Duration| {
        let p50 = percentile(s, 50.0);
        let max = *s.last().unwrap_or(&Duration::ZERO);
        println!(
            "{:<46} {:>7.3} {:>7.3} {:>7.3} {:>9.2} {:>9.2}",
            name,
            secs(p50),
            secs(max),
            secs(floor),
            secs(p50) / secs(floor),
            secs(max) / secs(floor)
        );
    };
    row("(a) instance agentConnected false", &a, floor_a);
    row(
        "(b) tasks STOPPED (InfrastructureHealth) + free",
        &b,
        floor_b,
    );
    println!(
        "floors: (a) heartbeat timeout {timeout} s, (b) timeout + grace {} s. The controller counts \
         from the agent's last message; here that is the tasks' RUNNING report (seen at most {} ms \
         before the kill) or a heartbeat after it, so the floors hold from the kill. Above them: \
         the liveness loop's 0-{} ms tick, a Raft write, this {} ms poll.",
        secs(floor_b),
        running_to_kill.as_millis(),
        tick.as_millis(),
        POLL.as_millis()
    );
    println!(
        "reference, NOT this run (measured on this machine kind in an earlier run, /work/shared/environment.md):"
    );
    println!(
        "  Docker Swarm, 3 managers: follower partitioned -> its tasks running elsewhere: 16.9 s \
         (orca (b) p50 here: {:.3} s)",
        secs(percentile(&b, 50.0))
    );
    println!(
        "  target (the issue): a silently lost node's service tasks running elsewhere within 8 s \
         (orca (b) max here: {:.3} s; a service's replacement then still has to start)",
        secs(*b.last().unwrap_or(&Duration::ZERO))
    );
    Ok(())
}

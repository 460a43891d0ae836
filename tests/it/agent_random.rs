//! A randomized run: for a bounded time, a mixed workload of run-task and
//! stop-task against a real `orca-agent` process on real containerd, while
//! the agent is SIGKILLed and restarted at random moments (and sometimes
//! tasks are stopped while it is down). Seeded: the seed is printed, and
//! `ORCA_RANDOM_SEED=<seed>` replays a run; `ORCA_RANDOM_SECS` sets its
//! length (60 s by default).
//!
//! After each restart the state must converge: every task is STOPPED or
//! RUNNING as wanted; every STOPPED task's exit code is the one its script
//! gives (or SIGTERM's, if it was stopped while it ran, or none if it never
//! ran); no container runs for a task the controller considers stopped; no
//! task's container ever started twice (its log says "booted" at most
//! once). At the end nothing is left.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orca_runtime::{ContainerRuntime, ProcessState};
use orca_tests::agents::{container_named, ecs};
use serde_json::{json, Value};

use crate::recovery_rig::{task_id, Rig, RigOptions};
use crate::support::HEAVY;

/// xorshift64*: small, seedable, good enough to pick actions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the test knows about one task it ran.
#[derive(Debug, Clone)]
struct Expect {
    /// The script's own exit code; None for the long-running kind.
    code: Option<i64>,
    /// The test asked for it to stop.
    stop_asked: bool,
}

/// Exit code of a long task on SIGTERM.
const LONG_TERM_EXIT: i64 = 7;

fn check_stopped(arn: &str, t: &Value, e: &Expect) -> Result<(), String> {
    let app = container_named(t, "app");
    let code = app["exitCode"].as_i64();
    let ok = match (e.code, e.stop_asked, code) {
        // Ran to its end.
        (Some(c), _, Some(x)) if x == c => true,
        // Stopped while it ran: sh dies of SIGTERM.
        (Some(_), true, Some(143)) => true,
        (None, true, Some(LONG_TERM_EXIT)) => true,
        // Stopped before it ever ran.
        (_, true, None) => app["lastStatus"] == "STOPPED",
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(format!("{arn}: exit code {code:?} for {e:?}: {t:#}"))
    }
}

/// Waits until every task is STOPPED or RUNNING as wanted, then checks the
/// invariants against the controller and containerd.
async fn converge(rig: &mut Rig, tasks: &BTreeMap<String, Expect>) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let arns: Vec<&String> = tasks.keys().collect();
        let mut described: BTreeMap<String, Value> = BTreeMap::new();
        for chunk in arns.chunks(50) {
            let d = ecs(&mut rig.client, "DescribeTasks", json!({"tasks": chunk}))
                .await
                .expect("describe");
            for t in d["tasks"].as_array().into_iter().flatten() {
                let arn = t["taskArn"].as_str().unwrap_or_default().to_string();
                described.insert(arn, t.clone());
            }
        }
        let unsettled: Vec<String> = described
            .iter()
            .filter(|(_, t)| {
                let last = &t["lastStatus"];
                !(last == "STOPPED" || (last == "RUNNING" && t["desiredStatus"] == "RUNNING"))
            })
            .map(|(a, t)| {
                format!(
                    "{} {} (desired {})",
                    task_id(a),
                    t["lastStatus"],
                    t["desiredStatus"]
                )
            })
            .collect();
        if unsettled.is_empty() {
            check(rig, tasks, &described).await;
            return;
        }
        assert!(
            Instant::now() < deadline,
            "did not converge: {unsettled:?}\nagent log:\n{}",
            rig.agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn check(rig: &Rig, tasks: &BTreeMap<String, Expect>, described: &BTreeMap<String, Value>) {
    let running: Vec<(String, u32)> = rig
        .observer
        .list()
        .await
        .expect("containers")
        .into_iter()
        .filter_map(|c| match c.state {
            ProcessState::Running { pid } => Some((c.id, pid)),
            _ => None,
        })
        .collect();
    for (id, _) in &running {
        let owner = described
            .iter()
            .find(|(arn, _)| id.starts_with(task_id(arn)));
        if let Some((arn, t)) = owner {
            assert_ne!(
                t["lastStatus"], "STOPPED",
                "{id} runs for {arn}, which the controller shows STOPPED: {t:#}"
            );
        }
    }
    for (arn, e) in tasks {
        let t = &described[arn];
        let booted = rig.log(arn, "app").matches("booted").count();
        assert!(booted <= 1, "{arn} started {booted} times");
        if t["lastStatus"] == "STOPPED" {
            if let Err(why) = check_stopped(arn, t, e) {
                let id = task_id(arn);
                let mentions: Vec<String> = rig
                    .agent
                    .log_text()
                    .lines()
                    .filter(|l| l.contains(id) || l.contains("agent") && l.contains("crash"))
                    .map(str::to_string)
                    .collect();
                panic!(
                    "{why}\nstopCode {} stoppedReason {} container reason {}\nthe agent's log about it:\n{}",
                    t["stopCode"],
                    t["stoppedReason"],
                    container_named(t, "app")["reason"],
                    mentions.join("\n")
                );
            }
        } else if e.code.is_none() {
            // A long task shown RUNNING runs. (A short one may have just
            // ended, its report still on its way.)
            let id = format!("{}-0-app", task_id(arn));
            assert!(
                running.iter().any(|(r, _)| *r == id),
                "{arn} is RUNNING but its container is not: {t:#}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_random_run_task_stop_task_and_agent_kills_converge() {
    let _heavy = HEAVY.lock().await;
    let seed: u64 = std::env::var("ORCA_RANDOM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    let secs: u64 = std::env::var("ORCA_RANDOM_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    println!("random run: seed {seed} (replay with ORCA_RANDOM_SEED={seed}), {secs} s");
    eprintln!("random run: seed {seed} (replay with ORCA_RANDOM_SEED={seed}), {secs} s");
    let Some(mut rig) = Rig::start("random", RigOptions::default())
        .await
        .expect("setup")
    else {
        return;
    };
    let mut rng = Rng(seed);
    let short = rig.container("app", "echo booted; sleep $DUR; exit $CODE");
    rig.register("rnd-short", vec![short]).await;
    let long = rig.container(
        "app",
        "trap 'exit 7' TERM; echo booted; while true; do sleep 0.2; done",
    );
    rig.register("rnd-long", vec![long]).await;
    let mut tasks: BTreeMap<String, Expect> = BTreeMap::new();
    let (mut kills, mut runs, mut stops, mut stops_while_down) = (0, 0, 0, 0);
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(secs) {
        match rng.below(10) {
            0..=3 => {
                let code = rng.below(10) as i64;
                let dur = format!("0.{}", rng.below(10));
                let overrides = json!({"containerOverrides": [{"name": "app", "environment": [
                    {"name": "CODE", "value": code.to_string()}, {"name": "DUR", "value": dur}]}]});
                let out = ecs(
                    &mut rig.client,
                    "RunTask",
                    json!({"taskDefinition": "rnd-short", "overrides": overrides}),
                )
                .await
                .expect("run-task");
                if let Some(arn) = out["tasks"][0]["taskArn"].as_str() {
                    tasks.insert(
                        arn.to_string(),
                        Expect {
                            code: Some(code),
                            stop_asked: false,
                        },
                    );
                    runs += 1;
                }
            }
            4..=5 => {
                let live = tasks
                    .values()
                    .filter(|e| e.code.is_none() && !e.stop_asked)
                    .count();
                if live < 5 {
                    let out = ecs(
                        &mut rig.client,
                        "RunTask",
                        json!({"taskDefinition": "rnd-long"}),
                    )
                    .await
                    .expect("run-task");
                    if let Some(arn) = out["tasks"][0]["taskArn"].as_str() {
                        tasks.insert(
                            arn.to_string(),
                            Expect {
                                code: None,
                                stop_asked: false,
                            },
                        );
                        runs += 1;
                    }
                }
            }
            6..=7 => {
                let candidates: Vec<String> = tasks
                    .iter()
                    .filter(|(_, e)| !e.stop_asked)
                    .map(|(a, _)| a.clone())
                    .collect();
                if !candidates.is_empty() {
                    let arn = candidates[rng.below(candidates.len() as u64) as usize].clone();
                    rig.stop_task(&arn, "random stop").await;
                    if let Some(e) = tasks.get_mut(&arn) {
                        e.stop_asked = true;
                    }
                    stops += 1;
                }
            }
            _ => {
                // A crash at a random moment, a random pause, maybe a stop
                // while the agent is down, a restart; then convergence.
                tokio::time::sleep(Duration::from_millis(rng.below(400))).await;
                rig.agent.kill9().expect("SIGKILL the agent");
                kills += 1;
                if rng.below(2) == 0 {
                    let candidates: Vec<String> = tasks
                        .iter()
                        .filter(|(_, e)| !e.stop_asked)
                        .map(|(a, _)| a.clone())
                        .collect();
                    if !candidates.is_empty() {
                        let arn = candidates[rng.below(candidates.len() as u64) as usize].clone();
                        rig.stop_task(&arn, "stopped while the agent was down")
                            .await;
                        if let Some(e) = tasks.get_mut(&arn) {
                            e.stop_asked = true;
                        }
                        stops_while_down += 1;
                    }
                }
                tokio::time::sleep(Duration::from_millis(rng.below(1000))).await;
                rig.agent.start().expect("restart the agent");
                converge(&mut rig, &tasks).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(50 + rng.below(300))).await;
    }
    converge(&mut rig, &tasks).await;
    for (arn, e) in tasks.iter_mut() {
        if !e.stop_asked {
            rig.stop_task(arn, "end of the run").await;
            e.stop_asked = true;
        }
    }
    converge(&mut rig, &tasks).await;
    println!(
        "random run: seed {seed}: {runs} tasks run, {stops} stopped, {kills} agent kills, {stops_while_down} stops while the agent was down"
    );
    rig.assert_clean().await;
    rig.finish().await;
}

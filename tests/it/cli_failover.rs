//! The leader of a 3-controller cluster SIGKILLed under 16 writers that each
//! run the real `orca` CLI, one `register-task-definition` process per write,
//! with `--endpoint` listing all three controllers (each writer's list starts
//! at a different one, so writes reach the leader directly and through
//! followers). No write that never reached the killed leader may be reported
//! as failed or as of unknown outcome: the only failures allowed are the ones
//! whose request may have reached it (the CLI's own "interrupted" error, or a
//! follower's "the leader ... did not answer ...: may or may not have been
//! applied", naming the killed leader). Every acknowledged write is readable
//! afterwards, exactly once.
//!
//! The verdict on each invocation is a pure function ([`classify`]), checked
//! against fabricated outcomes in the unit test at the end of this file.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use orca_api::v1;
use orca_tests::cluster::ControllerCluster;

use crate::support::{minimal_definition, HEAVY};

/// Bound on each wait for the cluster (start, election, recovery).
const WAIT: Duration = Duration::from_secs(40);
const WRITERS: usize = 16;
/// Every writer is bounded in count as well as in time.
const MAX_WRITES_PER_WRITER: usize = 1_000;
const WRITER_TIME_BOUND: Duration = Duration::from_secs(180);
/// Pause between one writer's CLI processes (pacing only).
const PACE: Duration = Duration::from_millis(30);
/// Acknowledged writes per writer before the leader is killed.
const ACKED_PER_WRITER_BEFORE_KILL: usize = 4;
/// How long the writers keep going after the kill, at least.
const ACROSS_ELECTION: Duration = Duration::from_secs(5);
/// Writes started after the leader was gone and acknowledged, before the
/// writers stop (pacing: the assertion needs one).
const ACKED_AFTER_KILL_TARGET: usize = 2 * WRITERS;
/// One CLI process may take this long (its own write deadline is 60 s,
/// its connect timeout 5 s per endpoint) before the test kills it.
const CLI_BOUND: Duration = Duration::from_secs(90);
const FAMILY_PREFIX: &str = "clifo-";
const OPERATION: &str = "RegisterTaskDefinition";

/// One `orca register-task-definition` process, as observed.
#[derive(Debug, Clone)]
struct Invocation {
    writer: usize,
    family: String,
    /// The first endpoint of its `--endpoint` list.
    first: String,
    started: Instant,
    ended: Instant,
    /// None: still running after [`CLI_BOUND`], killed by the test.
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

/// The kill, as the classification needs it.
#[derive(Debug, Clone)]
struct Kill {
    /// The killed leader's endpoint (HOST:PORT, also its Raft address).
    endpoint: String,
    /// The endpoints of the controllers left running.
    live: Vec<String>,
    /// Just before SIGKILL was sent.
    sent_at: Instant,
    /// Once the process was reaped and its endpoint refused `Members`.
    gone_at: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Verdict {
    /// Exit 0 and the JSON names the family and its revision.
    Succeeded { revision: u64 },
    /// Failed, but its request may have reached the killed leader: the
    /// CLI's own interrupted error naming that leader.
    Interrupted,
    /// Failed, but its request may have reached the killed leader: a
    /// follower forwarded it and lost the leader's answer.
    ForwardLost,
    /// Anything else: what is wrong with it.
    Violation(String),
}

impl Verdict {
    fn is_failure_allowed(&self) -> bool {
        matches!(self, Verdict::Interrupted | Verdict::ForwardLost)
    }
}

/// Whether `text` names `endpoint` (not merely a longer port starting with
/// the same digits).
fn mentions(text: &str, endpoint: &str) -> bool {
    text.match_indices(endpoint).any(|(at, _)| {
        !text[at + endpoint.len()..]
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit())
    })
}

/// What the CLI printed when it reports failures of writes that were never
/// sent, or a leader that could not even be connected to.
const NOT_SENT_MARKERS: [&str; 9] = [
    "could not connect",
    "was not applied",
    "not sent",
    "nothing was",
    "tcp connect error",
    "error trying to connect",
    "connect error",
    "connection refused",
    "no route to host",
];

/// The verdict on one invocation of `orca register-task-definition` for
/// `family`, given the kill.
fn classify(inv: &Invocation, kill: &Kill) -> Verdict {
    let Some(code) = inv.code else {
        return Verdict::Violation(format!("still running after {CLI_BOUND:?}: killed"));
    };
    if code == 0 {
        let json: serde_json::Value = match serde_json::from_str(&inv.stdout) {
            Ok(json) => json,
            Err(e) => return Verdict::Violation(format!("exit 0 but stdout is not JSON: {e}")),
        };
        let td = &json["taskDefinition"];
        let Some(revision) = td["revision"].as_u64() else {
            return Verdict::Violation("exit 0 but no taskDefinition.revision".into());
        };
        if td["family"] != inv.family.as_str() {
            return Verdict::Violation(format!(
                "exit 0 but the reply names family {} instead of {}",
                td["family"], inv.family
            ));
        }
        let arn_suffix = format!("/{}:{revision}", inv.family);
        if !td["taskDefinitionArn"]
            .as_str()
            .is_some_and(|arn| arn.ends_with(&arn_suffix))
        {
            return Verdict::Violation(format!(
                "exit 0 but the ARN {} does not end with {arn_suffix}",
                td["taskDefinitionArn"]
            ));
        }
        // One write per family: a second revision would be a write applied twice.
        if revision != 1 {
            return Verdict::Violation(format!(
                "exit 0 with revision {revision} of a family written once"
            ));
        }
        return Verdict::Succeeded { revision };
    }
    if inv.ended < kill.sent_at {
        return Verdict::Violation("failed before the leader was killed".into());
    }
    if inv.started > kill.gone_at {
        return Verdict::Violation(
            "failed though started after the killed leader was gone: it cannot have reached it"
                .into(),
        );
    }
    let stderr = inv.stderr.trim();
    if let Some(live) = kill.live.iter().find(|e| mentions(stderr, e)) {
        return Verdict::Violation(format!("names the live controller {live}"));
    }
    let lower = stderr.to_lowercase();
    if let Some(marker) = NOT_SENT_MARKERS.iter().find(|m| lower.contains(*m)) {
        return Verdict::Violation(format!(
            "says the write was not sent or the leader was not reached ({marker:?})"
        ));
    }
    let unknown = "may or may not have been applied";
    if !mentions(stderr, &kill.endpoint) || !stderr.contains(unknown) {
        return Verdict::Violation(format!(
            "not an unknown outcome naming the killed leader {}",
            kill.endpoint
        ));
    }
    let interrupted = format!(
        "Connection was closed before we received a valid response from endpoint URL: \"{}\". \
         The {OPERATION} request {unknown}",
        kill.endpoint
    );
    let forward_lost = format!(
        "An error occurred (ServerException) when calling the {OPERATION} operation: \
         the leader at {} did not answer (",
        kill.endpoint
    );
    match code {
        255 if stderr.starts_with(&interrupted) => Verdict::Interrupted,
        254 if stderr.starts_with(&forward_lost) => Verdict::ForwardLost,
        _ => Verdict::Violation(format!(
            "exit {code}: not a recognised unknown-outcome error"
        )),
    }
}

/// `endpoints` rotated to start at `first`.
fn rotated(endpoints: &[String], first: usize) -> Vec<String> {
    (0..endpoints.len())
        .map(|k| endpoints[(first + k) % endpoints.len()].clone())
        .collect()
}

/// Runs one `orca register-task-definition` for `family` with `--endpoint`
/// set to `endpoints`, isolated from any operator config or environment.
async fn register_with_cli(writer: usize, family: String, endpoints: &[String]) -> Invocation {
    let started = Instant::now();
    let spawned = tokio::process::Command::new(orca_tests::bin_path("orca").unwrap())
        .args([
            "--endpoint",
            &endpoints.join(","),
            "register-task-definition",
            "--cli-input-json",
            &minimal_definition(&family),
        ])
        .env("ORCA_CONFIG", "/nonexistent/orca-test-config.toml")
        .env_remove("ORCA_ENDPOINT")
        .env_remove("ORCA_OUTPUT")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        // A process still running when its bound passes (or the test ends)
        // is killed through its own handle.
        .kill_on_drop(true)
        .spawn();
    let (code, stdout, stderr) = match spawned {
        Err(e) => (Some(-1), String::new(), format!("spawning orca: {e}")),
        Ok(child) => match tokio::time::timeout(CLI_BOUND, child.wait_with_output()).await {
            Err(_) => (None, String::new(), String::new()),
            Ok(Err(e)) => (Some(-1), String::new(), format!("waiting for orca: {e}")),
            Ok(Ok(out)) => (
                Some(out.status.code().unwrap_or(-1)),
                String::from_utf8_lossy(&out.stdout).into_owned(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            ),
        },
    };
    Invocation {
        writer,
        family,
        first: endpoints[0].clone(),
        started,
        ended: Instant::now(),
        code,
        stdout,
        stderr,
    }
}

/// The writers and every invocation they completed so far.
struct Writers {
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Invocation>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Writers {
    fn start(endpoints: &[String]) -> Writers {
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let tasks = (0..WRITERS)
            .map(|w| {
                let order = rotated(endpoints, w % endpoints.len());
                let (stop, log) = (stop.clone(), log.clone());
                tokio::spawn(async move {
                    let began = Instant::now();
                    for n in 0..MAX_WRITES_PER_WRITER {
                        if stop.load(Ordering::Relaxed) || began.elapsed() > WRITER_TIME_BOUND {
                            break;
                        }
                        let family = format!("{FAMILY_PREFIX}w{w}-{n}");
                        let inv = register_with_cli(w, family, &order).await;
                        log.lock().unwrap_or_else(PoisonError::into_inner).push(inv);
                        tokio::time::sleep(PACE).await;
                    }
                })
            })
            .collect();
        Writers { stop, log, tasks }
    }

    fn snapshot(&self) -> Vec<Invocation> {
        self.log
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Waits until `done` holds of the invocations so far; false if it
    /// still does not after `within`.
    async fn wait_until(&self, within: Duration, done: impl Fn(&[Invocation]) -> bool) -> bool {
        let deadline = Instant::now() + within;
        loop {
            if done(&self.snapshot()) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Stops the writers once their current process ends; every invocation.
    async fn stop(self) -> Vec<Invocation> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks {
            tokio::time::timeout(CLI_BOUND + PACE + Duration::from_secs(5), task)
                .await
                .expect("a writer did not stop within its CLI bound")
                .expect("a writer panicked");
        }
        std::mem::take(&mut *self.log.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn acked(invs: &[Invocation]) -> impl Iterator<Item = &Invocation> {
    invs.iter().filter(|i| i.code == Some(0))
}

/// Every ACTIVE revision of the test's families, read linearizably from node `i`.
async fn stored(cluster: &ControllerCluster, i: usize) -> BTreeMap<String, Vec<u64>> {
    let mut client = orca_tests::controller::connect_with_retry(&cluster.endpoint(i), WAIT)
        .await
        .unwrap();
    let mut all: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let mut token = String::new();
    for _page in 0..10_000 {
        let request = v1::ListTaskDefinitionsRequest {
            family_prefix: FAMILY_PREFIX.into(),
            next_token: token,
            ..Default::default()
        };
        let mut request = orca_api::read::linearizable(tonic::Request::new(request));
        request.set_timeout(Duration::from_secs(10));
        let page = client
            .list_task_definitions(request)
            .await
            .unwrap_or_else(|e| panic!("listing on node {i}: {e}\n{}", cluster.logs()))
            .into_inner();
        for arn in page.task_definition_arns {
            let (family, rev) = arn.rsplit_once('/').unwrap().1.rsplit_once(':').unwrap();
            all.entry(family.to_string())
                .or_default()
                .push(rev.parse().unwrap());
        }
        if page.next_token.is_empty() {
            return all;
        }
        token = page.next_token;
    }
    panic!("listing on node {i} did not end after 10,000 pages");
}

fn describe_invocation(inv: &Invocation, t0: Instant, verdict: &Verdict) -> String {
    format!(
        "writer {:>2} {} (first endpoint {}) started +{:?} ended +{:?} exit {:?}: {:?}\n    stderr: {}",
        inv.writer,
        inv.family,
        inv.first,
        inv.started.saturating_duration_since(t0),
        inv.ended.saturating_duration_since(t0),
        inv.code,
        verdict,
        inv.stderr.trim().replace('\n', "\n            "),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn leader_killed_under_16_cli_writers_fails_only_writes_that_may_have_reached_it() {
    let _one = HEAVY.lock().await;
    let test_started = Instant::now();
    let mut cluster = ControllerCluster::start_loopback(3).await.unwrap();
    let leader = cluster.wait_leader(WAIT).await.unwrap();
    let endpoints: Vec<String> = (1..=cluster.len()).map(|i| cluster.endpoint(i)).collect();
    let t0 = Instant::now();
    let writers = Writers::start(&endpoints);

    // Every writer, whichever controller its list starts at, has had writes
    // acknowledged before the leader goes.
    let warmed_up = writers
        .wait_until(WAIT, |invs| {
            (0..WRITERS).all(|w| {
                acked(invs).filter(|i| i.writer == w).count() >= ACKED_PER_WRITER_BEFORE_KILL
            })
        })
        .await;
    if !warmed_up {
        let invs = writers.stop().await;
        let failed: Vec<String> = invs
            .iter()
            .filter(|i| i.code != Some(0))
            .map(|i| describe_invocation(i, t0, &Verdict::Violation("before the kill".into())))
            .collect();
        panic!(
            "not every writer had {ACKED_PER_WRITER_BEFORE_KILL} writes acknowledged within \
             {WAIT:?} ({} invocations, {} acknowledged); failures:\n{}\n{}",
            invs.len(),
            acked(&invs).count(),
            failed.join("\n"),
            cluster.logs()
        );
    }

    let former = cluster.leader_record(leader).await.unwrap();
    let sent_at = Instant::now();
    cluster.kill9_and_check_gone(leader).await.unwrap();
    let gone_at = Instant::now();
    let kill = Kill {
        endpoint: cluster.endpoint(leader),
        live: (1..=cluster.len())
            .filter(|&i| i != leader)
            .map(|i| cluster.endpoint(i))
            .collect(),
        sent_at,
        gone_at,
    };
    let successor = cluster.wait_successor(former, WAIT).await.unwrap();
    let elected_at = Instant::now();
    // Keep writing across the election for a while, and until writes started
    // after the kill are being acknowledged (or the bound passes: judged below).
    let recovering = writers
        .wait_until(WAIT, |invs| {
            sent_at.elapsed() >= ACROSS_ELECTION
                && acked(invs).filter(|i| i.started > gone_at).count() >= ACKED_AFTER_KILL_TARGET
        })
        .await;
    let invs = writers.stop().await;

    let verdicts: Vec<(&Invocation, Verdict)> =
        invs.iter().map(|i| (i, classify(i, &kill))).collect();
    let violations: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| matches!(v, Verdict::Violation(_)))
        .map(|(i, v)| describe_invocation(i, t0, v))
        .collect();
    let allowed: Vec<String> = verdicts
        .iter()
        .filter(|(_, v)| v.is_failure_allowed())
        .map(|(i, v)| describe_invocation(i, t0, v))
        .collect();
    let count = |p: fn(&Verdict) -> bool| verdicts.iter().filter(|(_, v)| p(v)).count();
    let summary = format!(
        "{} invocations by {WRITERS} writers; {} acknowledged ({} started after the leader \
         (node {leader}, {}) was gone); {} interrupted at the CLI, {} lost by a follower's \
         forward; {} violations. Kill sent at +{:?}, gone at +{:?}, node {successor} elected \
         at +{:?}",
        invs.len(),
        count(|v| matches!(v, Verdict::Succeeded { .. })),
        acked(&invs).filter(|i| i.started > gone_at).count(),
        kill.endpoint,
        count(|v| *v == Verdict::Interrupted),
        count(|v| *v == Verdict::ForwardLost),
        violations.len(),
        sent_at - t0,
        gone_at - t0,
        elected_at - t0,
    );
    println!("{summary}");
    for line in &allowed {
        println!("allowed failure: {line}");
    }
    assert!(
        violations.is_empty(),
        "{summary}\nfailures that cannot have reached the killed leader, or do not say so:\n{}\n\
         allowed failures:\n{}\n{}",
        violations.join("\n"),
        allowed.join("\n"),
        cluster.logs()
    );

    // Writes went to the leader directly and through followers before the kill.
    let before_kill = |first: &str| {
        acked(&invs)
            .filter(|i| i.ended < sent_at && i.first == first)
            .count()
    };
    let via_leader = before_kill(&kill.endpoint);
    let via_followers: usize = kill.live.iter().map(|e| before_kill(e)).sum();
    assert!(
        via_leader > 0 && via_followers > 0,
        "before the kill {via_leader} writes started at the leader and {via_followers} at a follower"
    );

    // The cluster recovered: writes started after the leader was gone succeeded.
    let after = acked(&invs).filter(|i| i.started > gone_at).count();
    assert!(
        after > 0,
        "no write started after the kill was acknowledged ({summary})\n{}",
        cluster.logs()
    );
    if !recovering {
        println!(
            "note: only {after} writes started after the kill were acknowledged within {WAIT:?} \
             (target {ACKED_AFTER_KILL_TARGET})"
        );
    }

    // Every acknowledged write is stored exactly once, on every survivor;
    // a write of unknown outcome is stored at most once; nothing else is.
    let acked_families: BTreeSet<&str> = acked(&invs).map(|i| i.family.as_str()).collect();
    let unknown: BTreeSet<&str> = verdicts
        .iter()
        .filter(|(_, v)| v.is_failure_allowed())
        .map(|(i, _)| i.family.as_str())
        .collect();
    let reference = stored(&cluster, successor).await;
    let missing: Vec<&&str> = acked_families
        .iter()
        .filter(|f| reference.get(**f) != Some(&vec![1]))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes not stored as exactly revision 1 on node {successor}: {:?}",
        missing
            .iter()
            .map(|f| (f, reference.get(**f)))
            .collect::<Vec<_>>()
    );
    let strays: Vec<(&String, &Vec<u64>)> = reference
        .iter()
        .filter(|(f, revs)| {
            let accounted_for = acked_families.contains(f.as_str())
                || (unknown.contains(f.as_str()) && **revs == vec![1]);
            !accounted_for
        })
        .collect();
    assert!(
        strays.is_empty(),
        "stored but neither acknowledged nor of unknown outcome (or stored twice): {strays:?}"
    );
    for i in &kill.live {
        let node = endpoints.iter().position(|e| e == i).unwrap() + 1;
        assert_eq!(
            stored(&cluster, node).await,
            reference,
            "node {node} diverges from node {successor}"
        );
    }
    let applied_unknown = unknown
        .iter()
        .filter(|f| reference.contains_key(**f))
        .count();
    println!(
        "{} acknowledged writes all stored; of {} writes of unknown outcome, {applied_unknown} \
         were applied",
        acked_families.len(),
        unknown.len()
    );

    // And through the CLI: each writer's last acknowledged write, read with
    // --consistent-read from the survivors.
    let survivors = kill.live.join(",");
    for w in 0..WRITERS {
        let last = acked(&invs).filter(|i| i.writer == w).last().unwrap();
        let run = crate::support::orca(
            &survivors,
            &[
                "describe-task-definition",
                "--consistent-read",
                "--task-definition",
                &last.family,
            ],
        )
        .await;
        let td = &run.json()["taskDefinition"];
        assert_eq!(td["family"], last.family.as_str());
        assert_eq!(td["revision"], 1);
    }
    println!("test took {:?}", test_started.elapsed());
}

#[cfg(test)]
mod classification {
    use super::*;

    const KILLED: &str = "127.0.0.1:4000";
    const LIVE: [&str; 2] = ["127.0.0.1:40001", "127.0.0.1:5000"];

    fn kill(t: Instant) -> Kill {
        Kill {
            endpoint: KILLED.into(),
            live: LIVE.iter().map(|e| e.to_string()).collect(),
            sent_at: t + Duration::from_secs(10),
            gone_at: t + Duration::from_secs(11),
        }
    }

    /// An invocation spanning the kill, with this exit and stderr.
    fn failed(t: Instant, code: i32, stderr: &str) -> Invocation {
        Invocation {
            writer: 0,
            family: "clifo-w0-7".into(),
            first: KILLED.into(),
            started: t + Duration::from_secs(9),
            ended: t + Duration::from_secs(12),
            code: Some(code),
            stdout: String::new(),
            stderr: format!("{stderr}\n"),
        }
    }

    fn interrupted(endpoint: &str) -> String {
        format!(
            "Connection was closed before we received a valid response from endpoint URL: \
             \"{endpoint}\". The RegisterTaskDefinition request may or may not have been \
             applied; check before retrying it."
        )
    }

    fn forward_lost(endpoint: &str, reason: &str) -> String {
        format!(
            "An error occurred (ServerException) when calling the RegisterTaskDefinition \
             operation: the leader at {endpoint} did not answer ({reason}): the write may or \
             may not have been applied"
        )
    }

    fn is_violation(v: &Verdict) -> bool {
        matches!(v, Verdict::Violation(_))
    }

    #[test]
    fn outcomes_are_classified() {
        let t = Instant::now();
        let k = kill(t);

        let reply = |revision: u64| {
            serde_json::json!({"taskDefinition": {
                "family": "clifo-w0-7",
                "revision": revision,
                "taskDefinitionArn": format!(
                    "arn:orca:ecs:local:000000000000:task-definition/clifo-w0-7:{revision}"
                ),
            }})
            .to_string()
        };
        let mut ok = failed(t, 0, "");
        ok.stdout = reply(1);
        assert_eq!(classify(&ok, &k), Verdict::Succeeded { revision: 1 });
        let mut twice = ok.clone();
        twice.stdout = reply(2);
        assert!(is_violation(&classify(&twice, &k)), "{:?}", twice.stdout);
        let mut other = ok.clone();
        other.family = "clifo-w0-8".into();
        assert!(is_violation(&classify(&other, &k)));
        let mut garbage = ok.clone();
        garbage.stdout = "not json".into();
        assert!(is_violation(&classify(&garbage, &k)));

        // The failures that may have reached the killed leader.
        assert_eq!(
            classify(&failed(t, 255, &interrupted(KILLED)), &k),
            Verdict::Interrupted
        );
        for reason in [
            "transport error",
            "h2 protocol error: error reading a body from connection",
            "Timeout expired",
        ] {
            assert_eq!(
                classify(&failed(t, 254, &forward_lost(KILLED, reason)), &k),
                Verdict::ForwardLost,
                "{reason}"
            );
        }

        // Everything else is a violation.
        let violations = [
            // The leader could not even be connected to: nothing was sent.
            failed(
                t,
                254,
                &forward_lost(
                    KILLED,
                    "error trying to connect: tcp connect error: Connection refused (os error 111)",
                ),
            ),
            failed(t, 254, &forward_lost(KILLED, "tcp connect error")),
            // Said not sent / not applied.
            failed(
                t,
                255,
                &format!(
                    "Could not connect to the endpoint URL: \"{KILLED}\"\n\
                     Could not connect to the endpoint URL: \"{}\"",
                    LIVE[0]
                ),
            ),
            failed(
                t,
                254,
                "An error occurred (ServerException) when calling the RegisterTaskDefinition \
                 operation: no controller leader for 10s: the write was not applied",
            ),
            // Naming a live controller (one whose port starts with the killed one's).
            failed(t, 255, &interrupted(LIVE[0])),
            failed(t, 254, &forward_lost(LIVE[1], "transport error")),
            // The right words with the wrong exit code or shape.
            failed(t, 254, &interrupted(KILLED)),
            failed(t, 255, &forward_lost(KILLED, "transport error")),
            failed(
                t,
                254,
                &format!(
                    "An error occurred (ClientException) when calling the RegisterTaskDefinition \
                     operation: {KILLED} may or may not have been applied"
                ),
            ),
            failed(t, 255, "something else"),
        ];
        for inv in &violations {
            assert!(is_violation(&classify(inv, &k)), "{}", inv.stderr);
        }

        // Allowed words at impossible times.
        let mut early = failed(t, 255, &interrupted(KILLED));
        early.ended = t + Duration::from_secs(9);
        assert!(is_violation(&classify(&early, &k)));
        let mut late = failed(t, 254, &forward_lost(KILLED, "transport error"));
        late.started = t + Duration::from_secs(12);
        late.ended = t + Duration::from_secs(13);
        assert!(is_violation(&classify(&late, &k)));
        let mut hung = failed(t, 0, "");
        hung.code = None;
        assert!(is_violation(&classify(&hung, &k)));
    }

    #[test]
    fn endpoints_are_matched_whole() {
        assert!(mentions("at 127.0.0.1:4000: x", KILLED));
        assert!(mentions("\"127.0.0.1:4000\"", KILLED));
        assert!(mentions("127.0.0.1:4000", KILLED));
        assert!(!mentions("at 127.0.0.1:40001: x", KILLED));
        assert!(mentions("127.0.0.1:40001 and 127.0.0.1:4000.", KILLED));
    }
}

//! `orca logs` end to end: a task on a real agent in a test host of its
//! own (real containerd, the real log driver) prints numbered lines on
//! both streams, and the `orca` binary reads them through a FOLLOWER
//! controller, which dials the agent's node API: --tail, --since,
//! --timestamps, --container, --follow seeing lines written after it
//! started (and ending by itself once the task stopped; Ctrl-C ending
//! another), `orca logs tail GROUP` naming streams `prefix/container/task-id`,
//! clear errors, and the logs of the task after it stopped.

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use orca_api::v1::controller_admin_client::ControllerAdminClient;
use orca_tests::agents::{ecs, wait_stopped};
use orca_tests::controller::InProcessController;
use orca_tests::multinode::MultiNode;
use orca_tests::netns::TestNet;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::{orca, register, HEAVY};

const WAIT: Duration = Duration::from_secs(60);
const GROUP: &str = "/ecs/logs-e2e";

/// Five early lines, one on stderr, then a tick every 200 ms until
/// SIGTERM, which it answers with a last line.
const SCRIPT: &str = "trap 'echo term received; exit 0' TERM; \
    for i in 1 2 3 4 5; do echo early $i; done; echo oops on stderr >&2; \
    i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.2; done";

/// The highest `tick N` in `text`.
fn last_tick(text: &str) -> u64 {
    text.lines()
        .filter_map(|l| l.rsplit("tick ").next()?.trim().parse().ok())
        .max()
        .unwrap_or(0)
}

/// Runs `orca logs ARGS` through `endpoint` until its stdout satisfies
/// `done` (the task keeps printing), or fails at the deadline.
async fn logs_until(endpoint: &str, args: &[&str], done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let run = orca(endpoint, args).await;
        if run.code == 0 && done(&run.stdout) {
            return run.stdout;
        }
        assert!(
            Instant::now() < deadline,
            "orca {args:?}: exit {}, stdout {:?}, stderr {:?}",
            run.code,
            run.stdout,
            run.stderr
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Starts `orca ARGS` with stdout piped, for follows.
fn spawn_orca(endpoint: &str, args: &[&str]) -> tokio::process::Child {
    tokio::process::Command::new(orca_tests::bin_path("orca").expect("orca built"))
        .args(args)
        .env("ORCA_ENDPOINT", endpoint)
        .env("ORCA_CONFIG", "/nonexistent/orca-test-config.toml")
        .env_remove("ORCA_OUTPUT")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn orca")
}

/// Reads `child`'s stdout lines until one satisfies `wanted`; returns
/// everything read so far.
async fn read_until(
    lines: &mut tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    wanted: impl Fn(&str) -> bool,
) -> Vec<String> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let line = tokio::time::timeout_at(deadline, lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no wanted line within {WAIT:?}: {seen:?}"))
            .expect("read the follow's output");
        let Some(line) = line else {
            panic!("the follow ended before the wanted line: {seen:?}");
        };
        let hit = wanted(&line);
        seen.push(line);
        if hit {
            return seen;
        }
    }
}

/// Sends SIGINT (Ctrl-C) to a process this test started.
fn interrupt(child: &tokio::process::Child) {
    let pid = child.id().expect("running");
    let status = std::process::Command::new("kill")
        .args(["-INT", &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_logs_are_read_from_another_host_through_a_follower() {
    let _heavy = HEAVY.lock().await;
    let Some(mut net) = MultiNode::start("logs", || TestNet::new(1), |_| {}, |_, _| {})
        .await
        .expect("nodes")
    else {
        return;
    };
    // A second controller joins: a follower, serving from its own state.
    let leader = net.controller.endpoint();
    let listen = SocketAddr::new(net.net.host_addr().into(), 0);
    let follower = InProcessController::start_with(|c| {
        c.listen = listen;
        c.node_id = 2;
        c.join = vec![leader.clone()];
    })
    .await
    .expect("follower");
    let endpoint = follower.endpoint();
    let deadline = Instant::now() + WAIT;
    loop {
        let channel = orca_api::client::channel(&endpoint).await.expect("channel");
        let members = ControllerAdminClient::new(channel)
            .members(orca_api::v1::MembersRequest {})
            .await
            .map(|r| r.into_inner());
        if let Ok(m) = &members {
            if m.responder_id == 2 && m.leader_id == 1 && m.members.iter().all(|m| m.voter) {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no follower: {members:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let definition = json!({"family": "chatty", "containerDefinitions": [{
        "name": "app", "image": net.image, "memory": 32,
        "command": ["sh", "-c", SCRIPT],
        "logConfiguration": {"logDriver": "awslogs", "options": {
            "awslogs-group": GROUP, "awslogs-stream-prefix": "web",
            "awslogs-region": "us-east-1"}}}]});
    register(&mut net.client, &definition.to_string())
        .await
        .expect("register");
    let arn = net.run_on(1, "chatty").await.expect("run");
    net.wait_running(&arn).await.expect("running");
    let task_id = arn.rsplit('/').next().unwrap_or_default().to_string();

    // Everything so far, stderr's line on stderr.
    let all = logs_until(&endpoint, &["logs", "--task", &task_id], |o| {
        last_tick(o) >= 3
    })
    .await;
    let first: Vec<&str> = all.lines().take(5).collect();
    assert_eq!(
        first,
        ["early 1", "early 2", "early 3", "early 4", "early 5"]
    );
    let run = orca(&endpoint, &["logs", "--task", &arn, "--container", "app"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("oops on stderr"), "{}", run.stderr);

    // --tail: the last two lines, consecutive ticks.
    let run = orca(&endpoint, &["logs", "--task", &task_id, "--tail", "2"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let tail: Vec<u64> = run
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("tick ")?.parse().ok())
        .collect();
    assert!(
        tail.len() == 2 && tail[1] == tail[0] + 1,
        "{:?}",
        run.stdout
    );

    // --since a time after the early lines: only later ticks.
    let mid_ns = orca_runtime::log_format::now_ns();
    let mid_tick = last_tick(&orca(&endpoint, &["logs", "--task", &task_id]).await.stdout);
    let mid = orca_runtime::log_format::format_time(mid_ns);
    let since = logs_until(
        &endpoint,
        &["logs", "--task", &task_id, "--since", &mid],
        |o| last_tick(o) >= mid_tick + 3,
    )
    .await;
    assert!(!since.contains("early"), "{since}");
    let run = orca(&endpoint, &["logs", "--task", &task_id, "--since", "1h"]).await;
    assert!(run.stdout.starts_with("early 1\n"), "{}", run.stdout);

    // --timestamps: RFC 3339 times of the last minute.
    let run = orca(
        &endpoint,
        &["logs", "--task", &task_id, "--tail", "3", "--timestamps"],
    )
    .await;
    for line in run.stdout.lines() {
        let (time, text) = line.split_once(' ').unwrap_or_default();
        let ns = orca_runtime::log_format::parse_time(time)
            .unwrap_or_else(|| panic!("no timestamp: {line:?}"));
        let age = orca_runtime::log_format::now_ns() - ns;
        assert!((0..60_000_000_000).contains(&age), "{line}");
        assert!(text.starts_with("tick "), "{line}");
    }

    // logs tail GROUP: lines labelled with the ECS stream name.
    let stream = format!("web/app/{task_id}");
    let group = logs_until(&endpoint, &["logs", "tail", GROUP, "--since", "1h"], |o| {
        o.contains(&format!("{stream} early 1"))
    })
    .await;
    for line in group.lines() {
        let mut parts = line.splitn(3, ' ');
        let time = parts.next().unwrap_or_default();
        assert!(time.ends_with("+00:00"), "{line}");
        assert_eq!(parts.next(), Some(stream.as_str()), "{line}");
    }
    let run = orca(
        &endpoint,
        &[
            "logs",
            "tail",
            GROUP,
            "--since",
            "1h",
            "--log-stream-name-prefix",
            "db/",
        ],
    )
    .await;
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);

    // Clear errors.
    let run = orca(
        &endpoint,
        &["logs", "--task", "0123456789abcdef0123456789abcdef"],
    )
    .await;
    assert_ne!(run.code, 0);
    assert!(
        run.stderr.contains("InvalidParameterException"),
        "{}",
        run.stderr
    );
    let run = orca(
        &endpoint,
        &["logs", "--task", &task_id, "--container", "db"],
    )
    .await;
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("no container 'db'"), "{}", run.stderr);

    // Follows: each sees ticks written after it started (the first line
    // of `--tail 1` is the newest when it started; a later tick came
    // after). Ctrl-C ends one; the last ends by itself once the task
    // stopped and its log was read out.
    let mut interrupted = spawn_orca(
        &endpoint,
        &["logs", "--task", &task_id, "--follow", "--tail", "1"],
    );
    let mut out = BufReader::new(interrupted.stdout.take().expect("stdout")).lines();
    let start = last_tick(&read_until(&mut out, |_| true).await.join("\n"));
    read_until(&mut out, |l| last_tick(l) > start).await;
    interrupt(&interrupted);
    let status = tokio::time::timeout(WAIT, interrupted.wait())
        .await
        .expect("Ctrl-C ends a follow")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    let from_now = orca_runtime::log_format::format_time(orca_runtime::log_format::now_ns());
    let mut group_follow = spawn_orca(
        &endpoint,
        &["logs", "tail", GROUP, "--follow", "--since", &from_now],
    );
    let mut group_out = BufReader::new(group_follow.stdout.take().expect("stdout")).lines();
    read_until(&mut group_out, |l| l.contains(&stream) && last_tick(l) > 0).await;
    interrupt(&group_follow);
    let status = tokio::time::timeout(WAIT, group_follow.wait())
        .await
        .expect("Ctrl-C ends a group follow")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    let mut follow = spawn_orca(
        &endpoint,
        &["logs", "--task", &task_id, "--follow", "--tail", "1"],
    );
    let mut out = BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let start = last_tick(&read_until(&mut out, |_| true).await.join("\n"));
    read_until(&mut out, |l| last_tick(l) > start).await;
    ecs(&mut net.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    read_until(&mut out, |l| l == "term received").await;
    let status = tokio::time::timeout(WAIT, follow.wait())
        .await
        .expect("the follow ends once the task stopped")
        .expect("wait");
    assert!(status.success(), "{status:?}");

    // The stopped task's logs stay readable, through the follower too.
    wait_stopped(&mut net.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    let stopped = logs_until(&endpoint, &["logs", "--task", &task_id], |o| {
        o.ends_with("term received\n")
    })
    .await;
    assert!(stopped.starts_with("early 1\n"), "{stopped}");

    follower.running.stop().await.expect("the follower stops");
    let problems = net.clean().await;
    assert!(problems.is_empty(), "{problems:?}");
}

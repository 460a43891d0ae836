//! ECS's `restartPolicy` on real containerd (the agent caps the attempt
//! period at 3 s so the suite stays fast): an essential container that
//! exits after a run of at least the period is started again in place —
//! the same task stays RUNNING, its root filesystem and log carry over, and
//! describe-tasks counts the restarts — while one that exits sooner, or
//! with an ignored exit code, is not restarted and stops its task as any
//! essential exit does.

use std::time::{Duration, Instant};

use orca_tests::agents::{container_named, ecs, wait_running, wait_stopped};
use serde_json::{json, Value};

use crate::containerd_node::{AgentKind, Node};
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);

fn with_policy(mut container: Value) -> Value {
    container["restartPolicy"] =
        json!({"enabled": true, "ignoredExitCodes": [7], "restartAttemptPeriod": 60});
    container
}

async fn describe(n: &mut Node, arn: &str) -> Value {
    let d = ecs(&mut n.client, "DescribeTasks", json!({"tasks": [arn]}))
        .await
        .expect("describe");
    d["tasks"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_restart_policy_restarts_in_place_and_keeps_to_its_rules() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start_agent_configured("restart", AgentKind::InProcess, |c, _| {
        c.max_restart_attempt_period = Some(Duration::from_secs(3));
    })
    .await
    .expect("setup") else {
        return;
    };

    // Each run appends to a file of its root filesystem and prints how many
    // runs it holds, then fails after 4 s: restarted every time.
    let app = with_policy(n.container(
        "app",
        "echo x >> /runs; echo runs=$(wc -l < /runs); sleep 4; exit 1",
    ));
    n.register("restarts", vec![app]).await;
    let arn = n.run(json!({"taskDefinition": "restarts"})).await;
    wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("running");
    let deadline = Instant::now() + WAIT;
    let task = loop {
        let task = describe(&mut n, &arn).await;
        assert_eq!(
            task["lastStatus"], "RUNNING",
            "restarted in place: {task:#}"
        );
        if container_named(&task, "app")["restartCount"]
            .as_u64()
            .is_some_and(|c| c >= 2)
        {
            break task;
        }
        assert!(Instant::now() < deadline, "not restarted twice: {task:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let deadline = Instant::now() + WAIT;
    loop {
        let log = n.log(&task, "app");
        if log.contains("runs=1") && log.contains("runs=2") && log.contains("runs=3") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "one root filesystem and one log across runs: {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ecs(&mut n.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    let stopped = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    assert_eq!(stopped["stopCode"], "UserInitiated", "{stopped:#}");
    assert!(
        container_named(&stopped, "app")["restartCount"]
            .as_u64()
            .is_some_and(|c| c >= 2),
        "{stopped:#}"
    );

    // Exits sooner than the period: not restarted, the task stops.
    let early = with_policy(n.container("app", "exit 1"));
    n.register("early", vec![early]).await;
    let arn = n.run(json!({"taskDefinition": "early"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    let app = container_named(&t, "app");
    assert_eq!(app["exitCode"], 1, "{t:#}");
    assert_eq!(app["restartCount"], 0, "{t:#}");

    // An ignored exit code after a long enough run: not restarted either.
    let ignored = with_policy(n.container("app", "sleep 4; exit 7"));
    n.register("ignored", vec![ignored]).await;
    let arn = n.run(json!({"taskDefinition": "ignored"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    let app = container_named(&t, "app");
    assert_eq!(app["exitCode"], 7, "{t:#}");
    assert_eq!(app["restartCount"], 0, "{t:#}");

    n.assert_clean().await;
    n.finish().await;
}

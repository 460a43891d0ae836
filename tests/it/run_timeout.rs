//! RunTask's run timeout on real containerd: a task given
//! `runTimeoutSeconds` is stopped once it has been RUNNING that long, with
//! stopCode UserInitiated and a reason naming the timeout, its container
//! stopped as a StopTask stops it; a task without one keeps running.

use std::time::Duration;

use orca_tests::agents::{container_named, ecs, wait_running, wait_stopped};
use serde_json::json;

use crate::containerd_node::Node;
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_run_timeout_stops_the_task_with_its_reason() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("timeout").await.expect("setup") else {
        return;
    };
    let app = n.container("app", "exec sleep 300");
    n.register("batch", vec![app]).await;
    let free = n.run(json!({"taskDefinition": "batch"})).await;
    let timed = n
        .run(json!({"taskDefinition": "batch", "runTimeoutSeconds": 2}))
        .await;
    let running = wait_running(&mut n.client, "default", &timed, WAIT)
        .await
        .expect("running");
    assert_eq!(running["runTimeoutSeconds"], 2, "{running:#}");
    let t = wait_stopped(&mut n.client, "default", &timed, WAIT)
        .await
        .expect("stopped by its timeout");
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    assert_eq!(
        t["stoppedReason"],
        "Task stopped: it ran longer than its run timeout of 2 s (runTimeoutSeconds)",
        "{t:#}"
    );
    // Stopped as StopTask stops it: SIGTERM, then SIGKILL after the stop
    // timeout (`sleep` as PID 1 ignores SIGTERM).
    let code = container_named(&t, "app")["exitCode"].as_i64();
    assert!(matches!(code, Some(137 | 143)), "{t:#}");
    let d = ecs(&mut n.client, "DescribeTasks", json!({"tasks": [free]}))
        .await
        .expect("describe");
    assert_eq!(d["tasks"][0]["lastStatus"], "RUNNING", "{d:#}");
    assert_eq!(d["tasks"][0]["desiredStatus"], "RUNNING", "{d:#}");
    ecs(&mut n.client, "StopTask", json!({"task": free}))
        .await
        .expect("stop");
    wait_stopped(&mut n.client, "default", &free, WAIT)
        .await
        .expect("stopped");
    n.assert_clean().await;
    n.finish().await;
}

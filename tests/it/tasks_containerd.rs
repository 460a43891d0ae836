//! The task lifecycle on real parts (see `containerd_node.rs` for the rig):
//! exit codes and logs, addresses between tasks, memory limits and stop
//! timeouts, dependsOn, and an agent process killed and restarted.
//!
//! After every scenario the test checks that nothing of its tasks remains:
//! no namespace, veth, mount, container or container snapshot.

use std::time::Duration;

use orca_core::Exception;
use orca_tests::agents::{
    container_named, ecs, wait_for_instances, wait_for_task, wait_running, wait_stopped,
};
use serde_json::{json, Value};

use crate::containerd_node::{AgentKind, Node};
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);

fn ip_of(task: &Value) -> String {
    task["containers"][0]["networkInterfaces"][0]["privateIpv4Address"]
        .as_str()
        .unwrap_or_else(|| panic!("no address: {task:#}"))
        .to_string()
}

// On a current-thread runtime on purpose: controller, agent, runtime and
// netns code must never block the executor (the others use two workers).
#[tokio::test]
async fn e2e_exit_codes_and_logs_on_containerd() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("exit").await.expect("setup") else {
        return;
    };
    let c = n.container("app", "echo hello from orca; exit 3");
    n.register("e2e-exit", vec![c]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-exit"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let app = container_named(&t, "app");
    assert_eq!(app["exitCode"], 3, "{t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(t["stoppedReason"], "Essential container in task exited");
    assert!(app["imageDigest"]
        .as_str()
        .is_some_and(|d| d.starts_with("sha256:")));
    assert!(
        n.log(&t, "app").contains("hello from orca"),
        "log: {:?}",
        n.log(&t, "app")
    );
    let ip = ip_of(&t);
    assert!(ip.starts_with("198.18."), "{ip}");
    n.assert_clean().await;

    // A bad image: CannotPullContainerError, TaskFailedToStart.
    let host = n.image.split('/').next().unwrap_or_default().to_string();
    let bad = json!({"name": "app", "image": format!("{host}/orca/nothing:here"), "memory": 32});
    n.register("e2e-bad", vec![bad]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-bad"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = container_named(&t, "app")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.starts_with("CannotPullContainerError:"), "{reason}");

    // Unknown definitions and oversized tasks are refused up front.
    let e = ecs(
        &mut n.client,
        "RunTask",
        json!({"taskDefinition": "e2e-none"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.exception, Exception::ClientException);
    let huge = json!({"name": "app", "image": n.image, "memory": 100000});
    n.register("e2e-huge", vec![huge]).await;
    let out = ecs(
        &mut n.client,
        "RunTask",
        json!({"taskDefinition": "e2e-huge"}),
    )
    .await
    .unwrap();
    assert_eq!(out["failures"][0]["reason"], "RESOURCE:MEMORY", "{out:#}");
    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_tasks_reach_each_other_by_address() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("net").await.expect("setup") else {
        return;
    };
    let server = n.container(
        "web",
        "mkdir -p /tmp/www && echo hello-orca > /tmp/www/index.html && exec httpd -f -p 8080 -h /tmp/www",
    );
    n.register("e2e-server", vec![server]).await;
    let server_arn = n.run(json!({"taskDefinition": "e2e-server"})).await;
    let server = wait_running(&mut n.client, "default", &server_arn, WAIT)
        .await
        .unwrap();
    let server_ip = ip_of(&server);
    // The server's namespace exists and holds its address.
    let netns = server["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|x| x["name"] == "networkInterfaceId"))
        .and_then(|x| x["value"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(
        std::path::Path::new("/run/netns").join(&netns).exists(),
        "{netns}"
    );

    let client_def = n.container(
        "client",
        // (Debian's busybox-static wget segfaults; nc speaks HTTP well enough.)
        "for i in 1 2 3 4 5 6 7 8 9 10; do printf 'GET /index.html HTTP/1.0\\r\\n\\r\\n' | nc -w 2 $TARGET 8080 > /tmp/got; grep -q hello-orca /tmp/got && exit 0; sleep 0.3; done; cat /tmp/got; exit 9",
    );
    n.register("e2e-client", vec![client_def]).await;
    let overrides = json!({"containerOverrides": [{"name": "client", "environment": [{"name": "TARGET", "value": server_ip}]}]});
    let client_arn = n
        .run(json!({"taskDefinition": "e2e-client", "overrides": overrides}))
        .await;
    let t = wait_stopped(&mut n.client, "default", &client_arn, WAIT)
        .await
        .unwrap();
    assert_ne!(ip_of(&t), server_ip, "distinct addresses");
    assert_eq!(
        container_named(&t, "client")["exitCode"],
        0,
        "the client could not fetch from {server_ip}: client log {:?}, server log {:?}",
        n.log(&t, "client"),
        n.log(&server, "web")
    );

    // Stop the server: httpd as PID 1 ignores SIGTERM, so it is killed
    // after the (test agent's 5 s default) stop timeout.
    ecs(
        &mut n.client,
        "StopTask",
        json!({"task": server_arn, "reason": "done"}),
    )
    .await
    .unwrap();
    let t = wait_stopped(&mut n.client, "default", &server_arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "UserInitiated");
    assert_eq!(t["stoppedReason"], "done");
    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_memory_limits_and_stop_timeouts() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("limits").await.expect("setup") else {
        return;
    };
    let mut hog = n.container(
        "hog",
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived",
    );
    hog["memory"] = json!(16);
    n.register("e2e-oom", vec![hog]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-oom"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let reason = container_named(&t, "hog")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(reason.starts_with("OutOfMemoryError:"), "{t:#}");

    let mut stubborn = n.container("stubborn", "trap '' TERM; while true; do sleep 1; done");
    stubborn["stopTimeout"] = json!(2);
    n.register("e2e-stubborn", vec![stubborn]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-stubborn"})).await;
    wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    let asked = std::time::Instant::now();
    ecs(&mut n.client, "StopTask", json!({"task": arn}))
        .await
        .unwrap();
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert!(
        asked.elapsed() >= Duration::from_secs(2),
        "killed before the stopTimeout"
    );
    assert_eq!(container_named(&t, "stubborn")["exitCode"], 137, "{t:#}");
    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_essential_containers_and_depends_on() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("deps").await.expect("setup") else {
        return;
    };
    let app = n.container("app", "sleep 2; exit 0");
    let mut sidecar = n.container("sidecar", "exit 1");
    sidecar["essential"] = json!(false);
    let mut helper = n.container(
        "helper",
        "trap 'exit 0' TERM; while true; do sleep 0.2; done",
    );
    helper["essential"] = json!(false);
    n.register("e2e-pair", vec![app, sidecar, helper]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-pair"})).await;
    // The sidecar may exit while the others are still starting (the task
    // still PENDING): wait for the task to have moved on as well.
    let t = wait_for_task(&mut n.client, "default", &arn, WAIT, |t| {
        (container_named(t, "sidecar")["lastStatus"] == "STOPPED" && t["lastStatus"] != "PENDING")
            || t["lastStatus"] == "STOPPED"
    })
    .await
    .unwrap();
    assert_eq!(
        t["lastStatus"], "RUNNING",
        "a non-essential exit keeps the task running: {t:#}"
    );
    assert_eq!(container_named(&t, "sidecar")["exitCode"], 1);
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    assert_eq!(container_named(&t, "app")["exitCode"], 0);
    assert_eq!(
        container_named(&t, "helper")["exitCode"],
        0,
        "the helper got SIGTERM: {t:#}"
    );

    // SUCCESS: init runs to exit 0 before the app starts.
    let mut init = n.container("init", "sleep 2; echo init-done $(date +%s); exit 0");
    init["essential"] = json!(false);
    let mut app = n.container("app", "echo app-start $(date +%s); exit 0");
    app["dependsOn"] = json!([{"containerName": "init", "condition": "SUCCESS"}]);
    n.register("e2e-ordered", vec![app, init]).await;
    let arn = n.run(json!({"taskDefinition": "e2e-ordered"})).await;
    let t = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .unwrap();
    assert_eq!(container_named(&t, "init")["exitCode"], 0, "{t:#}");
    assert_eq!(container_named(&t, "app")["exitCode"], 0, "{t:#}");
    let second = |log: String, word: &str| -> u64 {
        log.split_whitespace()
            .skip_while(|w| *w != word)
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no '{word}' in log {log:?}"))
    };
    let init_done = second(n.log(&t, "init"), "init-done");
    let app_start = second(n.log(&t, "app"), "app-start");
    assert!(
        app_start >= init_done,
        "app started at {app_start}, init finished at {init_done}"
    );
    n.assert_clean().await;
    n.finish().await;
}

/// The agent is an `orca-agent` process, killed with SIGKILL while two
/// tasks run: the containers outlive it, and the agent process started again
/// on the same data directory adopts them (same containers, same init
/// processes, never started twice); afterwards one task ends on its own and
/// the other stops as asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_an_agent_killed_with_sigkill_adopts_its_running_tasks() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start_with("crash", AgentKind::Process)
        .await
        .expect("setup")
    else {
        return;
    };
    // Exits 5 on SIGUSR1 (its end, signalled by the test), 0 on SIGTERM
    // (StopTask); says "booted" once both traps are set.
    let app = n.container(
        "app",
        "trap 'echo ending; exit 5' USR1; trap 'echo term; exit 0' TERM; echo booted; \
         while true; do sleep 0.2; done",
    );
    n.register("e2e-crash", vec![app]).await;
    let ending = n.run(json!({"taskDefinition": "e2e-crash"})).await;
    let stopping = n.run(json!({"taskDefinition": "e2e-crash"})).await;
    // arn -> (task as described, runtime id, init pid)
    let mut before = std::collections::BTreeMap::new();
    for arn in [&ending, &stopping] {
        let t = wait_running(&mut n.client, "default", arn, WAIT)
            .await
            .unwrap();
        assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
        let deadline = std::time::Instant::now() + WAIT;
        while !n.log(&t, "app").contains("booted") {
            assert!(
                std::time::Instant::now() < deadline,
                "{arn} never booted: log {:?}",
                n.log(&t, "app")
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let runtime_id = container_named(&t, "app")["runtimeId"]
            .as_str()
            .unwrap_or_else(|| panic!("no runtime id: {t:#}"))
            .to_string();
        let (pid, running) = n.container_pid(&runtime_id).await.unwrap();
        assert!(running, "{runtime_id} is not running");
        before.insert(arn.clone(), (t, runtime_id, pid));
    }

    // The crash: SIGKILL to the agent's PID; no shutdown path runs.
    let agent_pid = n.agent_process().pid().expect("the agent runs");
    n.agent_process().kill9().unwrap();
    assert!(
        !std::path::Path::new(&format!("/proc/{agent_pid}")).exists(),
        "the agent (pid {agent_pid}) survived SIGKILL"
    );
    // The containers outlive their agent, untouched.
    for (arn, (_, runtime_id, pid)) in &before {
        let now = n.container_pid(runtime_id).await.unwrap();
        assert_eq!(now, (*pid, true), "{arn}'s container after the agent died");
    }

    // A new agent process on the same config and data directory.
    let seen_before = n.agent_process().log_text().len();
    n.agent_process().start().unwrap();
    let new_pid = n.agent_process().pid().expect("the agent runs again");
    assert_ne!(new_pid, agent_pid);
    // It adopts both containers: wait until its log says so for each.
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let log = n.agent_process().log_text();
        let since = log.get(seen_before..).unwrap_or_default();
        let adopted = |id: &str| {
            since
                .lines()
                .any(|l| l.contains("adopting an existing container") && l.contains(id))
        };
        if before.values().all(|(_, id, _)| adopted(id)) {
            break;
        }
        assert!(
            n.agent_process().is_running(),
            "the restarted agent exited; its log since the restart:\n{since}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "the restarted agent did not adopt both containers in {WAIT:?}; its log since the restart:\n{since}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let instances = wait_for_instances(&mut n.client, "default", 1, WAIT)
        .await
        .unwrap();
    assert_eq!(
        instances.len(),
        1,
        "the restarted agent is the same instance: {instances:?}"
    );
    // Adopted, not restarted: the same containers with the same init
    // processes, each booted once; the same addresses.
    for (arn, (t, runtime_id, pid)) in &before {
        let now = n.container_pid(runtime_id).await.unwrap();
        assert_eq!(now, (*pid, true), "{arn}'s container after the adoption");
        let d = ecs(&mut n.client, "DescribeTasks", json!({"tasks": [arn]}))
            .await
            .unwrap();
        let after = &d["tasks"][0];
        assert_eq!(after["lastStatus"], "RUNNING", "{after:#}");
        assert_eq!(
            container_named(after, "app")["runtimeId"].as_str(),
            Some(runtime_id.as_str()),
            "{after:#}"
        );
        assert_eq!(ip_of(after), ip_of(t));
        let log = n.log(t, "app");
        assert_eq!(
            log.matches("booted").count(),
            1,
            "{arn}'s container started more than once: {log:?}"
        );
    }

    // One task ends on its own: its container exits 5 on SIGUSR1, sent to
    // its init by PID, and the adopted runner reports that end.
    let (t, _, pid) = &before[&ending];
    let sent = std::process::Command::new("kill")
        .args(["-USR1", &pid.to_string()])
        .status()
        .unwrap();
    assert!(sent.success(), "kill -USR1 {pid}");
    let stopped = wait_stopped(&mut n.client, "default", &ending, WAIT)
        .await
        .unwrap();
    assert_eq!(
        container_named(&stopped, "app")["exitCode"],
        5,
        "{stopped:#}"
    );
    assert_eq!(stopped["stopCode"], "EssentialContainerExited");
    assert!(n.log(t, "app").contains("ending"));
    // The other stops as asked.
    ecs(&mut n.client, "StopTask", json!({"task": stopping}))
        .await
        .unwrap();
    let stopped = wait_stopped(&mut n.client, "default", &stopping, WAIT)
        .await
        .unwrap();
    assert_eq!(
        container_named(&stopped, "app")["exitCode"],
        0,
        "{stopped:#}"
    );
    assert_eq!(stopped["stopCode"], "UserInitiated");
    n.assert_clean().await;
    n.finish().await;
}

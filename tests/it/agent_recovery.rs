//! The agent's crash windows, each closed and proved on real parts: a real
//! `orca-agent` process SIGKILLed at the exact point (a crash point armed
//! with `ORCA_AGENT_CRASH_AT`, which makes the agent SIGKILL itself there,
//! or a SIGKILL from the test while tasks run), started again, and the
//! outcome checked against containerd, the kernel and the controller; then
//! nothing may be left. Under CI=true a missing prerequisite fails.

use std::time::Duration;

use orca_runtime::ProcessState;
use orca_tests::agents::{container_named, ecs};
use serde_json::json;

use crate::recovery_rig::{pid_of, runtime_id, task_id, Rig, RigOptions, WAIT};
use crate::support::HEAVY;

/// Exits 7 on SIGTERM; says "booted" once its trap is set.
const TRAPS_TERM: &str =
    "trap 'echo term; exit 7' TERM; echo booted; while true; do sleep 0.2; done";

/// A task whose container was started and whose agent was SIGKILLed is
/// stopped by the user while the agent is down. The restarted agent stops
/// the container (SIGTERM: it exits 7), reports that exit code, removes the
/// container and only then tears the network down; the other task keeps
/// running with the same process throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_a_stop_while_the_agent_is_down() {
    let _heavy = HEAVY.lock().await;
    let Some(mut rig) = Rig::start("down-stop", RigOptions::default())
        .await
        .expect("setup")
    else {
        return;
    };
    let app = rig.container("app", TRAPS_TERM);
    rig.register("down-stop", vec![app]).await;
    let stopped = rig.run("down-stop").await;
    let kept = rig.run("down-stop").await;
    let mut pids = Vec::new();
    for arn in [&stopped, &kept] {
        let t = rig.running(arn).await;
        rig.wait_log(arn, "app", "booted").await;
        pids.push(pid_of(&rig, &runtime_id(&t, "app")).await.expect("pid"));
    }
    rig.agent.kill9().expect("SIGKILL the agent");
    rig.stop_task(&stopped, "stopped while the agent was down")
        .await;
    let log_from = rig.agent.log_text().len();
    rig.agent.start().expect("restart the agent");
    let t = rig.stopped(&stopped).await;
    assert_eq!(container_named(&t, "app")["exitCode"], 7, "{t:#}");
    assert_eq!(t["stopCode"], "UserInitiated", "{t:#}");
    assert_eq!(t["stoppedReason"], "stopped while the agent was down");
    assert!(
        rig.log(&stopped, "app").contains("term"),
        "SIGTERM reached it"
    );
    // Removed, then torn down: the order in the agent's log.
    let log = rig.agent_log_since(log_from);
    let id = task_id(&stopped);
    let removed = log
        .find(&format!("container removed container={id}"))
        .unwrap_or_else(|| panic!("no removal of {id} in:\n{log}"));
    let torn = log
        .lines()
        .position(|l| l.contains("task network torn down") && l.contains(id))
        .map(|i| log.lines().take(i).map(|l| l.len() + 1).sum::<usize>())
        .unwrap_or_else(|| panic!("no teardown of {id} in:\n{log}"));
    assert!(
        removed < torn,
        "the network went before the container:\n{log}"
    );
    assert!(
        !rig.namespaces().iter().any(|n| n.ends_with(id)),
        "{:?}",
        rig.namespaces()
    );
    assert!(!rig.allocations().contains(&id.to_string()));
    // The other task was adopted, never restarted.
    let other = rig.describe(&kept).await;
    assert_eq!(other["lastStatus"], "RUNNING", "{other:#}");
    let pid = pid_of(&rig, &runtime_id(&other, "app")).await.expect("pid");
    assert_eq!(pid, pids[1], "the surviving task's process changed");
    assert_eq!(rig.log(&kept, "app").matches("booted").count(), 1);
    rig.stop_task(&kept, "done").await;
    let t = rig.stopped(&kept).await;
    assert_eq!(container_named(&t, "app")["exitCode"], 7, "{t:#}");
    rig.assert_clean().await;
    rig.finish().await;
}

/// The agent dies right after creating a container, before starting it.
/// Restarted with the task still wanted, it starts that container (once).
/// The same crash again, with the task stopped while the agent is down:
/// the container is removed without ever having run, and the task is
/// STOPPED with no exit code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_a_container_created_but_not_started() {
    let _heavy = HEAVY.lock().await;
    let options = RigOptions {
        crash_at: Some("after-create"),
        ..RigOptions::default()
    };
    let Some(mut rig) = Rig::start("created", options).await.expect("setup") else {
        return;
    };
    rig.wait_connected().await.expect("connected");
    let app = rig.container("app", TRAPS_TERM);
    rig.register("created", vec![app]).await;
    let wanted = rig.run("created").await;
    let status = rig.agent.wait_exit(WAIT).expect("the crash point");
    assert!(!status.success(), "{status:?}");
    let id = format!("{}-0-app", task_id(&wanted));
    assert_eq!(rig.state(&id).await, Some(ProcessState::NotStarted));
    rig.agent.set_env(&[]);
    rig.agent.start().expect("restart");
    let t = rig.running(&wanted).await;
    assert_eq!(runtime_id(&t, "app"), id);
    rig.wait_log(&wanted, "app", "booted").await;
    assert_eq!(rig.log(&wanted, "app").matches("booted").count(), 1);

    // Again, and this time the task is stopped while the agent is down.
    rig.agent.kill9().expect("kill");
    rig.agent
        .set_env(&[(orca_agent::crash::ENV, "after-create")]);
    rig.agent.start().expect("restart armed");
    let doomed = rig.run("created").await;
    rig.agent.wait_exit(WAIT).expect("the crash point");
    let doomed_id = format!("{}-0-app", task_id(&doomed));
    assert_eq!(rig.state(&doomed_id).await, Some(ProcessState::NotStarted));
    rig.stop_task(&doomed, "never mind").await;
    rig.agent.set_env(&[]);
    rig.agent.start().expect("restart");
    let t = rig.stopped(&doomed).await;
    let app = container_named(&t, "app");
    assert!(app["exitCode"].is_null(), "it never ran: {t:#}");
    assert_eq!(app["lastStatus"], "STOPPED");
    assert_eq!(rig.log(&doomed, "app"), "", "it never ran");
    assert_eq!(rig.state(&doomed_id).await, None, "removed");
    // The first task ran on, untouched.
    let first = rig.describe(&wanted).await;
    assert_eq!(first["lastStatus"], "RUNNING", "{first:#}");
    rig.stop_task(&wanted, "done").await;
    let t = rig.stopped(&wanted).await;
    assert_eq!(container_named(&t, "app")["exitCode"], 7, "{t:#}");
    rig.assert_clean().await;
    rig.finish().await;
}

/// The agent dies after it removed a finished task's container and before
/// the final report went up. Restarted, and still assigned the task, it
/// does not run it again: it reports STOPPED with the container's real exit
/// code and cleans up the rest. (The same window with the task assigned
/// desired RUNNING is `a_task_that_ended_never_runs_again_whatever_the_moment_of_the_crash`
/// in orca-agent's loop tests.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_a_crash_between_removing_containers_and_the_final_report() {
    let _heavy = HEAVY.lock().await;
    let options = RigOptions {
        crash_at: Some("after-remove"),
        ..RigOptions::default()
    };
    let Some(mut rig) = Rig::start("removed", options).await.expect("setup") else {
        return;
    };
    rig.wait_connected().await.expect("connected");
    let app = rig.container("app", "echo booted; exit 3");
    rig.register("removed", vec![app]).await;
    let arn = rig.run("removed").await;
    rig.agent.wait_exit(WAIT).expect("the crash point");
    let id = format!("{}-0-app", task_id(&arn));
    assert_eq!(rig.state(&id).await, None, "the container was removed");
    let t = rig.describe(&arn).await;
    assert_ne!(
        t["lastStatus"], "STOPPED",
        "the final report is not up yet: {t:#}"
    );
    rig.agent.set_env(&[]);
    rig.agent.start().expect("restart");
    let t = rig.stopped(&arn).await;
    assert_eq!(container_named(&t, "app")["exitCode"], 3, "{t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited", "{t:#}");
    assert_eq!(
        rig.log(&arn, "app").matches("booted").count(),
        1,
        "the task ran again"
    );
    rig.assert_clean().await;
    rig.finish().await;
}

/// The agent dies right after the controllers registered it, before it
/// saved their reply. Restarted, it registers as the same instance: one
/// instance, connected, no ghost; and it runs tasks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_a_crash_right_after_registering_leaves_no_ghost() {
    let _heavy = HEAVY.lock().await;
    let options = RigOptions {
        crash_at: Some("after-register"),
        ..RigOptions::default()
    };
    let Some(mut rig) = Rig::start("ghost", options).await.expect("setup") else {
        return;
    };
    rig.agent.wait_exit(WAIT).expect("the crash point");
    let listed = ecs(&mut rig.client, "ListContainerInstances", json!({}))
        .await
        .expect("list");
    let first: Vec<String> =
        serde_json::from_value(listed["containerInstanceArns"].clone()).expect("arns");
    assert_eq!(first.len(), 1, "registered before the crash: {listed:#}");
    rig.agent.set_env(&[]);
    rig.agent.start().expect("restart");
    rig.wait_connected().await.expect("connected");
    let listed = ecs(&mut rig.client, "ListContainerInstances", json!({}))
        .await
        .expect("list");
    let after: Vec<String> =
        serde_json::from_value(listed["containerInstanceArns"].clone()).expect("arns");
    assert_eq!(after, first, "the same instance, and no other");
    let app = rig.container("app", "exit 0");
    rig.register("ghost", vec![app]).await;
    let arn = rig.run("ghost").await;
    let t = rig.stopped(&arn).await;
    assert_eq!(container_named(&t, "app")["exitCode"], 0, "{t:#}");
    rig.assert_clean().await;
    rig.finish().await;
}

/// containerd (the test's own) is SIGKILLed under two running tasks; while
/// it is down, one task's process is ended (SIGUSR1: exit 5) by its pid.
/// containerd comes back: the agent reconnects by itself, the survivor keeps
/// its pid and stays RUNNING, the other is reported with exit code 5,
/// never a transport error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_containerd_restarts_under_running_tasks() {
    let _heavy = HEAVY.lock().await;
    let options = RigOptions {
        private_containerd: true,
        // Only events (or containerd coming back) make the agent look
        // again within this test's deadlines.
        adjust: Some(|c| c.relist_interval = Duration::from_secs(120)),
        ..RigOptions::default()
    };
    let Some(mut rig) = Rig::start("ctrd-restart", options).await.expect("setup") else {
        return;
    };
    let app = rig.container(
        "app",
        "trap 'exit 5' USR1; trap 'exit 0' TERM; echo booted; while true; do sleep 0.2; done",
    );
    rig.register("ctrd-restart", vec![app]).await;
    let dies = rig.run("ctrd-restart").await;
    let lives = rig.run("ctrd-restart").await;
    let mut pids = Vec::new();
    for arn in [&dies, &lives] {
        let t = rig.running(arn).await;
        rig.wait_log(arn, "app", "booted").await;
        pids.push(pid_of(&rig, &runtime_id(&t, "app")).await.expect("pid"));
    }
    let log_from = rig.agent.log_text().len();
    let containerd = rig.containerd.as_mut().expect("the test's containerd");
    containerd.kill9().expect("SIGKILL containerd");
    let sent = std::process::Command::new("kill")
        .args(["-USR1", &pids[0].to_string()])
        .status()
        .expect("kill");
    assert!(sent.success());
    // Its process is gone while containerd is down (the shim reaped it).
    let deadline = std::time::Instant::now() + WAIT;
    while std::path::Path::new(&format!("/proc/{}", pids[0])).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {} lives on",
            pids[0]
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The agent notices containerd is away...
    let deadline = std::time::Instant::now() + WAIT;
    while !rig
        .agent_log_since(log_from)
        .contains("containerd unreachable")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent never noticed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // ... and concludes nothing meanwhile.
    let t = rig.describe(&dies).await;
    assert_eq!(t["lastStatus"], "RUNNING", "{t:#}");
    rig.containerd
        .as_mut()
        .expect("containerd")
        .restart()
        .expect("containerd back");
    rig.reconnect_observer().await.expect("observer");
    let t = rig.stopped(&dies).await;
    let app = container_named(&t, "app");
    assert_eq!(app["exitCode"], 5, "{t:#}");
    assert!(app["reason"].is_null(), "{t:#}");
    assert_eq!(t["stopCode"], "EssentialContainerExited");
    let other = rig.describe(&lives).await;
    assert_eq!(other["lastStatus"], "RUNNING", "{other:#}");
    let pid = pid_of(&rig, &runtime_id(&other, "app")).await.expect("pid");
    assert_eq!(pid, pids[1], "the survivor's process changed");
    let log = rig.agent_log_since(log_from);
    assert!(
        !log.contains("transport error") || !log.contains("exitCode"),
        "{log}"
    );
    // The event subscription came back by itself: with relists two
    // minutes apart, the survivor's end is seen through its exit event.
    let asked = std::time::Instant::now();
    rig.stop_task(&lives, "done").await;
    let t = rig.stopped(&lives).await;
    assert!(
        asked.elapsed() < Duration::from_secs(30),
        "the exit was seen only after {:?}",
        asked.elapsed()
    );
    assert_eq!(container_named(&t, "app")["exitCode"], 0, "{t:#}");
    rig.assert_clean().await;
    rig.finish().await;
}

/// Image garbage collection (thresholds at 0, so the disk always counts as
/// full; an image unused for a second may go): an image only a finished
/// task used is removed; the image of a running task stays. And the logs of
/// a task that is gone go once past their retention (1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_image_gc_removes_an_unused_image_and_keeps_one_in_use() {
    let _heavy = HEAVY.lock().await;
    let options = RigOptions {
        adjust: Some(|c| {
            c.image_gc_high_threshold_percent = 0;
            c.image_gc_low_threshold_percent = 0;
            c.image_gc_min_unused = Duration::from_secs(1);
            c.gc_interval = Duration::from_millis(500);
            c.image_gc_disk_path = std::path::PathBuf::from("/");
            c.task_log_retention = Duration::from_secs(1);
        }),
        ..RigOptions::default()
    };
    let Some(mut rig) = Rig::start("image-gc", options).await.expect("setup") else {
        return;
    };
    let other = rig
        .registry
        .push(&rig.archive, "orca/other:1")
        .expect("push");
    let keep = rig.container("app", TRAPS_TERM);
    rig.register("image-kept", vec![keep]).await;
    let mut once = rig.container("app", "exit 0");
    once["image"] = json!(other);
    rig.register("image-gone", vec![once]).await;
    let running = rig.run("image-kept").await;
    rig.running(&running).await;
    let done = rig.run("image-gone").await;
    rig.stopped(&done).await;
    let deadline = std::time::Instant::now() + WAIT;
    loop {
        let images: Vec<String> = orca_runtime::ContainerRuntime::list_images(&*rig.observer)
            .await
            .expect("images")
            .into_iter()
            .map(|i| i.reference)
            .collect();
        if !images.contains(&other) {
            assert!(
                images.contains(&rig.image),
                "the image in use went: {images:?}"
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{other} is still there: {images:?}\nagent log:\n{}",
            rig.agent.log_text()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The finished task's logs go once past their retention; the running
    // one's stay.
    let logs = |arn: &str| rig.data_dir.path().join("tasks").join(task_id(arn));
    let deadline = std::time::Instant::now() + WAIT;
    while logs(&done).exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the logs of {done} are still there"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(logs(&running).exists(), "the running task's logs went");
    rig.stop_task(&running, "done").await;
    rig.stopped(&running).await;
    rig.assert_clean().await;
    rig.finish().await;
}

/// The agent stays down long enough for the controllers to declare its
/// instance lost: they record its task STOPPED (InfrastructureHealth) and
/// release it, while its container still runs. The returning agent is no
/// longer assigned the task and stops the container all the same, with
/// SIGTERM as any stop, then removes it and its network: nothing is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_recovery_a_task_lost_while_the_agent_was_down_is_stopped_on_its_return() {
    let _heavy = HEAVY.lock().await;
    let Some(mut rig) = Rig::start("lost", RigOptions::default())
        .await
        .expect("setup")
    else {
        return;
    };
    let app = rig.container("app", TRAPS_TERM);
    rig.register("lost", vec![app]).await;
    let arn = rig.run("lost").await;
    let t = rig.running(&arn).await;
    rig.wait_log(&arn, "app", "booted").await;
    let pid = pid_of(&rig, &runtime_id(&t, "app")).await.expect("pid");
    rig.agent.kill9().expect("SIGKILL the agent");
    let t = rig.stopped(&arn).await;
    assert_eq!(t["stopCode"], "InfrastructureHealth", "{t:#}");
    assert!(
        std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the container outlives its agent"
    );
    rig.agent.start().expect("restart the agent");
    rig.wait_connected().await.expect("connected");
    rig.assert_clean().await;
    assert!(
        rig.log(&arn, "app").contains("term"),
        "stopped with SIGTERM: {:?}",
        rig.log(&arn, "app")
    );
    rig.finish().await;
}

//! Volumes, tmpfs and the /etc files of containers on real parts (the rig
//! of `containerd_node.rs`: in-process controller and agent, containerd and
//! runc, a network namespace per task, busybox from a local registry).
//! The scenarios of one test run side by side; every wait has a deadline,
//! and `assert_clean` checks that no task volume, /etc file or mount is left.

use std::time::Duration;

use orca_tests::agents::{container_named, wait_stopped};
use serde_json::{json, Value};

use crate::containerd_node::{AgentKind, Node};
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(90);

/// A container running `script` with `extra` keys merged in.
fn container(n: &Node, name: &str, script: &str, extra: Value) -> Value {
    let mut c = n.container(name, script);
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

fn exit_code(task: &Value, name: &str) -> Option<i64> {
    container_named(task, name)["exitCode"].as_i64()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_volumes_and_etc_files_on_containerd() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start_agent_configured("volumes", AgentKind::InProcess, |c, data| {
        let allowed = data.join("allowed");
        std::fs::create_dir_all(&allowed).expect("allowed dir");
        c.host_volume_paths = vec![allowed];
        c.dns_servers = Some(vec![std::net::Ipv4Addr::new(198, 18, 0, 53)]);
    })
    .await
    .expect("setup") else {
        return;
    };
    let allowed = n.data_dir.path().join("allowed");

    // A scratch volume: written by one container, read by the next.
    let scratch_mount =
        json!({"mountPoints": [{"sourceVolume": "scratch", "containerPath": "/s"}]});
    let mut writer = container(&n, "writer", "echo hello > /s/f", scratch_mount.clone());
    writer["essential"] = json!(false);
    let mut reader = container(
        &n,
        "reader",
        "cat /s/f; test \"$(cat /s/f)\" = hello",
        scratch_mount,
    );
    reader["dependsOn"] = json!([{"containerName": "writer", "condition": "SUCCESS"}]);
    n.register_definition(
        json!({"family": "vol-scratch", "volumes": [{"name": "scratch"}],
        "containerDefinitions": [writer, reader]}),
    )
    .await;

    // readOnly refuses writes.
    let ro = container(
        &n,
        "app",
        "touch /r/x",
        json!({"mountPoints": [{"sourceVolume": "r", "containerPath": "/r", "readOnly": true}]}),
    );
    n.register_definition(json!({"family": "vol-readonly", "volumes": [{"name": "r"}],
        "containerDefinitions": [ro]}))
        .await;

    // A host path outside the allow-list, and one inside it.
    let host = |n: &Node, path: &str, script: &str| {
        json!({"family": "x", "volumes": [{"name": "h", "host": {"sourcePath": path}}],
            "containerDefinitions": [container(n, "app", script,
                json!({"mountPoints": [{"sourceVolume": "h", "containerPath": "/h"}]}))]})
    };
    let mut outside = host(&n, "/etc", "exec sleep 3600");
    outside["family"] = json!("vol-outside");
    n.register_definition(outside).await;
    let inside_path = allowed.join("web");
    let mut inside = host(
        &n,
        &inside_path.display().to_string(),
        "echo from-task > /h/f",
    );
    inside["family"] = json!("vol-inside");
    n.register_definition(inside).await;

    // tmpfs with its size.
    let tmpfs = container(
        &n,
        "app",
        "grep ' /t tmpfs ' /proc/mounts; grep -q ' /t tmpfs .*size=16384k' /proc/mounts",
        json!({"linuxParameters": {"tmpfs": [{"containerPath": "/t", "size": 16}]}}),
    );
    n.register_definition(json!({"family": "vol-tmpfs", "containerDefinitions": [tmpfs]}))
        .await;

    // /etc files: the definition's DNS in bridge mode, the agent's under awsvpc.
    let dns = container(
        &n,
        "app",
        "cat /etc/resolv.conf /etc/hosts /etc/hostname",
        json!({"hostname": "web", "dnsServers": ["198.18.0.10"], "dnsSearchDomains": ["corp.test"],
               "extraHosts": [{"hostname": "db.test", "ipAddress": "198.18.0.20"}]}),
    );
    n.register_definition(json!({"family": "etc-bridge", "networkMode": "bridge",
        "containerDefinitions": [dns]}))
        .await;
    let plain = container(
        &n,
        "app",
        "cat /etc/resolv.conf /etc/hosts /etc/hostname",
        json!({}),
    );
    n.register_definition(json!({"family": "etc-awsvpc", "containerDefinitions": [plain]}))
        .await;

    let mut arns = std::collections::BTreeMap::new();
    for family in [
        "vol-scratch",
        "vol-readonly",
        "vol-outside",
        "vol-inside",
        "vol-tmpfs",
        "etc-bridge",
        "etc-awsvpc",
    ] {
        arns.insert(family, n.run(json!({"taskDefinition": family})).await);
    }
    let mut done = std::collections::BTreeMap::new();
    for (family, arn) in &arns {
        let t = wait_stopped(&mut n.client, "default", arn, WAIT)
            .await
            .unwrap_or_else(|e| panic!("{family}: {e:#}"));
        done.insert(*family, t);
    }

    let t = &done["vol-scratch"];
    assert_eq!(exit_code(t, "writer"), Some(0), "{t:#}");
    assert_eq!(
        exit_code(t, "reader"),
        Some(0),
        "the reader read the writer's file: {t:#}"
    );
    assert!(
        n.log(t, "reader").contains("hello"),
        "{}",
        n.log(t, "reader")
    );

    let t = &done["vol-readonly"];
    assert!(
        exit_code(t, "app").is_some_and(|c| c != 0),
        "a write to a readOnly mount fails: {t:#}"
    );

    let t = &done["vol-outside"];
    assert_eq!(t["stopCode"], "TaskFailedToStart", "{t:#}");
    let reason = container_named(t, "app")["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.starts_with("CannotCreateVolumeError: ")
            && reason.contains("/etc")
            && reason.contains("host_volume_paths"),
        "{t:#}"
    );
    assert!(exit_code(t, "app").is_none(), "never started: {t:#}");

    let t = &done["vol-inside"];
    assert_eq!(exit_code(t, "app"), Some(0), "{t:#}");
    assert_eq!(
        std::fs::read_to_string(inside_path.join("f"))
            .ok()
            .as_deref(),
        Some("from-task\n"),
        "the host path keeps what the task wrote"
    );

    let t = &done["vol-tmpfs"];
    assert_eq!(exit_code(t, "app"), Some(0), "{}", n.log(t, "app"));

    let t = &done["etc-bridge"];
    let log = n.log(t, "app");
    assert_eq!(exit_code(t, "app"), Some(0), "{log}");
    assert!(
        log.contains("nameserver 198.18.0.10\nsearch corp.test\n"),
        "{log}"
    );
    assert!(!log.contains("198.18.0.53"), "{log}");
    assert!(log.contains("198.18.0.20\tdb.test\n"), "{log}");
    assert!(
        log.contains("\tweb\nweb\n"),
        "own address with the hostname, then /etc/hostname: {log}"
    );

    let t = &done["etc-awsvpc"];
    let log = n.log(t, "app");
    let id: String = t["taskArn"]
        .as_str()
        .and_then(|a| a.rsplit('/').next())
        .unwrap_or_default()
        .chars()
        .take(12)
        .collect();
    let ip = t["attachments"][0]["details"]
        .as_array()
        .and_then(|d| d.iter().find(|kv| kv["name"] == "privateIPv4Address"))
        .and_then(|kv| kv["value"].as_str())
        .unwrap_or_default()
        .to_string();
    assert!(!ip.is_empty(), "{t:#}");
    assert!(log.contains("nameserver 198.18.0.53\n"), "{log}");
    assert!(log.contains("127.0.0.1\tlocalhost\n"), "{log}");
    assert!(log.contains(&format!("{ip}\t{id}\n")), "{log}");

    n.assert_clean().await;
    n.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_a_shared_volume_keeps_its_data_across_tasks_and_an_agent_restart() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start_with("volshared", AgentKind::Process)
        .await
        .expect("setup")
    else {
        return;
    };
    let volumes = json!([
        {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true,
            "driver": "local", "labels": {"team": "a"}}},
        {"name": "scratch"}
    ]);
    let mounts = json!({"mountPoints": [
        {"sourceVolume": "cache", "containerPath": "/c"},
        {"sourceVolume": "scratch", "containerPath": "/s"}
    ]});
    let first = container(
        &n,
        "app",
        "echo kept > /c/f; echo mine > /s/f; exec sleep 3600",
        mounts.clone(),
    );
    n.register_definition(json!({"family": "shared-1", "volumes": volumes,
        "containerDefinitions": [first]}))
        .await;
    let second = container(
        &n,
        "app",
        "cat /c/f; test \"$(cat /c/f)\" = kept && test ! -e /s/f",
        mounts,
    );
    n.register_definition(json!({"family": "shared-2", "volumes": volumes,
        "containerDefinitions": [second]}))
        .await;
    let different = container(
        &n,
        "app",
        "true",
        json!({"mountPoints": [{"sourceVolume": "cache", "containerPath": "/c"}]}),
    );
    n.register_definition(json!({"family": "shared-labels", "volumes": [
        {"name": "cache", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true,
            "labels": {"team": "b"}}}],
        "containerDefinitions": [different]}))
        .await;

    let first = n.run(json!({"taskDefinition": "shared-1"})).await;
    orca_tests::agents::wait_running(&mut n.client, "default", &first, WAIT)
        .await
        .expect("running");
    let id = first.rsplit('/').next().unwrap_or_default().to_string();
    let scratch = n
        .data_dir
        .path()
        .join("volumes/tasks")
        .join(&id)
        .join("scratch");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !scratch.join("f").exists() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the task never wrote its scratch file"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The agent dies and comes back: the running task's volumes are as
    // they were, and its cleanup still removes them.
    n.agent_process().kill9().expect("kill -9");
    n.agent_process().start().expect("restart");
    assert!(
        scratch.join("f").exists(),
        "a task volume survives an agent restart"
    );
    orca_tests::agents::ecs(
        &mut n.client,
        "StopTask",
        json!({"cluster": "default", "task": first}),
    )
    .await
    .expect("stop-task");
    wait_stopped(&mut n.client, "default", &first, WAIT)
        .await
        .expect("stopped");

    let second = n.run(json!({"taskDefinition": "shared-2"})).await;
    let t = wait_stopped(&mut n.client, "default", &second, WAIT)
        .await
        .expect("stopped");
    assert_eq!(exit_code(&t, "app"), Some(0), "{}", n.log(&t, "app"));
    assert!(n.log(&t, "app").contains("kept"));

    let third = n.run(json!({"taskDefinition": "shared-labels"})).await;
    let t = wait_stopped(&mut n.client, "default", &third, WAIT)
        .await
        .expect("stopped");
    let reason = container_named(&t, "app")["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.starts_with("CannotCreateVolumeError: volume cache: shared volume exists"),
        "{t:#}"
    );

    let shared = n.data_dir.path().join("volumes/shared/cache");
    assert_eq!(
        std::fs::read_to_string(shared.join("_data/f"))
            .ok()
            .as_deref(),
        Some("kept\n"),
        "a shared volume outlives its tasks"
    );
    let meta = std::fs::read_to_string(shared.join("meta.json")).unwrap_or_default();
    assert!(meta.contains("\"team\": \"a\""), "{meta}");
    n.assert_clean().await;
    n.finish().await;
}

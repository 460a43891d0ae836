//! Hardened containers on real containerd. A container without privileges
//! cannot mount, change its network configuration, or make a namespace
//! through `unshare` (refused by the default seccomp profile even where
//! no capability is needed: a user namespace), runs under seccomp in its
//! own cgroup namespace, and a fork bomb in it stops at the agent's pids
//! limit. The same definition marked privileged is refused at RunTask
//! until the cluster allows privileges, and then can do all of it.
//!
//! keyctl is not exercised here: the test image is busybox, which has no
//! applet calling it; the profile's unit tests check that it is refused.

use std::time::Duration;

use orca_api::v1;
use orca_core::Exception;
use orca_tests::agents::{ecs, wait_stopped};
use serde_json::json;

use crate::containerd_node::{AgentKind, Node};
use crate::support::HEAVY;

const WAIT: Duration = Duration::from_secs(60);
const PIDS_LIMIT: u64 = 50;

/// Prints `key=ok` or `key=refused` for each privileged operation, then
/// what the kernel says of the container's confinement.
const PROBE: &str = r#"
mkdir -p /mnt/probe
if mount -t tmpfs none /mnt/probe 2>/dev/null; then echo mount=ok; else echo mount=refused; fi
if ip addr add 192.0.2.7/32 dev lo 2>/dev/null; then echo netconf=ok; else echo netconf=refused; fi
if busybox unshare -U true 2>/dev/null; then echo unshare=ok; else echo unshare=refused; fi
grep '^Seccomp:' /proc/self/status | tr -d '\t '
echo cgroup=$(head -n 1 /proc/self/cgroup | cut -d: -f3)
"#;

/// Spawns sleepers in a subshell until fork fails (the subshell then
/// exits), reads the cgroup's count with builtins only (a fork would
/// fail at the limit), and ends them all.
const FORK_BOMB: &str = r#"
( i=0; while [ $i -lt 200 ]; do sleep 30 & i=$((i+1)); done )
for d in /sys/fs/cgroup /sys/fs/cgroup/pids; do
  if [ -r $d/pids.max ]; then read max < $d/pids.max; read cur < $d/pids.current; fi
done
echo pids.max=$max
echo pids.current=$cur
kill -9 -1
"#;

fn value(log: &str, key: &str) -> String {
    log.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the log:\n{log}"))
        .trim()
        .to_string()
}

async fn run_to_end(n: &mut Node, family: &str) -> (serde_json::Value, String) {
    let arn = n.run(json!({"taskDefinition": family})).await;
    let task = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("the task ends");
    let log = n.log(&task, family);
    (task, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_containers_are_hardened_unless_the_cluster_allows_privileges() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start_agent_configured("harden", AgentKind::InProcess, |c, _| {
        c.pids_limit = PIDS_LIMIT;
    })
    .await
    .expect("setup") else {
        return;
    };

    // Without privileges.
    let probe = n.container("probe", PROBE);
    n.register("probe", vec![probe.clone()]).await;
    let (task, log) = run_to_end(&mut n, "probe").await;
    assert_eq!(task["containers"][0]["exitCode"], 0, "{task:#}\n{log}");
    assert_eq!(value(&log, "mount"), "refused", "{log}");
    assert_eq!(value(&log, "netconf"), "refused", "{log}");
    // A user namespace needs no capability: only seccomp refuses it.
    assert_eq!(value(&log, "unshare"), "refused", "{log}");
    assert!(log.contains("Seccomp:2"), "filtered by seccomp: {log}");
    // Its own cgroup namespace: its cgroup is the root it sees.
    assert_eq!(value(&log, "cgroup"), "/", "{log}");

    // A fork bomb meets the pids limit; the node carries on.
    n.register("bomb", vec![n.container("bomb", FORK_BOMB)])
        .await;
    let (task, log) = run_to_end(&mut n, "bomb").await;
    assert_eq!(value(&log, "pids.max"), PIDS_LIMIT.to_string(), "{log}");
    let current: u64 = value(&log, "pids.current").parse().expect("a count");
    assert!(
        current <= PIDS_LIMIT && current + 5 >= PIDS_LIMIT,
        "the bomb filled the limit and no more: {log}"
    );
    assert_eq!(task["containers"][0]["exitCode"], 0, "{task:#}\n{log}");

    // Privileged, in a cluster that does not allow it: refused at RunTask.
    let mut privileged = n.container("privileged", PROBE);
    privileged["privileged"] = json!(true);
    n.register("privileged", vec![privileged]).await;
    let err = ecs(
        &mut n.client,
        "RunTask",
        json!({"taskDefinition": "privileged"}),
    )
    .await
    .expect_err("refused");
    assert_eq!(
        err.exception,
        Exception::InvalidParameterException,
        "{err:?}"
    );
    assert_eq!(
        err.field.as_deref(),
        Some("containerDefinitions[0].privileged"),
        "{err:?}"
    );
    assert!(
        err.message.contains("orca.privilegedContainers=enabled"),
        "{err:?}"
    );
    let mut adds = n.container("adds", PROBE);
    adds["linuxParameters"] = json!({"capabilities": {"add": ["NET_ADMIN"]}});
    n.register("adds", vec![adds]).await;
    let err = ecs(&mut n.client, "RunTask", json!({"taskDefinition": "adds"}))
        .await
        .expect_err("refused");
    assert_eq!(
        err.field.as_deref(),
        Some("containerDefinitions[0].linuxParameters.capabilities.add"),
        "{err:?}"
    );

    // Allowed by the cluster: the privileged container can.
    n.client
        .update_cluster(v1::UpdateClusterRequest {
            cluster: "default".into(),
            settings: vec![v1::ClusterSetting {
                name: "orca.privilegedContainers".into(),
                value: "enabled".into(),
            }],
        })
        .await
        .expect("settings updated");
    let (task, log) = run_to_end(&mut n, "privileged").await;
    assert_eq!(task["containers"][0]["exitCode"], 0, "{task:#}\n{log}");
    assert_eq!(value(&log, "mount"), "ok", "{log}");
    assert_eq!(value(&log, "netconf"), "ok", "{log}");
    // The same call the profile refused above: the kernel allows it.
    assert_eq!(value(&log, "unshare"), "ok", "{log}");
    assert!(
        log.contains("Seccomp:0"),
        "no profile when privileged: {log}"
    );

    n.assert_clean().await;
    n.finish().await;
}

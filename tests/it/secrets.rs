//! Secrets end to end, on real containerd with the agent as a process:
//! a secret (whole and by JSON key) and a SecureString parameter reach a
//! container as environment variables, a secret asked for as a file
//! (`orca.secrets.files`) reaches it on a tmpfs and not in its environment,
//! and no value is written anywhere else: not in describe output, the
//! controller's data (the Raft log and state), the agent's data directory,
//! its log, the container's log, nor, for the file secret, containerd's
//! metadata store (which does hold the environment ones: documented). A
//! task whose secret does not exist stops before it starts, with a reason
//! naming the secret.

use std::path::Path;
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_running, wait_stopped};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::containerd_node::{AgentKind, Node};
use crate::support::{orca, HEAVY};

const WAIT: Duration = Duration::from_secs(60);
/// Where containerd keeps its metadata (deploy/start-containerd.sh runs it
/// with the default root).
const CONTAINERD_META: &str = "/var/lib/containerd/io.containerd.metadata.v1.bolt/meta.db";

const DB_PASSWORD: &str = "pw-9f2c61e0-db-hunter2";
const API_KEY: &str = "key-3b8d44a7-parameter";
const TOKEN: &str = "tok-c05e71d2-as-a-file";

fn sha(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

/// Every file under `dir` holding `needle`, by path.
fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let path = e.path();
            match e.file_type() {
                Ok(t) if t.is_dir() => stack.push(path),
                Ok(t) if t.is_file() => {
                    let bytes = std::fs::read(&path).unwrap_or_default();
                    if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                        found.push(path.display().to_string());
                    }
                }
                _ => {}
            }
        }
    }
    found
}

fn contains(path: &str, needle: &str) -> bool {
    std::fs::read(path)
        .unwrap_or_default()
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn describe(n: &mut Node, arn: &str) -> Value {
    let d = ecs(&mut n.client, "DescribeTasks", json!({"tasks": [arn]}))
        .await
        .expect("describe");
    d["tasks"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_secrets_reach_their_containers_and_nothing_else() {
    let _heavy = HEAVY.lock().await;
    let keys = tempfile::tempdir().expect("tempdir");
    let key_file = keys.path().join("secrets.key");
    std::fs::write(&key_file, [0x5au8; 32]).expect("key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let kf = key_file.clone();
    let Some(mut n) = Node::start_configured("secrets", AgentKind::Process, move |c| {
        c.secrets_key_file = Some(kf);
    })
    .await
    .expect("setup") else {
        return;
    };
    let ep = n.endpoint();
    let db = json!({"username": "admin", "password": DB_PASSWORD}).to_string();
    let created = orca(
        &ep,
        &["create-secret", "--name", "prod/db", "--secret-string", &db],
    )
    .await
    .json();
    assert!(created["ARN"]
        .as_str()
        .is_some_and(|a| a.starts_with("arn:orca:secretsmanager:")));
    orca(
        &ep,
        &[
            "put-parameter",
            "--name",
            "/app/api-key",
            "--value",
            API_KEY,
            "--type",
            "SecureString",
        ],
    )
    .await
    .json();
    orca(
        &ep,
        &["create-secret", "--name", "token", "--secret-string", TOKEN],
    )
    .await
    .json();
    let got = orca(&ep, &["get-secret-value", "--secret-id", "token"])
        .await
        .json();
    assert_eq!(got["SecretString"], TOKEN);
    let described = orca(&ep, &["describe-secret", "--secret-id", "prod/db"]).await;
    let listed = orca(&ep, &["list-secrets"]).await;
    let hidden = orca(&ep, &["get-parameters", "--names", "/app/api-key"])
        .await
        .json();
    for out in [&described.stdout, &listed.stdout, &hidden.to_string()] {
        assert!(
            !out.contains(DB_PASSWORD) && !out.contains(API_KEY),
            "{out}"
        );
    }
    assert_eq!(hidden["Parameters"][0]["Type"], "SecureString");

    // Hashes only, so the container's log never holds a value.
    let script = "h() { printf %s \"$1\" | sha256sum | cut -c1-64; }; \
                  echo db=$(h \"$DB_PASSWORD\") key=$(h \"$API_KEY\") \
                  file=$(h \"$(cat /run/secrets/TOKEN)\") env_token=${TOKEN:-none} \
                  mode=$(stat -c %a /run/secrets/TOKEN); sleep 60";
    let mut app = n.container("app", script);
    app["secrets"] = json!([
        {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db:password::"},
        {"name": "API_KEY", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/app/api-key"},
    ]);
    let mut files = n.container("files", "sleep 60");
    files["secrets"] = json!([{"name": "TOKEN", "valueFrom": "token"}]);
    files["dockerLabels"] = json!({"orca.secrets.files": "/run/secrets"});
    files["command"] = json!(["sh", "-c", script]);
    files["essential"] = json!(false);
    // Each container gets its own secrets only: this one prints the same
    // line with the other's variables empty.
    n.register("with-secrets", vec![app, files]).await;
    let arn = n.run(json!({"taskDefinition": "with-secrets"})).await;
    wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("running");
    let task = describe(&mut n, &arn).await;
    let deadline = Instant::now() + WAIT;
    let (app_log, files_log) = loop {
        let (a, f) = (n.log(&task, "app"), n.log(&task, "files"));
        if a.contains("db=") && f.contains("file=") {
            break (a, f);
        }
        assert!(Instant::now() < deadline, "no output: {a:?} {f:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        app_log.contains(&format!("db={}", sha(DB_PASSWORD))),
        "{app_log}"
    );
    assert!(
        app_log.contains(&format!("key={}", sha(API_KEY))),
        "{app_log}"
    );
    assert!(
        files_log.contains(&format!("file={}", sha(TOKEN))),
        "{files_log}"
    );
    assert!(
        files_log.contains("env_token=none"),
        "not in the environment: {files_log}"
    );
    assert!(files_log.contains("mode=444"), "{files_log}");
    // containerd keeps a container's environment in its store, never a
    // file secret; the secrets tmpfs is a mount on the node.
    assert!(
        contains(CONTAINERD_META, DB_PASSWORD),
        "the env secret is in containerd's store (documented)"
    );
    assert!(!contains(CONTAINERD_META, TOKEN), "the file secret is not");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let data = n.data_dir.path().display().to_string();
    assert!(
        mounts
            .lines()
            .any(|l| l.contains(&data) && l.contains("files.secrets") && l.contains("tmpfs")),
        "a tmpfs holds the file secret"
    );

    ecs(&mut n.client, "StopTask", json!({"task": arn}))
        .await
        .expect("stop");
    let stopped = wait_stopped(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    assert!(
        !mounts.lines().any(|l| l.contains(&data)),
        "the secrets tmpfs is unmounted with the task"
    );

    // A secret that does not exist: the task never starts.
    let mut bad = n.container("bad", "echo started");
    bad["secrets"] =
        json!([{"name": "X", "valueFrom": "arn:aws:secretsmanager:us-east-1:1:secret:missing"}]);
    n.register("missing-secret", vec![bad]).await;
    let bad_arn = n.run(json!({"taskDefinition": "missing-secret"})).await;
    let bad_task = wait_stopped(&mut n.client, "default", &bad_arn, WAIT)
        .await
        .expect("stopped");
    assert_eq!(bad_task["stopCode"], "TaskFailedToStart", "{bad_task:#}");
    let reason = bad_task["stoppedReason"].as_str().unwrap_or_default();
    assert!(
        reason.starts_with("ResourceInitializationError")
            && reason.contains("secret 'missing' not found"),
        "{reason}"
    );
    assert_eq!(
        bad_task["containers"][0]["exitCode"],
        Value::Null,
        "never ran"
    );

    // Nowhere else: describe output, the controller's Raft log and state,
    // the agent's data directory (its log, the tasks' logs and files).
    let shown = format!("{stopped} {bad_task}");
    for value in [DB_PASSWORD, API_KEY, TOKEN] {
        assert!(!shown.contains(value), "describe-tasks shows a value");
        let in_controller = files_holding(n.controller.data_dir.path(), value);
        assert!(
            in_controller.is_empty(),
            "controller files: {in_controller:?}"
        );
        let in_agent = files_holding(n.data_dir.path(), value);
        assert!(in_agent.is_empty(), "agent files: {in_agent:?}");
    }
    n.assert_clean().await;
    n.finish().await;
}

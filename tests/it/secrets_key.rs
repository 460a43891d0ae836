//! The cluster's secrets key, on a real `orca-controller` process logging
//! at debug level: a secret written through the CLI is stored sealed (no
//! plaintext in the data directory: the Raft log, the state, snapshots)
//! and never logged; restarted with another key, or with none, the
//! controller refuses to start and says why; with its own key it serves
//! the secret again.

use std::path::Path;
use std::time::{Duration, Instant};

use orca_tests::controller::{free_addr, ControllerProcess, ControllerSpec};

use crate::support::orca;

const VALUE: &str = "s3cr3t-7d1f0b9e-never-stored-plain";
const WAIT: Duration = Duration::from_secs(30);

fn key_file(dir: &Path, name: &str, byte: u8) -> String {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join(name);
    std::fs::write(&path, [byte; 32]).expect("key");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    path.display().to_string()
}

fn holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if std::fs::read(&p)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                found.push(p.display().to_string());
            }
        }
    }
    found
}

/// Waits for the process to exit on its own; its log.
fn wait_refusal(c: &mut ControllerProcess) -> String {
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = c.exit_status() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running:\n{}",
            c.log_text()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(!status.success(), "exits with an error");
    assert!(!c.is_running(), "reaped");
    c.log_text()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_controller_refuses_to_start_without_the_clusters_secrets_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let keys = tempfile::tempdir().expect("tempdir");
    let right = key_file(keys.path(), "right", 1);
    let wrong = key_file(keys.path(), "wrong", 2);
    let data = dir.path().join("data");
    let mut c = ControllerProcess::spawn_with(ControllerSpec {
        data_dir: data.clone(),
        listen: Some(free_addr().expect("port")),
        extra_args: vec![
            "--secrets-key-file".into(),
            right.clone(),
            "--snapshot-every".into(),
            "5".into(),
        ],
        env: vec![("RUST_LOG".into(), "debug".into())],
        log: Some(dir.path().join("controller.log")),
        ..ControllerSpec::default()
    })
    .expect("spawn");
    c.wait_ready(WAIT).await.expect("ready");
    let ep = c.endpoint();
    orca(
        &ep,
        &["create-secret", "--name", "db", "--secret-string", VALUE],
    )
    .await
    .json();
    // Enough writes for a snapshot to hold the secret too.
    for i in 0..6 {
        let value = format!("{VALUE}-{i}");
        orca(
            &ep,
            &[
                "put-parameter",
                "--name",
                &format!("p{i}"),
                "--value",
                &value,
            ],
        )
        .await
        .json();
    }
    let got = orca(&ep, &["get-secret-value", "--secret-id", "db"])
        .await
        .json();
    assert_eq!(got["SecretString"], VALUE);
    let stored = holding(&data, VALUE);
    assert!(
        stored.is_empty(),
        "plaintext in the data directory: {stored:?}"
    );
    assert!(
        !c.log_text().contains(VALUE),
        "a value in the controller's log"
    );

    c.kill9().expect("kill");
    c.spec_mut().extra_args = vec!["--secrets-key-file".into(), wrong];
    c.start().expect("start");
    let log = wait_refusal(&mut c);
    assert!(
        log.contains("refusing to serve")
            && log.contains("the cluster's secrets are sealed with key"),
        "{log}"
    );

    c.spec_mut().extra_args = Vec::new();
    c.start().expect("start");
    let log = wait_refusal(&mut c);
    assert!(log.contains("started without --secrets-key-file"), "{log}");

    c.spec_mut().extra_args = vec!["--secrets-key-file".into(), right];
    c.start().expect("start");
    c.wait_ready(WAIT).await.expect("ready with its key");
    let got = orca(&c.endpoint(), &["get-secret-value", "--secret-id", "db"])
        .await
        .json();
    assert_eq!(got["SecretString"], VALUE);
    assert!(
        !c.log_text().contains(VALUE),
        "a value in the controller's log"
    );
    c.kill9().expect("kill");
}

//! ECS's own wire protocol with the real clients: boto3 (every operation
//! orca serves, its paginators and the four waiters, one of which must
//! fail) and the aws CLI v1 (`aws ecs --endpoint-url`, tutorial commands,
//! `--query`, `--output table`, exit codes and error text), against a
//! controller whose JSON 1.1 endpoint listens on loopback, with one agent
//! on the fake runtime. The clients come from the Python package index into
//! a virtual environment (`tests/ecs_api/venv.sh`, run by tests/run.sh);
//! under CI=true a missing one fails the test.

use std::path::{Path, PathBuf};
use std::time::Duration;

use orca_tests::agents::{wait_for_instances, FakeNode, FAKE_IMAGE};
use orca_tests::controller::InProcessController;

const WAIT: Duration = Duration::from_secs(20);

/// The virtual environment with boto3 and the aws CLI, or None (after
/// saying why) outside CI when it is missing.
fn venv() -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("ORCA_ECS_VENV").unwrap_or_else(|_| "/var/tmp/orca-ecs-venv".into()),
    );
    if dir.join("bin/python").exists() && dir.join("bin/aws").exists() {
        return Some(dir);
    }
    let why = format!(
        "no boto3/aws CLI virtual environment at {} (bash tests/ecs_api/venv.sh makes it)",
        dir.display()
    );
    assert!(!orca_tests::containerd::in_ci(), "{why}");
    eprintln!("skipping: {why}");
    None
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the workspace")
        .to_path_buf()
}

struct Endpoint {
    _controller: InProcessController,
    _node: FakeNode,
    url: String,
}

async fn endpoint() -> Endpoint {
    let controller = InProcessController::start_with(|c| {
        c.ecs_api_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.services.timers.healthy_after_running_ms = 200;
        c.services.tick = Duration::from_millis(100);
    })
    .await
    .expect("controller");
    let node = FakeNode::start(&controller.endpoint(), |_| {})
        .await
        .expect("agent");
    let mut client = controller.client().await.expect("client");
    wait_for_instances(&mut client, "default", 1, WAIT)
        .await
        .expect("instance");
    let url = format!(
        "http://{}",
        controller.ecs_api_addr().expect("the endpoint listens")
    );
    Endpoint {
        _controller: controller,
        _node: node,
        url,
    }
}

/// Runs `program args` with the endpoint in its environment; asserts it
/// passed, showing its output otherwise.
async fn run_client(endpoint: &Endpoint, venv: &Path, program: &Path, args: &[&Path]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .env("ORCA_ECS_ENDPOINT", &endpoint.url)
        .env(
            "ORCA_FIXTURES",
            repo().join("tests/fixtures/task-definitions"),
        )
        .env("ORCA_FAKE_IMAGE", FAKE_IMAGE)
        .env("AWS", venv.join("bin/aws"))
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", venv.join("bin").display()),
        )
        .output()
        .await
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} failed ({}):\n{stdout}\n{stderr}",
        args.last().unwrap_or(&program).display(),
        out.status
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_every_operation_paginator_and_waiter() {
    let Some(venv) = venv() else {
        return;
    };
    let e = endpoint().await;
    let script = repo().join("tests/ecs_api/boto3_client.py");
    let out = run_client(&e, &venv, &venv.join("bin/python"), &[&script]).await;
    assert!(out.contains("all boto3 checks passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_aws_cli_runs_tutorial_commands_unchanged() {
    let Some(venv) = venv() else {
        return;
    };
    let e = endpoint().await;
    let script = repo().join("tests/ecs_api/awscli.sh");
    let out = run_client(&e, &venv, Path::new("/bin/bash"), &[&script]).await;
    assert!(out.contains("all aws CLI checks passed"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_drives_secrets_manager_and_parameter_store() {
    let Some(venv) = venv() else {
        return;
    };
    let keys = tempfile::tempdir().expect("tempdir");
    let key = keys.path().join("key");
    std::fs::write(&key, [3u8; 32]).expect("key");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    }
    let controller = InProcessController::start_with(|c| {
        c.ecs_api_listen = Some("127.0.0.1:0".parse().expect("address"));
        c.secrets_key_file = Some(key);
    })
    .await
    .expect("controller");
    let url = format!("http://{}", controller.ecs_api_addr().expect("listens"));
    let out = tokio::process::Command::new(venv.join("bin/python"))
        .arg(repo().join("tests/ecs_api/boto3_secrets.py"))
        .env("ORCA_ECS_ENDPOINT", &url)
        .output()
        .await
        .expect("the client runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("all secrets checks passed"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

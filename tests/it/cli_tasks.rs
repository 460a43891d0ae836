//! The `orca` binary's task and container-instance commands against an
//! in-process controller and an in-process agent on the fake runtime:
//! `run-task --wait` following a task to its exit code, stop-task,
//! describe/list tasks and instances, tables, and service errors.

use std::time::Duration;

use orca_tests::agents::{wait_for_instances, wait_stopped, FakeNode, FAKE_IMAGE};
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

use crate::support::orca;

const WAIT: Duration = Duration::from_secs(20);

struct Setup {
    controller: InProcessController,
    _node: FakeNode,
    client: crate::support::Client,
}

impl Setup {
    fn endpoint(&self) -> String {
        self.controller.endpoint()
    }
}

/// A controller, one fake agent registered, and a task definition `exit3`
/// whose container `app` sleeps a second and exits 3.
async fn setup() -> Setup {
    let controller = InProcessController::start_with(|c| {
        c.agent_heartbeat_timeout = Duration::from_secs(2);
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
    let td = json!({
        "family": "exit3",
        "containerDefinitions": [{
            "name": "app",
            "image": FAKE_IMAGE,
            "memory": 64,
            "command": ["sh", "-c", "sleep 1; exit 3"]
        }]
    });
    let registered = orca(
        &controller.endpoint(),
        &[
            "register-task-definition",
            "--cli-input-json",
            &td.to_string(),
        ],
    )
    .await
    .json();
    assert_eq!(registered["taskDefinition"]["revision"], 1);
    Setup {
        controller,
        _node: node,
        client,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_task_wait_follows_the_task_and_exits_with_its_code() {
    let s = setup().await;
    let ep = &s.endpoint();

    let run = orca(ep, &["run-task", "--task-definition", "exit3", "--wait"]).await;
    assert_eq!(
        run.code, 3,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    for expected in [
        ": PROVISIONING\n",
        "-> RUNNING\n",
        "container app exited with code 3\n",
        "-> STOPPED\n",
        "stopped reason: Essential container in task exited (stop code: EssentialContainerExited)\n",
    ] {
        assert!(run.stderr.contains(expected), "{expected:?} in:\n{}", run.stderr);
    }
    let running_at = run.stderr.find("-> RUNNING").unwrap_or(usize::MAX);
    let stopped_at = run.stderr.find("-> STOPPED").unwrap_or(0);
    assert!(running_at < stopped_at, "{}", run.stderr);
    // stdout is the final DescribeTasks output.
    let described: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    let task = &described["tasks"][0];
    assert_eq!(task["lastStatus"], "STOPPED", "{described:#}");
    assert_eq!(task["containers"][0]["exitCode"], 3);
    assert_eq!(described["failures"], json!([]));

    // Overrides in shorthand; the exit code follows the container, the table the task.
    let run = orca(
        ep,
        &[
            "run-task",
            "--task-definition",
            "exit3:1",
            "--overrides",
            "containerOverrides=[{name=app,command=[sh,-c,exit 0]}]",
            "--wait",
            "--output",
            "table",
        ],
    )
    .await;
    assert_eq!(
        run.code, 0,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.starts_with("DescribeTasks\n"), "{}", run.stdout);
    assert!(
        run.stdout.contains("app STOPPED (exit 0)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("| exit3:1 "), "{}", run.stdout);

    // Several tasks: the first non-zero code.
    let run = orca(
        ep,
        &[
            "run-task",
            "--task-definition",
            "exit3",
            "--count",
            "2",
            "--wait",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "stderr: {}", run.stderr);
    let described: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(described["tasks"].as_array().map(Vec::len), Some(2));

    // Nothing could be placed: the RunTask output, the failure, exit 254.
    let run = orca(
        ep,
        &[
            "run-task",
            "--task-definition",
            "exit3",
            "--overrides",
            "{\"containerOverrides\": [{\"name\": \"app\", \"memory\": 100000}]}",
            "--wait",
        ],
    )
    .await;
    assert_eq!(
        run.code, 254,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("RESOURCE:MEMORY"), "{}", run.stderr);
    let out: Value = serde_json::from_str(&run.stdout).expect("JSON on stdout");
    assert_eq!(out["tasks"], json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_and_instance_commands() {
    let mut s = setup().await;
    let ep = &s.endpoint();

    let started = orca(
        ep,
        &[
            "run-task",
            "--cluster",
            "default",
            "--task-definition",
            "exit3",
            "--started-by",
            "cli-test",
            "--overrides",
            "{\"containerOverrides\": [{\"name\": \"app\", \"command\": [\"sh\", \"-c\", \"sleep 60\"]}]}",
        ],
    )
    .await
    .json();
    let task = &started["tasks"][0];
    assert_eq!(task["startedBy"], "cli-test");
    assert_eq!(task["desiredStatus"], "RUNNING");
    let arn = task["taskArn"].as_str().expect("taskArn").to_string();
    let id = arn.rsplit('/').next().expect("an id").to_string();

    let listed = orca(ep, &["list-tasks", "--started-by", "cli-test"])
        .await
        .json();
    assert_eq!(listed["taskArns"], json!([arn]));
    let described = orca(ep, &["describe-tasks", "--tasks", &id, "nope"])
        .await
        .json();
    assert_eq!(described["tasks"][0]["taskArn"], arn.as_str());
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    let table = orca(
        ep,
        &["describe-tasks", "--tasks", &arn, "--output", "table"],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains(&format!("| {id} ")),
        "{}",
        table.stdout
    );

    let stopped = orca(
        ep,
        &["stop-task", "--task", &arn, "--reason", "done with it"],
    )
    .await
    .json();
    assert_eq!(stopped["task"]["desiredStatus"], "STOPPED");
    let t = wait_stopped(&mut s.client, "default", &arn, WAIT)
        .await
        .expect("stopped");
    assert_eq!(t["stoppedReason"], "done with it");
    assert_eq!(t["stopCode"], "UserInitiated");
    let listed = orca(ep, &["list-tasks", "--desired-status", "STOPPED"])
        .await
        .json();
    assert!(
        listed["taskArns"]
            .as_array()
            .is_some_and(|a| a.contains(&json!(arn))),
        "{listed:#}"
    );
    let running = orca(ep, &["list-tasks"]).await.json();
    assert_eq!(running["taskArns"], json!([]));

    // Pagination over two stopped tasks.
    orca(ep, &["run-task", "--task-definition", "exit3", "--wait"]).await;
    let first = orca(
        ep,
        &[
            "list-tasks",
            "--desired-status",
            "STOPPED",
            "--max-items",
            "1",
        ],
    )
    .await
    .json();
    assert_eq!(first["taskArns"].as_array().map(Vec::len), Some(1));
    let token = first["NextToken"].as_str().expect("a NextToken");
    let rest = orca(
        ep,
        &[
            "list-tasks",
            "--desired-status",
            "STOPPED",
            "--starting-token",
            token,
        ],
    )
    .await
    .json();
    assert_eq!(rest["taskArns"].as_array().map(Vec::len), Some(1));
    assert_ne!(rest["taskArns"][0], first["taskArns"][0]);

    let instances = orca(ep, &["list-container-instances", "--status", "ACTIVE"])
        .await
        .json();
    let instance = instances["containerInstanceArns"][0]
        .as_str()
        .expect("an instance")
        .to_string();
    let described = orca(
        ep,
        &[
            "describe-container-instances",
            "--container-instances",
            &instance,
        ],
    )
    .await
    .json();
    let i = &described["containerInstances"][0];
    assert_eq!(i["agentConnected"], true, "{described:#}");
    assert_eq!(i["registeredResources"][1]["integerValue"], 1024);
    let table = orca(
        ep,
        &[
            "describe-container-instances",
            "--container-instances",
            &instance,
            "--output",
            "table",
        ],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.contains("| true "), "{}", table.stdout);
    assert!(table.stdout.contains("2048/2048"), "{}", table.stdout);

    // Service errors exit 254 with the AWS CLI's message.
    let missing = orca(ep, &["run-task", "--task-definition", "nope"]).await;
    assert_eq!(missing.code, 254, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("An error occurred (ClientException) when calling the RunTask operation"),
        "{}",
        missing.stderr
    );
    let too_many = orca(
        ep,
        &["run-task", "--task-definition", "exit3", "--count", "11"],
    )
    .await;
    assert_eq!(too_many.code, 254, "{}", too_many.stderr);
    assert!(
        too_many.stderr.contains("(InvalidParameterException)"),
        "{}",
        too_many.stderr
    );
    let bad = orca(
        ep,
        &[
            "run-task",
            "--task-definition",
            "exit3",
            "--overrides",
            "containerOverrides=[{",
        ],
    )
    .await;
    assert_eq!(bad.code, 252, "{}", bad.stderr);
    assert!(bad.stderr.contains("'--overrides'"), "{}", bad.stderr);
}

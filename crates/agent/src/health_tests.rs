//! Health checks through the node loop on the fake runtime: verdicts reach
//! the task's reports (container and task health, last output and exit
//! code), and dependsOn HEALTHY waits for the dependency's verdict. The
//! agent honours the definition as given, so these run with 1 s intervals
//! (validation keeps ECS's 5 s minimum for users).

use orca_core::agent_protocol::{TaskAssignment, TaskStateReport};
use orca_core::task::{ContainerStatus, HealthStatus, StopCode, TaskOverride, TaskStatus};
use orca_core::task_definition::{parse_register_input, TaskDefinition, Timestamp};

use crate::node_tests::{fake_runtime, Agent, IMAGE};
use crate::runner::spec::runtime_id;

/// A task of `containers` (JSON container definitions without the image);
/// every health check runs each second with a 1 s timeout.
fn task(id: &str, containers: &[&str]) -> TaskAssignment {
    let defs: Vec<String> = containers
        .iter()
        .map(|c| format!(r#"{{"image":"{IMAGE}","memory":32,"stopTimeout":1,{c}}}"#))
        .collect();
    let mut input = parse_register_input(&format!(
        r#"{{"family":"f","containerDefinitions":[{}]}}"#,
        defs.join(",")
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    // Past validation (ECS's 5 s minimum), as the agent receives it: the
    // agent runs checks every second when told to.
    for d in &mut input.spec.container_definitions {
        if let Some(check) = d.health_check.as_mut() {
            check.interval = Some(1);
            check.timeout = Some(1);
        }
    }
    TaskAssignment {
        task_arn: format!("arn:orca:ecs:local:0:task/default/{id}"),
        task_id: id.to_string(),
        desired_status: TaskStatus::Running,
        task_definition: TaskDefinition::new(
            input.spec,
            "arn:td".into(),
            1,
            Timestamp(0),
            "t".into(),
        ),
        overrides: TaskOverride::default(),
        stop_code: None,
        stopped_reason: None,
        host_ports: Vec::new(),
        deregistration_delay_ms: None,
        secrets: Vec::new(),
        secrets_error: None,
        privileges_allowed: false,
    }
}

fn container<'a>(
    r: &'a TaskStateReport,
    name: &str,
) -> &'a orca_core::agent_protocol::ContainerStateReport {
    r.containers
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name} in {r:#?}"))
}

#[tokio::test]
async fn check_verdicts_flow_into_the_task_report() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![task(
        "h1",
        &[
            r#""name":"app","command":["sh","-c","sleep 60"],"healthCheck":{"command":["CMD-SHELL","exit 1"],"interval":5,"timeout":2,"retries":2}"#,
            r#""name":"side","command":["sh","-c","sleep 60"]"#,
        ],
    )]);
    let r = agent
        .wait_for("h1", "RUNNING", |r| r.last_status == TaskStatus::Running)
        .await;
    assert_eq!(r.health_status, HealthStatus::Unknown, "{r:#?}");
    assert_eq!(container(&r, "app").health_status, HealthStatus::Unknown);
    // The first failure is reported (with its output) but is not a verdict.
    let r = agent
        .wait_for("h1", "a first check", |r| {
            container(r, "app").health_exit_code.is_some()
        })
        .await;
    let app = container(&r, "app");
    assert_eq!(app.health_status, HealthStatus::Unknown, "{r:#?}");
    assert_eq!(app.health_exit_code, Some(1));
    assert_eq!(app.health_output.as_deref(), Some("ran: /bin/sh -c exit 1"));
    let r = agent
        .wait_for("h1", "UNHEALTHY", |r| {
            r.health_status == HealthStatus::Unhealthy
        })
        .await;
    assert_eq!(container(&r, "app").health_status, HealthStatus::Unhealthy);
    assert_eq!(
        container(&r, "side").health_status,
        HealthStatus::Unknown,
        "no check, no health"
    );
    assert!(
        runtime.exec_count(&runtime_id("h1", 0, "app")) >= 2,
        "retries 2"
    );
    // The check starts passing: one pass heals it.
    runtime.set_exec_exit(&runtime_id("h1", 0, "app"), Some(0));
    let r = agent
        .wait_for("h1", "HEALTHY", |r| {
            r.health_status == HealthStatus::Healthy
        })
        .await;
    let app = container(&r, "app");
    assert_eq!(
        (app.health_status, app.health_exit_code),
        (HealthStatus::Healthy, Some(0))
    );
    assert_eq!(
        r.last_status,
        TaskStatus::Running,
        "health does not stop a task"
    );
    agent.assign(Vec::new());
    agent.wait_stopped("h1").await;
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn depends_on_healthy_waits_for_the_verdict() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    let db = runtime_id("d1", 0, "db");
    // Failing checks that do not count yet (retries 10): db stays UNKNOWN.
    agent.assign(vec![task(
        "d1",
        &[
            r#""name":"db","command":["sh","-c","sleep 60"],"healthCheck":{"command":["CMD-SHELL","exit 1"],"interval":5,"timeout":2,"retries":10}"#,
            r#""name":"app","command":["sh","-c","sleep 60"],"dependsOn":[{"containerName":"db","condition":"HEALTHY"}]"#,
        ],
    )]);
    let r = agent
        .wait_for("d1", "db checked", |r| {
            container(r, "db").health_exit_code.is_some()
        })
        .await;
    assert_eq!(container(&r, "db").health_status, HealthStatus::Unknown);
    assert_eq!(
        container(&r, "app").last_status,
        ContainerStatus::Pending,
        "{r:#?}"
    );
    let starts: Vec<String> = runtime.starts().into_iter().map(|(id, _)| id).collect();
    assert_eq!(
        starts,
        std::slice::from_ref(&db),
        "app waits for db to be HEALTHY"
    );
    let healthy_from = tokio::time::Instant::now();
    runtime.set_exec_exit(&db, Some(0));
    let r = agent
        .wait_for("d1", "RUNNING", |r| r.last_status == TaskStatus::Running)
        .await;
    assert_eq!(container(&r, "db").health_status, HealthStatus::Healthy);
    let starts = runtime.starts();
    assert_eq!(starts.len(), 2, "{starts:?}");
    assert!(
        starts[1].0 == runtime_id("d1", 1, "app") && starts[1].1 >= healthy_from,
        "app started only once db was HEALTHY: {starts:?}"
    );
    agent.assign(Vec::new());
    agent.wait_stopped("d1").await;
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn depends_on_healthy_of_an_unhealthy_container_never_starts() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![task(
        "u1",
        &[
            r#""name":"db","command":["sh","-c","sleep 60"],"healthCheck":{"command":["CMD-SHELL","exit 1"],"interval":5,"timeout":2,"retries":1}"#,
            r#""name":"app","command":["sh","-c","sleep 60"],"dependsOn":[{"containerName":"db","condition":"HEALTHY"}]"#,
        ],
    )]);
    let r = agent.wait_stopped("u1").await;
    assert_eq!(r.stop_code, Some(StopCode::TaskFailedToStart), "{r:#?}");
    assert!(
        r.stopped_reason
            .as_deref()
            .is_some_and(|why| why.contains("db") && why.contains("UNHEALTHY")),
        "{r:#?}"
    );
    assert_eq!(container(&r, "db").health_status, HealthStatus::Unhealthy);
    assert_eq!(container(&r, "app").exit_code, None, "app never ran");
    assert_eq!(runtime.starts().len(), 1);
    agent.assign(Vec::new());
    agent.assert_clean().await;
    agent.stop().await;
}

#[tokio::test]
async fn a_restarted_agent_checks_the_containers_it_adopted() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let runtime = fake_runtime();
    let app = r#""name":"app","command":["sh","-c","sleep 60"],"healthCheck":{"command":["CMD","true"],"interval":5,"timeout":2}"#;
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![task("r1", &[app])]);
    agent
        .wait_for("r1", "HEALTHY", |r| {
            r.health_status == HealthStatus::Healthy
        })
        .await;
    agent.kill().await;
    let id = runtime_id("r1", 0, "app");
    let before = runtime.exec_count(&id);
    // A new process adopts the running container and checks it again.
    let mut agent = Agent::start(dir.path(), &runtime);
    agent.assign(vec![task("r1", &[app])]);
    agent
        .wait_for("r1", "HEALTHY again", |r| {
            r.health_status == HealthStatus::Healthy
                && container(r, "app").health_exit_code == Some(0)
        })
        .await;
    assert!(runtime.exec_count(&id) > before, "checked by the new agent");
    assert_eq!(runtime.starts().len(), 1, "adopted, not started again");
    agent.assign(Vec::new());
    agent.wait_stopped("r1").await;
    agent.assert_clean().await;
    agent.stop().await;
}

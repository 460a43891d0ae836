//! Tests of `log_targets`: where a task's logs are read, and which
//! containers log to an awslogs group under which stream names.

use orca_core::task_definition::Timestamp;
use orca_core::Exception;

use super::task_tests::{applied, register_instance, registration, run, state_with};
use super::*;

const DEFINITION: &str = r#"{"family":"web","containerDefinitions":[
  {"name":"app","image":"busybox","memory":64,
   "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/web","awslogs-stream-prefix":"web"}}},
  {"name":"side","image":"busybox","memory":64,
   "logConfiguration":{"logDriver":"awslogs","options":{"awslogs-group":"/ecs/web"}}},
  {"name":"quiet","image":"busybox","memory":64}]}"#;

fn state_with_task() -> ClusterState {
    let mut s = state_with(DEFINITION);
    register_instance(&mut s, "i1", None);
    // The agent registers again, now with its node API.
    let mut again = registration(None, None);
    again.node_api_address = Some("198.18.0.2:7490".to_string());
    applied(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "i1".to_string(),
            registration: again,
            at: Timestamp(2),
        },
    ));
    let mut command = run(&[("t1", "i1")], None, "f");
    if let Command::RunTask(r) = &mut command {
        // One id per container of the definition.
        r.placements[0].container_ids = vec!["c1".into(), "c2".into(), "c3".into()];
    }
    applied(s.apply(1, command));
    s
}

#[test]
fn a_task_is_found_with_its_containers_and_its_node_api() {
    let s = state_with_task();
    let all = s.log_target("default", "t1", None).expect("found");
    assert_eq!(all.containers, ["app", "side", "quiet"]);
    assert_eq!(all.node_api, "198.18.0.2:7490".parse().ok());
    let arn = s.arn.task("default", "t1");
    let one = s.log_target("default", &arn, Some("side")).expect("by ARN");
    assert_eq!(one.containers, ["side"]);

    let e = s.log_target("default", "t9", None).expect_err("unknown");
    assert_eq!(e.exception, Exception::InvalidParameterException);
    assert!(e.message.contains("t9"), "{}", e.message);
    let e = s
        .log_target("other", "t1", None)
        .expect_err("other cluster");
    assert_eq!(e.exception, Exception::InvalidParameterException);
    let e = s
        .log_target("default", "t1", Some("db"))
        .expect_err("no such container");
    assert!(e.message.contains("app, side, quiet"), "{}", e.message);
}

#[test]
fn group_streams_are_named_as_ecs_names_them() {
    let s = state_with_task();
    let names: Vec<String> = s
        .group_streams("/ecs/web", "")
        .into_iter()
        .map(|g| g.log_stream_name)
        .collect();
    // No prefix: the container's id in the runtime, or container/task
    // before it has one (as here).
    assert_eq!(names, ["side/t1", "web/app/t1"]);
    let web = s.group_streams("/ecs/web", "web/");
    assert_eq!(web.len(), 1);
    assert_eq!(web[0].target.containers, ["app"]);
    assert!(s.group_streams("/ecs/other", "").is_empty());
}

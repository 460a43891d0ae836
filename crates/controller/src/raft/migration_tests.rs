//! Data written before the cluster identity, instance statuses, custom
//! attributes, the scheduler's group index and typed task records existed: a
//! controller opening such a snapshot migrates it (defaults, indexes rebuilt,
//! tasks converted from ECS's describe shape, the identity left for the first
//! leader to fix from its flags) instead of refusing it. A snapshot in a
//! format newer than the code, or one it cannot convert, is refused with a
//! message that says why.

use orca_core::arn::ArnContext;
use orca_core::task_definition::Timestamp;

use super::state_machine::StateMachineStore;
use crate::state::instances::InstanceStatus;
use crate::state::{ClusterState, Command, CommandResult, RunTaskCommand};

/// The fields this change added; the old code wrote everything else alike.
const NEW_STATE_FIELDS: [&str; 1] = ["identity"];
const NEW_INSTANCE_FIELDS: [&str; 5] = [
    "status",
    "custom_attributes",
    "deregistered_at",
    "group_counts",
    "assignments_version",
];

/// A state with one connected instance running one task, as JSON in the
/// shape written before this change.
fn old_snapshot_state() -> serde_json::Value {
    let mut s = ClusterState::new(ArnContext::default());
    let spec = orca_core::task_definition::parse_register_input(
        r#"{"family":"web","containerDefinitions":[{"name":"app","image":"busybox","memory":300}]}"#,
    )
    .expect("valid")
    .spec;
    let ok = |r: CommandResult| assert!(matches!(r, CommandResult::Applied(_)), "{r:?}");
    ok(s.apply(
        1,
        Command::RegisterTaskDefinition {
            spec: Box::new(spec),
            tags: Vec::new(),
            registered_at: Timestamp(1),
            registered_by: "t".into(),
        },
    ));
    ok(s.apply(
        1,
        Command::RegisterContainerInstance {
            instance_id: "i1".into(),
            registration: orca_core::agent_protocol::Registration {
                cluster: "default".into(),
                container_instance_arn: None,
                instance_id: None,
                hostname: "h".into(),
                cpu: 1024,
                memory: 1000,
                attributes: Vec::new(),
                agent_version: "t".into(),
                runtime_version: "t".into(),
                task_subnet: None,
                reserved_ports: Vec::new(),
                node_address: None,
                node_api_address: None,
                overlay: Default::default(),
            },
            at: Timestamp(2),
        },
    ));
    ok(s.apply(
        1,
        Command::SetAgentConnected {
            instance_id: "i1".into(),
            connected: true,
            decided_in_term: 1,
        },
    ));
    ok(s.apply(
        1,
        Command::RunTask(Box::new(RunTaskCommand {
            cluster: "default".into(),
            family: "web".into(),
            revision: 1,
            overrides: Default::default(),
            started_by: None,
            group: None,
            client_token: None,
            fingerprint: "f".into(),
            launch_type: "EC2".into(),
            network_configuration: None,
            tags: Vec::new(),
            enable_execute_command: false,
            run_timeout_seconds: None,
            created_at: Timestamp(3),
            placements: vec![crate::state::Placement {
                task_id: "t1".into(),
                instance_id: "i1".into(),
                container_ids: vec!["c1".into()],
                host_ports: Vec::new(),
                port_cursor: None,
            }],
            failures: Vec::new(),
        })),
    ));
    ok(s.apply(
        1,
        Command::ReportTaskStates {
            instance_id: "i1".into(),
            reports: vec![orca_core::agent_protocol::TaskStateReport {
                task_arn: s.arn.task("default", "t1"),
                last_status: orca_core::task::TaskStatus::Running,
                containers: vec![orca_core::agent_protocol::ContainerStateReport {
                    name: "app".into(),
                    last_status: orca_core::task::ContainerStatus::Running,
                    exit_code: None,
                    reason: None,
                    runtime_id: Some("rt-1".into()),
                    image_digest: Some("sha256:abc".into()),
                    health_status: Default::default(),
                    health_output: None,
                    health_exit_code: None,
                    restart_count: 0,
                }],
                network: Some(orca_core::agent_protocol::TaskNetworkReport {
                    private_ipv4_address: "198.19.0.2".into(),
                    mac_address: "02:00:00:00:00:02".into(),
                    subnet: "198.19.0.0/24".into(),
                    netns: "orca-t1".into(),
                }),
                pull_started_at: Some(Timestamp(4)),
                pull_stopped_at: Some(Timestamp(5)),
                started_at: Some(Timestamp(6)),
                stopping_at: None,
                execution_stopped_at: None,
                stopped_at: None,
                stop_code: None,
                stopped_reason: None,
                health_status: Default::default(),
            }],
        },
    ));
    let mut json = serde_json::to_value(&s).expect("json");
    // Format 1 stored each task as its record's bookkeeping plus ECS's
    // describe shape under `task`, which is what rendering gives today.
    for (id, record) in s.tasks.iter() {
        let stored = &mut json["tasks"][id.as_str()];
        let kept = [
            "id",
            "cluster",
            "instance_id",
            "family",
            "revision",
            "reserved",
            "network_configuration",
            "client_token",
        ];
        let mut old = serde_json::Map::new();
        for field in kept {
            old.insert(field.into(), stored[field].take());
        }
        old.insert(
            "task".into(),
            serde_json::to_value(s.render_task(record)).expect("task"),
        );
        *stored = serde_json::Value::Object(old);
    }
    let object = json.as_object_mut().expect("an object");
    for field in NEW_STATE_FIELDS {
        assert!(object.remove(field).is_some(), "{field} is written today");
    }
    let instance = object["instances"]["i1"].as_object_mut().expect("instance");
    for field in NEW_INSTANCE_FIELDS {
        assert!(instance.remove(field).is_some(), "{field} is written today");
    }
    json
}

/// A sled directory holding one snapshot with this body.
fn db_with_snapshot(body: &serde_json::Value) -> (tempfile::TempDir, sled::Db) {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path()).expect("sled");
    let meta = serde_json::json!({
        "last_log_id": null,
        "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "snapshot_id": "old",
    });
    let tree = db.open_tree("snapshot").expect("tree");
    tree.insert("meta", serde_json::to_vec(&meta).expect("meta"))
        .expect("write");
    tree.insert("data", serde_json::to_vec(body).expect("data"))
        .expect("write");
    db.flush().expect("flush");
    (dir, db)
}

/// A snapshot body as format 1 wrote it (no `format` field).
fn format_1_body() -> serde_json::Value {
    serde_json::json!({
        "last_applied": null,
        "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "state": old_snapshot_state(),
    })
}

#[tokio::test]
async fn a_snapshot_written_before_this_change_is_migrated_on_open() {
    let old = format_1_body();
    let (_dir, db) = db_with_snapshot(&old);

    let flags = ArnContext {
        region: "lab".into(),
        account: "123456789012".into(),
    };
    let sm = StateMachineStore::open(&db, flags.clone(), crate::state::DEFAULT_TASK_CIDR)
        .expect("an old snapshot opens");
    let view = sm.views().borrow().clone();
    let instance = &view.instances["i1"];
    assert_eq!(instance.status, InstanceStatus::Active);
    assert!(instance.custom_attributes.is_empty());
    assert_eq!(
        instance.group_counts.get("family:web"),
        Some(&1),
        "the group index is rebuilt from the tasks"
    );
    assert_eq!(view.identity, None, "the first leader fixes it");
    assert_eq!(view.arn, flags, "until then, this controller's flags");
    assert_eq!(
        view.tasks["t1"].desired_status,
        orca_core::task::TaskStatus::Running
    );
    assert_eq!(view.tasks["t1"].reserved.memory, 300);
}

#[tokio::test]
async fn a_migrated_task_renders_what_format_1_stored_and_served() {
    let old = format_1_body();
    let (_dir, db) = db_with_snapshot(&old);
    // Opened with the flags that wrote it (format 1 froze ARNs at write
    // time; records render them from the cluster's identity).
    let sm = StateMachineStore::open(&db, ArnContext::default(), crate::state::DEFAULT_TASK_CIDR)
        .expect("an old snapshot opens");
    let view = sm.views().borrow().clone();
    let stored_then: orca_core::task::Task =
        serde_json::from_value(old["state"]["tasks"]["t1"]["task"].clone()).expect("old task");
    let rendered_now = view.render_task(&view.tasks["t1"]);
    assert_eq!(rendered_now, stored_then);
    assert_eq!(
        rendered_now.containers[0].runtime_id.as_deref(),
        Some("rt-1")
    );
    assert_eq!(rendered_now.attachments[0].status, "ATTACHED");
}

#[tokio::test]
async fn a_snapshot_in_a_newer_format_is_refused_naming_the_format() {
    let mut body = format_1_body();
    body["format"] = 99.into();
    let (_dir, db) = db_with_snapshot(&body);
    let error = match StateMachineStore::open(
        &db,
        ArnContext::default(),
        crate::state::DEFAULT_TASK_CIDR,
    ) {
        Ok(_) => panic!("a format-99 snapshot must not open"),
        Err(e) => format!(
            "{e:#} {:?}",
            std::error::Error::source(&e).map(ToString::to_string)
        ),
    };
    assert!(error.contains("format 99"), "{error}");
    assert!(
        error.contains("newer than this controller reads"),
        "{error}"
    );
}

#[tokio::test]
async fn a_format_1_task_that_cannot_be_converted_is_refused_naming_it() {
    let mut body = format_1_body();
    body["state"]["tasks"]["t1"]["task"]["containers"][0]["cpu"] = "lots".into();
    let (_dir, db) = db_with_snapshot(&body);
    let error = match StateMachineStore::open(
        &db,
        ArnContext::default(),
        crate::state::DEFAULT_TASK_CIDR,
    ) {
        Ok(_) => panic!("an unconvertible task must not open"),
        Err(e) => format!(
            "{e:#} {:?}",
            std::error::Error::source(&e).map(ToString::to_string)
        ),
    };
    assert!(error.contains("stored task t1"), "{error}");
    assert!(error.contains("cpu \"lots\" is not a number"), "{error}");
}

#[tokio::test]
async fn a_snapshot_written_now_reopens_in_the_current_format() {
    let (_dir, db) = db_with_snapshot(&format_1_body());
    let sm = StateMachineStore::open(&db, ArnContext::default(), crate::state::DEFAULT_TASK_CIDR)
        .expect("opens");
    let view = sm.views().borrow().clone();
    let body = serde_json::json!({
        "format": crate::state::legacy::STATE_FORMAT,
        "last_applied": null,
        "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "state": serde_json::to_value(&*view).expect("state"),
    });
    let (_dir2, db2) = db_with_snapshot(&body);
    let again =
        StateMachineStore::open(&db2, ArnContext::default(), crate::state::DEFAULT_TASK_CIDR)
            .expect("reopens");
    assert_eq!(again.views().borrow().tasks, view.tasks);
}

//! Data written before the cluster identity, instance statuses, custom
//! attributes and the scheduler's group index existed: a controller opening
//! such a snapshot migrates it (defaults, indexes rebuilt, the identity left
//! for the first leader to fix from its flags) instead of refusing it.

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
            created_at: Timestamp(3),
            placements: vec![crate::state::Placement {
                task_id: "t1".into(),
                instance_id: "i1".into(),
                container_ids: vec!["c1".into()],
            }],
            failures: Vec::new(),
        })),
    ));
    let mut json = serde_json::to_value(&s).expect("json");
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

#[tokio::test]
async fn a_snapshot_written_before_this_change_is_migrated_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = sled::open(dir.path()).expect("sled");
    let body = serde_json::json!({
        "last_applied": null,
        "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "state": old_snapshot_state(),
    });
    let meta = serde_json::json!({
        "last_log_id": null,
        "last_membership": {"log_id": null, "membership": {"configs": [], "nodes": {}}},
        "snapshot_id": "old",
    });
    let tree = db.open_tree("snapshot").expect("tree");
    tree.insert("meta", serde_json::to_vec(&meta).expect("meta"))
        .expect("write");
    tree.insert("data", serde_json::to_vec(&body).expect("data"))
        .expect("write");
    db.flush().expect("flush");

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
        view.tasks["t1"].task.desired_status,
        orca_core::task::TaskStatus::Running
    );
}

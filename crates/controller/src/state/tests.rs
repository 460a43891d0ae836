//! Tests of `apply` and the queries over it: revisions, statuses, clusters,
//! pagination, determinism.

use orca_core::arn::{ArnContext, TaskDefinitionRef};
use orca_core::cluster::{ClusterSetting, ClusterStatus};
use orca_core::task_definition::{parse_register_input, TaskDefinitionStatus, Timestamp};
use orca_core::Exception;

use super::query::{FamilyStatusFilter, PageRequest, SortOrder};
use super::*;

fn register(family: &str, at: i64) -> Command {
    let json = format!(
        r#"{{"family":"{family}","containerDefinitions":[{{"name":"app","image":"busybox","memory":64}}]}}"#
    );
    let input = parse_register_input(&json).expect("valid definition");
    Command::RegisterTaskDefinition {
        spec: Box::new(input.spec),
        tags: input.tags,
        registered_at: Timestamp(at),
        registered_by: "tester".to_string(),
    }
}

fn applied(result: CommandResult) -> Outcome {
    match result {
        CommandResult::Applied(o) => o,
        other => panic!("expected Applied, got {other:?}"),
    }
}

fn refused(result: CommandResult) -> orca_core::ApiError {
    match result {
        CommandResult::Refused(e) => e,
        other => panic!("expected Refused, got {other:?}"),
    }
}

fn revision_of(outcome: Outcome) -> u32 {
    match outcome {
        Outcome::TaskDefinition(s) => s.task_definition.revision,
        other => panic!("expected a task definition, got {other:?}"),
    }
}

fn state() -> ClusterState {
    ClusterState::new(ArnContext::default())
}

#[test]
fn revisions_start_at_one_and_never_repeat() {
    let mut s = state();
    assert_eq!(revision_of(applied(s.apply(1, register("web", 1)))), 1);
    assert_eq!(revision_of(applied(s.apply(1, register("web", 2)))), 2);
    assert_eq!(revision_of(applied(s.apply(1, register("db", 3)))), 1);
    // Deregister and delete every revision of web: numbering still continues.
    for r in [1, 2] {
        applied(s.apply(
            1,
            Command::DeregisterTaskDefinition {
                family: "web".into(),
                revision: r,
                at: Timestamp(4),
            },
        ));
    }
    let deleted = applied(s.apply(
        1,
        Command::DeleteTaskDefinitions {
            revisions: vec![("web".into(), 1), ("web".into(), 2)],
            at: Timestamp(5),
        },
    ));
    match deleted {
        Outcome::DeletedTaskDefinitions { deleted, failures } => {
            assert_eq!(deleted.len(), 2);
            assert!(deleted
                .iter()
                .all(|t| t.status == TaskDefinitionStatus::DeleteInProgress));
            assert!(failures.is_empty());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(revision_of(applied(s.apply(1, register("web", 6)))), 3);
}

#[test]
fn deregister_and_delete_follow_status_rules() {
    let mut s = state();
    applied(s.apply(1, register("web", 1)));
    // Deleting an ACTIVE revision fails for that revision only.
    match applied(s.apply(
        1,
        Command::DeleteTaskDefinitions {
            revisions: vec![("web".into(), 1), ("nope".into(), 1)],
            at: Timestamp(2),
        },
    )) {
        Outcome::DeletedTaskDefinitions { deleted, failures } => {
            assert!(deleted.is_empty());
            let reasons: Vec<_> = failures.iter().map(|f| f.reason.as_str()).collect();
            assert_eq!(
                reasons,
                ["TASK_DEFINITION_NOT_INACTIVE", "TASK_DEFINITION_NOT_FOUND"]
            );
        }
        other => panic!("{other:?}"),
    }
    let e = refused(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web".into(),
            revision: 9,
            at: Timestamp(3),
        },
    ));
    assert_eq!(e.exception, Exception::ClientException);
    applied(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web".into(),
            revision: 1,
            at: Timestamp(4),
        },
    ));
    let td = &s.families["web"].revisions[&1].task_definition;
    assert_eq!(td.status, TaskDefinitionStatus::Inactive);
    assert_eq!(td.deregistered_at, Some(Timestamp(4)));
    // The family no longer has an ACTIVE revision to describe by name alone.
    let latest = TaskDefinitionRef {
        family: "web".into(),
        revision: None,
    };
    assert!(s.describe_task_definition(&latest).is_err());
    let exact = TaskDefinitionRef {
        family: "web".into(),
        revision: Some(1),
    };
    assert!(s.describe_task_definition(&exact).is_ok());
}

#[test]
fn describe_by_family_gives_the_latest_active_revision() {
    let mut s = state();
    for at in 1..=3 {
        applied(s.apply(1, register("web", at)));
    }
    applied(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web".into(),
            revision: 3,
            at: Timestamp(9),
        },
    ));
    let latest = TaskDefinitionRef {
        family: "web".into(),
        revision: None,
    };
    assert_eq!(
        s.describe_task_definition(&latest)
            .unwrap()
            .task_definition
            .revision,
        2
    );
}

#[test]
fn pagination_walks_every_item_once_in_both_orders() {
    let mut s = state();
    for (i, family) in ["a", "b", "c"].iter().enumerate() {
        for r in 0..4 {
            applied(s.apply(1, register(family, (i * 10 + r) as i64)));
        }
    }
    for order in [SortOrder::Asc, SortOrder::Desc] {
        let mut seen = Vec::new();
        let mut page = PageRequest {
            next_token: String::new(),
            max_results: 5,
        };
        loop {
            let p = s
                .list_task_definitions("", TaskDefinitionStatus::Active, order, &page)
                .unwrap();
            assert!(p.items.len() <= 5);
            seen.extend(p.items);
            match p.next_token {
                Some(t) => page.next_token = t,
                None => break,
            }
        }
        let mut expected: Vec<String> = ["a", "b", "c"]
            .iter()
            .flat_map(|f| (1..=4).map(move |r| ArnContext::default().task_definition(f, r)))
            .collect();
        if order == SortOrder::Desc {
            expected.reverse();
        }
        assert_eq!(seen, expected, "{order:?}");
    }
    let bad = PageRequest {
        next_token: "not-a-token".into(),
        max_results: 0,
    };
    let e = s
        .list_task_definitions("", TaskDefinitionStatus::Active, SortOrder::Asc, &bad)
        .unwrap_err();
    assert_eq!(e.field.as_deref(), Some("nextToken"));
    let too_many = PageRequest {
        next_token: String::new(),
        max_results: 101,
    };
    assert!(s.list_clusters(&too_many).is_err());
}

#[test]
fn family_filters_and_prefixes() {
    let mut s = state();
    applied(s.apply(1, register("web-a", 1)));
    applied(s.apply(1, register("web-b", 2)));
    applied(s.apply(1, register("db", 3)));
    applied(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web-b".into(),
            revision: 1,
            at: Timestamp(4),
        },
    ));
    let all = PageRequest::default();
    let list = |prefix, filter| {
        s.list_task_definition_families(prefix, filter, &all)
            .unwrap()
            .items
    };
    assert_eq!(list("web", FamilyStatusFilter::Active), ["web-a"]);
    assert_eq!(list("web", FamilyStatusFilter::Inactive), ["web-b"]);
    assert_eq!(list("", FamilyStatusFilter::All), ["db", "web-a", "web-b"]);
}

#[test]
fn clusters_default_create_idempotent_delete_inactive() {
    let mut s = state();
    assert_eq!(s.clusters["default"].status, ClusterStatus::Active);
    let create = |settings: Vec<ClusterSetting>| Command::CreateCluster {
        name: "prod".into(),
        settings,
        tags: vec![],
        capacity: Default::default(),
    };
    let first = applied(s.apply(1, create(vec![])));
    // Creating it again returns the same cluster, unchanged.
    let insights = ClusterSetting {
        name: "containerInsights".into(),
        value: "enabled".into(),
    };
    assert_eq!(applied(s.apply(1, create(vec![insights.clone()]))), first);
    applied(s.apply(
        1,
        Command::UpdateClusterSettings {
            name: "prod".into(),
            settings: vec![insights.clone()],
        },
    ));
    assert_eq!(s.clusters["prod"].settings, vec![insights]);
    applied(s.apply(
        1,
        Command::DeleteCluster {
            name: "prod".into(),
        },
    ));
    assert_eq!(s.clusters["prod"].status, ClusterStatus::Inactive);
    let e = refused(s.apply(
        1,
        Command::DeleteCluster {
            name: "prod".into(),
        },
    ));
    assert_eq!(e.exception, Exception::ClusterNotFoundException);
    let e = refused(s.apply(
        1,
        Command::UpdateClusterSettings {
            name: "gone".into(),
            settings: vec![],
        },
    ));
    assert_eq!(e.exception, Exception::ClusterNotFoundException);
    // Listed clusters are the ACTIVE ones; described ones include INACTIVE.
    assert_eq!(
        s.list_clusters(&PageRequest::default())
            .unwrap()
            .items
            .len(),
        1
    );
    let (found, failures) = s.describe_clusters(&["prod".into(), "missing".into()]);
    assert_eq!(found[0].0.status, ClusterStatus::Inactive);
    assert_eq!(failures[0].reason, "MISSING");
    // Re-creating an INACTIVE cluster makes it ACTIVE again.
    applied(s.apply(1, create(vec![])));
    assert_eq!(s.clusters["prod"].status, ClusterStatus::Active);
}

#[test]
fn apply_is_deterministic_and_snapshots_round_trip() {
    let commands: Vec<Command> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                Command::CreateCluster {
                    name: format!("c{i}"),
                    settings: vec![],
                    tags: vec![],
                    capacity: Default::default(),
                }
            } else {
                register(&format!("f{}", i % 4), i)
            }
        })
        .collect();
    let run = || {
        let mut s = state();
        let results: Vec<_> = commands.iter().cloned().map(|c| s.apply(1, c)).collect();
        (s, results)
    };
    let (a, ra) = run();
    let (b, rb) = run();
    assert_eq!(a, b);
    assert_eq!(ra, rb);
    // Commands and state survive their serialized forms (log and snapshot).
    for c in &commands {
        let back: Command = serde_json::from_slice(&serde_json::to_vec(c).unwrap()).unwrap();
        assert_eq!(&back, c);
    }
    let mut restored: ClusterState =
        serde_json::from_slice(&serde_json::to_vec(&a).unwrap()).unwrap();
    restored.arn = ArnContext::default();
    assert_eq!(restored, a);
}

#[test]
fn purge_is_fenced_by_term_and_keeps_numbering() {
    let mut s = state();
    applied(s.apply(1, register("web", 1)));
    applied(s.apply(
        1,
        Command::DeregisterTaskDefinition {
            family: "web".into(),
            revision: 1,
            at: Timestamp(2),
        },
    ));
    applied(s.apply(
        1,
        Command::DeleteTaskDefinitions {
            revisions: vec![("web".into(), 1)],
            at: Timestamp(3),
        },
    ));
    assert!(s.purgeable_task_definitions(Timestamp(2)).is_empty());
    let due = s.purgeable_task_definitions(Timestamp(3));
    assert_eq!(due, vec![("web".to_string(), 1)]);
    // Decided in term 1 but committed in term 2: refused, nothing purged.
    let purge = Command::PurgeTaskDefinitions {
        revisions: due.clone(),
        decided_in_term: 1,
    };
    refused(s.apply(2, purge));
    assert!(s.families["web"].revisions.contains_key(&1));
    let purge = Command::PurgeTaskDefinitions {
        revisions: due,
        decided_in_term: 2,
    };
    assert_eq!(applied(s.apply(2, purge)), Outcome::Purged(1));
    assert!(s.families["web"].revisions.is_empty());
    assert_eq!(revision_of(applied(s.apply(2, register("web", 4)))), 2);
}

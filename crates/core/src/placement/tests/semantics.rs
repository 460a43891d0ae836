//! ECS's comparison rules, each as a table of (instance, expression,
//! expected): missing attributes, task:group's any/none, version order,
//! numeric against string attributes, and registeredAt.

use super::{instance, ms, Instance};
use crate::placement::expr::parse;

fn check(rows: &[(Instance, &str, bool)]) {
    let mut failures = Vec::new();
    for (inst, src, want) in rows {
        match parse(src) {
            Ok(e) if e.matches(inst) == *want => {}
            Ok(_) => failures.push(format!("{src:?} on {inst:?}: want {want}")),
            Err(e) => failures.push(format!("{src:?}: {e}")),
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn a_missing_attribute_fails_every_comparison_but_not_exists() {
    let none = || instance("1.0.0", &[], &[]);
    let rows: Vec<(Instance, &str, bool)> = [
        ("attribute:nope == x", false),
        ("attribute:nope != x", false),
        ("attribute:nope > 1", false),
        ("attribute:nope >= 1", false),
        ("attribute:nope < 1", false),
        ("attribute:nope <= 1", false),
        ("attribute:nope in [x, y]", false),
        ("attribute:nope !in [x, y]", false),
        ("attribute:nope =~ .*", false),
        ("attribute:nope !~ x", false),
        ("attribute:nope not_equals x", false),
        ("attribute:nope exists", false),
        ("attribute:nope !exists", true),
        ("attribute:nope not_exists", true),
        // Negating the whole test is plain logic.
        ("!(attribute:nope == x)", true),
        ("!attribute:nope != x", true),
    ]
    .into_iter()
    .map(|(src, want)| (none(), src, want))
    .collect();
    check(&rows);
}

#[test]
fn task_group_tests_any_group_and_its_negations_none() {
    let two = || instance("1.0.0", &[], &["web", "batch"]);
    let empty = || instance("1.0.0", &[], &[]);
    check(&[
        (two(), "task:group == web", true),
        (two(), "task:group == api", false),
        (two(), "task:group != web", false),
        (two(), "task:group != api", true),
        (two(), "task:group in [api, batch]", true),
        (two(), "task:group !in [api, batch]", false),
        (two(), "task:group !in [api]", true),
        (two(), "task:group =~ b.*", true),
        (two(), "task:group !~ b.*", false),
        (two(), "task:group !~ api.*", true),
        (two(), "task:group exists", true),
        (two(), "task:group !exists", false),
        (empty(), "task:group == web", false),
        (empty(), "task:group != web", true),
        (empty(), "task:group in [web]", false),
        (empty(), "task:group !in [web]", true),
        (empty(), "task:group =~ .*", false),
        (empty(), "task:group !~ .*", true),
        (empty(), "task:group exists", false),
        (empty(), "task:group !exists", true),
    ]);
}

#[test]
fn task_group_equality_and_in_ask_has_task_group_only() {
    let inst = instance("1.0.0", &[], &["web"]);
    for src in [
        "task:group == web",
        "task:group != web",
        "task:group in [a, web]",
        "task:group !in [a]",
    ] {
        let e = parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
        e.matches(&inst);
    }
    assert_eq!(inst.task_groups_calls.get(), 0);
}

#[test]
fn agent_versions_compare_numerically_component_by_component() {
    let v = |version: &str| instance(version, &[], &[]);
    check(&[
        (v("1.10.0"), "agentVersion > 1.9.9", true),
        (v("1.9.9"), "agentVersion < 1.10.0", true),
        (v("1.10"), "agentVersion == 1.10.0", true),
        (v("1.10.0"), "agentVersion == 1.10", true),
        (v("1.10.0.1"), "agentVersion > 1.10", true),
        (v("2.0.0"), "agentVersion > 1.99.99", true),
        (v("1.2.3"), "agentVersion >= 1.2.3", true),
        (v("1.2.3"), "agentVersion <= 1.2.3", true),
        (v("1.2.3"), "agentVersion != 1.2.3", false),
        (v("01.2"), "agentVersion == 1.2", true),
        // An instance version that is not dotted numbers compares false,
        // whichever way, even past the component that would decide.
        (v(""), "agentVersion != 1.0.0", false),
        (v("1.x"), "agentVersion < 2.0.0", false),
        (v("1.2.3-dev"), "agentVersion > 1.0.0", false),
        (v("1.2.3-dev"), "agentVersion != 1.0.0", false),
    ]);
}

#[test]
fn attributes_compare_as_numbers_when_both_sides_are_numbers() {
    let a = |value: &str| instance("1.0.0", &[("v", value)], &[]);
    check(&[
        // As text "10" < "9"; as numbers it is greater.
        (a("10"), "attribute:v > 9", true),
        (a("10"), "attribute:v == 10.0", true),
        (a("10"), "attribute:v != 10.0", false),
        (a("10"), "attribute:v in [10.0, 11]", true),
        (a("1e3"), "attribute:v > 999", true),
        (a("-1"), "attribute:v < 0", true),
        (a("2.5"), "attribute:v <= 2.50", true),
        // One side is not a number: compared as text.
        (a("10"), "attribute:v > 9x", false),
        (a("abc"), "attribute:v > ab", true),
        (a("0x10"), "attribute:v > 9", false),
        (a("nan"), "attribute:v == nan", true),
        (a("inf"), "attribute:v > 1", true),
        (a("10"), "attribute:v == '10.0'", true),
        (a("10.0"), "attribute:v =~ 10", false),
    ]);
}

#[test]
fn registered_at_compares_instants() {
    let at = |rfc3339: &str| Instance {
        registered_ms: ms(rfc3339),
        ..instance("1.0.0", &[], &[])
    };
    let noon = || at("2017-07-01T12:00:00Z");
    check(&[
        (noon(), "registeredAt == 2017-07-01T12:00:00Z", true),
        (noon(), "registeredAt == 2017-07-01T14:00:00+02:00", true),
        (noon(), "registeredAt == 2017-07-01T12:00:00", true),
        (noon(), "registeredAt != 2017-07-01T12:00:00Z", false),
        (noon(), "registeredAt > 2017-07-01", true),
        (noon(), "registeredAt < 2017-07-02", true),
        // A date alone is its midnight, UTC.
        (noon(), "registeredAt == 2017-07-01", false),
        (
            at("2017-07-01T00:00:00Z"),
            "registeredAt == 2017-07-01",
            true,
        ),
        (noon(), "registeredAt >= 2017-07-01T12:00:00", true),
        (noon(), "registeredAt > 2017-07-01T12:00:00.001Z", false),
        (noon(), "registeredAt < 2017-07-01T12:00:00.001Z", true),
    ]);
}

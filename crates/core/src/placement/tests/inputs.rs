//! Constraint and strategy inputs: what parses to which typed value, and
//! every rule's error with its exact path; and that RunTask checks both.

use serde_json::{json, Value};

use crate::error::Exception;
use crate::json_input::parse_input;
use crate::placement::{
    parse_constraints, parse_strategies, BinpackField, Constraint, PlacementConstraintInput,
    PlacementStrategyInput, SpreadField, Strategy,
};
use crate::task::RunTaskInput;

fn constraints(v: Value) -> Vec<PlacementConstraintInput> {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("fixture: {e}"))
}

fn strategies(v: Value) -> Vec<PlacementStrategyInput> {
    serde_json::from_value(v).unwrap_or_else(|e| panic!("fixture: {e}"))
}

#[test]
fn valid_constraints_parse_to_their_typed_form() {
    let input = constraints(json!([
        {"type": "distinctInstance"},
        {"type": "distinctInstance", "expression": ""},
        {"type": "memberOf", "expression": "attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"},
    ]));
    let parsed =
        parse_constraints(&input, "placementConstraints").unwrap_or_else(|e| panic!("{e}"));
    let shapes: Vec<String> = parsed
        .iter()
        .map(|c| match c {
            Constraint::DistinctInstance => "distinct".to_string(),
            Constraint::MemberOf(e) => format!("memberOf {}", e.source()),
        })
        .collect();
    assert_eq!(
        shapes,
        [
            "distinct",
            "distinct",
            "memberOf attribute:ecs.availability-zone in [us-east-1a, us-east-1b]"
        ]
    );
    assert!(parse_constraints(&[], "placementConstraints").is_ok_and(|c| c.is_empty()));
}

#[test]
fn invalid_constraints_fail_at_their_path() {
    let member = json!({"type": "memberOf", "expression": "agentConnected == true"});
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            Value::Array(vec![member.clone(); 11]),
            "placementConstraints",
            "11 constraints given; at most 10 are allowed",
        ),
        (
            json!([{"type": "memberof", "expression": "agentConnected == true"}]),
            "placementConstraints[0].type",
            "unknown value 'memberof': expected distinctInstance or memberOf",
        ),
        (
            json!([member, {"type": "distinctInstance", "expression": "agentConnected == true"}]),
            "placementConstraints[1].expression",
            "distinctInstance takes no expression",
        ),
        (
            json!([{"type": "memberOf"}]),
            "placementConstraints[0].expression",
            "memberOf requires an expression",
        ),
        (
            json!([{"type": "memberOf", "expression": "  "}]),
            "placementConstraints[0].expression",
            "memberOf requires an expression",
        ),
        (
            json!([{"type": "memberOf", "expression": "attribute:abc foo bar"}]),
            "placementConstraints[0].expression",
            "at position 15: expected an operator, found \"foo\"",
        ),
    ];
    for (input, path, rule) in rows {
        let err = parse_constraints(&constraints(input), "placementConstraints").err();
        let got = err.map(|e| (e.exception, e.field, e.message));
        assert_eq!(
            got,
            Some((
                Exception::InvalidParameterException,
                Some(path.to_string()),
                format!("{path}: {rule}")
            ))
        );
    }
}

#[test]
fn valid_strategies_parse_to_their_typed_form() {
    let input = strategies(json!([
        {"type": "binpack", "field": "cpu"},
        {"type": "binpack", "field": "MEMORY"},
        {"type": "spread", "field": "instanceId"},
        {"type": "spread", "field": "host"},
        {"type": "spread", "field": "attribute:ecs.availability-zone"},
    ]));
    let parsed = parse_strategies(&input, "placementStrategy").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        parsed,
        [
            Strategy::Binpack(BinpackField::Cpu),
            Strategy::Binpack(BinpackField::Memory),
            Strategy::Spread(SpreadField::InstanceId),
            Strategy::Spread(SpreadField::InstanceId),
            Strategy::Spread(SpreadField::Attribute("ecs.availability-zone".into())),
        ]
    );
    let random = strategies(json!([{"type": "random"}, {"type": "random", "field": "anything"}]));
    assert_eq!(
        parse_strategies(&random, "placementStrategy").ok(),
        Some(vec![Strategy::Random, Strategy::Random])
    );
}

#[test]
fn invalid_strategies_fail_at_their_path() {
    let random = json!({"type": "random"});
    let rows: Vec<(Value, &str, &str)> = vec![
        (
            Value::Array(vec![random.clone(); 6]),
            "placementStrategy",
            "6 strategies given; at most 5 are allowed",
        ),
        (
            json!([random, {"type": "Binpack", "field": "cpu"}]),
            "placementStrategy[1].type",
            "unknown value 'Binpack': expected binpack, random or spread",
        ),
        (
            json!([{"type": "binpack"}]),
            "placementStrategy[0].field",
            "binpack requires a field: cpu or memory",
        ),
        (
            json!([{"type": "binpack", "field": "disk"}]),
            "placementStrategy[0].field",
            "unknown value 'disk': expected cpu or memory",
        ),
        (
            json!([{"type": "spread"}]),
            "placementStrategy[0].field",
            "spread requires a field: instanceId, host or attribute:<name>",
        ),
        (
            json!([{"type": "spread", "field": "attribute:"}]),
            "placementStrategy[0].field",
            "unknown value 'attribute:': expected instanceId, host or attribute:<name>",
        ),
        (
            json!([{"type": "spread", "field": "attribute:a b"}]),
            "placementStrategy[0].field",
            "unknown value 'attribute:a b': expected instanceId, host or attribute:<name>",
        ),
        (
            json!([{"type": "spread", "field": "cpu"}]),
            "placementStrategy[0].field",
            "unknown value 'cpu': expected instanceId, host or attribute:<name>",
        ),
    ];
    for (input, path, rule) in rows {
        let err = parse_strategies(&strategies(input), "placementStrategy").err();
        let got = err.map(|e| (e.exception, e.field, e.message));
        assert_eq!(
            got,
            Some((
                Exception::InvalidParameterException,
                Some(path.to_string()),
                format!("{path}: {rule}")
            ))
        );
    }
}

#[test]
fn inputs_echo_as_they_came() {
    let input = json!([{"type": "memberOf", "expression": "task:group == web"}, {"type": "distinctInstance"}]);
    let back = serde_json::to_value(constraints(input.clone())).ok();
    assert_eq!(back, Some(input));
    let input = json!([{"type": "random"}, {"type": "binpack", "field": "Memory"}]);
    let back = serde_json::to_value(strategies(input.clone())).ok();
    assert_eq!(back, Some(input));
}

#[test]
fn run_task_checks_its_placement() {
    let run = |extra: Value| -> Result<(), (Exception, Option<String>)> {
        let mut input = json!({"taskDefinition": "web:1"});
        if let (Some(m), Value::Object(extra)) = (input.as_object_mut(), extra) {
            m.extend(extra);
        }
        parse_input::<RunTaskInput>(&input.to_string(), "RunTask")
            .and_then(|i| i.validate())
            .map_err(|e| (e.exception, e.field))
    };
    let err = |e: Exception, path: &str| Err((e, Some(path.to_string())));
    assert_eq!(
        run(json!({
            "placementConstraints": [{"type": "distinctInstance"}, {"type": "memberOf", "expression": "runningTasksCount < 5"}],
            "placementStrategy": [{"type": "spread", "field": "attribute:ecs.availability-zone"}, {"type": "binpack", "field": "memory"}],
        })),
        Ok(())
    );
    assert_eq!(
        run(
            json!({"placementConstraints": [{"type": "memberOf", "expression": "runningTasksCount < five"}]})
        ),
        err(
            Exception::InvalidParameterException,
            "placementConstraints[0].expression"
        )
    );
    assert_eq!(
        run(json!({"placementStrategy": [{"type": "binpack", "field": "gpu"}]})),
        err(
            Exception::InvalidParameterException,
            "placementStrategy[0].field"
        )
    );
    // Unknown and mistyped keys are caught where every input's are.
    assert_eq!(
        run(json!({"placementConstraints": [{"type": "memberOf", "expresion": "x"}]})),
        err(
            Exception::ClientException,
            "placementConstraints[0].expresion"
        )
    );
    assert_eq!(
        run(json!({"placementStrategy": [{"type": 1}]})),
        err(Exception::ClientException, "placementStrategy[0].type")
    );
}

#[test]
fn run_task_takes_a_run_timeout_of_one_second_to_a_year() {
    let run = |secs: Value| {
        parse_input::<RunTaskInput>(
            &json!({"taskDefinition": "web:1", "runTimeoutSeconds": secs}).to_string(),
            "RunTask",
        )
        .and_then(|i| i.validate().map(|()| i.run_timeout_seconds))
        .map_err(|e| (e.exception, e.field))
    };
    assert_eq!(run(json!(1)), Ok(Some(1)));
    assert_eq!(run(json!(31_536_000)), Ok(Some(31_536_000)));
    let out_of_range = Err((
        Exception::InvalidParameterException,
        Some("runTimeoutSeconds".to_string()),
    ));
    assert_eq!(run(json!(0)), out_of_range);
    assert_eq!(run(json!(31_536_001)), out_of_range);
}

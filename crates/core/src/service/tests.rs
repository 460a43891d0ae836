//! The service calls' inputs as ECS tutorials and scripts send them, and
//! their rules: every refusal names its field.

use super::*;
use crate::json_input::parse_input;
use crate::Exception;

fn create(json: &str) -> Result<CreateServiceInput, crate::ApiError> {
    let input: CreateServiceInput = parse_input(json, "CreateService")?;
    input.validate()?;
    Ok(input)
}

fn refused_field(json: &str) -> (Exception, Option<String>) {
    match create(json) {
        Ok(i) => panic!("{json} was accepted: {i:?}"),
        Err(e) => (e.exception, e.field),
    }
}

#[test]
fn the_ecs_tutorial_create_service_parses() {
    // `aws ecs create-service --cluster production --service-name web-api
    // --task-definition web-api:3 --desired-count 3 --launch-type FARGATE
    // --network-configuration "awsvpcConfiguration={...}"
    // --health-check-grace-period-seconds 30`, as the aws CLI sends it.
    let input = create(
        r#"{"cluster": "production", "serviceName": "web-api", "taskDefinition": "web-api:3",
            "desiredCount": 3, "launchType": "FARGATE",
            "networkConfiguration": {"awsvpcConfiguration": {"subnets": ["subnet-0a1b2c", "subnet-0d4e5f"],
                "securityGroups": ["sg-api-tasks"], "assignPublicIp": "DISABLED"}},
            "healthCheckGracePeriodSeconds": 30, "enableECSManagedTags": true}"#,
    )
    .expect("valid");
    assert_eq!(input.desired_count, Some(3));
    assert_eq!(input.scheduling_strategy(), SchedulingStrategy::Replica);
    assert_eq!(input.enable_ecs_managed_tags, Some(true));
    assert_eq!(input.health_check_grace_period_seconds, Some(30));
}

#[test]
fn the_ecs_tutorial_update_service_parses() {
    let input: UpdateServiceInput = parse_input(
        r#"{"cluster": "production", "service": "web-api", "taskDefinition": "web-api:4",
            "deploymentConfiguration": {"minimumHealthyPercent": 50, "maximumPercent": 200}}"#,
        "UpdateService",
    )
    .expect("parses");
    input.validate(SchedulingStrategy::Replica).expect("valid");
    let rules = input
        .deployment_configuration
        .expect("given")
        .rules(SchedulingStrategy::Replica);
    assert_eq!((rules.minimum_healthy(3), rules.maximum_total(3)), (2, 6));
}

#[test]
fn a_circuit_breaker_with_a_threshold_configuration_parses() {
    let input = create(
        r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 4,
            "deploymentConfiguration": {"deploymentCircuitBreaker": {"enable": true, "rollback": true,
                "resetOnHealthyTask": false, "thresholdConfiguration": {"type": "COUNT", "value": 2}}}}"#,
    )
    .expect("valid");
    let breaker = input
        .deployment_configuration
        .expect("given")
        .rules(SchedulingStrategy::Replica)
        .breaker
        .expect("enabled");
    assert_eq!(breaker.threshold(4), 2);
    assert!(!breaker.reset_on_healthy_task);
}

#[test]
fn bad_create_service_inputs_name_their_field() {
    let cases: &[(&str, Exception, &str)] = &[
        (
            r#"{"serviceName": "", "taskDefinition": "t", "desiredCount": 1}"#,
            Exception::ClientException,
            "serviceName",
        ),
        (
            r#"{"serviceName": "web api", "taskDefinition": "t", "desiredCount": 1}"#,
            Exception::InvalidParameterException,
            "serviceName",
        ),
        (
            r#"{"serviceName": "s", "desiredCount": 1}"#,
            Exception::ClientException,
            "taskDefinition",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t"}"#,
            Exception::ClientException,
            "desiredCount",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "schedulingStrategy": "DAEMON"}"#,
            Exception::InvalidParameterException,
            "desiredCount",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "launchType": "SPOT"}"#,
            Exception::InvalidParameterException,
            "launchType",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "deploymentController": {"type": "CODE_DEPLOY"}}"#,
            Exception::UnsupportedFeatureException,
            "deploymentController.type",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "schedulingStrategy": "DAEMON", "placementStrategy": [{"type": "random"}]}"#,
            Exception::InvalidParameterException,
            "placementStrategy",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "placementConstraints": [{"type": "memberOf", "expression": "attribute:x =="}]}"#,
            Exception::InvalidParameterException,
            "placementConstraints[0].expression",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "propagateTags": "ALL"}"#,
            Exception::InvalidParameterException,
            "propagateTags",
        ),
        (
            r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "deploymentConfiguration": {"maximumPercent": 90}}"#,
            Exception::InvalidParameterException,
            "deploymentConfiguration.maximumPercent",
        ),
    ];
    for (json, exception, field) in cases {
        let (got_exception, got_field) = refused_field(json);
        assert_eq!(
            (got_exception, got_field.as_deref()),
            (*exception, Some(*field)),
            "{json}"
        );
    }
}

#[test]
fn unknown_fields_are_refused_with_their_path() {
    let e = create(r#"{"serviceName": "s", "taskDefinition": "t", "desiredCount": 1, "deploymentConfiguration": {"maxPercent": 200}}"#)
        .expect_err("unknown field");
    assert!(
        e.message.contains("deploymentConfiguration.maxPercent"),
        "{}",
        e.message
    );
}

#[test]
fn describe_and_list_limits() {
    let describe = |json: &str| {
        parse_input::<DescribeServicesInput>(json, "DescribeServices")
            .and_then(|i| i.validate())
            .err()
            .and_then(|e| e.field)
    };
    assert_eq!(describe(r#"{"services": []}"#).as_deref(), Some("services"));
    let eleven: Vec<String> = (0..11).map(|i| format!("s{i}")).collect();
    assert_eq!(
        describe(&serde_json::json!({ "services": eleven }).to_string()).as_deref(),
        Some("services")
    );
    assert_eq!(
        describe(r#"{"services": ["a"], "include": ["EVENTS"]}"#).as_deref(),
        Some("include")
    );
    assert_eq!(
        describe(r#"{"services": ["a"], "include": ["TAGS"]}"#),
        None
    );
    let list = |json: &str| {
        parse_input::<ListServicesInput>(json, "ListServices")
            .and_then(|i| i.validate())
            .err()
            .and_then(|e| e.field)
    };
    assert_eq!(list(r#"{"maxResults": 0}"#).as_deref(), Some("maxResults"));
    assert_eq!(
        list(r#"{"maxResults": 100, "schedulingStrategy": "DAEMON"}"#),
        None
    );
}

#[test]
fn run_task_takes_ecs_managed_tags_as_ecs_spells_it() {
    let input: crate::task::RunTaskInput = parse_input(
        r#"{"taskDefinition": "web", "enableECSManagedTags": true}"#,
        "RunTask",
    )
    .expect("ECS's spelling parses");
    assert_eq!(input.enable_ecs_managed_tags, Some(true));
}

//! Valid definitions: they parse, `TaskDefinition::new` fills in ECS's
//! defaults exactly as expected (values and key order), and the describe
//! shape reads back from its own JSON.

use serde_json::{json, Value};

use super::kitchen_sink;
use crate::task_definition::{
    parse_register_input, NetworkMode, RegisterInput, Tag, TaskDefinition, Timestamp,
};

const ARN: &str = "arn:orca:ecs:local:000000000000:task-definition/web:1";
const BY: &str = "arn:orca:iam::000000000000:root";
/// 2023-11-14T22:13:20.123Z
const AT: Timestamp = Timestamp(1_700_000_000_123);
const AT_TEXT: &str = "2023-11-14T22:13:20.123000+00:00";

fn register(input: &Value) -> (RegisterInput, TaskDefinition) {
    let parsed = parse_register_input(&input.to_string()).expect("valid definition");
    let td = TaskDefinition::new(parsed.spec.clone(), ARN.into(), 1, AT, BY.into());
    (parsed, td)
}

/// Checks the describe shape against `expected` (values and key order)
/// and that it deserialises back to the same TaskDefinition.
fn check_describe(td: &TaskDefinition, expected: Value) {
    let actual = serde_json::to_value(td).expect("serialises");
    assert_eq!(actual, expected);
    let actual_text = serde_json::to_string_pretty(td).expect("serialises");
    assert_eq!(
        actual_text,
        serde_json::to_string_pretty(&expected).expect("serialises")
    );
    let back: TaskDefinition = serde_json::from_str(&actual_text).expect("reads back");
    assert_eq!(&back, td);
}

fn attributes(names: &[&str]) -> Value {
    Value::Array(names.iter().map(|n| json!({ "name": n })).collect())
}

#[test]
fn minimal_definition_gets_ecs_defaults() {
    let (parsed, td) = register(&json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 512}]
    }));
    assert!(parsed.tags.is_empty());
    assert_eq!(
        parsed.spec.network_mode, None,
        "absent stays absent in the spec"
    );
    assert_eq!(td.spec.effective_network_mode(), NetworkMode::Awsvpc);
    check_describe(
        &td,
        json!({
            "taskDefinitionArn": ARN,
            "containerDefinitions": [{
                "name": "app",
                "image": "nginx",
                "cpu": 0,
                "memory": 512,
                "portMappings": [],
                "essential": true,
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "systemControls": []
            }],
            "family": "web",
            "networkMode": "awsvpc",
            "volumes": [],
            "placementConstraints": [],
            "revision": 1,
            "status": "ACTIVE",
            "requiresAttributes": attributes(&[
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "ecs.capability.task-eni",
            ]),
            "compatibilities": ["EC2", "EXTERNAL"],
            "registeredAt": AT_TEXT,
            "registeredBy": BY
        }),
    );
}

#[test]
fn multi_container_with_depends_on_and_health_check() {
    let (_, td) = register(&json!({
        "family": "app-stack",
        "networkMode": "bridge",
        "containerDefinitions": [
            {
                "name": "db", "image": "postgres:16", "memoryReservation": 256, "essential": true,
                "portMappings": [{"containerPort": 5432}],
                "healthCheck": {"command": ["CMD-SHELL", "pg_isready -U postgres"], "interval": 10}
            },
            {
                "name": "migrate", "image": "app:1", "memory": 128, "essential": false,
                "command": ["migrate"],
                "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}]
            },
            {
                "name": "web", "image": "app:1", "memory": 256, "links": ["db:database"],
                "portMappings": [{"containerPort": 8080, "hostPort": 80}],
                "environment": [{"name": "DB_HOST", "value": "database"}, {"name": "A", "value": "1"}],
                "dependsOn": [
                    {"containerName": "db", "condition": "HEALTHY"},
                    {"containerName": "migrate", "condition": "SUCCESS"}
                ]
            }
        ]
    }));
    let names: Vec<&str> = td
        .spec
        .container_definitions
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(names, ["db", "migrate", "web"]);
    check_describe(
        &td,
        json!({
            "taskDefinitionArn": ARN,
            "containerDefinitions": [
                {
                    "name": "db", "image": "postgres:16", "cpu": 0, "memoryReservation": 256,
                    "portMappings": [{"containerPort": 5432, "protocol": "tcp"}],
                    "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [],
                    "healthCheck": {
                        "command": ["CMD-SHELL", "pg_isready -U postgres"],
                        "interval": 10, "timeout": 5, "retries": 3
                    },
                    "systemControls": []
                },
                {
                    "name": "migrate", "image": "app:1", "cpu": 0, "memory": 128,
                    "portMappings": [], "essential": false, "command": ["migrate"],
                    "environment": [], "mountPoints": [], "volumesFrom": [],
                    "dependsOn": [{"containerName": "db", "condition": "HEALTHY"}],
                    "systemControls": []
                },
                {
                    "name": "web", "image": "app:1", "cpu": 0, "memory": 256,
                    "links": ["db:database"],
                    "portMappings": [{"containerPort": 8080, "hostPort": 80, "protocol": "tcp"}],
                    "essential": true,
                    "environment": [{"name": "DB_HOST", "value": "database"}, {"name": "A", "value": "1"}],
                    "mountPoints": [], "volumesFrom": [],
                    "dependsOn": [
                        {"containerName": "db", "condition": "HEALTHY"},
                        {"containerName": "migrate", "condition": "SUCCESS"}
                    ],
                    "systemControls": []
                }
            ],
            "family": "app-stack",
            "networkMode": "bridge",
            "volumes": [],
            "placementConstraints": [],
            "revision": 1,
            "status": "ACTIVE",
            "requiresAttributes": attributes(&[
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "com.amazonaws.ecs.capability.docker-remote-api.1.21",
                "ecs.capability.container-health-check",
                "ecs.capability.container-ordering",
            ]),
            "compatibilities": ["EC2", "EXTERNAL"],
            "registeredAt": AT_TEXT,
            "registeredBy": BY
        }),
    );
}

#[test]
fn awsvpc_with_secrets_awslogs_and_roles() {
    let asm = "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-pass-AbCdEf";
    let ssm = "arn:aws:ssm:us-east-1:123456789012:parameter/api/key";
    let image = "123456789012.dkr.ecr.us-east-1.amazonaws.com/api:latest";
    let logs = json!({"logDriver": "awslogs", "options": {
        "awslogs-group": "/ecs/api", "awslogs-region": "us-east-1", "awslogs-stream-prefix": "ecs"
    }});
    let (parsed, td) = register(&json!({
        "family": "api",
        "networkMode": "awsvpc",
        "taskRoleArn": "arn:aws:iam::123456789012:role/api-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "cpu": "0.5 vCPU",
        "memory": "1GB",
        "containerDefinitions": [{
            "name": "api", "image": image, "essential": true,
            "portMappings": [{"containerPort": 8080, "protocol": "tcp"}],
            "secrets": [{"name": "DB_PASSWORD", "valueFrom": asm}, {"name": "API_KEY", "valueFrom": ssm}],
            "logConfiguration": logs
        }]
    }));
    assert_eq!(parsed.spec.cpu.as_deref(), Some("512"));
    assert_eq!(parsed.spec.memory.as_deref(), Some("1024"));
    check_describe(
        &td,
        json!({
            "taskDefinitionArn": ARN,
            "containerDefinitions": [{
                "name": "api", "image": image, "cpu": 0,
                "portMappings": [{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}],
                "essential": true, "environment": [], "mountPoints": [], "volumesFrom": [],
                "secrets": [{"name": "DB_PASSWORD", "valueFrom": asm}, {"name": "API_KEY", "valueFrom": ssm}],
                "logConfiguration": logs,
                "systemControls": []
            }],
            "family": "api",
            "taskRoleArn": "arn:aws:iam::123456789012:role/api-task",
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "networkMode": "awsvpc",
            "volumes": [],
            "placementConstraints": [],
            "cpu": "512",
            "memory": "1024",
            "revision": 1,
            "status": "ACTIVE",
            "requiresAttributes": attributes(&[
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                "com.amazonaws.ecs.capability.task-iam-role",
                "ecs.capability.execution-role-awslogs",
                "ecs.capability.execution-role-ecr-pull",
                "ecs.capability.secrets.asm.environment-variables",
                "ecs.capability.secrets.ssm.environment-variables",
                "ecs.capability.task-eni",
            ]),
            "compatibilities": ["EC2", "EXTERNAL"],
            "registeredAt": AT_TEXT,
            "registeredBy": BY
        }),
    );
}

/// What an ECS user pastes from the console's JSON tab or a repository.
const FARGATE_NGINX: &str = r#"{
    "family": "nginx-fargate",
    "networkMode": "awsvpc",
    "requiresCompatibilities": ["FARGATE"],
    "cpu": "256",
    "memory": "512",
    "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
    "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
    "containerDefinitions": [
        {
            "name": "nginx",
            "image": "public.ecr.aws/nginx/nginx:1.25",
            "essential": true,
            "portMappings": [
                {"name": "nginx-80-tcp", "containerPort": 80, "hostPort": 80, "protocol": "tcp", "appProtocol": "http"}
            ],
            "logConfiguration": {
                "logDriver": "awslogs",
                "options": {
                    "awslogs-create-group": "true",
                    "awslogs-group": "/ecs/nginx-fargate",
                    "awslogs-region": "eu-west-1",
                    "awslogs-stream-prefix": "ecs"
                }
            },
            "healthCheck": {"command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"], "startPeriod": 10},
            "dockerLabels": {"team": "web", "app": "nginx"}
        }
    ],
    "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "web"}]
}"#;

#[test]
fn realistic_fargate_nginx_as_pasted() {
    let parsed = parse_register_input(FARGATE_NGINX).expect("valid definition");
    assert_eq!(
        parsed.tags,
        [
            Tag {
                key: "env".into(),
                value: "prod".into()
            },
            Tag {
                key: "team".into(),
                value: "web".into()
            }
        ]
    );
    let td = TaskDefinition::new(parsed.spec, ARN.into(), 1, AT, BY.into());
    check_describe(
        &td,
        json!({
            "taskDefinitionArn": ARN,
            "containerDefinitions": [{
                "name": "nginx",
                "image": "public.ecr.aws/nginx/nginx:1.25",
                "cpu": 0,
                "portMappings": [{
                    "containerPort": 80, "hostPort": 80, "protocol": "tcp",
                    "name": "nginx-80-tcp", "appProtocol": "http"
                }],
                "essential": true,
                "environment": [],
                "mountPoints": [],
                "volumesFrom": [],
                "dockerLabels": {"app": "nginx", "team": "web"},
                "logConfiguration": {
                    "logDriver": "awslogs",
                    "options": {
                        "awslogs-create-group": "true",
                        "awslogs-group": "/ecs/nginx-fargate",
                        "awslogs-region": "eu-west-1",
                        "awslogs-stream-prefix": "ecs"
                    }
                },
                "healthCheck": {
                    "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
                    "interval": 30, "timeout": 5, "retries": 3, "startPeriod": 10
                },
                "systemControls": []
            }],
            "family": "nginx-fargate",
            "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
            "networkMode": "awsvpc",
            "volumes": [],
            "placementConstraints": [],
            "runtimePlatform": {"cpuArchitecture": "X86_64", "operatingSystemFamily": "LINUX"},
            "requiresCompatibilities": ["FARGATE"],
            "cpu": "256",
            "memory": "512",
            "revision": 1,
            "status": "ACTIVE",
            "requiresAttributes": attributes(&[
                "com.amazonaws.ecs.capability.docker-remote-api.1.18",
                "com.amazonaws.ecs.capability.docker-remote-api.1.19",
                "com.amazonaws.ecs.capability.logging-driver.awslogs",
                "ecs.capability.container-health-check",
                "ecs.capability.execution-role-awslogs",
                "ecs.capability.task-eni",
            ]),
            "compatibilities": ["EC2", "EXTERNAL", "FARGATE"],
            "registeredAt": AT_TEXT,
            "registeredBy": BY
        }),
    );
}

/// Every field of ECS's input is modelled: the spec serialises back to the
/// input (less tags) unchanged.
#[test]
fn kitchen_sink_registers_verbatim() {
    let mut input = kitchen_sink();
    let parsed = parse_register_input(&input.to_string()).expect("valid definition");
    assert_eq!(
        parsed.tags,
        [Tag {
            key: "env".into(),
            value: "test".into()
        }]
    );
    if let Some(map) = input.as_object_mut() {
        map.shift_remove("tags");
    }
    assert_eq!(
        serde_json::to_value(&parsed.spec).expect("serialises"),
        input
    );

    let td = TaskDefinition::new(parsed.spec, ARN.into(), 7, AT, BY.into());
    let text = serde_json::to_string(&td).expect("serialises");
    let back: TaskDefinition = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, td);
    let names: Vec<&str> = td
        .requires_attributes
        .iter()
        .map(|a| a.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "com.amazonaws.ecs.capability.docker-remote-api.1.18",
            "com.amazonaws.ecs.capability.docker-remote-api.1.21",
            "com.amazonaws.ecs.capability.docker-remote-api.1.25",
            "com.amazonaws.ecs.capability.logging-driver.awsfirelens",
            "com.amazonaws.ecs.capability.private-registry-authentication.secretsmanager",
            "com.amazonaws.ecs.capability.task-iam-role",
            "ecs.capability.container-health-check",
            "ecs.capability.container-ordering",
            "ecs.capability.container-restart-policy",
            "ecs.capability.efs",
            "ecs.capability.efsAuth",
            "ecs.capability.env-files.s3",
            "ecs.capability.execution-role-ecr-pull",
            "ecs.capability.firelens.fluentbit",
            "ecs.capability.secrets.asm.environment-variables",
            "ecs.capability.secrets.ssm.bootstrap.log-driver",
            "ecs.capability.secrets.ssm.environment-variables",
        ]
    );
    // Under bridge a port mapping without hostPort keeps it absent (dynamic).
    let ports = td
        .spec
        .container_definitions
        .first()
        .and_then(|c| c.port_mappings.clone());
    assert_eq!(
        ports
            .as_ref()
            .and_then(|p| p.get(1))
            .and_then(|m| m.host_port),
        None
    );
}

#[test]
fn proxy_configuration_and_numeric_cpu_memory() {
    let (parsed, td) = register(&json!({
        "family": "mesh",
        "cpu": 1024,
        "memory": "2 GB",
        "proxyConfiguration": {
            "type": "APPMESH",
            "containerName": "envoy",
            "properties": [{"name": "IgnoredUID", "value": "1337"}, {"name": "ProxyIngressPort", "value": "15000"}]
        },
        "containerDefinitions": [
            {"name": "app", "image": "app:1"},
            {"name": "envoy", "image": "envoy:1", "user": "1337"}
        ]
    }));
    assert_eq!(parsed.spec.cpu.as_deref(), Some("1024"));
    assert_eq!(parsed.spec.memory.as_deref(), Some("2048"));
    let value = serde_json::to_value(&td).expect("serialises");
    assert_eq!(
        value["proxyConfiguration"]["properties"][1]["name"],
        "ProxyIngressPort"
    );
    assert_eq!(value["cpu"], "1024");
}

#[test]
fn describe_shape_reads_deregistered_timestamps_and_epoch_seconds() {
    let (_, mut td) = register(&json!({
        "family": "web",
        "containerDefinitions": [{"name": "app", "image": "nginx", "memory": 512}]
    }));
    td.status = crate::task_definition::TaskDefinitionStatus::Inactive;
    td.deregistered_at = Some(Timestamp(1_700_000_100_000));
    let text = serde_json::to_string(&td).expect("serialises");
    assert!(text.contains(r#""status":"INACTIVE""#), "{text}");
    assert!(
        text.contains(r#""deregisteredAt":"2023-11-14T22:15:00.000000+00:00""#),
        "{text}"
    );
    let back: TaskDefinition = serde_json::from_str(&text).expect("reads back");
    assert_eq!(back, td);

    // The ECS API itself sends epoch seconds.
    let mut value = serde_json::to_value(&td).expect("serialises");
    value["registeredAt"] = json!(1_700_000_000.123);
    let from_api: TaskDefinition = serde_json::from_value(value).expect("reads epoch seconds");
    assert_eq!(from_api.registered_at, AT);
}

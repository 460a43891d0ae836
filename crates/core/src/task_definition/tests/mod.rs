//! Tests of the task-definition model: a table of invalid definitions
//! (`invalid.rs`), valid ones with their exact describe shape (`valid.rs`),
//! units, timestamps and tags (`units.rs`), and property tests (`prop.rs`).

mod invalid;
mod prop;
mod units;
mod valid;

use serde_json::{json, Value};

/// `base` with the keys of `extra` set; a `null` in `extra` removes the key.
fn merge(mut base: Value, extra: Value) -> Value {
    if let (Value::Object(base_map), Value::Object(extra_map)) = (&mut base, extra) {
        for (k, v) in extra_map {
            if v.is_null() {
                base_map.shift_remove(&k);
            } else {
                base_map.insert(k, v);
            }
        }
    }
    base
}

/// A valid container named `app` with the keys of `extra`.
fn container(extra: Value) -> Value {
    merge(
        json!({"name": "app", "image": "nginx:1.25", "memory": 512}),
        extra,
    )
}

/// A container named `name`.
fn named(name: &str, extra: Value) -> Value {
    merge(container(json!({ "name": name })), extra)
}

/// A valid task definition of `containers` with the task-level keys of `extra`.
fn task(extra: Value, containers: Vec<Value>) -> Value {
    merge(
        json!({"family": "web", "containerDefinitions": containers}),
        extra,
    )
}

/// A task definition of one container with the container-level keys of `extra`.
fn one(extra: Value) -> Value {
    task(json!({}), vec![container(extra)])
}

/// A definition that uses every field ECS's RegisterTaskDefinition input has.
fn kitchen_sink() -> Value {
    let app = kitchen_sink_app();
    json!({
        "family": "kitchen-sink",
        "taskRoleArn": "arn:aws:iam::123456789012:role/app-task",
        "executionRoleArn": "arn:aws:iam::123456789012:role/ecsTaskExecutionRole",
        "networkMode": "bridge",
        "containerDefinitions": [
            app,
            {
                "name": "log-router",
                "image": "public.ecr.aws/aws-observability/aws-for-fluent-bit:stable",
                "memoryReservation": 64,
                "essential": true,
                "firelensConfiguration": {"type": "fluentbit", "options": {"enable-ecs-log-metadata": "true"}}
            }
        ],
        "volumes": [
            {"name": "data", "host": {"sourcePath": "/srv/data"}},
            {"name": "scratch", "dockerVolumeConfiguration": {"scope": "shared", "autoprovision": true, "driver": "local", "driverOpts": {"type": "tmpfs"}, "labels": {"k": "v"}}},
            {"name": "efs", "efsVolumeConfiguration": {"fileSystemId": "fs-1234", "rootDirectory": "/", "transitEncryption": "ENABLED", "transitEncryptionPort": 2049, "authorizationConfig": {"accessPointId": "fsap-1", "iam": "ENABLED"}}},
            {"name": "fsx", "fsxWindowsFileServerVolumeConfiguration": {"fileSystemId": "fs-5678", "rootDirectory": "share", "authorizationConfig": {"credentialsParameter": "arn:aws:ssm:us-east-1:123456789012:parameter/fsx", "domain": "corp.example.com"}}},
            {"name": "later", "configuredAtLaunch": true}
        ],
        "placementConstraints": [{"type": "memberOf", "expression": "attribute:ecs.instance-type =~ t3.*"}],
        "requiresCompatibilities": ["EC2", "EXTERNAL"],
        "cpu": "1024",
        "memory": "2048",
        "tags": [{"key": "env", "value": "test"}],
        "pidMode": "task",
        "ipcMode": "none",
        "inferenceAccelerators": [{"deviceName": "acc1", "deviceType": "eia2.medium"}],
        "ephemeralStorage": {"sizeInGiB": 30},
        "runtimePlatform": {"cpuArchitecture": "ARM64", "operatingSystemFamily": "LINUX"},
        "enableFaultInjection": false
    })
}

/// The kitchen sink's main container, which uses every container field.
fn kitchen_sink_app() -> Value {
    let linux = json!({
        "capabilities": {"add": ["NET_ADMIN"], "drop": ["MKNOD"]},
        "devices": [{"hostPath": "/dev/fuse", "containerPath": "/dev/fuse", "permissions": ["read", "write", "mknod"]}],
        "initProcessEnabled": true,
        "sharedMemorySize": 64,
        "tmpfs": [{"containerPath": "/tmp", "size": 128, "mountOptions": ["noexec"]}],
        "maxSwap": 1024,
        "swappiness": 60
    });
    let head = json!({
        "name": "app",
        "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/app@sha256:abc",
        "repositoryCredentials": {"credentialsParameter": "arn:aws:secretsmanager:us-east-1:123456789012:secret:reg"},
        "cpu": 256,
        "memory": 1024,
        "memoryReservation": 512,
        "links": ["log-router:logs"],
        "portMappings": [
            {"containerPort": 8080, "hostPort": 0, "protocol": "tcp", "name": "http", "appProtocol": "http2"},
            {"containerPortRange": "9000-9010", "protocol": "udp"}
        ],
        "essential": true,
        "restartPolicy": {"enabled": true, "ignoredExitCodes": [0, 143], "restartAttemptPeriod": 300},
        "entryPoint": ["/bin/sh", "-c"],
        "command": ["exec app"],
        "environment": [{"name": "B", "value": "2"}, {"name": "A", "value": "1"}],
        "environmentFiles": [{"value": "arn:aws:s3:::bucket/app.env", "type": "s3"}],
        "mountPoints": [{"sourceVolume": "data", "containerPath": "/data", "readOnly": false}],
        "volumesFrom": [{"sourceContainer": "log-router", "readOnly": true}],
    });
    let rest = json!({
        "linuxParameters": linux,
        "secrets": [
            {"name": "DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:us-east-1:123456789012:secret:db-AbCdEf"},
            {"name": "API_KEY", "valueFrom": "/app/api-key"}
        ],
        "dependsOn": [{"containerName": "log-router", "condition": "START"}],
        "startTimeout": 60,
        "stopTimeout": 30,
        "versionConsistency": "disabled",
        "hostname": "app",
        "user": "1000:1000",
        "workingDirectory": "/srv",
        "disableNetworking": false,
        "privileged": false,
        "readonlyRootFilesystem": true,
        "dnsServers": ["10.0.0.2"],
        "dnsSearchDomains": ["example.internal"],
        "extraHosts": [{"hostname": "db.local", "ipAddress": "10.0.0.5"}],
        "dockerSecurityOptions": ["no-new-privileges"],
        "interactive": false,
        "pseudoTerminal": false,
        "dockerLabels": {"team": "core", "app": "kitchen"},
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
        "logConfiguration": {
            "logDriver": "awsfirelens",
            "options": {"Name": "cloudwatch"},
            "secretOptions": [{"name": "apikey", "valueFrom": "arn:aws:ssm:us-east-1:123456789012:parameter/log-key"}]
        },
        "healthCheck": {"command": ["CMD", "/bin/health"], "interval": 10, "timeout": 3, "retries": 5, "startPeriod": 20},
        "systemControls": [{"namespace": "net.core.somaxconn", "value": "1024"}],
        "resourceRequirements": [{"value": "1", "type": "GPU"}, {"value": "acc1", "type": "InferenceAccelerator"}],
        "credentialSpecs": ["credentialspecdomainless:arn:aws:s3:::bucket/spec.json"]
    });
    merge(head, rest)
}

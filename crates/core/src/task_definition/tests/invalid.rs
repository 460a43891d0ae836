//! A table of invalid task definitions: each row names the exception and
//! the exact JSON path the error must carry.

use serde_json::{json, Value};

use super::{container, named, one, task};
use crate::error::Exception;
use crate::task_definition::parse_register_input;

const C: Exception = Exception::ClientException;
const I: Exception = Exception::InvalidParameterException;

fn tags(n: usize) -> Value {
    Value::Array(
        (0..n)
            .map(|i| json!({"key": format!("k{i}"), "value": "v"}))
            .collect(),
    )
}

fn rows() -> Vec<(String, Exception, &'static str)> {
    let v = |value: Value, e: Exception, path: &'static str| (value.to_string(), e, path);
    let hc = |extra: Value| {
        let mut check = json!({"command": ["CMD-SHELL", "true"]});
        if let (Some(m), Value::Object(extra)) = (check.as_object_mut(), extra) {
            m.extend(extra);
        }
        one(json!({ "healthCheck": check }))
    };
    let port = |mapping: Value| one(json!({ "portMappings": [mapping] }));
    let bridge_port = |mapping: Value| {
        task(
            json!({"networkMode": "bridge"}),
            vec![container(json!({ "portMappings": [mapping] }))],
        )
    };
    let bridge = |extra: Value| task(json!({"networkMode": "bridge"}), vec![container(extra)]);
    let ulimit = |u: Value| one(json!({ "ulimits": [u] }));
    let with_tags = |t: Value| merge_top(one(json!({})), json!({ "tags": t }));
    let top = |extra: Value| merge_top(one(json!({})), extra);
    let long = |n: usize| "a".repeat(n);
    let dep = |cond: &str| {
        task(
            json!({}),
            vec![
                named(
                    "a",
                    json!({"dependsOn": [{"containerName": "b", "condition": cond}]}),
                ),
                named("b", json!({})),
            ],
        )
    };
    let fargate = |extra: Value| {
        top(merge_top(
            json!({"requiresCompatibilities": ["FARGATE"], "cpu": "256", "memory": "512"}),
            extra,
        ))
    };

    vec![
        // --- the input as a whole
        ("[]".to_string(), C, "taskDefinition"),
        ("not json".to_string(), C, "taskDefinition"),
        ("\"family\"".to_string(), C, "taskDefinition"),
        (one(json!({"command": ["x".repeat(70_000)]})).to_string(), C, "taskDefinition"),
        // --- unknown fields
        v(top(json!({"famly": "web"})), C, "famly"),
        v(one(json!({"foo": 1})), C, "containerDefinitions[0].foo"),
        v(hc(json!({"intervall": 10})), C, "containerDefinitions[0].healthCheck.intervall"),
        v(with_tags(json!([{"key": "a", "value": "b", "extra": 1}])), C, "tags[0].extra"),
        v(ulimit(json!({"name": "nofile", "softLimit": 1, "hardLimit": 2, "x": 0})), C, "containerDefinitions[0].ulimits[0].x"),
        v(one(json!({"foo": 1, "cpu": "bad"})), C, "containerDefinitions[0].foo"),
        // --- wrong JSON types
        v(top(json!({"family": 5})), C, "family"),
        v(one(json!({"memory": "512"})), C, "containerDefinitions[0].memory"),
        v(one(json!({"memory": -1})), C, "containerDefinitions[0].memory"),
        v(one(json!({"memory": 8_589_934_592u64})), C, "containerDefinitions[0].memory"),
        v(one(json!({"memory": 512.5})), C, "containerDefinitions[0].memory"),
        v(hc(json!({"interval": "30"})), C, "containerDefinitions[0].healthCheck.interval"),
        v(one(json!({"essential": "yes"})), C, "containerDefinitions[0].essential"),
        v(top(json!({"containerDefinitions": {"name": "app"}})), C, "containerDefinitions"),
        v(top(json!({"cpu": true})), C, "cpu"),
        v(one(json!({"startTimeout": -1})), C, "containerDefinitions[0].startTimeout"),
        v(one(json!({"dockerLabels": {"x": 1}})), C, "containerDefinitions[0].dockerLabels.x"),
        v(with_tags(json!({"key": "a"})), C, "tags"),
        // --- required fields
        v(json!({"containerDefinitions": [container(json!({}))]}), C, "family"),
        v(json!({"family": "web"}), C, "containerDefinitions"),
        v(one(json!({"image": null})), C, "containerDefinitions[0].image"),
        v(one(json!({"name": null})), C, "containerDefinitions[0].name"),
        v(hc(json!({"command": null})), C, "containerDefinitions[0].healthCheck.command"),
        v(ulimit(json!({"name": "nofile", "softLimit": 1})), C, "containerDefinitions[0].ulimits[0].hardLimit"),
        v(one(json!({"secrets": [{"name": "X"}]})), C, "containerDefinitions[0].secrets[0].valueFrom"),
        v(one(json!({"restartPolicy": {"restartAttemptPeriod": 60}})), C, "containerDefinitions[0].restartPolicy.enabled"),
        // --- names and counts
        v(top(json!({"family": ""})), C, "family"),
        v(top(json!({"family": "my app"})), C, "family"),
        v(top(json!({"family": long(256)})), C, "family"),
        v(top(json!({"containerDefinitions": []})), C, "containerDefinitions"),
        v(task(json!({}), (0..11).map(|i| named(&format!("c{i}"), json!({}))).collect()), C, "containerDefinitions"),
        v(one(json!({"name": "a.b"})), C, "containerDefinitions[0].name"),
        v(task(json!({}), vec![named("x", json!({})), named("x", json!({}))]), C, "containerDefinitions[1].name"),
        v(one(json!({"image": ""})), C, "containerDefinitions[0].image"),
        v(one(json!({"image": long(256)})), C, "containerDefinitions[0].image"),
        v(one(json!({"image": "nginx latest"})), C, "containerDefinitions[0].image"),
        v(one(json!({"essential": false})), C, "containerDefinitions"),
        // --- memory and cpu
        v(one(json!({"memory": null})), C, "containerDefinitions[0].memory"),
        v(one(json!({"memory": 4})), C, "containerDefinitions[0].memory"),
        v(one(json!({"memory": null, "memoryReservation": 5})), C, "containerDefinitions[0].memoryReservation"),
        v(one(json!({"memory": 512, "memoryReservation": 512})), C, "containerDefinitions[0].memoryReservation"),
        v(task(json!({"memory": "1024"}), vec![named("a", json!({"memory": 600})), named("b", json!({"memory": 600}))]), C, "memory"),
        v(task(json!({"memory": 512}), vec![container(json!({"memory": 1024}))]), C, "containerDefinitions[0].memory"),
        v(top(json!({"memory": "3"})), C, "memory"),
        v(top(json!({"memory": "abc"})), C, "memory"),
        v(top(json!({"memory": "1.0001GB"})), C, "memory"),
        v(top(json!({"cpu": "1.5"})), C, "cpu"),
        v(top(json!({"cpu": "0.1 vcpu"})), C, "cpu"),
        v(top(json!({"cpu": 64})), C, "cpu"),
        v(top(json!({"cpu": "-512"})), C, "cpu"),
        v(task(json!({"cpu": "1024"}), vec![container(json!({"cpu": 2048}))]), C, "containerDefinitions[0].cpu"),
        v(task(json!({"cpu": "1 vCPU"}), vec![named("a", json!({"cpu": 768})), named("b", json!({"cpu": 768}))]), C, "cpu"),
        // --- healthCheck
        v(hc(json!({"command": []})), C, "containerDefinitions[0].healthCheck.command"),
        v(hc(json!({"command": ["curl", "-f", "http://localhost"]})), C, "containerDefinitions[0].healthCheck.command"),
        v(hc(json!({"command": ["CMD"]})), C, "containerDefinitions[0].healthCheck.command"),
        v(hc(json!({"interval": 4})), I, "containerDefinitions[0].healthCheck.interval"),
        v(hc(json!({"interval": 301})), I, "containerDefinitions[0].healthCheck.interval"),
        v(hc(json!({"timeout": 1})), I, "containerDefinitions[0].healthCheck.timeout"),
        v(hc(json!({"timeout": 61})), I, "containerDefinitions[0].healthCheck.timeout"),
        v(hc(json!({"retries": 0})), I, "containerDefinitions[0].healthCheck.retries"),
        v(hc(json!({"retries": 11})), I, "containerDefinitions[0].healthCheck.retries"),
        v(hc(json!({"startPeriod": 301})), I, "containerDefinitions[0].healthCheck.startPeriod"),
        // --- dependsOn
        v(one(json!({"dependsOn": [{"containerName": "ghost", "condition": "START"}]})), C, "containerDefinitions[0].dependsOn[0].containerName"),
        v(one(json!({"dependsOn": [{"containerName": "app", "condition": "START"}]})), C, "containerDefinitions[0].dependsOn[0].containerName"),
        v(dep("READY"), I, "containerDefinitions[0].dependsOn[0].condition"),
        v(dep("COMPLETE"), C, "containerDefinitions[0].dependsOn[0].condition"),
        v(dep("SUCCESS"), C, "containerDefinitions[0].dependsOn[0].condition"),
        v(dep("HEALTHY"), C, "containerDefinitions[0].dependsOn[0].condition"),
        v(task(json!({}), vec![
            named("a", json!({"dependsOn": [{"containerName": "b", "condition": "START"}]})),
            named("b", json!({"dependsOn": [{"containerName": "a", "condition": "START"}]})),
        ]), C, "containerDefinitions[1].dependsOn[0]"),
        v(task(json!({}), vec![
            named("a", json!({"dependsOn": [{"containerName": "b", "condition": "START"}]})),
            named("b", json!({"dependsOn": [{"containerName": "c", "condition": "START"}]})),
            named("c", json!({"dependsOn": [{"containerName": "d", "condition": "START"}, {"containerName": "a", "condition": "START"}]})),
            named("d", json!({})),
        ]), C, "containerDefinitions[2].dependsOn[1]"),
        // --- portMappings
        v(port(json!({"containerPort": 0})), I, "containerDefinitions[0].portMappings[0].containerPort"),
        v(port(json!({"containerPort": 70000})), I, "containerDefinitions[0].portMappings[0].containerPort"),
        v(bridge_port(json!({"containerPort": 80, "hostPort": 70000})), I, "containerDefinitions[0].portMappings[0].hostPort"),
        v(port(json!({"containerPort": 80, "protocol": "sctp"})), I, "containerDefinitions[0].portMappings[0].protocol"),
        v(port(json!({"containerPort": 80, "appProtocol": "websocket"})), I, "containerDefinitions[0].portMappings[0].appProtocol"),
        v(port(json!({"containerPort": 80, "hostPort": 8080})), C, "containerDefinitions[0].portMappings[0].hostPort"),
        v(merge_top(port(json!({"containerPort": 80, "hostPort": 0})), json!({"networkMode": "host"})), C, "containerDefinitions[0].portMappings[0].hostPort"),
        v(port(json!({"protocol": "tcp"})), C, "containerDefinitions[0].portMappings[0].containerPort"),
        v(port(json!({"containerPort": 80, "containerPortRange": "80-90"})), C, "containerDefinitions[0].portMappings[0]"),
        v(port(json!({"containerPortRange": "9000-8000"})), I, "containerDefinitions[0].portMappings[0].containerPortRange"),
        v(task(json!({}), vec![
            named("a", json!({"portMappings": [{"containerPort": 80}]})),
            named("b", json!({"portMappings": [{"containerPort": 80, "protocol": "tcp"}]})),
        ]), C, "containerDefinitions[1].portMappings[0].containerPort"),
        v(task(json!({"networkMode": "bridge"}), vec![
            named("a", json!({"portMappings": [{"containerPort": 80, "hostPort": 8080}]})),
            named("b", json!({"portMappings": [{"containerPort": 81, "hostPort": 8080}]})),
        ]), C, "containerDefinitions[1].portMappings[0].hostPort"),
        v(port(json!({"containerPort": 80})).pointer("/containerDefinitions/0").map(|c| {
            let mut c = c.clone();
            c["portMappings"] = json!([{"containerPort": 80, "name": "web"}, {"containerPort": 81, "name": "web"}]);
            task(json!({}), vec![c])
        }).unwrap_or_default(), C, "containerDefinitions[0].portMappings[1].name"),
        v(merge_top(port(json!({"containerPort": 80})), json!({"networkMode": "none"})), C, "containerDefinitions[0].portMappings"),
        // --- ulimits
        v(ulimit(json!({"name": "files", "softLimit": 1, "hardLimit": 2})), I, "containerDefinitions[0].ulimits[0].name"),
        v(ulimit(json!({"name": "nofile", "softLimit": 3, "hardLimit": 2})), I, "containerDefinitions[0].ulimits[0].softLimit"),
        v(ulimit(json!({"name": "nofile", "softLimit": -1, "hardLimit": 2})), I, "containerDefinitions[0].ulimits[0].softLimit"),
        v(ulimit(json!({"name": "nofile", "softLimit": 0, "hardLimit": -2})), I, "containerDefinitions[0].ulimits[0].hardLimit"),
        // --- tags
        v(with_tags(tags(51)), I, "tags"),
        v(with_tags(json!([{"key": "", "value": "v"}])), I, "tags[0].key"),
        v(with_tags(json!([{"key": long(129), "value": "v"}])), I, "tags[0].key"),
        v(with_tags(json!([{"key": "a", "value": "v"}, {"key": "b", "value": long(257)}])), I, "tags[1].value"),
        v(with_tags(json!([{"key": "AWS:owner", "value": "v"}])), I, "tags[0].key"),
        v(with_tags(json!([{"key": "a", "value": "v"}, {"key": "a", "value": "w"}])), I, "tags[1].key"),
        v(with_tags(json!([{"key": "a#b", "value": "v"}])), I, "tags[0].key"),
        // --- task-level enums and launch types
        v(top(json!({"networkMode": "overlay"})), I, "networkMode"),
        v(top(json!({"pidMode": "container"})), I, "pidMode"),
        v(top(json!({"ipcMode": "shareable"})), I, "ipcMode"),
        v(top(json!({"requiresCompatibilities": ["EC3"]})), I, "requiresCompatibilities[0]"),
        v(top(json!({"runtimePlatform": {"cpuArchitecture": "MIPS"}})), I, "runtimePlatform.cpuArchitecture"),
        v(fargate(json!({"networkMode": "bridge"})), C, "networkMode"),
        v(fargate(json!({"cpu": null})), C, "cpu"),
        v(fargate(json!({"memory": null})), C, "memory"),
        v(top(json!({"taskRoleArn": "my-role"})), I, "taskRoleArn"),
        v(top(json!({"executionRoleArn": "arn:aws:s3:::bucket"})), I, "executionRoleArn"),
        v(top(json!({"taskRoleArn": "arn:aws:iam::123:role/x"})), I, "taskRoleArn"),
        v(top(json!({"ephemeralStorage": {"sizeInGiB": 20}})), I, "ephemeralStorage.sizeInGiB"),
        v(top(json!({"ephemeralStorage": {"sizeInGiB": 201}})), I, "ephemeralStorage.sizeInGiB"),
        v(top(json!({"proxyConfiguration": {"containerName": "envoy"}})), C, "proxyConfiguration.containerName"),
        // --- container-level rules
        v(one(json!({"logConfiguration": {"logDriver": "loki"}})), I, "containerDefinitions[0].logConfiguration.logDriver"),
        v(one(json!({"logConfiguration": {"logDriver": "awsfirelens"}})), C, "containerDefinitions[0].logConfiguration.logDriver"),
        v(one(json!({"logConfiguration": {"logDriver": "awslogs", "secretOptions": [{"name": "", "valueFrom": "x"}]}})), C, "containerDefinitions[0].logConfiguration.secretOptions[0].name"),
        v(one(json!({"secrets": [{"name": "", "valueFrom": "x"}]})), C, "containerDefinitions[0].secrets[0].name"),
        v(one(json!({"secrets": [{"name": "X", "valueFrom": ""}]})), C, "containerDefinitions[0].secrets[0].valueFrom"),
        v(one(json!({"environment": [{"name": "A", "value": "1"}, {"name": "", "value": "2"}]})), C, "containerDefinitions[0].environment[1].name"),
        v(one(json!({"environmentFiles": [{"value": "arn:aws:s3:::b/x.env", "type": "s4"}]})), I, "containerDefinitions[0].environmentFiles[0].type"),
        v(one(json!({"mountPoints": [{"sourceVolume": "data", "containerPath": "/data"}]})), C, "containerDefinitions[0].mountPoints[0].sourceVolume"),
        v(merge_top(one(json!({"mountPoints": [{"sourceVolume": "data"}]})), json!({"volumes": [{"name": "data"}]})), C, "containerDefinitions[0].mountPoints[0].containerPath"),
        v(one(json!({"volumesFrom": [{"sourceContainer": "ghost"}]})), C, "containerDefinitions[0].volumesFrom[0].sourceContainer"),
        v(one(json!({"volumesFrom": [{"sourceContainer": "app"}]})), C, "containerDefinitions[0].volumesFrom[0].sourceContainer"),
        v(task(json!({}), vec![named("a", json!({"links": ["b"]})), named("b", json!({}))]), C, "containerDefinitions[0].links"),
        v(task(json!({"networkMode": "bridge"}), vec![container(json!({"links": ["ghost:g"]}))]), C, "containerDefinitions[0].links[0]"),
        v(one(json!({"hostname": "app"})), C, "containerDefinitions[0].hostname"),
        v(one(json!({"stopTimeout": 121})), I, "containerDefinitions[0].stopTimeout"),
        v(one(json!({"restartPolicy": {"enabled": true, "ignoredExitCodes": (0..51).collect::<Vec<i32>>()}})), I, "containerDefinitions[0].restartPolicy.ignoredExitCodes"),
        v(one(json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 59}})), I, "containerDefinitions[0].restartPolicy.restartAttemptPeriod"),
        v(one(json!({"restartPolicy": {"enabled": true, "restartAttemptPeriod": 1801}})), I, "containerDefinitions[0].restartPolicy.restartAttemptPeriod"),
        v(one(json!({"systemControls": [{"value": "1"}]})), C, "containerDefinitions[0].systemControls[0].namespace"),
        v(one(json!({"resourceRequirements": [{"value": "1", "type": "TPU"}]})), I, "containerDefinitions[0].resourceRequirements[0].type"),
        v(one(json!({"resourceRequirements": [{"value": "zero", "type": "GPU"}]})), I, "containerDefinitions[0].resourceRequirements[0].value"),
        v(one(json!({"resourceRequirements": [{"value": "acc9", "type": "InferenceAccelerator"}]})), C, "containerDefinitions[0].resourceRequirements[0].value"),
        v(one(json!({"linuxParameters": {"swappiness": 101}})), I, "containerDefinitions[0].linuxParameters.swappiness"),
        v(one(json!({"linuxParameters": {"tmpfs": [{"containerPath": "/tmp", "size": 0}]}})), I, "containerDefinitions[0].linuxParameters.tmpfs[0].size"),
        v(one(json!({"linuxParameters": {"devices": [{"hostPath": "/dev/x", "permissions": ["exec"]}]}})), I, "containerDefinitions[0].linuxParameters.devices[0].permissions[0]"),
        v(one(json!({"versionConsistency": "maybe"})), I, "containerDefinitions[0].versionConsistency"),
        v(bridge(json!({"extraHosts": [{"hostname": "", "ipAddress": "10.0.0.1"}]})), C, "containerDefinitions[0].extraHosts[0].hostname"),
        v(bridge(json!({"extraHosts": [{"hostname": "db", "ipAddress": "db.internal"}]})), C, "containerDefinitions[0].extraHosts[0].ipAddress"),
        v(bridge(json!({"dnsServers": ["10.0.0.2", "resolver"]})), C, "containerDefinitions[0].dnsServers[1]"),
        v(one(json!({"dnsServers": ["10.0.0.2"]})), C, "containerDefinitions[0].dnsServers"),
        v(one(json!({"dnsSearchDomains": ["corp.internal"]})), C, "containerDefinitions[0].dnsSearchDomains"),
        v(one(json!({"extraHosts": [{"hostname": "db", "ipAddress": "10.0.0.1"}]})), C, "containerDefinitions[0].extraHosts"),
        v(task(json!({}), vec![
            named("a", json!({"firelensConfiguration": {"type": "fluentbit"}})),
            named("b", json!({"firelensConfiguration": {"type": "fluentd"}})),
        ]), C, "containerDefinitions[1].firelensConfiguration"),
        // --- volumes and placement
        v(top(json!({"volumes": [{"name": "data"}, {"name": "data"}]})), C, "volumes[1].name"),
        v(top(json!({"volumes": [{"name": ""}]})), C, "volumes[0].name"),
        v(top(json!({"volumes": [{"name": "v", "host": {}, "efsVolumeConfiguration": {"fileSystemId": "fs-1"}}]})), C, "volumes[0]"),
        v(top(json!({"volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "transitEncryptionPort": 70000}}]})), I, "volumes[0].efsVolumeConfiguration.transitEncryptionPort"),
        v(top(json!({"volumes": [{"name": "v", "efsVolumeConfiguration": {"fileSystemId": "fs-1", "authorizationConfig": {"iam": "ENABLED"}}}]})), C, "volumes[0].efsVolumeConfiguration.transitEncryption"),
        v(top(json!({"volumes": [{"name": "v", "dockerVolumeConfiguration": {"scope": "task", "autoprovision": true}}]})), C, "volumes[0].dockerVolumeConfiguration.autoprovision"),
        v(top(json!({"placementConstraints": [{"type": "distinctInstance"}]})), C, "placementConstraints[0].type"),
        v(top(json!({"placementConstraints": [{"type": "random"}]})), I, "placementConstraints[0].type"),
        v(top(json!({"placementConstraints": [{"type": "memberOf"}]})), C, "placementConstraints[0].expression"),
        v(top(json!({"placementConstraints": [{"type": "memberOf", "expression": "attribute:x == y"}, {"type": "memberOf", "expression": "attribute:x =="}]})), I, "placementConstraints[1].expression"),
        v(top(json!({"placementConstraints": [{"type": "memberOf", "expression": "bogus == 1"}]})), I, "placementConstraints[0].expression"),
        v(top(json!({"placementConstraints": vec![json!({"type": "memberOf", "expression": "attribute:x == y"}); 11]})), C, "placementConstraints"),
    ]
}

/// `base` with the top-level keys of `extra` set (null removes).
fn merge_top(base: Value, extra: Value) -> Value {
    super::merge(base, extra)
}

#[test]
fn every_invalid_definition_fails_with_its_exception_and_path() {
    let rows = rows();
    assert!(rows.len() >= 70, "only {} rows", rows.len());
    let mut failures = Vec::new();
    for (i, (json, exception, path)) in rows.iter().enumerate() {
        match parse_register_input(json) {
            Ok(_) => failures.push(format!("row {i} ({path}): accepted")),
            Err(e) => {
                if e.exception != *exception || e.field.as_deref() != Some(*path) {
                    failures.push(format!(
                        "row {i}: want {exception} at {path}, got {} at {:?}: {}",
                        e.exception, e.field, e.message
                    ));
                }
                if !e.message.starts_with(path) || e.message.len() <= path.len() + 2 {
                    failures.push(format!(
                        "row {i}: message does not state path and rule: {}",
                        e.message
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} rows failed:\n{}",
        failures.len(),
        rows.len(),
        failures.join("\n")
    );
}

#[test]
fn the_base_rows_are_valid_on_their_own() {
    // Guards the table: each row must fail because of its own change.
    for base in [
        one(json!({})),
        task(json!({"networkMode": "bridge"}), vec![container(json!({}))]),
    ] {
        parse_register_input(&base.to_string()).expect("base definition is valid");
    }
}

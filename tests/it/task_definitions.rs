//! Task definitions through the gRPC API of a real (in-process) controller:
//! ECS's response shape, defaults, revisions, deregistration, deletion,
//! pagination and errors carrying the exception and field path.

use orca_api::v1;
use orca_core::Exception;
use orca_tests::controller::InProcessController;
use serde_json::{json, Value};

use crate::support::{describe, fixture, minimal_definition, register, revision};

#[tokio::test]
async fn valid_definitions_round_trip_with_ecs_defaults() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();

    // Minimal: ECS fills in its defaults.
    let td = register(&mut c, &fixture("minimal.json")).await.unwrap();
    assert_eq!(
        td["taskDefinitionArn"],
        "arn:orca:ecs:local:000000000000:task-definition/minimal:1"
    );
    assert_eq!(td["family"], "minimal");
    assert_eq!(td["revision"], 1);
    assert_eq!(td["status"], "ACTIVE");
    assert_eq!(td["networkMode"], "awsvpc");
    assert_eq!(td["registeredBy"], "arn:orca:iam::000000000000:root");
    assert!(
        td["registeredAt"].is_string(),
        "registeredAt: {}",
        td["registeredAt"]
    );
    assert_eq!(td["volumes"], json!([]));
    assert_eq!(td["placementConstraints"], json!([]));
    assert!(td["compatibilities"]
        .as_array()
        .unwrap()
        .contains(&json!("EC2")));
    let app = &td["containerDefinitions"][0];
    assert_eq!(app["essential"], true);
    assert_eq!(app["cpu"], 0);
    assert_eq!(app["portMappings"], json!([]));
    assert_eq!(app["environment"], json!([]));
    assert_eq!(app["mountPoints"], json!([]));
    assert_eq!(app["volumesFrom"], json!([]));
    assert_eq!(
        describe(&mut c, "minimal").await.unwrap(),
        td,
        "describe returns what register returned"
    );

    // Multi-container with dependsOn and healthCheck: order kept, health
    // check defaults filled, what was given kept.
    let td = register(&mut c, &fixture("multi-container.json"))
        .await
        .unwrap();
    let names: Vec<&str> = td["containerDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["migrate", "web", "cache"]);
    let web = &td["containerDefinitions"][1];
    assert_eq!(
        web["environment"],
        json!([{"name": "ZED", "value": "last"}, {"name": "ALPHA", "value": "first"}])
    );
    assert_eq!(web["healthCheck"]["interval"], 10);
    assert_eq!(web["healthCheck"]["timeout"], 5);
    assert_eq!(web["healthCheck"]["retries"], 3);
    assert_eq!(web["healthCheck"]["startPeriod"], 20);
    assert_eq!(
        web["portMappings"],
        json!([{"containerPort": 8080, "hostPort": 8080, "protocol": "tcp"}])
    );
    assert_eq!(
        web["dependsOn"][0],
        json!({"containerName": "migrate", "condition": "SUCCESS"})
    );
    let cache = &td["containerDefinitions"][2];
    assert_eq!(cache["healthCheck"]["interval"], 30);
    assert_eq!(td["containerDefinitions"][0]["essential"], false);
    let attrs: Vec<&str> = td["requiresAttributes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert!(
        attrs.contains(&"ecs.capability.container-health-check"),
        "{attrs:?}"
    );
    assert!(
        attrs.contains(&"ecs.capability.container-ordering"),
        "{attrs:?}"
    );
    assert_eq!(describe(&mut c, "shop:1").await.unwrap(), td);

    // awsvpc with secrets, awslogs and role ARNs, as copied from an ECS user's
    // repository: stored unchanged, cpu/memory normalised, tags returned.
    let reply = c
        .register_task_definition(v1::RegisterTaskDefinitionRequest {
            input_json: fixture("awsvpc-secrets.json"),
            registered_by: "arn:aws:iam::123456789012:user/alice".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let td: Value = serde_json::from_str(&reply.task_definition_json).unwrap();
    assert_eq!(td["cpu"], "1024");
    assert_eq!(td["memory"], "2048");
    assert_eq!(
        td["taskRoleArn"],
        "arn:aws:iam::123456789012:role/payments-task"
    );
    assert_eq!(
        td["executionRoleArn"],
        "arn:aws:iam::123456789012:role/ecsTaskExecutionRole"
    );
    assert_eq!(td["registeredBy"], "arn:aws:iam::123456789012:user/alice");
    assert_eq!(td["requiresCompatibilities"], json!(["FARGATE"]));
    let api = &td["containerDefinitions"][0];
    assert_eq!(
        api["secrets"][0]["valueFrom"],
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"
    );
    assert_eq!(
        api["logConfiguration"]["options"]["awslogs-group"],
        "/ecs/payments-api"
    );
    assert_eq!(
        api["ulimits"],
        json!([{"name": "nofile", "softLimit": 4096, "hardLimit": 8192}])
    );
    let tags: Vec<(String, String)> = reply.tags.into_iter().map(|t| (t.key, t.value)).collect();
    assert_eq!(
        tags,
        [
            ("team".into(), "payments".into()),
            ("env".into(), "prod".into())
        ]
    );
    // Tags come back from describe only when asked for.
    let described = c
        .describe_task_definition(v1::DescribeTaskDefinitionRequest {
            task_definition: td["taskDefinitionArn"].as_str().unwrap().into(),
            include: vec!["TAGS".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(described.tags.len(), 2);
    assert_eq!(
        serde_json::from_str::<Value>(&described.task_definition_json).unwrap(),
        td
    );
    controller.running.stop().await.unwrap();
}

#[tokio::test]
async fn revisions_continue_after_deregister_and_delete() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();
    for expected in 1..=3 {
        assert_eq!(
            revision(&register(&mut c, &minimal_definition("web")).await.unwrap()),
            expected
        );
    }
    let dereg = |r: &str| v1::DeregisterTaskDefinitionRequest {
        task_definition: r.into(),
    };
    let td = c
        .deregister_task_definition(dereg("web:3"))
        .await
        .unwrap()
        .into_inner();
    let td: Value = serde_json::from_str(&td.task_definition_json).unwrap();
    assert_eq!(td["status"], "INACTIVE");
    assert!(td["deregisteredAt"].is_string());
    // The latest ACTIVE revision is now 2.
    assert_eq!(revision(&describe(&mut c, "web").await.unwrap()), 2);
    // A family alone names no revision to deregister.
    let e = orca_api::error::from_status(
        &c.deregister_task_definition(dereg("web"))
            .await
            .unwrap_err(),
    );
    assert_eq!(
        (e.exception, e.field.as_deref()),
        (Exception::ClientException, Some("taskDefinition"))
    );

    let delete = |refs: &[&str]| v1::DeleteTaskDefinitionsRequest {
        task_definitions: refs.iter().map(|s| s.to_string()).collect(),
    };
    let reply = c
        .delete_task_definitions(delete(&["web:3", "web:1"]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.task_definitions_json.len(), 1);
    let deleted: Value = serde_json::from_str(&reply.task_definitions_json[0]).unwrap();
    assert_eq!(deleted["status"], "DELETE_IN_PROGRESS");
    assert_eq!(reply.failures.len(), 1);
    assert_eq!(reply.failures[0].reason, "TASK_DEFINITION_NOT_INACTIVE");
    assert!(reply.failures[0].arn.ends_with("task-definition/web:1"));
    let too_many: Vec<String> = (1..=11).map(|r| format!("web:{r}")).collect();
    let refs: Vec<&str> = too_many.iter().map(String::as_str).collect();
    let e =
        orca_api::error::from_status(&c.delete_task_definitions(delete(&refs)).await.unwrap_err());
    assert_eq!(e.field.as_deref(), Some("taskDefinitions"));

    // Numbering never reuses 3.
    assert_eq!(
        revision(&register(&mut c, &minimal_definition("web")).await.unwrap()),
        4
    );
    let list = |status: &str| v1::ListTaskDefinitionsRequest {
        family_prefix: "web".into(),
        status: status.into(),
        ..Default::default()
    };
    let arns = c
        .list_task_definitions(list(""))
        .await
        .unwrap()
        .into_inner()
        .task_definition_arns;
    let revs: Vec<&str> = arns.iter().map(|a| a.rsplit(':').next().unwrap()).collect();
    assert_eq!(revs, ["1", "2", "4"]);
    let arns = c
        .list_task_definitions(list("DELETE_IN_PROGRESS"))
        .await
        .unwrap()
        .into_inner()
        .task_definition_arns;
    assert_eq!(arns.len(), 1);
    controller.running.stop().await.unwrap();
}

#[tokio::test]
async fn listing_paginates_sorts_and_filters() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();
    for family in ["alpha", "beta", "gamma"] {
        for _ in 0..5 {
            register(&mut c, &minimal_definition(family)).await.unwrap();
        }
    }
    for sort in ["ASC", "DESC"] {
        let mut all = Vec::new();
        let mut token = String::new();
        loop {
            let page = c
                .list_task_definitions(v1::ListTaskDefinitionsRequest {
                    sort: sort.into(),
                    next_token: token.clone(),
                    max_results: 4,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            assert!(page.task_definition_arns.len() <= 4);
            all.extend(page.task_definition_arns);
            if page.next_token.is_empty() {
                break;
            }
            token = page.next_token;
        }
        assert_eq!(all.len(), 15);
        let mut sorted = all.clone();
        sorted.sort_by_key(|a| {
            let (f, r) = a.rsplit_once('/').unwrap().1.split_once(':').unwrap();
            (f.to_string(), r.parse::<u32>().unwrap())
        });
        if sort == "DESC" {
            sorted.reverse();
        }
        assert_eq!(all, sorted, "{sort}");
    }
    let families = c
        .list_task_definition_families(v1::ListTaskDefinitionFamiliesRequest {
            family_prefix: "be".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .families;
    assert_eq!(families, ["beta"]);
    let e = c
        .list_task_definitions(v1::ListTaskDefinitionsRequest {
            sort: "UP".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    let e = orca_api::error::from_status(&e);
    assert_eq!(
        (e.exception, e.field.as_deref()),
        (Exception::InvalidParameterException, Some("sort"))
    );
    controller.running.stop().await.unwrap();
}

#[tokio::test]
async fn invalid_input_is_refused_with_field_path_and_nothing_is_stored() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();
    register(&mut c, &minimal_definition("keep")).await.unwrap();
    let cases = [
        (
            r#"{"family":"x","containerDefinitions":[{"name":"a","image":"i","memory":32,"bogus":1}]}"#,
            "containerDefinitions[0].bogus",
        ),
        (
            r#"{"family":"x","containerDefinitions":[{"name":"a","image":"i","memory":32,"healthCheck":{"command":["CMD","true"],"interval":1}}]}"#,
            "containerDefinitions[0].healthCheck.interval",
        ),
        (
            r#"{"family":"bad name","containerDefinitions":[{"name":"a","image":"i","memory":32}]}"#,
            "family",
        ),
        ("not json", ""),
    ];
    for (input, path) in cases {
        let e = register(&mut c, input).await.unwrap_err();
        assert!(
            matches!(
                e.exception,
                Exception::ClientException | Exception::InvalidParameterException
            ),
            "{input}: {e:?}"
        );
        if !path.is_empty() {
            assert_eq!(e.field.as_deref(), Some(path), "{input}: {e:?}");
            assert!(
                e.message.contains(path),
                "the message names the path: {}",
                e.message
            );
        }
    }
    let e = describe(&mut c, "nope:1").await.unwrap_err();
    assert_eq!(e.exception, Exception::ClientException);
    // The one good registration is intact and numbering was not consumed.
    assert_eq!(revision(&describe(&mut c, "keep").await.unwrap()), 1);
    assert_eq!(
        revision(&register(&mut c, &minimal_definition("keep")).await.unwrap()),
        2
    );
    let families = c
        .list_task_definition_families(v1::ListTaskDefinitionFamiliesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .families;
    assert_eq!(families, ["keep"]);
    controller.running.stop().await.unwrap();
}

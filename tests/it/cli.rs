//! The `orca` binary against a running controller: every command, the three
//! output formats, and error exits with the AWS CLI's message and codes.

use std::path::Path;

use orca_tests::controller::InProcessController;
use serde_json::json;

use crate::support::orca;

fn fixture_uri(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/task-definitions")
        .join(name);
    format!("file://{}", path.display())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn task_definition_commands() {
    let controller = InProcessController::start().await.unwrap();
    let ep = &controller.endpoint();

    let reply = orca(
        ep,
        &[
            "register-task-definition",
            "--cli-input-json",
            &fixture_uri("awsvpc-secrets.json"),
        ],
    )
    .await
    .json();
    assert_eq!(reply["taskDefinition"]["family"], "payments-api");
    assert_eq!(reply["taskDefinition"]["revision"], 1);
    assert_eq!(reply["taskDefinition"]["cpu"], "1024");
    assert_eq!(
        reply["tags"],
        json!([{"key": "team", "value": "payments"}, {"key": "env", "value": "prod"}])
    );

    // Built from flags, with the AWS shorthand for containers.
    let reply = orca(
        ep,
        &[
            "register-task-definition",
            "--family",
            "flags",
            "--container-definitions",
            "name=web,image=nginx,memory=128,essential=true",
            "name=side,image=busybox,memory=32,essential=false",
        ],
    )
    .await
    .json();
    let td = &reply["taskDefinition"];
    assert_eq!(td["containerDefinitions"][0]["memory"], 128);
    assert_eq!(td["containerDefinitions"][1]["essential"], false);

    let described = orca(
        ep,
        &[
            "describe-task-definition",
            "--task-definition",
            "payments-api",
            "--include",
            "TAGS",
        ],
    )
    .await
    .json();
    assert_eq!(
        described["taskDefinition"]["taskDefinitionArn"],
        "arn:orca:ecs:local:000000000000:task-definition/payments-api:1"
    );
    assert_eq!(described["tags"].as_array().unwrap().len(), 2);

    orca(
        ep,
        &[
            "register-task-definition",
            "--cli-input-json",
            &fixture_uri("awsvpc-secrets.json"),
        ],
    )
    .await
    .json();
    let listed = orca(
        ep,
        &[
            "list-task-definitions",
            "--family-prefix",
            "payments",
            "--sort",
            "DESC",
        ],
    )
    .await
    .json();
    assert_eq!(
        listed["taskDefinitionArns"],
        json!([
            "arn:orca:ecs:local:000000000000:task-definition/payments-api:2",
            "arn:orca:ecs:local:000000000000:task-definition/payments-api:1"
        ])
    );
    let families = orca(ep, &["list-task-definition-families"]).await.json();
    assert_eq!(families["families"], json!(["flags", "payments-api"]));
    // --max-items pages on the client and hands back a token to resume.
    let first = orca(ep, &["list-task-definitions", "--max-items", "1"])
        .await
        .json();
    assert_eq!(first["taskDefinitionArns"].as_array().unwrap().len(), 1);
    let token = first["NextToken"]
        .as_str()
        .expect("a NextToken")
        .to_string();
    let rest = orca(ep, &["list-task-definitions", "--starting-token", &token])
        .await
        .json();
    assert_eq!(rest["taskDefinitionArns"].as_array().unwrap().len(), 2);

    let dereg = orca(
        ep,
        &[
            "deregister-task-definition",
            "--task-definition",
            "payments-api:1",
        ],
    )
    .await
    .json();
    assert_eq!(dereg["taskDefinition"]["status"], "INACTIVE");
    let deleted = orca(
        ep,
        &[
            "delete-task-definitions",
            "--task-definitions",
            "payments-api:1",
            "payments-api:2",
        ],
    )
    .await
    .json();
    assert_eq!(
        deleted["taskDefinitions"][0]["status"],
        "DELETE_IN_PROGRESS"
    );
    assert_eq!(
        deleted["failures"][0]["reason"],
        "TASK_DEFINITION_NOT_INACTIVE"
    );

    // Table and text output carry the same facts.
    let table = orca(
        ep,
        &[
            "describe-task-definition",
            "--task-definition",
            "flags",
            "--output",
            "table",
        ],
    )
    .await;
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(
        table.stdout.contains("DescribeTaskDefinition") && table.stdout.contains("flags"),
        "{}",
        table.stdout
    );
    let text = orca(ep, &["list-task-definition-families", "--output", "text"]).await;
    assert_eq!(text.code, 0, "{}", text.stderr);
    assert!(
        text.stdout.lines().any(|l| l.contains("payments-api")),
        "{}",
        text.stdout
    );
    controller.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_commands() {
    let controller = InProcessController::start().await.unwrap();
    let ep = &controller.endpoint();
    let created = orca(
        ep,
        &[
            "create-cluster",
            "--cluster-name",
            "prod",
            "--settings",
            "name=containerInsights,value=enabled",
            "--tags",
            "key=team,value=infra",
        ],
    )
    .await
    .json();
    assert_eq!(created["cluster"]["clusterName"], "prod");
    assert_eq!(created["cluster"]["status"], "ACTIVE");
    assert_eq!(
        created["cluster"]["settings"],
        json!([{"name": "containerInsights", "value": "enabled"}])
    );

    let described = orca(
        ep,
        &[
            "describe-clusters",
            "--clusters",
            "prod",
            "ghost",
            "--include",
            "TAGS",
        ],
    )
    .await
    .json();
    assert_eq!(
        described["clusters"][0]["tags"],
        json!([{"key": "team", "value": "infra"}])
    );
    assert_eq!(
        described["clusters"][0]["registeredContainerInstancesCount"],
        0
    );
    assert_eq!(described["failures"][0]["reason"], "MISSING");
    let default = orca(ep, &["describe-clusters"]).await.json();
    assert_eq!(default["clusters"][0]["clusterName"], "default");

    let updated = orca(
        ep,
        &[
            "update-cluster",
            "--cluster",
            "prod",
            "--settings",
            "name=containerInsights,value=disabled",
        ],
    )
    .await
    .json();
    assert_eq!(updated["cluster"]["settings"][0]["value"], "disabled");
    let listed = orca(ep, &["list-clusters"]).await.json();
    assert_eq!(listed["clusterArns"].as_array().unwrap().len(), 2);
    let deleted = orca(ep, &["delete-cluster", "--cluster", "prod"])
        .await
        .json();
    assert_eq!(deleted["cluster"]["status"], "INACTIVE");
    controller.running.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_exit_non_zero_with_the_exception() {
    let controller = InProcessController::start().await.unwrap();
    let ep = &controller.endpoint();

    let bad = r#"{"family":"x","containerDefinitions":[{"name":"a","image":"i","memory":32,"healthCheck":{"command":["CMD","true"],"retries":11}}]}"#;
    let run = orca(ep, &["register-task-definition", "--cli-input-json", bad]).await;
    assert_eq!(run.code, 254, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("An error occurred (InvalidParameterException) when calling the RegisterTaskDefinition operation"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("containerDefinitions[0].healthCheck.retries"),
        "{}",
        run.stderr
    );
    assert!(run.stdout.is_empty());

    let run = orca(
        ep,
        &["describe-task-definition", "--task-definition", "nope:1"],
    )
    .await;
    assert_eq!(run.code, 254);
    assert!(run.stderr.contains("(ClientException)"), "{}", run.stderr);
    let run = orca(ep, &["delete-cluster", "--cluster", "ghost"]).await;
    assert_eq!(run.code, 254);
    assert!(
        run.stderr.contains("(ClusterNotFoundException)"),
        "{}",
        run.stderr
    );

    let run = orca(
        ep,
        &[
            "register-task-definition",
            "--cli-input-json",
            "file:///nonexistent/td.json",
        ],
    )
    .await;
    assert_eq!(run.code, 252, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("/nonexistent/td.json"),
        "{}",
        run.stderr
    );
    let run = orca(
        ep,
        &[
            "create-cluster",
            "--settings",
            "name=containerInsights,value",
        ],
    )
    .await;
    assert_ne!(run.code, 0, "bad shorthand is refused: {}", run.stdout);
    let run = orca(ep, &["no-such-command"]).await;
    assert_ne!(run.code, 0);

    // Nothing listens on this port: a connection failure, not a service error.
    let dead = orca_tests::controller::free_addr().unwrap().to_string();
    let run = orca(&dead, &["list-clusters"]).await;
    assert_eq!(run.code, 255, "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("Could not connect to the endpoint URL"),
        "{}",
        run.stderr
    );
    // A list of endpoints fails over to the one that answers.
    let both = format!("{dead},{ep}");
    assert_eq!(orca(&both, &["list-clusters"]).await.code, 0);
    controller.running.stop().await.unwrap();
}

/// The first command of ECS's Fargate tutorial runs as written, and the
/// capacity providers are stored and returned as ECS returns them.
#[tokio::test]
async fn create_cluster_takes_capacity_providers_as_the_tutorial_gives_them() {
    let controller = InProcessController::start().await.unwrap();
    let ep = &controller.endpoint();
    let created = orca(
        ep,
        &[
            "create-cluster",
            "--cluster-name",
            "fargate-cluster",
            "--capacity-providers",
            "FARGATE",
            "FARGATE_SPOT",
            "--default-capacity-provider-strategy",
            "capacityProvider=FARGATE,weight=1,base=1",
            "capacityProvider=FARGATE_SPOT,weight=4",
        ],
    )
    .await
    .json();
    let cluster = &created["cluster"];
    assert_eq!(
        cluster["capacityProviders"],
        serde_json::json!(["FARGATE", "FARGATE_SPOT"])
    );
    assert_eq!(
        cluster["defaultCapacityProviderStrategy"],
        serde_json::json!([
            {"capacityProvider": "FARGATE", "weight": 1, "base": 1},
            {"capacityProvider": "FARGATE_SPOT", "weight": 4}
        ])
    );
    let described = orca(ep, &["describe-clusters", "--clusters", "fargate-cluster"])
        .await
        .json();
    assert_eq!(
        described["clusters"][0]["capacityProviders"],
        serde_json::json!(["FARGATE", "FARGATE_SPOT"])
    );
}

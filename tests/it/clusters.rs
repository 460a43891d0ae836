//! Clusters through the gRPC API: the default cluster, idempotent creation,
//! describe with failures, deletion rules, settings.

use orca_api::error::from_status;
use orca_api::v1;
use orca_core::Exception;
use orca_tests::controller::InProcessController;

fn setting(name: &str, value: &str) -> v1::ClusterSetting {
    v1::ClusterSetting {
        name: name.into(),
        value: value.into(),
    }
}

#[tokio::test]
async fn default_cluster_and_cluster_lifecycle() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();

    // `default` exists from the start and is what an empty name means.
    let reply = c
        .describe_clusters(v1::DescribeClustersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.clusters.len(), 1);
    let default = &reply.clusters[0];
    assert_eq!(default.cluster_name, "default");
    assert_eq!(default.status, "ACTIVE");
    assert_eq!(
        default.cluster_arn,
        "arn:orca:ecs:local:000000000000:cluster/default"
    );
    assert_eq!(default.registered_container_instances_count, 0);

    let create = |name: &str, settings: Vec<v1::ClusterSetting>| v1::CreateClusterRequest {
        cluster_name: name.into(),
        settings,
        tags: vec![v1::Tag {
            key: "team".into(),
            value: "infra".into(),
        }],
        ..Default::default()
    };
    let prod = c
        .create_cluster(create("prod", vec![]))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(prod.status, "ACTIVE");
    assert_eq!(prod.tags.len(), 1);
    // Idempotent: the same name returns the existing cluster unchanged.
    let again = c
        .create_cluster(create(
            "prod",
            vec![setting("containerInsights", "enabled")],
        ))
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(again, prod);

    let updated = c
        .update_cluster(v1::UpdateClusterRequest {
            cluster: prod.cluster_arn.clone(),
            settings: vec![setting("containerInsights", "enabled")],
        })
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(
        updated.settings,
        vec![setting("containerInsights", "enabled")]
    );

    // Describe by name and ARN; settings and tags only when included; a
    // missing one is a failure with reason MISSING.
    let reply = c
        .describe_clusters(v1::DescribeClustersRequest {
            clusters: vec!["prod".into(), prod.cluster_arn.clone(), "ghost".into()],
            include: vec!["SETTINGS".into()],
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.clusters.len(), 2);
    assert_eq!(reply.clusters[0].settings.len(), 1);
    assert!(reply.clusters[0].tags.is_empty());
    assert_eq!(reply.failures.len(), 1);
    assert_eq!(reply.failures[0].reason, "MISSING");
    assert!(reply.failures[0].arn.ends_with("cluster/ghost"));

    let arns = c
        .list_clusters(v1::ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cluster_arns;
    assert_eq!(arns.len(), 2);

    // An empty cluster deletes to INACTIVE: still described, no longer listed.
    let deleted = c
        .delete_cluster(v1::DeleteClusterRequest {
            cluster: "prod".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .cluster
        .unwrap();
    assert_eq!(deleted.status, "INACTIVE");
    let arns = c
        .list_clusters(v1::ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cluster_arns;
    assert_eq!(arns, ["arn:orca:ecs:local:000000000000:cluster/default"]);
    let e = from_status(
        &c.delete_cluster(v1::DeleteClusterRequest {
            cluster: "prod".into(),
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(e.exception, Exception::ClusterNotFoundException);
    let e = from_status(
        &c.delete_cluster(v1::DeleteClusterRequest {
            cluster: "never".into(),
        })
        .await
        .unwrap_err(),
    );
    assert_eq!(e.exception, Exception::ClusterNotFoundException);
    controller.running.stop().await.unwrap();
}

#[tokio::test]
async fn bad_cluster_input_names_the_field() {
    let controller = InProcessController::start().await.unwrap();
    let mut c = controller.client().await.unwrap();
    let cases = [
        (
            v1::CreateClusterRequest {
                cluster_name: "has space".into(),
                ..Default::default()
            },
            "clusterName",
        ),
        (
            v1::CreateClusterRequest {
                cluster_name: "ok".into(),
                capacity_providers: vec!["FARGATE".into()],
                default_capacity_provider_strategy_json:
                    r#"[{"capacityProvider": "FARGATE_SPOT", "weight": 1}]"#.into(),
                ..Default::default()
            },
            "defaultCapacityProviderStrategy[0].capacityProvider",
        ),
        (
            v1::CreateClusterRequest {
                cluster_name: "ok".into(),
                settings: vec![setting("containerInsights", "maybe")],
                ..Default::default()
            },
            "settings[0].value",
        ),
        (
            v1::CreateClusterRequest {
                cluster_name: "ok".into(),
                tags: vec![v1::Tag {
                    key: "aws:reserved".into(),
                    value: "x".into(),
                }],
                ..Default::default()
            },
            "tags[0].key",
        ),
    ];
    for (request, field) in cases {
        let e = from_status(&c.create_cluster(request.clone()).await.unwrap_err());
        assert_eq!(e.field.as_deref(), Some(field), "{request:?}: {e:?}");
        assert_eq!(
            e.exception,
            Exception::InvalidParameterException,
            "{request:?}"
        );
    }
    let e = c
        .describe_clusters(v1::DescribeClustersRequest {
            clusters: vec![],
            include: vec!["EVERYTHING".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(from_status(&e).field.as_deref(), Some("include[0]"));
    // Nothing was created by the refused calls.
    let arns = c
        .list_clusters(v1::ListClustersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .cluster_arns;
    assert_eq!(arns.len(), 1);
    controller.running.stop().await.unwrap();
}

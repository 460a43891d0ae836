//! State types to wire types. The task definition itself travels as ECS JSON.

use orca_api::v1;
use orca_core::cluster::ClusterSetting;
use orca_core::task_definition::{Tag, TaskDefinition};
use orca_core::ApiError;

use crate::state::ClusterUsage;
use crate::state::{ClusterRecord, Failure, StoredTaskDefinition};

pub fn tags_to_wire(tags: &[Tag]) -> Vec<v1::Tag> {
    tags.iter()
        .map(|t| v1::Tag {
            key: t.key.clone(),
            value: t.value.clone(),
        })
        .collect()
}

pub fn tags_from_wire(tags: Vec<v1::Tag>) -> Vec<Tag> {
    tags.into_iter()
        .map(|t| Tag {
            key: t.key,
            value: t.value,
        })
        .collect()
}

pub fn settings_from_wire(settings: Vec<v1::ClusterSetting>) -> Vec<ClusterSetting> {
    settings
        .into_iter()
        .map(|s| ClusterSetting {
            name: s.name,
            value: s.value,
        })
        .collect()
}

pub fn failure_to_wire(f: Failure) -> v1::Failure {
    v1::Failure {
        arn: f.arn,
        reason: f.reason,
        detail: f.detail,
    }
}

/// What DescribeClusters' `include` asked for.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClusterInclude {
    pub settings: bool,
    pub tags: bool,
}

impl ClusterInclude {
    /// Everything: CreateCluster, UpdateCluster and DeleteCluster return the
    /// whole cluster, as ECS does.
    pub const ALL: ClusterInclude = ClusterInclude {
        settings: true,
        tags: true,
    };
}

pub fn cluster_to_wire(
    c: &ClusterRecord,
    usage: ClusterUsage,
    include: ClusterInclude,
) -> v1::Cluster {
    v1::Cluster {
        cluster_arn: c.arn.clone(),
        cluster_name: c.name.clone(),
        status: c.status.as_str().to_string(),
        registered_container_instances_count: usage.container_instances,
        running_tasks_count: usage.running_tasks,
        pending_tasks_count: usage.pending_tasks,
        active_services_count: usage.active_services,
        settings: if include.settings {
            c.settings
                .iter()
                .map(|s| v1::ClusterSetting {
                    name: s.name.clone(),
                    value: s.value.clone(),
                })
                .collect()
        } else {
            Vec::new()
        },
        tags: if include.tags {
            tags_to_wire(&c.tags)
        } else {
            Vec::new()
        },
        capacity_providers: c.capacity.providers.clone(),
        default_capacity_provider_strategy_json: serde_json::to_string(
            &c.capacity.default_strategy,
        )
        .unwrap_or_default(),
    }
}

pub fn task_definition_json(td: &TaskDefinition) -> Result<String, ApiError> {
    serde_json::to_string(td).map_err(|e| {
        ApiError::server(format!(
            "cannot encode task definition {}: {e}",
            td.task_definition_arn
        ))
    })
}

pub fn task_definition_reply(
    stored: &StoredTaskDefinition,
    with_tags: bool,
) -> Result<v1::TaskDefinitionReply, ApiError> {
    Ok(v1::TaskDefinitionReply {
        task_definition_json: task_definition_json(&stored.task_definition)?,
        tags: if with_tags {
            tags_to_wire(&stored.tags)
        } else {
            Vec::new()
        },
    })
}

//! Applying cluster commands.

use orca_core::cluster::{ClusterSetting, ClusterStatus};
use orca_core::task_definition::Tag;
use orca_core::{ApiError, Exception};

use super::{ClusterRecord, ClusterState, Outcome};

/// What a cluster holds, for DescribeClusters' counts and DeleteCluster's
/// rules.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ClusterUsage {
    pub container_instances: u32,
    pub running_tasks: u32,
    pub pending_tasks: u32,
    pub active_services: u32,
}

impl ClusterState {
    pub(super) fn create_cluster(
        &mut self,
        name: String,
        settings: Vec<ClusterSetting>,
        tags: Vec<Tag>,
        capacity: orca_core::cluster::ClusterCapacity,
    ) -> Outcome {
        if let Some(existing) = self.clusters.get_mut(&name) {
            if existing.status == ClusterStatus::Active {
                // ECS: creating an existing cluster returns it unchanged.
                return Outcome::Cluster(existing.clone());
            }
            existing.status = ClusterStatus::Active;
            existing.settings = settings;
            existing.tags = tags;
            existing.capacity = capacity;
            return Outcome::Cluster(existing.clone());
        }
        let record = ClusterRecord {
            arn: self.arn.cluster(&name),
            name: name.clone(),
            status: ClusterStatus::Active,
            settings,
            tags,
            capacity,
            net_version: 0,
        };
        self.clusters.insert(name, record.clone());
        Outcome::Cluster(record)
    }

    fn active_cluster_mut(&mut self, name: &str) -> Result<&mut ClusterRecord, ApiError> {
        self.clusters
            .get_mut(name)
            .filter(|c| c.status == ClusterStatus::Active)
            .ok_or_else(|| cluster_not_found(name))
    }

    pub(super) fn update_cluster_settings(
        &mut self,
        name: &str,
        settings: Vec<ClusterSetting>,
    ) -> Result<Outcome, ApiError> {
        let cluster = self.active_cluster_mut(name)?;
        for setting in settings {
            match cluster.settings.iter_mut().find(|s| s.name == setting.name) {
                Some(existing) => existing.value = setting.value,
                None => cluster.settings.push(setting),
            }
        }
        Ok(Outcome::Cluster(cluster.clone()))
    }

    pub(super) fn delete_cluster(&mut self, name: &str) -> Result<Outcome, ApiError> {
        let usage = self.cluster_usage(name);
        let cluster = self.active_cluster_mut(name)?;
        let refuse = |exception, what: &str| {
            Err(ApiError::new(
                exception,
                format!("the cluster '{name}' cannot be deleted while it contains {what}"),
            ))
        };
        if usage.container_instances > 0 {
            return refuse(
                Exception::ClusterContainsContainerInstancesException,
                "container instances",
            );
        }
        if usage.active_services > 0 {
            return refuse(
                Exception::ClusterContainsServicesException,
                "active services",
            );
        }
        if usage.running_tasks + usage.pending_tasks > 0 {
            return refuse(Exception::ClusterContainsTasksException, "tasks");
        }
        cluster.status = ClusterStatus::Inactive;
        Ok(Outcome::Cluster(cluster.clone()))
    }
}

impl ClusterState {
    /// PutClusterCapacityProviders: the providers and default strategy,
    /// replaced as ECS replaces them (validated by the handler).
    pub(super) fn put_cluster_capacity_providers(
        &mut self,
        name: &str,
        capacity: orca_core::cluster::ClusterCapacity,
    ) -> Result<Outcome, ApiError> {
        let cluster = self.active_cluster_mut(name)?;
        cluster.capacity = capacity;
        Ok(Outcome::Cluster(cluster.clone()))
    }
}

pub fn cluster_not_found(name: &str) -> ApiError {
    ApiError::new(
        Exception::ClusterNotFoundException,
        format!("cluster '{name}' not found"),
    )
}

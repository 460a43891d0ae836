//! Applying the operator's container-instance commands: custom attributes
//! (PutAttributes / DeleteAttributes), ACTIVE ↔ DRAINING, and
//! deregistration (refused while tasks run unless forced, which stops them).

use orca_core::instance_calls::{CONTAINER_INSTANCE_TARGET, MAX_CUSTOM_ATTRIBUTES};
use orca_core::task::StopCode;
use orca_core::task_definition::{Attribute, Timestamp};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};

use super::instances::{instance_not_found, InstanceStatus};
use super::{ClusterState, Outcome};

/// ECS's stoppedReason for tasks of a force-deregistered instance.
pub const FORCED_DEREGISTRATION: &str = "Container instance deregistration forced by user";

/// One attribute of a PutAttributes / DeleteAttributes, on one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceAttribute {
    pub instance_id: String,
    pub name: String,
    /// None for DeleteAttributes and for a name-only attribute.
    pub value: Option<String>,
}

impl ClusterState {
    fn instance_in_cluster(&self, cluster: &str, id: &str) -> Result<(), ApiError> {
        self.instances
            .get(id)
            .filter(|i| i.cluster == cluster && i.status != InstanceStatus::Inactive)
            .map(|_| ())
            .ok_or_else(|| instance_not_found(id))
    }

    /// ECS's `attributes[]` shape of an instance attribute.
    fn attribute_view(&self, instance_id: &str, name: &str, value: Option<String>) -> Attribute {
        Attribute {
            name: name.to_string(),
            value,
            target_type: Some(CONTAINER_INSTANCE_TARGET.to_string()),
            target_id: self.instances.get(instance_id).map(|i| i.arn.clone()),
        }
    }

    /// PutAttributes: all or nothing; a name already set is replaced.
    pub(super) fn put_attributes(
        &mut self,
        cluster: &str,
        attributes: Vec<InstanceAttribute>,
    ) -> Result<Outcome, ApiError> {
        self.active_cluster(cluster)?;
        for a in &attributes {
            self.instance_in_cluster(cluster, &a.instance_id)?;
        }
        // Check the limit on the result before changing anything.
        let mut after: std::collections::BTreeMap<&str, std::collections::BTreeSet<&str>> =
            Default::default();
        for a in &attributes {
            let names = after.entry(&a.instance_id).or_insert_with(|| {
                self.instances
                    .get(&a.instance_id)
                    .map(|i| {
                        i.custom_attributes
                            .iter()
                            .map(|c| c.name.as_str())
                            .collect()
                    })
                    .unwrap_or_default()
            });
            names.insert(&a.name);
            if names.len() > MAX_CUSTOM_ATTRIBUTES {
                return Err(ApiError::new(
                    Exception::AttributeLimitExceededException,
                    format!(
                        "container instance {} would have more than {MAX_CUSTOM_ATTRIBUTES} custom attributes",
                        a.instance_id
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(attributes.len());
        for a in attributes {
            if let Some(instance) = self.instances.get_mut(&a.instance_id) {
                instance.custom_attributes.retain(|c| c.name != a.name);
                instance.custom_attributes.push(Attribute {
                    name: a.name.clone(),
                    value: a.value.clone(),
                    target_type: None,
                    target_id: None,
                });
                instance
                    .custom_attributes
                    .sort_by(|x, y| x.name.cmp(&y.name));
                instance.version += 1;
                self.placement_index.sync_attributes(instance);
            }
            out.push(self.attribute_view(&a.instance_id, &a.name, a.value));
        }
        Ok(Outcome::Attributes(out))
    }

    /// DeleteAttributes: every named attribute must exist (ECS: TargetNotFound
    /// is a ClientException); all or nothing.
    pub(super) fn delete_attributes(
        &mut self,
        cluster: &str,
        attributes: Vec<InstanceAttribute>,
    ) -> Result<Outcome, ApiError> {
        self.active_cluster(cluster)?;
        for a in &attributes {
            self.instance_in_cluster(cluster, &a.instance_id)?;
            let present = self
                .instances
                .get(&a.instance_id)
                .is_some_and(|i| i.custom_attributes.iter().any(|c| c.name == a.name));
            if !present {
                return Err(ApiError::field(
                    Exception::ClientException,
                    "attributes",
                    format!(
                        "container instance {} has no custom attribute '{}'",
                        a.instance_id, a.name
                    ),
                ));
            }
        }
        let mut out = Vec::with_capacity(attributes.len());
        for a in attributes {
            let mut removed = None;
            if let Some(instance) = self.instances.get_mut(&a.instance_id) {
                if let Some(pos) = instance
                    .custom_attributes
                    .iter()
                    .position(|c| c.name == a.name)
                {
                    removed = Some(instance.custom_attributes.remove(pos));
                    instance.version += 1;
                    self.placement_index.sync_attributes(instance);
                }
            }
            let value = removed.and_then(|r| r.value);
            out.push(self.attribute_view(&a.instance_id, &a.name, value));
        }
        Ok(Outcome::Attributes(out))
    }

    /// ACTIVE ↔ DRAINING. A DRAINING instance gets no new placements; its
    /// standalone tasks keep running (services move theirs).
    pub(super) fn set_instances_status(
        &mut self,
        cluster: &str,
        instance_ids: &[String],
        status: InstanceStatus,
    ) -> Result<Outcome, ApiError> {
        self.active_cluster(cluster)?;
        for id in instance_ids {
            self.instance_in_cluster(cluster, id)?;
        }
        for id in instance_ids {
            if let Some(instance) = self.instances.get_mut(id) {
                if instance.status != status {
                    instance.status = status;
                    instance.version += 1;
                    self.placement_index.sync_dense(instance);
                }
            }
        }
        Ok(Outcome::Instances(instance_ids.to_vec()))
    }

    /// DeregisterContainerInstance: INACTIVE (no placements, out of the
    /// ACTIVE list); refused while tasks are placed here unless `force`,
    /// which asks each to stop. The agent may keep its session until they
    /// have stopped, so their reports still arrive.
    pub(super) fn deregister_instance(
        &mut self,
        cluster: &str,
        instance_id: &str,
        force: bool,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        self.active_cluster(cluster)?;
        self.instance_in_cluster(cluster, instance_id)?;
        let tasks: Vec<String> = self
            .instances
            .get(instance_id)
            .map(|i| i.task_ids.iter().cloned().collect())
            .unwrap_or_default();
        if !tasks.is_empty() && !force {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "force",
                format!(
                    "container instance {instance_id} has {} task(s) that have not stopped: stop them first or deregister with force",
                    tasks.len()
                ),
            ));
        }
        for task_id in &tasks {
            self.update_task(task_id, |record| {
                record.request_stop(
                    StopCode::UserInitiated,
                    || FORCED_DEREGISTRATION.to_string(),
                    at,
                )
            });
        }
        if let Some(instance) = self.instances.get_mut(instance_id) {
            instance.status = InstanceStatus::Inactive;
            instance.deregistered_at = Some(at);
            instance.version += 1;
            self.placement_index.sync_dense(instance);
        }
        self.touch_assignments(instance_id);
        // Its task subnet leaves every other node's routes.
        self.touch_net_map(cluster);
        Ok(Outcome::Instances(vec![instance_id.to_string()]))
    }

    /// ListAttributes over the cluster's ACTIVE and DRAINING instances:
    /// built-in and custom attributes, optionally one name (and value).
    pub fn list_attributes(
        &self,
        cluster: &str,
        name: Option<&str>,
        value: Option<&str>,
    ) -> Vec<Attribute> {
        let mut out = Vec::new();
        for instance in self
            .instances
            .values()
            .filter(|i| i.cluster == cluster && i.status != InstanceStatus::Inactive)
        {
            for a in instance.all_attributes() {
                if name.is_some_and(|n| n != a.name)
                    || value.is_some_and(|v| a.value.as_deref() != Some(v))
                {
                    continue;
                }
                out.push(self.attribute_view(&instance.id, &a.name, a.value.clone()));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests;

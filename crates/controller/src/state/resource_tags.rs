//! TagResource, UntagResource and ListTagsForResource: the tags of a
//! cluster, task definition revision, service or task live in its record;
//! a container instance's in `instance_tags` (its record is the agent's
//! registration). A change that would break ECS's rules (50 tags at most)
//! changes nothing.

use orca_core::arn::TaggedResource;
use orca_core::task_definition::{validate_tags, Tag};
use orca_core::{ApiError, Exception};

use super::clusters::cluster_not_found;
use super::service_record::service_key;
use super::services::service_not_found;
use super::{ClusterState, Outcome};

fn resource_not_found(what: &str) -> ApiError {
    ApiError::new(
        Exception::ResourceNotFoundException,
        format!("The specified resource could not be found: {what}"),
    )
}

impl ClusterState {
    /// The tags `resource` carries.
    pub fn resource_tags(&self, resource: &TaggedResource) -> Result<Vec<Tag>, ApiError> {
        Ok(match resource {
            TaggedResource::Cluster(name) => self
                .clusters
                .get(name)
                .ok_or_else(|| cluster_not_found(name))?
                .tags
                .clone(),
            TaggedResource::TaskDefinition { family, revision } => self
                .families
                .get(family)
                .and_then(|f| f.revisions.get(revision))
                .ok_or_else(|| resource_not_found(&format!("task definition {family}:{revision}")))?
                .tags
                .clone(),
            TaggedResource::Service { cluster, name } => self
                .services
                .get(&service_key(cluster, name))
                .ok_or_else(|| service_not_found(name))?
                .tags
                .clone(),
            TaggedResource::Task { cluster, id } => self
                .tasks
                .get(id)
                .filter(|t| &t.cluster == cluster)
                .ok_or_else(|| resource_not_found(&format!("task {id}")))?
                .tags
                .clone(),
            TaggedResource::ContainerInstance { cluster, id } => {
                self.instances
                    .get(id)
                    .filter(|i| &i.cluster == cluster)
                    .ok_or_else(|| resource_not_found(&format!("container instance {id}")))?;
                self.instance_tags.get(id).cloned().unwrap_or_default()
            }
        })
    }

    fn set_resource_tags(&mut self, resource: &TaggedResource, tags: Vec<Tag>) {
        match resource {
            TaggedResource::Cluster(name) => {
                if let Some(c) = self.clusters.get_mut(name) {
                    c.tags = tags;
                }
            }
            TaggedResource::TaskDefinition { family, revision } => {
                if let Some(stored) = self
                    .families
                    .get_mut(family)
                    .and_then(|f| f.revisions.get_mut(revision))
                {
                    stored.tags = tags;
                }
            }
            TaggedResource::Service { cluster, name } => {
                if let Some(s) = self.services.get_mut(&service_key(cluster, name)) {
                    s.tags = tags;
                }
            }
            TaggedResource::Task { id, .. } => {
                self.update_task(id, |t| {
                    t.tags = tags;
                    t.version += 1;
                });
            }
            TaggedResource::ContainerInstance { id, .. } => {
                if tags.is_empty() {
                    self.instance_tags.remove(id);
                } else {
                    self.instance_tags.insert(id.clone(), tags);
                }
            }
        }
    }

    /// Adds `tags`, replacing the values of keys already there.
    pub(super) fn tag_resource(
        &mut self,
        resource: &TaggedResource,
        tags: Vec<Tag>,
    ) -> Result<Outcome, ApiError> {
        let mut merged = self.resource_tags(resource)?;
        for tag in tags {
            match merged.iter_mut().find(|t| t.key == tag.key) {
                Some(existing) => existing.value = tag.value,
                None => merged.push(tag),
            }
        }
        validate_tags(&merged, "tags")?;
        self.set_resource_tags(resource, merged.clone());
        Ok(Outcome::Tags(merged))
    }

    /// Removes the tags with these keys; keys not there are not an error.
    pub(super) fn untag_resource(
        &mut self,
        resource: &TaggedResource,
        keys: &[String],
    ) -> Result<Outcome, ApiError> {
        let mut tags = self.resource_tags(resource)?;
        tags.retain(|t| !keys.contains(&t.key));
        self.set_resource_tags(resource, tags.clone());
        Ok(Outcome::Tags(tags))
    }
}

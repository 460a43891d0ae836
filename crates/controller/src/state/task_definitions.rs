//! Applying task-definition commands: revisions, deregistration, deletion.

use orca_core::task_definition::{
    Tag, TaskDefinition, TaskDefinitionSpec, TaskDefinitionStatus, Timestamp,
};
use orca_core::{ApiError, Exception};

use super::{ClusterState, Failure, Outcome, StoredTaskDefinition};

impl ClusterState {
    pub(super) fn register_task_definition(
        &mut self,
        spec: TaskDefinitionSpec,
        tags: Vec<Tag>,
        registered_at: Timestamp,
        registered_by: String,
    ) -> Outcome {
        let family = self.families.entry(spec.family.clone()).or_default();
        family.last_revision += 1;
        let revision = family.last_revision;
        let arn = self.arn.task_definition(&spec.family, revision);
        let task_definition =
            TaskDefinition::new(spec, arn, revision, registered_at, registered_by);
        let stored = StoredTaskDefinition {
            task_definition,
            tags,
        };
        family.revisions.insert(revision, stored.clone());
        Outcome::TaskDefinition(Box::new(stored))
    }

    fn stored_mut(
        &mut self,
        family: &str,
        revision: u32,
    ) -> Result<&mut StoredTaskDefinition, ApiError> {
        self.families
            .get_mut(family)
            .and_then(|f| f.revisions.get_mut(&revision))
            .ok_or_else(|| task_definition_not_found(family, Some(revision)))
    }

    pub(super) fn deregister_task_definition(
        &mut self,
        family: &str,
        revision: u32,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        let stored = self.stored_mut(family, revision)?;
        let td = &mut stored.task_definition;
        match td.status {
            TaskDefinitionStatus::Active => {
                td.status = TaskDefinitionStatus::Inactive;
                td.deregistered_at = Some(at);
            }
            // ECS answers a repeated deregistration with the revision as it is.
            TaskDefinitionStatus::Inactive => {}
            TaskDefinitionStatus::DeleteInProgress => {
                return Err(task_definition_not_found(family, Some(revision)))
            }
        }
        Ok(Outcome::TaskDefinition(Box::new(stored.clone())))
    }

    pub(super) fn delete_task_definitions(
        &mut self,
        revisions: &[(String, u32)],
        at: Timestamp,
    ) -> Outcome {
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        for (family, revision) in revisions {
            let arn = self.arn.task_definition(family, *revision);
            let fail = |reason: &str, detail: String| Failure {
                arn: arn.clone(),
                reason: reason.to_string(),
                detail,
            };
            let Ok(stored) = self.stored_mut(family, *revision) else {
                failures.push(fail(
                    "TASK_DEFINITION_NOT_FOUND",
                    format!("{family}:{revision} does not exist"),
                ));
                continue;
            };
            let td = &mut stored.task_definition;
            match td.status {
                TaskDefinitionStatus::Inactive => {
                    td.status = TaskDefinitionStatus::DeleteInProgress;
                    td.delete_requested_at = Some(at);
                    deleted.push(td.clone());
                }
                TaskDefinitionStatus::Active => failures.push(fail(
                    "TASK_DEFINITION_NOT_INACTIVE",
                    format!("{family}:{revision} is ACTIVE: deregister it before deleting it"),
                )),
                TaskDefinitionStatus::DeleteInProgress => deleted.push(td.clone()),
            }
        }
        Outcome::DeletedTaskDefinitions { deleted, failures }
    }
}

impl ClusterState {
    pub(super) fn purge_task_definitions(&mut self, revisions: &[(String, u32)]) -> Outcome {
        let mut purged = 0;
        for (family, revision) in revisions {
            if let Some(f) = self.families.get_mut(family) {
                let deleting = f.revisions.get(revision).is_some_and(|s| {
                    s.task_definition.status == TaskDefinitionStatus::DeleteInProgress
                });
                if deleting {
                    f.revisions.remove(revision);
                    purged += 1;
                }
            }
        }
        Outcome::Purged(purged)
    }

    /// DELETE_IN_PROGRESS revisions whose deletion was requested at or
    /// before `cutoff` and that no unstopped task still runs (ECS deletes a
    /// revision once nothing references it), oldest family first.
    pub fn purgeable_task_definitions(&self, cutoff: Timestamp) -> Vec<(String, u32)> {
        let due: Vec<(String, u32)> = self
            .families
            .iter()
            .flat_map(|(name, f)| {
                f.revisions.iter().filter_map(move |(rev, s)| {
                    let td = &s.task_definition;
                    let due = td.status == TaskDefinitionStatus::DeleteInProgress
                        && td.delete_requested_at.is_some_and(|at| at.0 <= cutoff.0);
                    due.then(|| (name.clone(), *rev))
                })
            })
            .collect();
        if due.is_empty() {
            return due;
        }
        // Only unstopped tasks hold a revision, and those are exactly the
        // ones on their instances (released when STOPPED): walking them,
        // not every task, keeps a tick cheap beside a day of stopped tasks.
        let in_use: std::collections::BTreeSet<(&str, u32)> = self
            .instances
            .values()
            .flat_map(|i| i.task_ids.iter())
            .filter_map(|id| self.tasks.get(id))
            .filter(|t| !t.is_stopped())
            .map(|t| (t.family.as_str(), t.revision))
            .collect();
        due.into_iter()
            .filter(|(name, rev)| !in_use.contains(&(name.as_str(), *rev)))
            .collect()
    }
}

pub fn task_definition_not_found(family: &str, revision: Option<u32>) -> ApiError {
    let what = match revision {
        Some(r) => format!("{family}:{r}"),
        None => format!("an ACTIVE revision of family '{family}'"),
    };
    ApiError::field(
        Exception::ClientException,
        "taskDefinition",
        format!("unable to describe task definition: {what} does not exist"),
    )
}

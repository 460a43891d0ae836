//! The tasks' derived indexes: ListTasks' order (cluster, desired status,
//! id) and the STOPPED tasks by the time their retention started. With
//! 100,000 stopped tasks kept for a day, a ListTasks page and a purge tick
//! then cost a seek and the page, not a walk over every task.
//!
//! Derived data, like the placement index: never serialized, rebuilt from
//! the records on restore (`rebuild_indexes`). Every change to a task goes
//! through [`ClusterState::insert_task`], [`ClusterState::update_task`] or
//! [`ClusterState::remove_task`], which keep it current;
//! `check_task_index` compares it with one built from the records.

use std::ops::Bound;

use imbl::{OrdMap, OrdSet};
use orca_core::task::TaskStatus;
use orca_core::task_definition::Timestamp;

use super::placement_index::IndexMismatch;
use super::{ClusterState, TaskRecord};

/// The ordered sets. Persistent sets, like the state's maps, so the clone
/// every apply publishes shares them instead of copying 100,000 keys.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskIndex {
    /// Ids by (cluster, desired status): ListTasks pages in id order within
    /// a cluster and desired status, resuming after the token's id. Nested
    /// so that placing a task compares ids only; no empty sets are kept.
    by_desired: OrdMap<(String, TaskStatus), OrdSet<String>>,
    /// (retention start, id) of STOPPED tasks: the purge takes the oldest
    /// first and stops at the cutoff.
    stopped: OrdSet<(Timestamp, String)>,
}

/// The facts of one task the index is keyed by; a change to a task moves
/// its entries only if these differ.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TaskKeys {
    cluster: String,
    desired: TaskStatus,
    id: String,
    stopped_since: Option<Timestamp>,
}

impl TaskKeys {
    fn of(task: &TaskRecord) -> Self {
        TaskKeys {
            cluster: task.cluster.clone(),
            desired: task.desired_status,
            id: task.id.clone(),
            stopped_since: task.is_stopped().then(|| retention_start(task)),
        }
    }
}

/// When a STOPPED task's retention starts: its stoppedAt, else the first
/// earlier stop time it has. An agent that reported STOPPED without a
/// stoppedAt must not make a long-lived task due at once (its createdAt
/// is the last resort).
pub fn retention_start(task: &TaskRecord) -> Timestamp {
    let t = &task.times;
    t.stopped_at
        .or(t.execution_stopped_at)
        .or(t.stopping_at)
        .unwrap_or(t.created_at)
}

impl TaskIndex {
    /// The index of `tasks`, built from the records.
    pub fn build(tasks: &OrdMap<String, TaskRecord>) -> Self {
        let mut index = TaskIndex::default();
        for task in tasks.values() {
            index.insert(&TaskKeys::of(task));
        }
        index
    }

    fn insert(&mut self, keys: &TaskKeys) {
        self.by_desired
            .entry((keys.cluster.clone(), keys.desired))
            .or_default()
            .insert(keys.id.clone());
        if let Some(since) = keys.stopped_since {
            self.stopped.insert((since, keys.id.clone()));
        }
    }

    fn remove(&mut self, keys: &TaskKeys) {
        let group = (keys.cluster.clone(), keys.desired);
        if let Some(ids) = self.by_desired.get_mut(&group) {
            ids.remove(&keys.id);
            if ids.is_empty() {
                self.by_desired.remove(&group);
            }
        }
        if let Some(since) = keys.stopped_since {
            self.stopped.remove(&(since, keys.id.clone()));
        }
    }

    /// Ids of `cluster`'s tasks wanted `desired`, in id order, after `after`
    /// (exclusive) if given.
    pub fn ids<'a>(
        &'a self,
        cluster: &'a str,
        desired: TaskStatus,
        after: Option<&str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        let start = match after {
            Some(id) => Bound::Excluded(id.to_string()),
            None => Bound::Unbounded,
        };
        self.by_desired
            .get(&(cluster.to_string(), desired))
            .into_iter()
            .flat_map(move |ids| ids.range((start.clone(), Bound::Unbounded)))
            .map(String::as_str)
    }

    /// Ids of STOPPED tasks whose retention started at or before `cutoff`,
    /// oldest first (ties by id).
    pub fn stopped_through(&self, cutoff: Timestamp) -> impl Iterator<Item = &str> + '_ {
        self.stopped
            .iter()
            .take_while(move |(since, _)| *since <= cutoff)
            .map(|(_, id)| id.as_str())
    }

    /// How many tasks are indexed, and how many of them are STOPPED.
    pub fn sizes(&self) -> (usize, usize) {
        let indexed = self.by_desired.values().map(OrdSet::len).sum();
        (indexed, self.stopped.len())
    }
}

impl ClusterState {
    /// Adds a new task (or replaces one with the same id).
    pub(super) fn insert_task(&mut self, record: TaskRecord) {
        if let Some(old) = self.tasks.get(&record.id) {
            self.task_index.remove(&TaskKeys::of(old));
        }
        self.task_index.insert(&TaskKeys::of(&record));
        self.tasks.insert(record.id.clone(), record);
    }

    /// Changes one task in place and moves its index entries if a keyed
    /// fact changed. None if there is no such task.
    pub(super) fn update_task<R>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut TaskRecord) -> R,
    ) -> Option<R> {
        let record = self.tasks.get_mut(id)?;
        let before = TaskKeys::of(record);
        let result = change(record);
        let after = TaskKeys::of(record);
        if before != after {
            self.task_index.remove(&before);
            self.task_index.insert(&after);
        }
        Some(result)
    }

    /// Forgets a task.
    pub(super) fn remove_task(&mut self, id: &str) -> Option<TaskRecord> {
        let record = self.tasks.remove(id)?;
        self.task_index.remove(&TaskKeys::of(&record));
        Some(record)
    }

    /// Whether the task index `apply` kept holds what one built from the
    /// records does (tests; a debugging aid on a live state).
    pub fn check_task_index(&self) -> Result<(), IndexMismatch> {
        let built = TaskIndex::build(&self.tasks);
        if built == self.task_index {
            return Ok(());
        }
        if built.by_desired != self.task_index.by_desired {
            let flat = |index: &TaskIndex| -> OrdSet<(String, TaskStatus, String)> {
                let groups = index.by_desired.iter();
                groups
                    .flat_map(|((c, d), ids)| ids.iter().map(|id| (c.clone(), *d, id.clone())))
                    .collect()
            };
            return Err(IndexMismatch(format!(
                "tasks by desired status: {}",
                first_difference(&flat(&self.task_index), &flat(&built))
            )));
        }
        Err(IndexMismatch(format!(
            "stopped tasks: {}",
            first_difference(&self.task_index.stopped, &built.stopped)
        )))
    }
}

/// The first key each set has that the other lacks, for the mismatch's
/// message.
fn first_difference<K: Ord + Clone + std::fmt::Debug>(
    kept: &OrdSet<K>,
    built: &OrdSet<K>,
) -> String {
    let extra = kept.iter().find(|k| !built.contains(*k));
    let missing = built.iter().find(|k| !kept.contains(*k));
    format!("kept but not built {extra:?}, built but not kept {missing:?}")
}

//! RunTask's run timeout (orca's, beyond ECS): which tasks have been
//! RUNNING longer than they were given. Pure: the leader's loop passes the
//! time and proposes the stops ([`crate::leader`]).
//!
//! The timeout counts from the task's `startedAt` (RUNNING), so a slow
//! image pull does not eat a batch job's time; a task that never gets to
//! RUNNING is never stopped by it.

use orca_core::task::TaskStatus;
use orca_core::task_definition::Timestamp;

use super::ClusterState;

/// A task past its run timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overdue {
    pub cluster: String,
    pub task_id: String,
    pub timeout_seconds: u32,
}

/// The stoppedReason of a task stopped by its run timeout.
pub fn reason(timeout_seconds: u32) -> String {
    format!("Task stopped: it ran longer than its run timeout of {timeout_seconds} s (runTimeoutSeconds)")
}

impl ClusterState {
    /// Tasks still wanted RUNNING whose run timeout has passed at `now`,
    /// in task-id order. Only tasks wanted RUNNING are looked at (the task
    /// index), so the stopped history does not slow it.
    pub fn overdue_tasks(&self, now: Timestamp) -> Vec<Overdue> {
        let mut out: Vec<Overdue> = self
            .clusters
            .keys()
            .flat_map(|cluster| self.task_index.ids(cluster, TaskStatus::Running, None))
            .filter_map(|id| self.tasks.get(id))
            .filter_map(|t| {
                let secs = t.run_timeout_seconds?;
                let started = t.times.started_at?;
                let deadline = started.0.saturating_add(i64::from(secs) * 1000);
                (now.0 >= deadline).then(|| Overdue {
                    cluster: t.cluster.clone(),
                    task_id: t.id.clone(),
                    timeout_seconds: secs,
                })
            })
            .collect();
        out.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        out
    }
}

//! The tasks this node holds: one [`TaskRunner`] per assigned task. The
//! leader sends the full assignment list (a level); the manager starts a
//! runner for each new task, passes changes (desired STOPPED) to existing
//! ones, and asks a runner whose task is no longer assigned to stop. A task
//! that already ended here (see [`crate::finished`]) is not run again: its
//! saved final report is sent instead.

use std::collections::BTreeMap;
use std::sync::Arc;

use orca_core::agent_protocol::TaskAssignment;
use orca_core::task::{StopCode, TaskStatus};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::runner::{RunnerContext, TaskRunner};

struct Held {
    assignment: watch::Sender<TaskAssignment>,
    handle: JoinHandle<()>,
}

/// The runners of this node.
pub struct TaskManager {
    ctx: Arc<RunnerContext>,
    tasks: BTreeMap<String, Held>,
    /// No assignments have arrived yet in this process: the first ones may
    /// name tasks whose containers a previous agent process left running.
    first: bool,
}

impl TaskManager {
    pub fn new(ctx: Arc<RunnerContext>) -> Self {
        TaskManager {
            ctx,
            tasks: BTreeMap::new(),
            first: true,
        }
    }

    /// Applies the leader's full list of assignments.
    pub fn assign(&mut self, assignments: Vec<TaskAssignment>) {
        // Runners that finished and are no longer assigned are done with.
        let assigned: std::collections::BTreeSet<String> =
            assignments.iter().map(|a| a.task_id.clone()).collect();
        self.ctx.finished.retain(&assigned);
        self.tasks
            .retain(|id, held| assigned.contains(id) || !held.handle.is_finished());
        for (id, held) in &self.tasks {
            if !assigned.contains(id) {
                // The controller no longer wants it: stop it.
                held.assignment.send_modify(|a| {
                    if a.desired_status != TaskStatus::Stopped {
                        a.desired_status = TaskStatus::Stopped;
                        a.stop_code
                            .get_or_insert(StopCode::ServiceSchedulerInitiated);
                        a.stopped_reason.get_or_insert_with(|| {
                            "the controller no longer assigns this task".into()
                        });
                    }
                });
            }
        }
        for a in assignments {
            match self.tasks.get(&a.task_id) {
                Some(held) => {
                    held.assignment.send_if_modified(|current| {
                        let changed = current.desired_status != a.desired_status
                            || current.stop_code != a.stop_code;
                        if changed {
                            *current = a.clone();
                        }
                        changed
                    });
                }
                None => {
                    let id = a.task_id.clone();
                    if let Some(report) = self.ctx.finished.get(&id) {
                        // It ended here before a restart: report, never rerun.
                        tracing::info!(task = %id, "task already ended here: sending its final report");
                        self.ctx.reporter.update(report);
                        let (tx, _) = watch::channel(a);
                        let handle = tokio::spawn(async {});
                        self.tasks.insert(
                            id,
                            Held {
                                assignment: tx,
                                handle,
                            },
                        );
                        continue;
                    }
                    tracing::info!(task = %id, desired = a.desired_status.name(), "task assigned");
                    let (tx, rx) = watch::channel(a);
                    let runner = TaskRunner::new(self.ctx.clone(), rx, self.first);
                    let handle = tokio::spawn(runner.run());
                    self.tasks.insert(
                        id,
                        Held {
                            assignment: tx,
                            handle,
                        },
                    );
                }
            }
        }
        self.first = false;
    }

    /// Tasks whose runner has not finished.
    pub fn active(&self) -> usize {
        self.tasks
            .values()
            .filter(|h| !h.handle.is_finished())
            .count()
    }
}

impl Drop for TaskManager {
    /// The agent is stopping: its runners stop with it (as they would with
    /// the process); the containers keep running in containerd's shims and a
    /// restarted agent adopts them.
    fn drop(&mut self) {
        for held in self.tasks.values() {
            held.handle.abort();
        }
    }
}

//! Which containers are checked, and their checkers.
//!
//! Level-triggered like the loop: after each turn the loop hands
//! [`Checkers::sync`] the containers that should be checked now ([`wanted`]:
//! running, with a health check, of a task still assigned and not finished)
//! and it starts the missing checkers and cancels the rest. So a checker
//! goes when its container stops or its task goes away, and an agent
//! restarted next to running containers checks them again (their start
//! period counted from when it took them over: the start time is not kept).

use std::collections::BTreeMap;
use std::sync::Arc;

use orca_core::task::effective_container;
use orca_runtime::{ContainerRuntime, ProcessState};
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::checker::{self, Target};
use super::state::HealthConfig;
use crate::reconcile::{Completion, World};
use crate::runner::spec;

/// The checkers running, by container id.
pub struct Checkers {
    /// Where the checks are exec'd.
    runtime: Arc<dyn ContainerRuntime>,
    /// The loop's completion channel, where health updates go.
    updates: mpsc::UnboundedSender<Completion>,
    /// Each checker's target (a changed one is restarted) and handle.
    running: BTreeMap<String, (Target, AbortHandle)>,
    /// Every checker task, aborted and awaited on shutdown.
    tasks: JoinSet<()>,
}

/// The containers to check now, by container id.
pub fn wanted(world: &World) -> BTreeMap<String, Target> {
    let mut out = BTreeMap::new();
    let Some(assignments) = &world.assignments else {
        return out;
    };
    for (task_id, a) in assignments {
        if world.finished.contains_key(task_id) {
            continue;
        }
        for (index, def) in a
            .task_definition
            .spec
            .container_definitions
            .iter()
            .enumerate()
        {
            let def = effective_container(def, &a.overrides);
            let Some(config) = def
                .health_check
                .as_ref()
                .and_then(HealthConfig::from_definition)
            else {
                continue;
            };
            let id = spec::runtime_id(task_id, index, &def.name);
            let running = world
                .containers
                .get(&id)
                .is_some_and(|c| matches!(c.state, ProcessState::Running { .. }));
            if running {
                out.insert(
                    id.clone(),
                    Target {
                        task_id: task_id.clone(),
                        container_id: id,
                        config,
                    },
                );
            }
        }
    }
    out
}

impl Checkers {
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        updates: mpsc::UnboundedSender<Completion>,
    ) -> Checkers {
        Checkers {
            runtime,
            updates,
            running: BTreeMap::new(),
            tasks: JoinSet::new(),
        }
    }

    /// Starts a checker for each wanted container without one, and cancels
    /// those no longer wanted.
    pub fn sync(&mut self, wanted: BTreeMap<String, Target>) {
        while self.tasks.try_join_next().is_some() {}
        self.running.retain(|id, (target, handle)| {
            let keep = !handle.is_finished() && wanted.get(id) == Some(target);
            if !keep {
                tracing::debug!(task = %target.task_id, container = %id, "health checker stopped");
                handle.abort();
            }
            keep
        });
        for (id, target) in wanted {
            if self.running.contains_key(&id) {
                continue;
            }
            tracing::debug!(task = %target.task_id, container = %id, "health checker started");
            let span = tracing::info_span!("health", task = %target.task_id, container = %id);
            let handle = self.tasks.spawn(
                checker::run(
                    self.runtime.clone(),
                    target.clone(),
                    Instant::now(),
                    self.updates.clone(),
                )
                .instrument(span),
            );
            self.running.insert(id, (target, handle));
        }
    }

    /// Containers being checked.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Cancels every checker and waits for them to go.
    pub async fn shutdown(&mut self) {
        self.running.clear();
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
    }
}

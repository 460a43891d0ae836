//! The agent's one loop: observe, reconcile, execute, wait.
//!
//! It relists containerd (and the node's namespaces and addresses) every
//! `relist_interval`, whenever the runtime's event counter moves (events
//! are hints, never state), and after containerd was unreachable (with
//! back-off, so every reconnect is followed by a relist). Between relists,
//! completed operations move the observed world forward. Each turn runs
//! the pure reconcile step and hands its actions to the executor, then
//! matches the health checkers to the running containers with a check
//! (`crate::health`). The loop is the only writer of the world, so every
//! task's status has one owner.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::TaskAssignment;
use orca_core::task_definition::Timestamp;
use orca_net::NetworkConfigurator;
use orca_runtime::{ContainerListing, ContainerRuntime, RuntimeError};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::executor::Executor;
use crate::finished::FinishedTasks;
use crate::gc::{Collector, GcConfig};
use crate::health::{checkers, Checkers};
use crate::reconcile::{reconcile, Completion, Op, Settings, World};
use crate::reporter::Reporter;

/// Shortest and longest pause between relists while containerd is
/// unreachable.
const RELIST_BACKOFF_MIN: Duration = Duration::from_millis(100);
const RELIST_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The loop's timers.
#[derive(Debug, Clone)]
pub struct LoopConfig {
    /// containerd is listed at least this often.
    pub relist_interval: Duration,
    /// The garbage collection pass runs this often.
    pub gc_interval: Duration,
}

/// The loop and everything it owns.
pub struct Node {
    /// What the reconcile step looks at.
    world: World,
    settings: Settings,
    config: LoopConfig,
    runtime: Arc<dyn ContainerRuntime>,
    network: Arc<dyn NetworkConfigurator>,
    executor: Executor,
    completions: mpsc::UnboundedReceiver<Completion>,
    /// The controller's latest list of assignments (None before the first).
    assignments: watch::Receiver<Option<Vec<TaskAssignment>>>,
    /// Moves when the runtime saw something happen.
    changes: watch::Receiver<u64>,
    collector: Collector,
    /// One health checker per running container with a check, beside the
    /// loop (their news comes back as completions).
    health: Checkers,
}

/// What one relist saw: containers, task networks, task directories.
type Observation = (Vec<ContainerListing>, BTreeSet<String>, BTreeSet<String>);

fn wall() -> Timestamp {
    Timestamp(chrono::Utc::now().timestamp_millis())
}

/// Everything [`Node::new`] needs.
pub struct NodeParts {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub network: Arc<dyn NetworkConfigurator>,
    pub reporter: Arc<Reporter>,
    pub finished: FinishedTasks,
    pub settings: Settings,
    pub config: LoopConfig,
    pub gc: GcConfig,
    pub assignments: watch::Receiver<Option<Vec<TaskAssignment>>>,
}

impl Node {
    /// Loads the final reports on disk; nothing else is read until the loop
    /// runs.
    pub fn new(parts: NodeParts) -> std::io::Result<Node> {
        let (tx, completions) = mpsc::unbounded_channel();
        let world = World {
            finished: parts.finished.load_all()?,
            ..World::default()
        };
        let changes = parts.runtime.changes();
        let health = Checkers::new(parts.runtime.clone(), tx.clone());
        let collector = Collector::new(parts.gc, parts.settings.logs_dir.clone());
        Ok(Node {
            world,
            executor: Executor::new(
                parts.runtime.clone(),
                parts.network.clone(),
                parts.reporter,
                parts.finished,
                tx,
                parts.settings.volumes.clone(),
            ),
            settings: parts.settings,
            config: parts.config,
            runtime: parts.runtime,
            network: parts.network,
            completions,
            assignments: parts.assignments,
            changes,
            collector,
            health,
        })
    }

    /// One look at the runtime, the node's networks and task directories.
    async fn observe(&self) -> Result<Observation, RuntimeError> {
        let containers = self.runtime.list().await?;
        let networks = self
            .network
            .held()
            .await
            .map_err(|e| RuntimeError::Containerd(format!("listing task networks: {e}")))?;
        let settings = self.settings.volumes.clone();
        let task_dirs = tokio::task::spawn_blocking(move || crate::volumes::store::held(&settings))
            .await
            .map_err(|e| RuntimeError::Containerd(format!("listing task volumes: {e}")))?
            .map_err(|e| RuntimeError::Containerd(format!("listing task volumes: {e}")))?;
        Ok((containers, networks, task_dirs))
    }

    fn drain_completions(&mut self) {
        while let Ok(c) = self.completions.try_recv() {
            self.world.complete(c, Instant::now(), wall());
        }
    }

    fn take_assignments(&mut self) {
        let latest = self.assignments.borrow_and_update().clone();
        if let Some(list) = latest {
            let map = crate::runner::admit::by_task_id(list);
            self.world.assignments = Some(map);
        }
    }

    fn creating(&self) -> bool {
        self.world
            .tasks
            .values()
            .any(|m| m.in_flight.iter().any(|op| matches!(op, Op::Container(_))))
    }

    /// Runs until `shutdown`. Containers keep running when it ends.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let mut relist_due = true;
        let mut relist_not_before = Instant::now();
        let mut next_periodic = Instant::now();
        let mut backoff = RELIST_BACKOFF_MIN;
        let mut observed = false;
        let mut next_gc = Instant::now() + self.config.gc_interval;
        let mut events_closed = false;
        let mut first_look = true;
        self.take_assignments();
        loop {
            self.executor.reap_finished();
            self.drain_completions();
            let now = Instant::now();
            if now >= next_periodic {
                relist_due = true;
            }
            if relist_due && now >= relist_not_before {
                match self.observe().await {
                    Ok((containers, networks, task_dirs)) => {
                        if first_look {
                            // What a previous agent process left: taken
                            // over as it is, never started again.
                            for c in &containers {
                                tracing::info!(container = %c.id, state = ?c.state, "adopting an existing container");
                            }
                            first_look = false;
                        }
                        if !observed || backoff > RELIST_BACKOFF_MIN {
                            tracing::info!(
                                containers = containers.len(),
                                networks = networks.len(),
                                "runtime listed"
                            );
                        }
                        self.world
                            .replace_observed(&containers, networks, task_dirs);
                        observed = true;
                        relist_due = false;
                        backoff = RELIST_BACKOFF_MIN;
                        next_periodic = Instant::now() + self.config.relist_interval;
                    }
                    Err(e) => {
                        if e.is_unavailable() {
                            tracing::warn!(error = %e, retry_in = ?backoff, "containerd unreachable");
                        } else {
                            tracing::warn!(error = %e, retry_in = ?backoff, "relist failed");
                        }
                        // Nothing is concluded from an old picture of a
                        // runtime that may have changed behind our back.
                        observed = false;
                        relist_not_before = Instant::now() + backoff;
                        backoff = (backoff * 2).min(RELIST_BACKOFF_MAX);
                    }
                }
                // Outcomes that arrived meanwhile only move it forward.
                self.drain_completions();
            }
            let mut wake = next_periodic.min(next_gc);
            if relist_due {
                wake = wake.min(relist_not_before);
            }
            if observed {
                let plan = reconcile(&self.world, &self.settings, Instant::now(), wall());
                if let Some(at) = plan.wake_at {
                    wake = wake.min(at);
                }
                let (now, wall) = (Instant::now(), wall());
                for action in plan.actions {
                    self.world.dispatched(&action, now, wall);
                    self.executor.execute(action);
                }
                self.health.sync(checkers::wanted(&self.world));
                if Instant::now() >= next_gc {
                    let creating = self.creating();
                    self.collector
                        .run(&self.runtime, &self.world, creating, Instant::now())
                        .await;
                    next_gc = Instant::now() + self.config.gc_interval;
                    continue;
                }
            }
            tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(c) = self.completions.recv() => {
                    self.world.complete(c, Instant::now(), wall());
                }
                changed = self.assignments.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.take_assignments();
                }
                changed = self.changes.changed(), if !events_closed => {
                    match changed {
                        Ok(()) => relist_due = true,
                        // The runtime has no events: periodic relists only.
                        Err(_) => events_closed = true,
                    }
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
        }
        self.health.shutdown().await;
        self.executor.shutdown().await;
    }
}

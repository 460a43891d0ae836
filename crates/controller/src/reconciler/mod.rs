//! The service reconciler: a pure function from one service, its tasks and
//! the cluster view at a given time to a [`Step`]: the tasks to stop, how
//! many to start for the primary deployment, and the service's new rollout
//! progress (deployment states, the circuit breaker's count, the throttle,
//! events). No I/O, no clock: `now` is an argument, so the same inputs give
//! the same step on any leader (ecs-semantics.md 4.1 to 4.5).
//!
//! Level-triggered: nothing here remembers a previous call. What must not
//! count twice (a failed task for the breaker) is recorded in the service's
//! deployments (`judged`) by the step's commit.
//!
//! - `health.rs`: when a task counts as healthy, unhealthy or failed.
//! - `rolling.rs`: ECS's minimumHealthyPercent / maximumPercent arithmetic
//!   turning the tasks into stops and starts.
//! - `rollout.rs`: the circuit breaker, rollback, the throttle and steady
//!   state.
//! - `daemon_room.rs`: which replica task moves so a DAEMON's task lands.

mod daemon_room;
mod health;
mod rolling;
mod rollout;

use orca_core::task_definition::Timestamp;

use crate::state::services::ServiceStepCommand;
use crate::state::{ClusterView, DeploymentRecord, ServiceRecord, TaskRecord, Throttle};

pub use daemon_room::{make_room, Room};
pub use health::UNHEALTHY_REASON;

/// The reconciler's timers, ECS's defaults for users, short in tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timers {
    /// Without a container health check a task counts as healthy this long
    /// after reaching RUNNING (ECS: 40 s).
    pub healthy_after_running_ms: i64,
    /// The crash-loop throttle's first delay (ECS: about 10 s), doubling.
    pub throttle_base_ms: i64,
    /// ... up to this (ECS: 15 min).
    pub throttle_max_ms: i64,
    /// An identical event is not repeated within this (ECS: 6 h).
    pub event_dedupe_ms: i64,
}

impl Default for Timers {
    fn default() -> Self {
        Timers {
            healthy_after_running_ms: 40_000,
            throttle_base_ms: 10_000,
            throttle_max_ms: 15 * 60_000,
            event_dedupe_ms: 6 * 3_600_000,
        }
    }
}

/// A task the step stops, with ECS's stoppedReason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StopOrder {
    pub task_id: String,
    pub reason: String,
}

/// Tasks the step starts for a deployment, through the plan applier.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartOrder {
    pub deployment_id: String,
    pub family: String,
    pub revision: u32,
    pub count: u32,
    /// A DAEMON service's starts: one task on each of these instances
    /// (`count` of them). Empty for a REPLICA service: the scheduler places.
    pub instances: Vec<String>,
}

/// What a step changes in the service record.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    pub deployments: Vec<DeploymentRecord>,
    pub throttle: Throttle,
    pub last_completed: Option<(String, u32)>,
    /// DRAINING becomes INACTIVE once a deleted service has no task left.
    pub status: orca_core::service::ServiceStatus,
    /// New event messages, oldest first; duplicates already suppressed.
    pub events: Vec<String>,
}

/// One reconciliation of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub stops: Vec<StopOrder>,
    pub start: Option<StartOrder>,
    pub progress: Progress,
    /// Running and pending tasks, as DescribeServices counts them.
    pub running: u32,
    pub pending: u32,
}

impl Step {
    /// Whether committing the step changes anything.
    pub fn changes(&self, service: &ServiceRecord) -> bool {
        !self.stops.is_empty()
            || !self.progress.events.is_empty()
            || self.progress.deployments != service.deployments
            || self.progress.throttle != service.throttle
            || self.progress.last_completed != service.last_completed
            || self.progress.status != service.status
    }

    /// The step as the command that commits it, computed from `service`'s
    /// version at `now`.
    pub fn command(&self, service: &ServiceRecord, now: Timestamp) -> ServiceStepCommand {
        let p = &self.progress;
        ServiceStepCommand {
            cluster: service.cluster.clone(),
            name: service.name.clone(),
            version: service.version,
            stops: self
                .stops
                .iter()
                .map(|s| (s.task_id.clone(), s.reason.clone()))
                .collect(),
            deployments: p.deployments.clone(),
            throttle: p.throttle.clone(),
            last_completed: p.last_completed.clone(),
            status: p.status,
            events: p.events.clone(),
            at: now,
        }
    }
}

/// Reconciles `service`, whose tasks (every task of its group in its
/// cluster, stopped ones included) are `tasks`, at `now`.
pub fn reconcile(
    view: &ClusterView,
    service: &ServiceRecord,
    tasks: &[&TaskRecord],
    now: Timestamp,
    timers: &Timers,
) -> Step {
    let judge = health::Judge::new(view, service, now, timers);
    let mut progress = Progress {
        deployments: service.deployments.clone(),
        throttle: service.throttle.clone(),
        last_completed: service.last_completed.clone(),
        status: service.status,
        events: Vec::new(),
    };
    let mut events = rollout::Events::new(service, now, timers);
    rollout::judge_primary(&judge, service, tasks, &mut progress, &mut events, timers);
    let plan = rolling::plan(&judge, service, tasks, &progress, now);
    rollout::finish(service, tasks, &plan, &mut progress, &mut events);
    progress.events = events.into_messages();
    Step {
        stops: plan.stops,
        start: plan.start,
        running: plan.running,
        pending: plan.pending,
        progress,
    }
}

#[cfg(test)]
mod tests;

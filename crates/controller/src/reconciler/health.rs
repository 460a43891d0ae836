//! When a service's task counts as healthy, unhealthy, misplaced or failed,
//! as ECS counts (ecs-semantics.md 4.2, 4.3).

use std::collections::BTreeMap;

use orca_core::task::{HealthStatus, StopCode, TaskStatus};
use orca_core::task_definition::Timestamp;

use super::Timers;
use crate::state::instances::InstanceStatus;
use crate::state::{ClusterView, ServiceRecord, TaskRecord};

/// ECS's stoppedReason for a task replaced after failing its health checks.
pub const UNHEALTHY_REASON: &str = "Task failed container health checks";

/// How a stopped task failed, for the breaker and the throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Stopped before it ever reached RUNNING (stage 1; throttles).
    NeverStarted,
    /// Reached RUNNING, then failed its health checks or had an essential
    /// container exit (stage 2).
    AfterRunning,
}

pub(super) struct Judge<'a> {
    view: &'a ClusterView,
    now: Timestamp,
    healthy_after_ms: i64,
    grace_ms: i64,
    /// Whether an essential container of (family, revision) has a health check.
    checked: BTreeMap<(&'a str, u32), bool>,
}

impl<'a> Judge<'a> {
    pub(super) fn new(
        view: &'a ClusterView,
        service: &'a ServiceRecord,
        now: Timestamp,
        timers: &Timers,
    ) -> Self {
        let checked = service
            .deployments
            .iter()
            .map(|d| {
                let has_check = view
                    .families
                    .get(&d.family)
                    .and_then(|f| f.revisions.get(&d.revision))
                    .is_some_and(|s| {
                        s.task_definition
                            .spec
                            .container_definitions
                            .iter()
                            .any(|c| c.essential.unwrap_or(true) && c.health_check.is_some())
                    });
                ((d.family.as_str(), d.revision), has_check)
            })
            .collect();
        Judge {
            view,
            now,
            healthy_after_ms: timers.healthy_after_running_ms,
            grace_ms: i64::from(service.health_check_grace_period_seconds.unwrap_or(0)) * 1000,
            checked,
        }
    }

    fn has_health_check(&self, task: &TaskRecord) -> bool {
        self.checked
            .get(&(task.family.as_str(), task.revision))
            .copied()
            .unwrap_or(false)
    }

    /// When the task began to count as healthy, if it does now: with a
    /// health check once HEALTHY (from when it started: the agent reports
    /// no time for it); without one, `healthy_after` past RUNNING.
    pub(super) fn healthy_since(&self, task: &TaskRecord) -> Option<Timestamp> {
        if task.last_status != TaskStatus::Running
            || task.desired_status != TaskStatus::Running
            || task.health == HealthStatus::Unhealthy
        {
            return None;
        }
        let started = task.times.started_at?;
        if self.has_health_check(task) {
            (task.health == HealthStatus::Healthy).then_some(started)
        } else {
            let since = Timestamp(started.0.saturating_add(self.healthy_after_ms));
            (since.0 <= self.now.0).then_some(since)
        }
    }

    pub(super) fn is_healthy(&self, task: &TaskRecord) -> bool {
        self.healthy_since(task).is_some()
    }

    /// UNHEALTHY past the service's healthCheckGracePeriodSeconds.
    pub(super) fn is_unhealthy(&self, task: &TaskRecord) -> bool {
        task.health == HealthStatus::Unhealthy
            && task
                .times
                .started_at
                .is_some_and(|s| s.0.saturating_add(self.grace_ms) <= self.now.0)
    }

    /// On an instance that takes no more tasks of a service (DRAINING,
    /// deregistered or gone), or making room there for a DAEMON's task.
    pub(super) fn is_misplaced(&self, task: &TaskRecord) -> bool {
        task.making_room_for.is_some()
            || self
                .view
                .instances
                .get(&task.instance_id)
                .is_none_or(|i| i.status != InstanceStatus::Active)
    }

    /// A DAEMON service's instances (see `ClusterState::daemon_targets`).
    pub(super) fn daemon_targets(
        &self,
        service: &ServiceRecord,
    ) -> std::collections::BTreeSet<&'a str> {
        self.view
            .daemon_targets(service)
            .into_iter()
            .map(|i| i.id.as_str())
            .collect()
    }

    pub(super) fn is_connected(&self, instance_id: &str) -> bool {
        self.view
            .instances
            .get(instance_id)
            .is_some_and(|i| i.agent_connected)
    }

    /// The instance's availability zone, for scale-in.
    pub(super) fn zone(&self, task: &TaskRecord) -> &'a str {
        self.view
            .instances
            .get(&task.instance_id)
            .and_then(|i| i.attribute(crate::scheduler::AVAILABILITY_ZONE))
            .and_then(|a| a.value.as_deref())
            .unwrap_or("")
    }

    /// How a stopped task failed, if it did. Stops the scheduler, a user or
    /// a lost instance decided are not the task's failure.
    pub(super) fn failure(&self, task: &TaskRecord) -> Option<Failure> {
        if !task.is_stopped() {
            return None;
        }
        let health_stop = task.stopped_reason.as_deref() == Some(UNHEALTHY_REASON);
        match (task.times.started_at, task.stop_code) {
            (_, Some(StopCode::ServiceSchedulerInitiated)) if health_stop => {
                Some(Failure::AfterRunning)
            }
            (
                _,
                Some(
                    StopCode::ServiceSchedulerInitiated
                    | StopCode::UserInitiated
                    | StopCode::InfrastructureHealth
                    | StopCode::SpotInterruption
                    | StopCode::TerminationNotice,
                ),
            ) => None,
            (None, _) => Some(Failure::NeverStarted),
            (Some(_), Some(StopCode::EssentialContainerExited)) => Some(Failure::AfterRunning),
            (Some(_), _) => None,
        }
    }

    /// When a stopped task ended.
    pub(super) fn ended_at(task: &TaskRecord) -> Timestamp {
        let t = &task.times;
        t.stopped_at
            .or(t.execution_stopped_at)
            .or(t.stopping_at)
            .unwrap_or(t.created_at)
    }
}

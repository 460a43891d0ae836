//! Rollout progress (ecs-semantics.md 4.1, 4.3 to 4.5): the circuit
//! breaker's count and trip, rollback to the last COMPLETED task definition,
//! the crash-loop throttle, steady state, and the service's events with
//! duplicates suppressed.

use orca_core::service::{DeploymentStatus, RolloutState, ServiceStatus};
use orca_core::task_definition::Timestamp;

use super::health::{Failure, Judge};
use super::rolling::RollingPlan;
use super::{Progress, Timers};
use crate::state::{DeploymentRecord, ServiceRecord, TaskRecord, Throttle};

/// The step's new events, deduplicated against the service's latest.
pub(super) struct Events<'s> {
    service: &'s ServiceRecord,
    now: Timestamp,
    window_ms: i64,
    messages: Vec<String>,
}

impl<'s> Events<'s> {
    pub(super) fn new(service: &'s ServiceRecord, now: Timestamp, timers: &Timers) -> Self {
        Events {
            service,
            now,
            window_ms: timers.event_dedupe_ms,
            messages: Vec::new(),
        }
    }

    /// Adds `(service <name>) <text>` unless it is the latest event already
    /// (within the window) or was added in this step: a condition that
    /// lasts is reported once, again only after something else happened.
    pub(super) fn push(&mut self, text: impl AsRef<str>) {
        let message = format!("(service {}) {}", self.service.name, text.as_ref());
        if self.messages.contains(&message) {
            return;
        }
        let latest = self.messages.last().or_else(|| {
            self.service
                .events
                .first()
                .filter(|e| self.now.0.saturating_sub(e.at.0) < self.window_ms)
                .map(|e| &e.message)
        });
        if latest != Some(&message) {
            self.messages.push(message);
        }
    }

    pub(super) fn into_messages(self) -> Vec<String> {
        self.messages
    }
}

/// What a task of the primary deployment tells the breaker and throttle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Failed(FailureOrder),
    Healthy,
    /// Stopped, but not its own failure (scaled in, lost instance...).
    Neutral,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum FailureOrder {
    NeverStarted,
    AfterRunning,
}

/// Judges the primary deployment's tasks not judged before, in the order
/// things happened to them: failures count towards the breaker (while the
/// rollout is IN_PROGRESS) and, before RUNNING, the throttle; a healthy task
/// resets both (the breaker only with resetOnHealthyTask). A count at the
/// threshold fails the deployment and, with rollback, starts a deployment of
/// the last COMPLETED task definition.
pub(super) fn judge_primary(
    judge: &Judge<'_>,
    service: &ServiceRecord,
    tasks: &[&TaskRecord],
    progress: &mut Progress,
    events: &mut Events<'_>,
    timers: &Timers,
) {
    let Some(primary) = progress.deployments.first_mut() else {
        return;
    };
    let mut verdicts: Vec<(Timestamp, Verdict, &str)> = tasks
        .iter()
        .filter(|t| t.started_by.as_deref() == Some(&primary.id))
        .filter(|t| !primary.judged.contains(&t.id))
        .filter_map(|t| {
            let verdict = match judge.failure(t) {
                Some(Failure::NeverStarted) => Verdict::Failed(FailureOrder::NeverStarted),
                Some(Failure::AfterRunning) => Verdict::Failed(FailureOrder::AfterRunning),
                None if t.is_stopped() => Verdict::Neutral,
                None => {
                    return judge
                        .healthy_since(t)
                        .map(|s| (s, Verdict::Healthy, t.id.as_str()))
                }
            };
            Some((Judge::ended_at(t), verdict, t.id.as_str()))
        })
        .collect();
    verdicts.sort();
    let breaker = service.rules().breaker;
    let in_progress = primary.rollout == RolloutState::InProgress;
    let desired = service.desired_count;
    let mut throttle = progress.throttle.clone();
    for (at, verdict, id) in verdicts {
        primary.judged.insert(id.to_string());
        match verdict {
            Verdict::Failed(kind) => {
                if kind == FailureOrder::NeverStarted {
                    throttle.failures += 1;
                    let doublings = throttle.failures.saturating_sub(1).min(20);
                    let delay = timers
                        .throttle_base_ms
                        .saturating_mul(1i64 << doublings)
                        .min(timers.throttle_max_ms);
                    throttle.not_before = Some(Timestamp(at.0.saturating_add(delay)));
                    if throttle.failures >= 2 {
                        events.push("is unable to consistently start tasks successfully.");
                    }
                }
                if in_progress && breaker.is_some() {
                    primary.failed_tasks += 1;
                }
            }
            Verdict::Healthy => {
                throttle = Throttle::default();
                if in_progress && breaker.is_none_or(|b| b.reset_on_healthy_task) {
                    primary.failed_tasks = 0;
                }
            }
            Verdict::Neutral => {}
        }
    }
    // Judged tasks that were purged cannot come back: forget them.
    primary
        .judged
        .retain(|id| tasks.iter().any(|t| t.id == *id));
    progress.throttle = throttle;
    let Some(breaker) = breaker.filter(|_| in_progress) else {
        return;
    };
    if primary.failed_tasks < breaker.threshold(desired) {
        return;
    }
    primary.rollout = RolloutState::Failed;
    primary.rollout_reason = "ECS deployment circuit breaker: tasks failed to start.".to_string();
    let failed_id = primary.id.clone();
    events.push(format!(
        "(deployment {failed_id}) deployment failed: tasks failed to start."
    ));
    let target = progress
        .last_completed
        .clone()
        .filter(|(family, revision)| (family, *revision) != (&primary.family, primary.revision));
    match (breaker.rollback, target) {
        (true, Some((family, revision))) => {
            let id = rollback_id(service);
            events.push(format!(
                "(deployment {failed_id}) rolling back to {family}:{revision} as deployment {id}."
            ));
            let at = events.now;
            // The tasks still running the target revision stay: the
            // rollback adopts them instead of replacing healthy tasks.
            let adopts = progress
                .deployments
                .iter()
                .filter(|d| d.family == family && d.revision == revision)
                .map(|d| d.id.clone())
                .collect();
            progress.deployments.insert(
                0,
                DeploymentRecord {
                    id,
                    family,
                    revision,
                    status: DeploymentStatus::Primary,
                    rollout: RolloutState::InProgress,
                    rollout_reason: format!(
                        "ECS deployment circuit breaker: rolling back to the last completed deployment after {failed_id} failed."
                    ),
                    failed_tasks: 0,
                    judged: Default::default(),
                    adopts,
                    created_at: at,
                    updated_at: at,
                },
            );
            progress.throttle = Throttle::default();
        }
        (true, None) => events.push(format!(
            "(deployment {failed_id}) cannot roll back: the service has no COMPLETED deployment."
        )),
        (false, _) => {}
    }
}

/// A rollback deployment's id: ECS's `ecs-svc/` and 19 digits, derived from
/// the service and its version so every leader computes the same one.
fn rollback_id(service: &ServiceRecord) -> String {
    let hash = format!("{}#{}", service.key(), service.version)
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        });
    format!("ecs-svc/{:019}", hash % 10u64.pow(19))
}

/// Deployment statuses, completion and steady state, after the plan.
pub(super) fn finish(
    service: &ServiceRecord,
    tasks: &[&TaskRecord],
    plan: &RollingPlan,
    progress: &mut Progress,
    events: &mut Events<'_>,
) {
    let stopping: Vec<&str> = plan.stops.iter().map(|s| s.task_id.as_str()).collect();
    // Older deployments stay ACTIVE while they have tasks, then go.
    let mut deployments = std::mem::take(&mut progress.deployments);
    let primary = deployments.first().cloned();
    deployments = deployments
        .into_iter()
        .enumerate()
        .filter_map(|(n, mut d)| {
            if n == 0 {
                d.status = DeploymentStatus::Primary;
                return Some(d);
            }
            let has_tasks = tasks.iter().any(|t| {
                t.is_live()
                    && d.owns(t)
                    && !primary.as_ref().is_some_and(|p| p.owns(t))
                    && !stopping.contains(&t.id.as_str())
            });
            has_tasks.then(|| {
                d.status = DeploymentStatus::Active;
                d
            })
        })
        .collect();
    progress.deployments = deployments;
    if !plan.stops.is_empty() {
        let ids: Vec<String> = plan
            .stops
            .iter()
            .map(|s| format!("(task {})", s.task_id))
            .collect();
        events.push(format!(
            "has stopped {} running tasks: {}.",
            plan.stops.len(),
            ids.join(" ")
        ));
    }
    if plan.deadlocked {
        events.push(
            "was unable to stop or start tasks during a deployment because of the service deployment configuration. Update the minimumHealthyPercent or maximumPercent value and try again.",
        );
    }
    if service.status != ServiceStatus::Active {
        let any_live = tasks.iter().any(|t| t.is_live());
        if !any_live && plan.stops.is_empty() {
            progress.status = ServiceStatus::Inactive;
        }
        return;
    }
    if !plan.steady {
        return;
    }
    let Some(primary) = progress.deployments.first_mut() else {
        return;
    };
    if primary.rollout == RolloutState::InProgress {
        primary.rollout = RolloutState::Completed;
        primary.rollout_reason = format!("ECS deployment {} completed.", primary.id);
        progress.last_completed = Some((primary.family.clone(), primary.revision));
        progress.throttle = Throttle::default();
        events.push(format!("(deployment {}) deployment completed.", primary.id));
    }
    events.push("has reached a steady state.");
}

//! ECS's rolling arithmetic (ecs-semantics.md 4.2): which tasks go and how
//! many start, keeping at least `ceil(desired × min% / 100)` healthy tasks
//! and at most `floor(desired × max% / 100)` running or pending ones.
//!
//! Tasks that must go: misplaced (DRAINING or gone instance), unhealthy past
//! the grace period, tasks of older deployments, and the primary's surplus
//! (scale-in takes the zone, then the instance, with most of the service's
//! tasks). Those not healthy go at once (they serve nothing: an UNHEALTHY
//! task is replaced in the same step, where ECS would start its replacement
//! first when maximumPercent allows); a healthy one goes only while the
//! healthy count stays at the minimum. Stops come
//! before starts, so a 0/100 deployment replaces in one step. Starts fill the
//! primary deployment up to the desired count within the maximum.

use std::collections::BTreeMap;

use orca_core::service::{RolloutState, SchedulingStrategy, ServiceStatus};
use orca_core::task::TaskStatus;
use orca_core::task_definition::Timestamp;

use super::health::{Judge, UNHEALTHY_REASON};
use super::{Progress, StartOrder, StopOrder};
use crate::state::{ServiceRecord, TaskRecord};

pub(super) struct RollingPlan {
    pub stops: Vec<StopOrder>,
    pub start: Option<StartOrder>,
    pub running: u32,
    pub pending: u32,
    /// Tasks that must go but the minimum keeps, with nothing that could
    /// change that: the deployment configuration deadlocks.
    pub deadlocked: bool,
    /// Every live task is a healthy task of the primary, as many as desired.
    pub steady: bool,
}

/// One candidate to stop.
struct Leaving<'t> {
    task: &'t TaskRecord,
    reason: String,
    healthy: bool,
}

pub(super) fn plan(
    judge: &Judge<'_>,
    service: &ServiceRecord,
    tasks: &[&TaskRecord],
    progress: &Progress,
    now: Timestamp,
) -> RollingPlan {
    let rules = service.rules();
    // A DAEMON service wants one task on each matching ACTIVE instance.
    let targets =
        (service.strategy == SchedulingStrategy::Daemon).then(|| judge.daemon_targets(service));
    let desired = match (service.status, &targets) {
        (ServiceStatus::Active, Some(t)) => t.len() as u32,
        (ServiceStatus::Active, None) => service.desired_count,
        _ => 0,
    };
    let primary = progress.deployments.first();
    let scaling = |id: &str| format!("Scaling activity initiated by (deployment {id})");
    let primary_reason = scaling(primary.map_or("", |d| d.id.as_str()));
    // Tasks that hold a place: wanted running and not stopped.
    let live: Vec<&TaskRecord> = tasks.iter().copied().filter(|t| t.is_live()).collect();
    let running = live
        .iter()
        .filter(|t| t.last_status == TaskStatus::Running)
        .count() as u32;
    let pending = live.iter().filter(|t| t.last_status.is_pending()).count() as u32;

    let mut leaving: Vec<Leaving<'_>> = Vec::new();
    let mut keepers: Vec<&TaskRecord> = Vec::new();
    for &task in &live {
        let healthy = judge.is_healthy(task);
        let of_primary = primary.is_some_and(|p| p.owns(task));
        let reason = if judge.is_unhealthy(task) {
            Some(UNHEALTHY_REASON.to_string())
        } else if let Some(daemon) = &task.making_room_for {
            Some(format!(
                "Task moved to make room for a task of daemon service {daemon} on container instance {}",
                task.instance_id
            ))
        } else if judge.is_misplaced(task) {
            Some(format!(
                "Container instance {} is draining or deregistered",
                task.instance_id
            ))
        } else if targets
            .as_ref()
            .is_some_and(|t| !t.contains(task.instance_id.as_str()))
        {
            Some(format!(
                "Container instance {} no longer matches the service's placement constraints",
                task.instance_id
            ))
        } else if !of_primary {
            Some(primary_reason.clone())
        } else {
            None
        };
        match reason {
            Some(reason) => leaving.push(Leaving {
                task,
                reason,
                healthy,
            }),
            None => keepers.push(task),
        }
    }
    // The primary's surplus: a DAEMON's second task on an instance, or a
    // REPLICA's beyond the desired count in ECS's scale-in order.
    let surplus = match &targets {
        Some(_) => one_per_instance(judge, &mut keepers),
        None => scale_in(judge, &mut keepers, desired as usize),
    };
    for task in surplus {
        leaving.push(Leaving {
            task,
            reason: primary_reason.clone(),
            healthy: judge.is_healthy(task),
        });
    }
    // Those serving nothing first, then healthy ones while the minimum allows.
    leaving.sort_by_key(|l| (l.healthy, l.task.id.as_str()));
    let minimum = rules.minimum_healthy(desired) as usize;
    let mut healthy_left = live.iter().filter(|t| judge.is_healthy(t)).count();
    let mut stops = Vec::new();
    let mut blocked = 0usize;
    for l in leaving {
        if l.healthy {
            if healthy_left > minimum {
                healthy_left -= 1;
            } else {
                blocked += 1;
                continue;
            }
        }
        stops.push(StopOrder {
            task_id: l.task.id.clone(),
            reason: l.reason,
        });
    }
    let total_after = live.len() - stops.len();
    let wanted = desired as usize;
    let need = wanted.saturating_sub(keepers.len());
    let room = (rules.maximum_total(desired) as usize).saturating_sub(total_after);
    let launching = primary.is_some_and(|p| p.rollout != RolloutState::Failed);
    let throttled = need > 0 && progress.throttle.not_before.is_some_and(|t| t.0 > now.0);
    let count = if launching && !throttled {
        need.min(room)
    } else {
        0
    };
    // A DAEMON's starts go to its connected target instances without one.
    let instances: Vec<String> = match &targets {
        Some(t) => t
            .iter()
            .filter(|i| judge.is_connected(i))
            .filter(|i| !keepers.iter().any(|k| k.instance_id == **i))
            .take(count)
            .map(|i| i.to_string())
            .collect(),
        None => Vec::new(),
    };
    let count = if targets.is_some() {
        instances.len()
    } else {
        count
    };
    let start = match (primary, count) {
        (Some(p), n) if n > 0 => Some(StartOrder {
            deployment_id: p.id.clone(),
            family: p.family.clone(),
            revision: p.revision,
            count: n as u32,
            instances,
        }),
        _ => None,
    };
    // Nothing can move: tasks wait on the minimum, nothing may start, and no
    // live task is on its way to becoming healthy.
    let waiting = live
        .iter()
        .any(|t| !judge.is_healthy(t) && !judge.is_unhealthy(t) && !judge.is_misplaced(t));
    let deadlocked = blocked > 0 && count == 0 && !throttled && !waiting;
    let steady = stops.is_empty()
        && blocked == 0
        && count == 0
        && keepers.len() == wanted
        && live.len() == keepers.len()
        && keepers.iter().all(|t| judge.is_healthy(t));
    RollingPlan {
        stops,
        start,
        running,
        pending,
        deadlocked,
        steady,
    }
}

/// A DAEMON service's extra tasks: all but one on each instance (the
/// healthy one kept, else the lowest id).
fn one_per_instance<'t>(
    judge: &Judge<'_>,
    keepers: &mut Vec<&'t TaskRecord>,
) -> Vec<&'t TaskRecord> {
    keepers.sort_by_key(|t| (t.instance_id.clone(), !judge.is_healthy(t), t.id.clone()));
    let mut seen = std::collections::BTreeSet::new();
    let (kept, extra): (Vec<_>, Vec<_>) = keepers
        .iter()
        .partition(|t| seen.insert(t.instance_id.clone()));
    *keepers = kept;
    extra
}

/// ECS's scale-in: takes tasks from `keepers` until `keep` are left, each
/// time one not yet healthy if any, else from the zone, then the instance,
/// with most of the service's tasks (ties to the highest task id).
fn scale_in<'t>(
    judge: &Judge<'_>,
    keepers: &mut Vec<&'t TaskRecord>,
    keep: usize,
) -> Vec<&'t TaskRecord> {
    let mut per_zone: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_instance: BTreeMap<&str, usize> = BTreeMap::new();
    for t in keepers.iter() {
        *per_zone.entry(judge.zone(t)).or_default() += 1;
        *per_instance.entry(t.instance_id.as_str()).or_default() += 1;
    }
    let mut taken = Vec::new();
    while keepers.len() > keep {
        let Some((at, _)) = keepers.iter().enumerate().max_by_key(|(_, t)| {
            (
                !judge.is_healthy(t),
                per_zone[judge.zone(t)],
                per_instance[t.instance_id.as_str()],
                t.id.as_str(),
            )
        }) else {
            break;
        };
        let task = keepers.remove(at);
        if let Some(n) = per_zone.get_mut(judge.zone(task)) {
            *n -= 1;
        }
        if let Some(n) = per_instance.get_mut(task.instance_id.as_str()) {
            *n -= 1;
        }
        taken.push(task);
    }
    taken
}

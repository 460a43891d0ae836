//! The leader's service loop: on every new view (and on a tick, for the
//! rules that depend on time) it runs the pure reconciler over each service,
//! commits the step as one fenced `ServiceStep`, feeds the step's starts
//! into the plan applier (the same one RunTask uses, so services and RunTask
//! never place against each other), and records what happened as events.
//!
//! One service at a time, each step's starts committed before the service is
//! looked at again: a start is never asked twice. A new leader derives
//! everything from the replicated state, so a deployment carries on.
//! DAEMON services go first in every round, so a place freed for a daemon's
//! task (`room.rs`) is taken by it, not by the replica that left it.

mod room;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use orca_core::service::{SchedulingStrategy, ServiceStatus};
use orca_core::task_definition::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::node::Node;
use crate::plan_apply::{AskReply, RunTaskAsk};
use crate::reconciler::{self, StartOrder, Step, Timers};
use crate::state::{ClusterView, Command, Outcome, ServiceRecord, TaskRecord};

/// The loop's configuration.
#[derive(Debug, Clone, Copy)]
pub struct ServiceLoopConfig {
    pub timers: Timers,
    /// How often services are looked at when nothing changes.
    pub tick: Duration,
}

impl Default for ServiceLoopConfig {
    fn default() -> Self {
        ServiceLoopConfig {
            timers: Timers::default(),
            tick: Duration::from_secs(1),
        }
    }
}

pub async fn run(
    node: Arc<Node>,
    clock: Arc<dyn Clock>,
    config: ServiceLoopConfig,
    term: u64,
    token: CancellationToken,
) {
    let mut views = node.watch_views();
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            changed = views.changed() => if changed.is_err() { return },
            _ = tokio::time::sleep(config.tick) => {}
        }
        views.borrow_and_update();
        let view = node.view();
        let by_service = tasks_by_service(&view);
        let mut services: Vec<&ServiceRecord> = view.services.values().collect();
        services.sort_by_key(|s| s.strategy != SchedulingStrategy::Daemon);
        for service in services {
            if token.is_cancelled() {
                return;
            }
            if service.status == ServiceStatus::Inactive {
                continue;
            }
            let tasks = by_service
                .get(&(service.cluster.as_str(), service.group()))
                .map(Vec::as_slice)
                .unwrap_or_default();
            let now = clock.now();
            let step = reconciler::reconcile(&view, service, tasks, now, &config.timers);
            let span = tracing::info_span!("service", service = %service.name, cluster = %service.cluster, term);
            let _entered = span.enter();
            if !commit(&node, service, &step, now, term).await {
                continue;
            }
            if let Some(start) = &step.start {
                start_tasks(&node, &view, service, start, clock.now(), term).await;
            }
        }
    }
}

/// Every task of every service, by (cluster, group), in one pass.
fn tasks_by_service(view: &ClusterView) -> BTreeMap<(&str, String), Vec<&TaskRecord>> {
    let mut map: BTreeMap<(&str, String), Vec<&TaskRecord>> = BTreeMap::new();
    for task in view.tasks.values() {
        if task.group.starts_with("service:") {
            map.entry((task.cluster.as_str(), task.group.clone()))
                .or_default()
                .push(task);
        }
    }
    map
}

/// Commits the step; false if it went stale or was refused (the next round
/// computes it again on a newer view).
async fn commit(
    node: &Node,
    service: &ServiceRecord,
    step: &Step,
    now: Timestamp,
    term: u64,
) -> bool {
    if !step.changes(service) {
        return true;
    }
    let command = Command::ServiceStep {
        step: Box::new(step.command(service, now)),
        decided_in_term: term,
    };
    match node.propose(command).await {
        Ok(Outcome::Service(_)) => {
            for stop in &step.stops {
                tracing::info!(task = %stop.task_id, reason = %stop.reason, "stopping a service task");
            }
            true
        }
        Ok(Outcome::StaleStep) => false,
        Ok(other) => {
            tracing::warn!(?other, "unexpected outcome of a service step");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e, "service step not committed");
            false
        }
    }
}

/// Starts the step's tasks through the plan applier and records ECS's
/// events: the tasks started, or why none could be placed.
async fn start_tasks(
    node: &Node,
    view: &ClusterView,
    service: &ServiceRecord,
    start: &StartOrder,
    now: Timestamp,
    term: u64,
) {
    let ask = |count: usize, on: Option<&str>| {
        let mut placement_constraints = service.placement_constraints.clone();
        if let Some(instance) = on {
            // A DAEMON's task goes to this instance and no other.
            placement_constraints.push(orca_core::placement::PlacementConstraintInput {
                r#type: "memberOf".to_string(),
                expression: Some(format!("instanceId == {instance}")),
            });
        }
        RunTaskAsk {
            cluster: service.cluster.clone(),
            family: start.family.clone(),
            revision: start.revision,
            count,
            overrides: Default::default(),
            started_by: Some(start.deployment_id.clone()),
            group: Some(service.group()),
            client_token: None,
            fingerprint: String::new(),
            launch_type: service
                .launch_type
                .clone()
                .unwrap_or_else(|| "EC2".to_string()),
            network_configuration: service.network_configuration.clone(),
            tags: match service.infrastructure.propagate_tags.as_deref() {
                Some("SERVICE") => service.tags.clone(),
                _ => Vec::new(),
            },
            enable_execute_command: service.enable_execute_command,
            run_timeout_seconds: None,
            placement_constraints,
            placement_strategy: service.placement_strategy.clone(),
        }
    };
    let asks: Vec<RunTaskAsk> = if start.instances.is_empty() {
        vec![ask(start.count as usize, None)]
    } else {
        start.instances.iter().map(|i| ask(1, Some(i))).collect()
    };
    // Submitted together: the plan applier places them in one plan.
    let replies = futures::future::join_all(asks.into_iter().map(|a| node.submit_here(a))).await;
    let mut started = Vec::new();
    let mut failures = Vec::new();
    let mut errors = Vec::new();
    let mut messages = Vec::new();
    for (i, reply) in replies.into_iter().enumerate() {
        match reply {
            AskReply::NotLeader => return,
            AskReply::Done(Err(e)) => errors.push(e.message),
            AskReply::Done(Ok(Outcome::Tasks { tasks, failures: f })) => {
                started.extend(tasks);
                // A DAEMON's task that does not fit: make room for it.
                match start.instances.get(i) {
                    Some(instance) if f.iter().any(|x| x.reason.starts_with("RESOURCE:")) => {
                        messages.extend(
                            room::make_room(node, view, service, start, instance, term).await,
                        );
                    }
                    _ => failures.extend(f),
                }
            }
            AskReply::Done(Ok(other)) => {
                tracing::warn!(?other, "unexpected outcome of a service start");
            }
        }
    }
    if !started.is_empty() {
        let ids: Vec<String> = started
            .iter()
            .map(|t| {
                format!(
                    "(task {})",
                    t.task_arn.rsplit('/').next().unwrap_or_default()
                )
            })
            .collect();
        tracing::info!(count = started.len(), "started service tasks");
        messages.push(format!(
            "(service {}) has started {} tasks: {}.",
            service.name,
            started.len(),
            ids.join(" ")
        ));
    }
    if let Some(f) = failures.first() {
        messages.push(placement_failure(&service.name, f));
    }
    if let Some(e) = errors.first() {
        messages.push(format!(
            "(service {}) was unable to start tasks: {e}",
            service.name
        ));
    }
    if messages.is_empty() {
        return;
    }
    let command = Command::RecordServiceEvents {
        cluster: service.cluster.clone(),
        name: service.name.clone(),
        messages,
        at: now,
        decided_in_term: term,
    };
    if let Err(e) = node.propose(command).await {
        tracing::warn!(error = %e, "service events not recorded");
    }
}

/// ECS's event for a task no instance could take, naming the closest
/// instance and what it lacked.
fn placement_failure(service: &str, failure: &orca_core::task::Failure) -> String {
    let closest = failure
        .arn
        .as_deref()
        .map(|a| a.rsplit('/').next().unwrap_or(a).to_string());
    let lack = match failure.reason.as_str() {
        "RESOURCE:CPU" => "has insufficient CPU units available.".to_string(),
        "RESOURCE:MEMORY" => "has insufficient memory available.".to_string(),
        "RESOURCE:PORTS" => "is already using a port required by your task.".to_string(),
        "RESOURCE:ENI" => "has insufficient free task addresses (RESOURCE:ENI).".to_string(),
        other => format!("encountered error \"{other}\"."),
    };
    match closest {
        Some(id) => format!(
            "(service {service}) was unable to place a task because no container instance met all of its requirements. The closest matching (container-instance {id}) {lack}"
        ),
        None => format!(
            "(service {service}) was unable to place a task because no container instance met all of its requirements: {}",
            failure.detail.as_deref().unwrap_or(failure.reason.as_str())
        ),
    }
}

#[cfg(test)]
mod tests {
    use orca_core::task::Failure;

    use super::placement_failure;

    #[test]
    fn an_address_shortage_names_the_closest_instance_in_ecs_words() {
        let failure = Failure {
            arn: Some("arn:aws:ecs:us-east-1:0:container-instance/default/i07".to_string()),
            reason: "RESOURCE:ENI".to_string(),
            detail: Some("ruled out 2 container instances".to_string()),
        };
        assert_eq!(
            placement_failure("web", &failure),
            "(service web) was unable to place a task because no container instance met all \
             of its requirements. The closest matching (container-instance i07) has \
             insufficient free task addresses (RESOURCE:ENI)."
        );
    }
}

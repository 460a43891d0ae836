//! Leader-only work: loops that only the leader may run start when this node
//! leads a term, has applied that term's first entry (so every earlier
//! term's entries are applied) and a quorum has confirmed its leadership,
//! and stop when it stops leading. Each loop
//! knows the term it runs for and stamps it into what it proposes; `apply`
//! refuses a decision committed in any other term.
//!
//! The loops: purging DELETE_IN_PROGRESS task definitions and STOPPED tasks,
//! agent liveness (instances without a session are marked disconnected;
//! sessions end when leadership does), the discovery zone publisher, and the
//! service reconciler.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use orca_core::task_definition::Timestamp;
use tokio_util::sync::CancellationToken;

use crate::agents::session::SessionContext;
use crate::clock::Clock;
use crate::node::Node;
use crate::state::Command;

/// How often the purge loop looks for due task definitions.
const PURGE_TICK: Duration = Duration::from_secs(1);
/// Pause before asking a quorum again to confirm this node's leadership.
const CONFIRM_RETRY: Duration = Duration::from_millis(200);
/// The most revisions one purge command removes.
const PURGE_BATCH: usize = 100;

/// What the leader-only loops need.
#[derive(Clone)]
pub struct LeaderWork {
    pub node: Arc<Node>,
    pub clock: Arc<dyn Clock>,
    pub purge_deleted_after: Duration,
    /// How long STOPPED tasks stay describable.
    pub purge_stopped_tasks_after: Duration,
    /// Agent sessions, for the liveness loop.
    pub sessions: SessionContext,
    /// When silent agents are disconnected and lost.
    pub liveness: crate::agents::liveness::LivenessConfig,
    /// This controller's region/account and task CIDR flags, proposed as the
    /// cluster's identity when none is fixed yet.
    pub identity: (orca_core::arn::ArnContext, orca_core::cidr::Ipv4Cidr),
    /// The service reconciler's timers.
    pub services: crate::services_loop::ServiceLoopConfig,
}

/// Watches this node's Raft role and runs the leader-only loops exactly
/// while it leads. Returns when `shutdown` is cancelled.
pub async fn run(work: LeaderWork, shutdown: CancellationToken) {
    let mut metrics = work.node.raft.metrics();
    let mut running: Option<(u64, CancellationToken)> = None;
    // Failed confirmations in a row, to say so when it goes on.
    let mut unconfirmed = 0u32;
    loop {
        let leading_term = {
            let m = metrics.borrow_and_update();
            let leads = m.current_leader == Some(work.node.id) && m.state.is_leader();
            let caught_up = m
                .last_applied
                .is_some_and(|l| l.leader_id.term == m.current_term);
            (leads && caught_up).then_some(m.current_term)
        };
        if running.as_ref().map(|(t, _)| *t) != leading_term {
            if let Some((term, token)) = running.take() {
                tracing::info!(term, "stopping leader-only work");
                token.cancel();
                work.node.leader_work_term.store(0, Ordering::Relaxed);
                work.sessions.registry.end_term(term);
                *work
                    .node
                    .plan_queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = None;
            }
            // A restarted node may believe for a moment that it still leads
            // the term it led before: start only once a quorum confirms it.
            let confirmed = match leading_term {
                Some(_) => matches!(work.node.read_index_here().await, Ok(Some(_))),
                None => false,
            };
            if let (Some(term), false) = (leading_term, confirmed) {
                unconfirmed += 1;
                if unconfirmed.is_multiple_of(10) {
                    tracing::warn!(
                        term,
                        attempts = unconfirmed,
                        "leads but a quorum has not confirmed it yet"
                    );
                }
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tokio::time::sleep(CONFIRM_RETRY) => continue,
                }
            }
            unconfirmed = 0;
            if let Some(term) = leading_term {
                tracing::info!(term, "starting leader-only work");
                let token = shutdown.child_token();
                work.sessions.registry.begin_term(term);
                let queue = crate::plan_apply::start(
                    crate::plan_apply::Applier {
                        node: work.node.clone(),
                        clock: work.clock.clone(),
                        term,
                        schedule_calls: work.node.schedule_calls.clone(),
                    },
                    token.clone(),
                );
                *work
                    .node
                    .plan_queue
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) = Some(queue);
                tokio::spawn(fix_identity(work.clone(), term));
                tokio::spawn(purge_loop(work.clone(), term, token.clone()));
                tokio::spawn(crate::run_timeouts::run(
                    work.node.clone(),
                    work.clock.clone(),
                    term,
                    token.clone(),
                ));
                tokio::spawn(crate::agents::liveness::run(
                    work.node.clone(),
                    work.sessions.registry.clone(),
                    work.clock.clone(),
                    work.liveness,
                    term,
                    token.clone(),
                ));
                tokio::spawn(crate::agents::discovery::run(
                    work.node.clone(),
                    work.sessions.zones.clone(),
                    work.sessions.discovery.clone(),
                    token.clone(),
                ));
                tokio::spawn(crate::services_loop::run(
                    work.node.clone(),
                    work.clock.clone(),
                    work.services,
                    term,
                    token.clone(),
                ));
                work.node.leader_work_term.store(term, Ordering::Relaxed);
                running = Some((term, token));
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break,
            changed = metrics.changed() => if changed.is_err() { break },
        }
    }
    if let Some((term, token)) = running {
        token.cancel();
        work.sessions.registry.end_term(term);
    }
    work.node.leader_work_term.store(0, Ordering::Relaxed);
}

/// Fixes the cluster's identity from this controller's flags if nothing has
/// fixed it yet: a new cluster's first leader, or data written before the
/// identity was replicated. Every later FixIdentity changes nothing.
async fn fix_identity(work: LeaderWork, term: u64) {
    if work.node.view().identity.is_some() {
        return;
    }
    let identity = crate::state::Identity::new(&work.identity.0, work.identity.1);
    match work.node.propose(Command::FixIdentity { identity }).await {
        Ok(outcome) => tracing::info!(term, ?outcome, "cluster identity fixed"),
        Err(e) => tracing::warn!(term, error = %e, "could not fix the cluster identity"),
    }
}

/// Purges task definitions that have been DELETE_IN_PROGRESS for longer than
/// the grace and that no unstopped task uses, and STOPPED tasks past their
/// retention.
async fn purge_loop(work: LeaderWork, term: u64, token: CancellationToken) {
    let grace = i64::try_from(work.purge_deleted_after.as_millis()).unwrap_or(i64::MAX);
    let task_grace = i64::try_from(work.purge_stopped_tasks_after.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(PURGE_TICK) => {}
        }
        let now = work.clock.now().0;
        let cutoff = Timestamp(now.saturating_sub(grace));
        let task_cutoff = Timestamp(now.saturating_sub(task_grace));
        let (mut due, tasks) = {
            let state = work.node.view();
            (
                state.purgeable_task_definitions(cutoff),
                state.purgeable_tasks(task_cutoff, PURGE_BATCH),
            )
        };
        if !tasks.is_empty() {
            let command = Command::PurgeTasks {
                task_ids: tasks,
                decided_in_term: term,
            };
            match work.node.propose(command).await {
                Ok(outcome) => tracing::info!(term, ?outcome, "purged stopped tasks"),
                Err(e) => tracing::warn!(term, error = %e, "task purge refused"),
            }
        }
        if due.is_empty() {
            continue;
        }
        due.truncate(PURGE_BATCH);
        let command = Command::PurgeTaskDefinitions {
            revisions: due,
            decided_in_term: term,
        };
        match work.node.propose(command).await {
            Ok(outcome) => tracing::info!(term, ?outcome, "purged deleted task definitions"),
            Err(e) => tracing::warn!(term, error = %e, "purge refused"),
        }
    }
}

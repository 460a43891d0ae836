//! One container's checker: a tokio task that execs the check every
//! `interval` (counted from the end of the previous check, as Docker does;
//! the first one `interval` after the checker starts), feeds the verdicts
//! to its [`HealthState`] and sends what changed to the loop.
//!
//! Not every check becomes a report: an update goes to the loop when the
//! status changes (the first check's result included), and an output or
//! exit code that changed without the status at most every
//! [`OUTPUT_REPORT_INTERVAL`], so a check whose output carries a timestamp
//! costs the controller one Raft write a minute, not one per check.

use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::HEALTH_OUTPUT_LIMIT;
use orca_runtime::{truncate_str, ContainerRuntime, ExecStatus, RuntimeError};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::state::{HealthConfig, HealthState, Verdict};
use super::ContainerHealth;
use crate::reconcile::Completion;

/// Output-only changes go up at most this often per container.
pub const OUTPUT_REPORT_INTERVAL: Duration = Duration::from_secs(60);

/// What one checker checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub task_id: String,
    /// The containerd container id.
    pub container_id: String,
    pub config: HealthConfig,
}

/// Checks `target` until aborted. `started_at` starts the start period.
pub async fn run(
    runtime: Arc<dyn ContainerRuntime>,
    target: Target,
    started_at: Instant,
    updates: mpsc::UnboundedSender<Completion>,
) {
    let config = &target.config;
    let mut state = HealthState::new(config, started_at);
    let mut sent: Option<(ContainerHealth, Instant)> = None;
    let mut next = started_at + config.interval;
    loop {
        tokio::time::sleep_until(next).await;
        let result = runtime
            .exec(&target.container_id, config.args.clone(), config.timeout)
            .await;
        let ended = Instant::now();
        next = ended + config.interval;
        let (verdict, output, exit_code) = match result {
            Ok(outcome) => match outcome.status {
                ExecStatus::Exited(code) => {
                    (Verdict::of(outcome.status), outcome.output, Some(code))
                }
                ExecStatus::TimedOut => (
                    Verdict::Fail,
                    format!(
                        "{}health check exceeded its timeout ({}s)",
                        outcome.output,
                        config.timeout.as_secs()
                    ),
                    None,
                ),
            },
            // containerd down, or the container gone: nothing is known
            // about its health; the loop cancels a checker whose container
            // stopped.
            Err(e) if e.is_unavailable() || matches!(e, RuntimeError::NotFound { .. }) => {
                tracing::debug!(error = %e, "health check not run");
                continue;
            }
            // The command could not run (no such executable...): a failure.
            Err(e) => (Verdict::Fail, e.to_string(), None),
        };
        let status = state.record(verdict, ended);
        let health = ContainerHealth {
            status,
            output: Some(truncate_str(&output, HEALTH_OUTPUT_LIMIT).to_string()),
            exit_code,
        };
        tracing::debug!(status = status.name(), ?exit_code, "health check");
        let send = match &sent {
            None => true,
            Some((prev, at)) => {
                prev.status != status || (*prev != health && ended >= *at + OUTPUT_REPORT_INTERVAL)
            }
        };
        if send {
            if sent.as_ref().is_none_or(|(prev, _)| prev.status != status) {
                tracing::info!(status = status.name(), ?exit_code, "container health");
            }
            let update = Completion::Health {
                task_id: target.task_id.clone(),
                id: target.container_id.clone(),
                health: health.clone(),
            };
            if updates.send(update).is_err() {
                return; // the loop is gone: the agent stops
            }
            sent = Some((health, ended));
        }
    }
}

//! Container health checks (ECS's `healthCheck`), run by the agent.
//!
//! - [`state`]: the rules, pure (verdicts and times → HEALTHY, UNHEALTHY or
//!   UNKNOWN; a task's health from its essential containers);
//! - [`checker`]: one tokio task per running container with a check, which
//!   execs the command in the container every `interval` and sends the
//!   loop a [`crate::reconcile::Completion::Health`] when the status
//!   changes (output-only changes at most every
//!   [`checker::OUTPUT_REPORT_INTERVAL`]);
//! - [`checkers`]: which containers want a checker (level-triggered, from
//!   the world after each turn of the loop), started and cancelled to
//!   match, so checks never block the loop and a restarted agent checks
//!   the containers it adopted.
//!
//! The loop stores each container's latest [`ContainerHealth`] in the
//! task's memory; the reconcile step puts it in the task's report (a
//! changed report is queued in the batched reporter) and uses it for
//! dependsOn HEALTHY.

pub mod checker;
pub mod checkers;
pub mod state;

use orca_core::task::HealthStatus;

pub use checkers::Checkers;
pub use state::{task_health, HealthConfig, HealthState, Member, Verdict};

/// A container's health as its checker last sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerHealth {
    pub status: HealthStatus,
    /// The last check's output (at most
    /// [`orca_core::agent_protocol::HEALTH_OUTPUT_LIMIT`] bytes).
    pub output: Option<String>,
    /// The last check's exit code (None when it timed out or could not run).
    pub exit_code: Option<i32>,
}

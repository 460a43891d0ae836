//! The agent's level-triggered core: what runs on this node is decided by
//! comparing what the controller wants (assignments) with what containerd,
//! the kernel and the agent's own disk hold, never by remembering edges.
//!
//! - [`model`]: the [`World`] (assignments, observed containers, held
//!   networks, final reports on disk, per-task memory of this process),
//!   [`Action`]s and [`Completion`]s, and the pure updates of the world when
//!   an action is dispatched or completes;
//! - [`step`]: [`reconcile`], the pure decision (`World` → actions);
//! - [`report`]: the task report built from the same world.
//!
//! The executor (`crate::executor`) carries the actions out and sends the
//! completions back; the loop (`crate::node`) relists containerd
//! periodically and on every reconnect, and treats events only as a reason
//! to look again sooner. The loop is the one owner of every task's status
//! on this node.

pub mod model;
#[cfg(test)]
mod prop_tests;
pub mod report;
pub mod step;
#[cfg(test)]
mod tests;

pub use model::{Action, Completion, NetworkRequest, Observed, Op, Settings, TaskMemory, World};
pub use step::{reconcile, Plan, ESSENTIAL_EXITED, MAX_STOP_TIMEOUT};

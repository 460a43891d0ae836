//! The leader's loop behind RunTask's `runTimeoutSeconds`: each tick it
//! asks the state which running tasks are past their timeout
//! ([`crate::state::run_timeouts`], pure) and proposes their stop as a
//! StopTask would (stopCode `UserInitiated`, a reason naming the timeout).
//! A stop proposed by an earlier leader and applied is not proposed again:
//! the task is no longer wanted running.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::node::Node;
use crate::state::command::Command;
use crate::state::run_timeouts;
use orca_core::task::StopCode;

/// How often the loop looks (a timeout is honoured within this much).
const TICK: Duration = Duration::from_secs(1);

pub async fn run(node: Arc<Node>, clock: Arc<dyn Clock>, term: u64, token: CancellationToken) {
    loop {
        tokio::select! {
            _ = token.cancelled() => return,
            _ = tokio::time::sleep(TICK) => {}
        }
        let now = clock.now();
        let overdue = node.view().overdue_tasks(now);
        for task in overdue {
            let command = Command::StopTask {
                cluster: task.cluster.clone(),
                task_id: task.task_id.clone(),
                reason: Some(run_timeouts::reason(task.timeout_seconds)),
                stop_code: StopCode::UserInitiated,
                at: now,
            };
            match node.propose(command).await {
                Ok(_) => tracing::info!(
                    term,
                    task = %task.task_id,
                    timeout_seconds = task.timeout_seconds,
                    "run timeout reached: task stopped"
                ),
                Err(e) => {
                    tracing::warn!(term, task = %task.task_id, error = %e, "run timeout stop refused")
                }
            }
        }
    }
}

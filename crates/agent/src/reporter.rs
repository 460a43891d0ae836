//! Task state reports on their way to the controller.
//!
//! Each task's latest report replaces its earlier ones (a report is the
//! task's full agent-owned state, so only the newest matters). One batch is
//! in flight at a time; it leaves the queue only when the controller
//! acknowledges it after committing it. A lost session puts the in-flight
//! batch back, unless a newer report of the same task has arrived since.

use std::collections::BTreeMap;
use std::sync::Mutex;

use orca_core::agent_protocol::TaskStateReport;
use tokio::sync::Notify;

#[derive(Default)]
struct Queue {
    pending: BTreeMap<String, TaskStateReport>,
    in_flight: Option<(u64, BTreeMap<String, TaskStateReport>)>,
    next_seq: u64,
}

/// The reports waiting for the controller.
#[derive(Default)]
pub struct Reporter {
    queue: Mutex<Queue>,
    /// Woken when a report is queued or a batch is acknowledged.
    pub changed: Notify,
}

impl Reporter {
    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues the task's latest state.
    pub fn update(&self, report: TaskStateReport) {
        self.lock().pending.insert(report.task_arn.clone(), report);
        self.changed.notify_one();
    }

    /// The next batch to send, unless one is in flight or nothing waits.
    pub fn next_batch(&self) -> Option<(u64, Vec<TaskStateReport>)> {
        let mut q = self.lock();
        if q.in_flight.is_some() || q.pending.is_empty() {
            return None;
        }
        q.next_seq += 1;
        let seq = q.next_seq;
        let batch = std::mem::take(&mut q.pending);
        let reports = batch.values().cloned().collect();
        q.in_flight = Some((seq, batch));
        Some((seq, reports))
    }

    /// The controller committed batch `seq`.
    pub fn ack(&self, seq: u64) {
        let mut q = self.lock();
        if q.in_flight.as_ref().is_some_and(|(s, _)| *s == seq) {
            q.in_flight = None;
            drop(q);
            self.changed.notify_one();
        }
    }

    /// The session ended: the unacknowledged batch goes back in the queue
    /// (newer reports of the same tasks win).
    pub fn requeue(&self) {
        let mut q = self.lock();
        if let Some((_, batch)) = q.in_flight.take() {
            for (arn, report) in batch {
                q.pending.entry(arn).or_insert(report);
            }
        }
    }

    /// Reports not yet acknowledged (queued or in flight).
    pub fn unacknowledged(&self) -> usize {
        let q = self.lock();
        q.pending.len() + q.in_flight.as_ref().map_or(0, |(_, b)| b.len())
    }
}

#[cfg(test)]
mod tests {
    use orca_core::task::TaskStatus;

    use super::*;

    fn report(arn: &str, status: TaskStatus) -> TaskStateReport {
        TaskStateReport {
            task_arn: arn.to_string(),
            last_status: status,
            containers: Vec::new(),
            network: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            health_status: Default::default(),
        }
    }

    #[test]
    fn coalesces_and_resends_until_acknowledged() {
        let r = Reporter::default();
        r.update(report("a", TaskStatus::Pending));
        r.update(report("a", TaskStatus::Running));
        r.update(report("b", TaskStatus::Pending));
        let (seq, batch) = r.next_batch().expect("a batch");
        assert_eq!(batch.len(), 2, "one report per task");
        assert_eq!(batch[0].last_status, TaskStatus::Running, "the latest wins");
        assert!(r.next_batch().is_none(), "one batch in flight");
        // The session drops; a newer report of b arrives meanwhile.
        r.update(report("b", TaskStatus::Running));
        r.requeue();
        let (seq2, batch) = r.next_batch().expect("resent");
        assert!(seq2 > seq);
        let b = batch
            .iter()
            .find(|x| x.task_arn == "b")
            .map(|x| x.last_status);
        assert_eq!(
            b,
            Some(TaskStatus::Running),
            "requeue keeps the newer report"
        );
        r.ack(seq); // a stale ack changes nothing
        assert_eq!(r.unacknowledged(), 2);
        r.ack(seq2);
        assert_eq!(r.unacknowledged(), 0);
    }
}

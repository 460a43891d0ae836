//! Wall-clock time, injected: the leader stamps times into commands, and
//! tests can substitute a fixed clock.

use orca_core::task_definition::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The system clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp(chrono::Utc::now().timestamp_millis())
    }
}

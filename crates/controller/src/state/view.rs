//! [`ClusterView`]: an immutable snapshot of the applied state, published
//! by the state machine after every apply (Nomad's state snapshot).
//!
//! Readers, the scheduler, leader loops and agent sessions work on a view
//! instead of holding a lock over the live state: taking one is a reference
//! count bump (the state's maps are persistent), and a view never changes
//! under its holder. Waiters learn of new views through a watch channel.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::ClusterState;

/// The state as of one applied log index.
#[derive(Debug, Clone)]
pub struct ClusterView {
    /// The last log index applied into this view (0 before any).
    applied_index: u64,
    state: Arc<ClusterState>,
}

impl ClusterView {
    pub fn new(applied_index: u64, state: ClusterState) -> Self {
        ClusterView {
            applied_index,
            state: Arc::new(state),
        }
    }

    pub fn applied_index(&self) -> u64 {
        self.applied_index
    }
}

impl Deref for ClusterView {
    type Target = ClusterState;

    fn deref(&self) -> &ClusterState {
        &self.state
    }
}

/// Per-instance wake-ups: an agent session waits on its own instance's
/// channel, which moves only when an apply changed what that agent should
/// hold, so 10,000 sessions are not all woken by every write.
#[derive(Debug, Default)]
pub struct AssignmentWatch {
    senders: Mutex<BTreeMap<String, watch::Sender<u64>>>,
}

impl AssignmentWatch {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, watch::Sender<u64>>> {
        self.senders.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A receiver that changes whenever the instance's assignments do.
    pub fn subscribe(&self, instance_id: &str) -> watch::Receiver<u64> {
        let mut senders = self.lock();
        match senders.get(instance_id) {
            Some(sender) => sender.subscribe(),
            None => {
                let (sender, receiver) = watch::channel(0);
                senders.insert(instance_id.to_string(), sender);
                receiver
            }
        }
    }

    /// Wakes the sessions of these instances (after their view is published);
    /// forgets instances nobody listens to any more.
    pub fn notify(&self, changed: &BTreeSet<String>) {
        if changed.is_empty() {
            return;
        }
        let mut senders = self.lock();
        for id in changed {
            let gone = match senders.get(id) {
                Some(sender) => {
                    sender.send_modify(|n| *n += 1);
                    sender.receiver_count() == 0
                }
                None => false,
            };
            if gone {
                senders.remove(id);
            }
        }
    }
}

/// Instances whose assignments an apply changed, for [`AssignmentWatch`]:
/// not replicated and ignored when states are compared (it is drained after
/// every apply).
#[derive(Debug, Clone, Default)]
pub struct ChangedInstances(pub BTreeSet<String>);

impl PartialEq for ChangedInstances {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

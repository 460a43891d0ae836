//! [`ClusterView`]: an immutable snapshot of the applied state, published
//! by the state machine after every apply (Nomad's state snapshot).
//!
//! Readers, the scheduler, leader loops and agent sessions work on a view
//! instead of holding a lock over the live state: taking one is a reference
//! count bump (the state's maps are persistent), and a view never changes
//! under its holder. Waiters learn of new views through a watch channel.

use std::ops::Deref;
use std::sync::Arc;

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

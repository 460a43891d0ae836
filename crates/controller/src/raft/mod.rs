//! openraft wiring: the type configuration, the sled-backed log and state
//! machine, and the network between controllers.
//!
//! openraft is pinned to 0.9.25 (storage API v2, `storage-v2` feature).

// openraft's traits fix the error types (StorageError, ConfigError), which
// are large; helpers here return them as the traits do.
#![allow(clippy::result_large_err)]

pub mod election;
pub mod log_store;
pub mod network;
pub mod state_machine;

use std::io::Cursor;
use std::sync::Arc;

use openraft::BasicNode;

use crate::state::{Command, CommandResult};

openraft::declare_raft_types!(
    /// orca's Raft types: log entries carry a [`Command`], applying one
    /// yields a [`CommandResult`].
    pub TypeConfig:
        D = Command,
        R = CommandResult,
        NodeId = u64,
        Node = BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = Cursor<Vec<u8>>,
        AsyncRuntime = openraft::TokioRuntime,
);

pub type Raft = openraft::Raft<TypeConfig>;
pub type NodeId = u64;
pub type StorageError = openraft::StorageError<NodeId>;

/// The Raft settings orca runs with.
#[derive(Debug, Clone)]
pub struct RaftTuning {
    /// Build a snapshot (and let the log be purged) after this many entries.
    pub snapshot_every: u64,
    /// Log entries kept behind a snapshot, so that a briefly lagging
    /// follower catches up from the log rather than from a whole snapshot.
    pub log_kept_after_snapshot: u64,
    pub heartbeat_interval_ms: u64,
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
}

impl Default for RaftTuning {
    fn default() -> Self {
        RaftTuning {
            snapshot_every: 5_000,
            log_kept_after_snapshot: 1_000,
            // etcd's defaults (100 ms, 1 s): openraft takes the maximum as the
            // leader lease, during which a follower refuses to vote.
            heartbeat_interval_ms: 100,
            election_timeout_min_ms: 800,
            election_timeout_max_ms: 1_000,
        }
    }
}

impl RaftTuning {
    pub fn election_timeouts(&self) -> election::ElectionTimeouts {
        // openraft's voters refuse a candidate until the leader lease (the
        // maximum timeout) has run out since they last heard from a leader,
        // so an election is tried only after that, with the spread on top.
        let lease = std::time::Duration::from_millis(self.election_timeout_max_ms);
        let spread = std::time::Duration::from_millis(
            self.election_timeout_max_ms
                .saturating_sub(self.election_timeout_min_ms),
        );
        election::ElectionTimeouts {
            min: lease,
            max: lease + spread,
        }
    }

    pub fn to_config(&self) -> Result<Arc<openraft::Config>, openraft::ConfigError> {
        let config = openraft::Config {
            cluster_name: "orca".to_string(),
            heartbeat_interval: self.heartbeat_interval_ms,
            election_timeout_min: self.election_timeout_min_ms,
            election_timeout_max: self.election_timeout_max_ms,
            snapshot_policy: openraft::SnapshotPolicy::LogsSinceLast(self.snapshot_every),
            // Elections are started by `election` after a pre-vote.
            enable_elect: false,
            max_in_snapshot_log_to_keep: self.log_kept_after_snapshot,
            // Keep Raft messages well under `network::MAX_RAFT_MESSAGE`.
            snapshot_max_chunk_size: 1024 * 1024,
            max_payload_entries: 32,
            ..Default::default()
        };
        config.validate().map(Arc::new)
    }
}

#[cfg(test)]
mod migration_tests;
#[cfg(test)]
mod store_tests;

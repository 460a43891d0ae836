//! The Raft state machine: decodes committed entries and hands each command
//! to [`ClusterState::apply`]; builds, stores and installs snapshots.
//!
//! The state lives in memory, owned by the state machine; after every apply
//! it publishes an immutable [`ClusterView`] on a watch channel, which is all
//! the rest of the controller reads. It is made durable by the log (flushed
//! before acknowledgement) and by snapshots in sled: a restarted controller
//! loads the latest snapshot and openraft re-applies the committed log after it.

use std::io::Cursor;
use std::sync::Arc;

use openraft::storage::{RaftSnapshotBuilder, RaftStateMachine, Snapshot, SnapshotMeta};
use openraft::{BasicNode, Entry, EntryPayload, LogId, StorageIOError, StoredMembership};
use orca_core::arn::ArnContext;
use orca_core::cidr::Ipv4Cidr;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::{NodeId, StorageError, TypeConfig};
use crate::state::legacy::{migrate_state, FormatError, STATE_FORMAT};
use crate::state::{AssignmentWatch, ClusterState, ClusterView, CommandResult};

const SNAPSHOT_META: &[u8] = b"meta";
const SNAPSHOT_DATA: &[u8] = b"data";

/// What a snapshot holds: the whole state and where in the log it stands.
#[derive(Serialize, Deserialize)]
struct SnapshotBody {
    /// The stored state's format (`state::legacy`); absent means 1.
    #[serde(default = "first_format")]
    format: u32,
    last_applied: Option<LogId<NodeId>>,
    last_membership: StoredMembership<NodeId, BasicNode>,
    state: ClusterState,
}

fn first_format() -> u32 {
    1
}

pub struct StateMachineStore {
    /// The cluster state; changed only here, by `ClusterState::apply`.
    state: ClusterState,
    /// Where each applied state is published as a view.
    views: watch::Sender<ClusterView>,
    /// Wakes the agent sessions whose assignments an apply changed.
    assignments: Arc<AssignmentWatch>,
    /// The last entry applied, reported to openraft on restart.
    last_applied: Option<LogId<NodeId>>,
    /// The last membership applied, carried into snapshots.
    last_membership: StoredMembership<NodeId, BasicNode>,
    /// This controller's flags: ARNs and subnets until the cluster's
    /// identity is fixed (data written before it was replicated).
    arn: ArnContext,
    task_cidr: Ipv4Cidr,
    /// Where snapshots are kept; written only from the snapshot builder and
    /// from installs, each write flushed.
    snapshots: SnapshotStore,
    /// Distinguishes snapshots built at the same log id.
    built: u64,
}

/// The sled tree snapshots are stored in, shared by the state machine and
/// its builders, with one writer at a time.
#[derive(Clone)]
struct SnapshotStore {
    db: sled::Db,
    tree: sled::Tree,
    writing: Arc<tokio::sync::Mutex<()>>,
}

fn read_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::read_snapshot(None, &e).into()
}

fn write_err(e: impl std::error::Error + 'static) -> StorageError {
    StorageIOError::write_snapshot(None, &e).into()
}

impl StateMachineStore {
    /// Opens the state machine, restoring the latest stored snapshot.
    pub fn open(db: &sled::Db, arn: ArnContext, task_cidr: Ipv4Cidr) -> Result<Self, StorageError> {
        let snapshots = SnapshotStore {
            db: db.clone(),
            tree: db.open_tree("snapshot").map_err(read_err)?,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        };
        let mut state = ClusterState::new(arn.clone());
        state.task_cidr = task_cidr;
        let (views, _) = watch::channel(ClusterView::new(0, state.clone()));
        let mut sm = StateMachineStore {
            state,
            views,
            assignments: Arc::default(),
            last_applied: None,
            last_membership: StoredMembership::default(),
            arn,
            task_cidr,
            snapshots,
            built: 0,
        };
        if let Some(data) = sm.snapshots.tree.get(SNAPSHOT_DATA).map_err(read_err)? {
            sm.restore(&data)?;
        }
        Ok(sm)
    }

    /// The channel views are published on.
    pub fn views(&self) -> watch::Sender<ClusterView> {
        self.views.clone()
    }

    /// The per-instance wake-ups published with each view.
    pub fn assignments(&self) -> Arc<AssignmentWatch> {
        self.assignments.clone()
    }

    fn publish(&mut self) {
        let index = self.last_applied.map(|l| l.index).unwrap_or(0);
        let changed = std::mem::take(&mut self.state.changed_assignments.0);
        self.views
            .send_replace(ClusterView::new(index, self.state.clone()));
        self.assignments.notify(&changed);
    }

    fn restore(&mut self, data: &[u8]) -> Result<(), StorageError> {
        let body = read_snapshot_body(data).map_err(read_err)?;
        let mut state = body.state;
        state.adopt_identity(&self.arn, self.task_cidr);
        state.rebuild_indexes();
        self.last_applied = body.last_applied;
        self.last_membership = body.last_membership;
        self.state = state;
        self.publish();
        Ok(())
    }

    /// Stores a snapshot unless a newer one is stored already: openraft
    /// builds snapshots in a task of their own, so a slow build may finish
    /// after a newer snapshot from the leader was installed (and the log
    /// purged up to it); keeping the older one would lose those entries.
    async fn store_snapshot(
        store: &SnapshotStore,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        data: &[u8],
    ) -> Result<(), StorageError> {
        let _one_writer = store.writing.lock().await;
        let (db, tree) = (&store.db, &store.tree);
        if let Some(stored) = tree.get(SNAPSHOT_META).map_err(write_err)? {
            let stored: SnapshotMeta<NodeId, BasicNode> =
                serde_json::from_slice(&stored).map_err(write_err)?;
            if stored.last_log_id > meta.last_log_id {
                tracing::info!(stored = ?stored.last_log_id, built = ?meta.last_log_id, "keeping the newer snapshot");
                return Ok(());
            }
        }
        let meta_bytes = serde_json::to_vec(meta).map_err(write_err)?;
        let mut batch = sled::Batch::default();
        batch.insert(SNAPSHOT_META, meta_bytes);
        batch.insert(SNAPSHOT_DATA, data);
        tree.apply_batch(batch).map_err(write_err)?;
        db.flush_async().await.map_err(write_err)?;
        Ok(())
    }
}

/// Parses a stored or received snapshot, migrating a state written in an
/// older format, and refusing one newer than this code with a message that
/// says so.
fn read_snapshot_body(data: &[u8]) -> Result<SnapshotBody, FormatError> {
    let unreadable = |format| move |source| FormatError::Unreadable { format, source };
    let mut body: serde_json::Value = serde_json::from_slice(data).map_err(unreadable(0))?;
    let format = body
        .get("format")
        .and_then(serde_json::Value::as_u64)
        .map_or(1, |f| u32::try_from(f).unwrap_or(u32::MAX));
    if let Some(state) = body.get_mut("state") {
        migrate_state(state, format)?;
    }
    if let Some(object) = body.as_object_mut() {
        object.insert("format".into(), STATE_FORMAT.into());
    }
    serde_json::from_value(body).map_err(unreadable(format))
}

/// Builds a snapshot from state serialized when it was asked for.
pub struct SnapshotBuilder {
    snapshots: SnapshotStore,
    meta: SnapshotMeta<NodeId, BasicNode>,
    data: Vec<u8>,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        StateMachineStore::store_snapshot(&self.snapshots, &self.meta, &self.data).await?;
        Ok(Snapshot {
            meta: self.meta.clone(),
            snapshot: Box::new(Cursor::new(std::mem::take(&mut self.data))),
        })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(
        &mut self,
    ) -> Result<(Option<LogId<NodeId>>, StoredMembership<NodeId, BasicNode>), StorageError> {
        Ok((self.last_applied, self.last_membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandResult>, StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut results = Vec::new();
        for entry in entries {
            self.last_applied = Some(entry.log_id);
            let result = match entry.payload {
                EntryPayload::Blank => CommandResult::NoCommand,
                EntryPayload::Normal(command) => {
                    self.state.apply(entry.log_id.leader_id.term, command)
                }
                EntryPayload::Membership(membership) => {
                    self.last_membership = StoredMembership::new(Some(entry.log_id), membership);
                    CommandResult::NoCommand
                }
            };
            results.push(result);
        }
        // Published before openraft answers the proposers, so a writer that
        // reads after its write returns sees it.
        self.publish();
        Ok(results)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.built += 1;
        let body = SnapshotBody {
            format: STATE_FORMAT,
            last_applied: self.last_applied,
            last_membership: self.last_membership.clone(),
            state: self.state.clone(),
        };
        // Serializing maps of strings and numbers does not fail; an empty
        // snapshot would be refused by restore, never silently accepted.
        let data = serde_json::to_vec(&body).unwrap_or_default();
        let snapshot_id = match self.last_applied {
            Some(l) => format!("{}-{}-{}", l.leader_id.term, l.index, self.built),
            None => format!("0-0-{}", self.built),
        };
        SnapshotBuilder {
            snapshots: self.snapshots.clone(),
            meta: SnapshotMeta {
                last_log_id: self.last_applied,
                last_membership: self.last_membership.clone(),
                snapshot_id,
            },
            data,
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta<NodeId, BasicNode>,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        let data = snapshot.into_inner();
        self.restore(&data)?;
        Self::store_snapshot(&self.snapshots, meta, &data).await
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let meta = self.snapshots.tree.get(SNAPSHOT_META).map_err(read_err)?;
        let data = self.snapshots.tree.get(SNAPSHOT_DATA).map_err(read_err)?;
        match (meta, data) {
            (Some(meta), Some(data)) => Ok(Some(Snapshot {
                meta: serde_json::from_slice(&meta).map_err(read_err)?,
                snapshot: Box::new(Cursor::new(data.to_vec())),
            })),
            _ => Ok(None),
        }
    }
}

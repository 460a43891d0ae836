//! The Raft log, vote and committed index in sled.
//!
//! Architecture Invariant: an append is reported complete to openraft only
//! after sled's flush has returned, so an acknowledged write is on disk.
//! (sled's own background flush is not durability; openraft 0.9's RocksDB
//! example completes appends before flushing, which we do not copy.)
//!
//! openraft 0.9 waits for each append's callback before it handles the next
//! message, so appends cannot overlap here: concurrent writers share a flush
//! by sharing an entry (see `proposer`).

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogReader, RaftLogStorage};
use openraft::{Entry, LogId, RaftLogId, StorageIOError, Vote};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{NodeId, StorageError, TypeConfig};

const VOTE: &[u8] = b"vote";
const COMMITTED: &[u8] = b"committed";
const LAST_PURGED: &[u8] = b"last_purged";

/// Log entries keyed by big-endian index (so sled's order is log order) and
/// Raft metadata, in two trees of the controller's sled database.
#[derive(Clone)]
pub struct LogStore {
    db: sled::Db,
    logs: sled::Tree,
    meta: sled::Tree,
    /// Log flushes done, for tests and metrics.
    flushes: Arc<AtomicU64>,
}

fn key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(value)
}

fn from_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, serde_json::Error> {
    serde_json::from_slice(bytes)
}

impl LogStore {
    pub fn open(db: &sled::Db) -> Result<Self, sled::Error> {
        Ok(LogStore {
            db: db.clone(),
            logs: db.open_tree("raft_log")?,
            meta: db.open_tree("raft_meta")?,
            flushes: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Counts the flushes of appended entries since the log was opened.
    pub fn flush_counter(&self) -> Arc<AtomicU64> {
        self.flushes.clone()
    }

    async fn flush(&self) -> Result<(), sled::Error> {
        self.db.flush_async().await.map(|_| ())
    }

    fn read_meta<T: DeserializeOwned>(&self, name: &[u8]) -> Result<Option<T>, StorageError> {
        match self.meta.get(name).map_err(|e| StorageIOError::read(&e))? {
            None => Ok(None),
            Some(bytes) => from_json(&bytes)
                .map(Some)
                .map_err(|e| StorageIOError::read(&e).into()),
        }
    }

    async fn write_meta<T: Serialize>(&self, name: &[u8], value: &T) -> Result<(), StorageError> {
        let bytes = to_json(value).map_err(|e| StorageIOError::write(&e))?;
        self.meta
            .insert(name, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        self.flush().await.map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, StorageError> {
        match self
            .logs
            .last()
            .map_err(|e| StorageIOError::read_logs(&e))?
        {
            None => Ok(None),
            Some((_, bytes)) => from_json(&bytes)
                .map(Some)
                .map_err(|e| StorageIOError::read_logs(&e).into()),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError> {
        let start = match range.start_bound() {
            Bound::Included(i) => Bound::Included(key(*i)),
            Bound::Excluded(i) => Bound::Excluded(key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let end = match range.end_bound() {
            Bound::Included(i) => Bound::Included(key(*i)),
            Bound::Excluded(i) => Bound::Excluded(key(*i)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let mut entries = Vec::new();
        for item in self.logs.range((start, end)) {
            let (_, bytes) = item.map_err(|e| StorageIOError::read_logs(&e))?;
            entries.push(from_json(&bytes).map_err(|e| StorageIOError::read_logs(&e))?);
        }
        Ok(entries)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let last_purged_log_id: Option<LogId<NodeId>> = self.read_meta(LAST_PURGED)?;
        let last_log_id = match self.last_entry()? {
            Some(entry) => Some(*entry.get_log_id()),
            None => last_purged_log_id,
        };
        Ok(LogState {
            last_purged_log_id,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError> {
        self.write_meta(VOTE, vote).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError> {
        self.read_meta(VOTE)
    }

    async fn save_committed(
        &mut self,
        committed: Option<LogId<NodeId>>,
    ) -> Result<(), StorageError> {
        // Not flushed: the committed index only lets a restarted node apply
        // sooner. It is written after the entries it covers were flushed, and
        // losing it costs a re-commit, never an entry.
        let bytes = to_json(&committed).map_err(|e| StorageIOError::write(&e))?;
        self.meta
            .insert(COMMITTED, bytes)
            .map_err(|e| StorageIOError::write(&e))?;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError> {
        Ok(self
            .read_meta::<Option<LogId<NodeId>>>(COMMITTED)?
            .flatten())
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + Send,
        I::IntoIter: Send,
    {
        let mut batch = sled::Batch::default();
        for entry in entries {
            let bytes = to_json(&entry).map_err(|e| StorageIOError::write_logs(&e))?;
            batch.insert(&key(entry.get_log_id().index), bytes);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        // Durability: openraft may acknowledge the entries as soon as the
        // callback fires, so it fires only after the flush.
        let flushed = self.flush().await;
        self.flushes.fetch_add(1, Ordering::Relaxed);
        match flushed {
            Ok(()) => {
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(std::io::Error::other(e.to_string())));
                Err(StorageIOError::write_logs(&e).into())
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        let mut batch = sled::Batch::default();
        for item in self.logs.range(key(log_id.index)..) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError> {
        // Record the purge point first: a crash between the two steps leaves
        // entries that are merely ignored, never a hole that looks valid.
        self.write_meta(LAST_PURGED, &log_id).await?;
        let mut batch = sled::Batch::default();
        for item in self.logs.range(..=key(log_id.index)) {
            let (k, _) = item.map_err(|e| StorageIOError::write_logs(&e))?;
            batch.remove(k);
        }
        self.logs
            .apply_batch(batch)
            .map_err(|e| StorageIOError::write_logs(&e))?;
        self.flush()
            .await
            .map_err(|e| StorageIOError::write_logs(&e))?;
        Ok(())
    }
}

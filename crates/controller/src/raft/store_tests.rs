//! openraft's storage test suite against the sled log store and state
//! machine, plus a reopen test: what was appended is there after a restart.

use openraft::storage::RaftLogStorage;
use openraft::testing::{StoreBuilder, Suite};
use openraft::{LogId, Vote};
use orca_core::arn::ArnContext;

use super::log_store::LogStore;
use super::state_machine::StateMachineStore;
use super::{StorageError, TypeConfig};

struct SledBuilder;

fn io(e: impl std::error::Error + 'static) -> StorageError {
    openraft::StorageIOError::write(&e).into()
}

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, tempfile::TempDir> for SledBuilder {
    async fn build(
        &self,
    ) -> Result<(tempfile::TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().map_err(io)?;
        let db = sled::open(dir.path()).map_err(io)?;
        let log = LogStore::open(&db).map_err(io)?;
        let sm =
            StateMachineStore::open(&db, ArnContext::default(), crate::state::DEFAULT_TASK_CIDR)?;
        Ok((dir, log, sm))
    }
}

#[test]
fn sled_store_passes_openraft_storage_suite() -> Result<(), StorageError> {
    Suite::test_all(SledBuilder)
}

/// Opens the database again once the previous handle's background thread
/// has let go of the directory lock (sled releases it asynchronously).
async fn reopen(path: &std::path::Path) -> Result<sled::Db, StorageError> {
    let mut attempt = 0;
    loop {
        match sled::open(path) {
            Ok(db) => return Ok(db),
            Err(e) if attempt >= 200 => return Err(io(e)),
            Err(_) => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
        }
    }
}

#[tokio::test]
async fn vote_and_committed_index_survive_reopen() -> Result<(), StorageError> {
    let dir = tempfile::tempdir().map_err(io)?;
    let committed = Some(LogId::new(openraft::CommittedLeaderId::new(3, 1), 7));
    {
        let db = sled::open(dir.path()).map_err(io)?;
        let mut log = LogStore::open(&db).map_err(io)?;
        log.save_vote(&Vote::new(3, 1)).await?;
        log.save_committed(committed).await?;
    }
    let db = reopen(dir.path()).await?;
    let mut log = LogStore::open(&db).map_err(io)?;
    assert_eq!(log.read_vote().await?, Some(Vote::new(3, 1)));
    assert_eq!(log.read_committed().await?, committed);
    Ok(())
}

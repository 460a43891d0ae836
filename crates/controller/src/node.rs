//! One controller node: opens storage, starts Raft, bootstraps a new
//! single-node cluster, and proposes commands.

use std::collections::BTreeMap;
use std::time::Duration;

use openraft::BasicNode;
use orca_core::arn::ArnContext;
use orca_core::ApiError;

use crate::config::Config;
use crate::error::Error;
use crate::raft::log_store::LogStore;
use crate::raft::network::SingleNodeNetwork;
use crate::raft::state_machine::{SharedState, StateMachineStore};
use crate::raft::Raft;
use crate::state::{Command, CommandResult, Outcome};

pub struct Node {
    pub id: u64,
    pub raft: Raft,
    /// The applied state, for reads.
    pub state: SharedState,
    pub arn: ArnContext,
}

impl Node {
    /// Opens (or creates) the node's storage and starts Raft. A node with no
    /// Raft state bootstraps itself as the only voter; a restarted node
    /// recovers from its snapshot and log.
    pub async fn open(config: &Config) -> Result<Node, Error> {
        let path = config.data_dir.join("raft");
        let db = sled::Config::new()
            .path(&path)
            .open()
            .map_err(|source| Error::DataDir {
                path: path.clone(),
                source,
            })?;
        let log_store = LogStore::open(&db).map_err(|source| Error::DataDir {
            path: path.clone(),
            source,
        })?;
        let state_machine = StateMachineStore::open(&db, config.arn.clone())?;
        let state = state_machine.shared_state();
        let raft = Raft::new(
            config.node_id,
            config.raft.to_config()?,
            SingleNodeNetwork,
            log_store,
            state_machine,
        )
        .await
        .map_err(|e| Error::Raft(e.to_string()))?;
        let initialized = raft
            .is_initialized()
            .await
            .map_err(|e| Error::Raft(e.to_string()))?;
        if !initialized {
            let members = BTreeMap::from([(
                config.node_id,
                BasicNode {
                    addr: config.listen.to_string(),
                },
            )]);
            raft.initialize(members)
                .await
                .map_err(|e| Error::Raft(e.to_string()))?;
        }
        Ok(Node {
            id: config.node_id,
            raft,
            state,
            arn: config.arn.clone(),
        })
    }

    /// Waits until this node leads (a single node elects itself).
    pub async fn wait_leader(&self, timeout: Duration) -> Result<(), Error> {
        let id = self.id;
        self.raft
            .wait(Some(timeout))
            .metrics(
                |m| m.current_leader == Some(id) && m.state.is_leader(),
                "leadership",
            )
            .await
            .map(|_| ())
            .map_err(|e| Error::Raft(e.to_string()))
    }

    /// Commits a command and returns what applying it produced. Returns only
    /// after the entry is flushed, committed and applied.
    pub async fn propose(&self, command: Command) -> Result<Outcome, ApiError> {
        match self.raft.client_write(command).await {
            Ok(response) => match response.data {
                CommandResult::Applied(outcome) => Ok(outcome),
                CommandResult::Refused(error) => Err(error),
                CommandResult::NoCommand => Err(ApiError::server("the write produced no result")),
            },
            Err(e) => Err(ApiError::server(format!(
                "the write was not committed: {e}"
            ))),
        }
    }

    pub async fn shutdown(&self) {
        if let Err(e) = self.raft.shutdown().await {
            tracing::warn!(error = %e, "raft did not shut down cleanly");
        }
    }
}

//! The replicated cluster state and its only mutator, [`ClusterState::apply`].
//!
//! Architecture Invariant: `apply` is a deterministic function of the state
//! and the command. It reads no clock, draws no random number, does no I/O and
//! iterates only ordered maps, so every replica and every replay of the log
//! reaches the same state.

mod clusters;
pub mod command;
pub mod query;
mod task_definitions;

use std::collections::BTreeMap;

use orca_core::arn::ArnContext;
use orca_core::cluster::{ClusterSetting, ClusterStatus, DEFAULT_CLUSTER};
use orca_core::task_definition::Tag;
use serde::{Deserialize, Serialize};

pub use clusters::ClusterUsage;
pub use command::{Command, CommandResult, Failure, Outcome, StoredTaskDefinition};

/// A cluster as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub arn: String,
    pub status: ClusterStatus,
    pub settings: Vec<ClusterSetting>,
    pub tags: Vec<Tag>,
}

/// Every revision ever registered in one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// The highest revision ever handed out: revisions never repeat, even
    /// after every revision of the family is deleted.
    pub last_revision: u32,
    pub revisions: BTreeMap<u32, StoredTaskDefinition>,
}

/// Everything the controllers agree on. Serialized whole into snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Region and account of the ARNs minted here. Comes from configuration,
    /// not from snapshots, and must be the same on every controller.
    #[serde(skip, default)]
    pub arn: ArnContext,
    pub clusters: BTreeMap<String, ClusterRecord>,
    pub families: BTreeMap<String, Family>,
}

impl ClusterState {
    /// A new cluster's state: the `default` cluster exists from the start.
    pub fn new(arn: ArnContext) -> Self {
        let default = ClusterRecord {
            name: DEFAULT_CLUSTER.to_string(),
            arn: arn.cluster(DEFAULT_CLUSTER),
            status: ClusterStatus::Active,
            settings: Vec::new(),
            tags: Vec::new(),
        };
        ClusterState {
            arn,
            clusters: BTreeMap::from([(DEFAULT_CLUSTER.to_string(), default)]),
            families: BTreeMap::new(),
        }
    }

    /// Applies one command, committed in Raft term `term`. The only function
    /// that changes the state.
    pub fn apply(&mut self, term: u64, command: Command) -> CommandResult {
        let result = match command {
            Command::Batch { commands } => {
                return CommandResult::Batch(
                    commands.into_iter().map(|c| self.apply(term, c)).collect(),
                )
            }
            Command::CreateCluster {
                name,
                settings,
                tags,
            } => Ok(self.create_cluster(name, settings, tags)),
            Command::UpdateClusterSettings { name, settings } => {
                self.update_cluster_settings(&name, settings)
            }
            Command::DeleteCluster { name } => self.delete_cluster(&name),
            Command::RegisterTaskDefinition {
                spec,
                tags,
                registered_at,
                registered_by,
            } => Ok(self.register_task_definition(*spec, tags, registered_at, registered_by)),
            Command::DeregisterTaskDefinition {
                family,
                revision,
                at,
            } => self.deregister_task_definition(&family, revision, at),
            Command::DeleteTaskDefinitions { revisions, at } => {
                Ok(self.delete_task_definitions(&revisions, at))
            }
            Command::PurgeTaskDefinitions {
                revisions,
                decided_in_term,
            } => fence(term, decided_in_term).map(|()| self.purge_task_definitions(&revisions)),
        };
        match result {
            Ok(outcome) => CommandResult::Applied(outcome),
            Err(error) => CommandResult::Refused(error),
        }
    }
}

/// Leader-only work is fenced by term: a decision made while leading term T
/// takes effect only if committed in term T. A deposed leader's proposal that
/// reaches the log later, forwarded or re-proposed, is refused.
fn fence(committed_in: u64, decided_in: u64) -> Result<(), orca_core::ApiError> {
    if committed_in == decided_in {
        Ok(())
    } else {
        Err(orca_core::ApiError::server(format!(
            "decided as leader of term {decided_in} but committed in term {committed_in}: refused"
        )))
    }
}

#[cfg(test)]
mod tests;

//! The replicated cluster state and its only mutator, [`ClusterState::apply`].
//!
//! Architecture Invariant: `apply` is a deterministic function of the state
//! and the command. It reads no clock, draws no random number, does no I/O and
//! iterates only ordered maps, so every replica and every replay of the log
//! reaches the same state.

pub mod account_settings;
mod clusters;
pub mod command;
pub mod discovery;
pub mod exec_targets;
pub mod host_ports;
pub mod identity;
pub mod instance_admin;
pub mod instances;
pub mod legacy;
pub mod log_targets;
pub mod net_map;
pub mod placement_index;
pub mod query;
mod resource_tags;
pub mod run_timeouts;
pub mod secrets;
pub mod service_record;
mod service_render;
pub mod services;
pub mod task_addresses;
pub mod task_definitions;
pub mod task_index;
pub mod task_queries;
pub mod task_record;
mod task_render;
pub mod tasks;
pub mod view;

use imbl::OrdMap;

use orca_core::arn::ArnContext;
use orca_core::cidr::Ipv4Cidr;
use orca_core::cluster::{ClusterSetting, ClusterStatus, DEFAULT_CLUSTER};
use orca_core::task_definition::Tag;
use serde::{Deserialize, Serialize};

pub use clusters::ClusterUsage;
pub use command::{Command, CommandResult, Failure, Outcome, StoredTaskDefinition};
pub use identity::Identity;
pub use instances::{InstanceRecord, RecordFacts};
pub use service_record::{
    service_group, service_key, DeploymentRecord, EventRecord, ServiceDiscovery,
    ServiceInfrastructure, ServiceRecord, Throttle,
};
pub use task_record::{ContainerRecord, TaskNetwork, TaskRecord, TaskTimes};
pub use tasks::{ClientTokenRecord, Placement, RunTaskCommand};
pub use view::{AssignmentWatch, ClusterView};

/// The default cluster-wide task CIDR; each container instance gets a /24
/// of it unless its agent is configured with a subnet.
pub const DEFAULT_TASK_CIDR: Ipv4Cidr = Ipv4Cidr {
    network: std::net::Ipv4Addr::new(198, 19, 0, 0),
    prefix_len: 16,
};

/// A cluster as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub name: String,
    pub arn: String,
    pub status: ClusterStatus,
    pub settings: Vec<ClusterSetting>,
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub capacity: orca_core::cluster::ClusterCapacity,
    /// Moves whenever the cluster's node map changes (an instance
    /// registered with a new subnet, address or overlay, or deregistered),
    /// so agent sessions resend it without comparing maps.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub net_version: u64,
}

fn is_zero_u64(n: &u64) -> bool {
    *n == 0
}

/// Every revision ever registered in one family.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Family {
    /// The highest revision ever handed out: revisions never repeat, even
    /// after every revision of the family is deleted.
    pub last_revision: u32,
    pub revisions: OrdMap<u32, StoredTaskDefinition>,
}

/// Everything the controllers agree on. Serialized whole into snapshots.
///
/// The maps are persistent (structurally shared) maps: cloning the state is
/// a handful of reference-count bumps, so every apply can publish an
/// immutable [`ClusterView`] for readers, leader loops and agent sessions
/// without copying, and an apply copies only the paths it changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterState {
    /// Region, account and task CIDR, fixed once for the whole controller
    /// cluster by `Command::FixIdentity`. None only on data written before
    /// the identity was replicated, until the leader fixes it.
    #[serde(default)]
    pub identity: Option<Identity>,
    /// Region and account of the ARNs minted here: the fixed identity's, or
    /// this controller's flags until it is fixed.
    #[serde(skip, default)]
    pub arn: ArnContext,
    /// The block node task subnets are carved from; like `arn`.
    #[serde(skip, default = "default_task_cidr")]
    pub task_cidr: Ipv4Cidr,
    pub clusters: OrdMap<String, ClusterRecord>,
    pub families: OrdMap<String, Family>,
    /// Container instances by id.
    #[serde(default)]
    pub instances: OrdMap<String, InstanceRecord>,
    /// Tasks by id (task ids are unique across clusters).
    #[serde(default)]
    pub tasks: OrdMap<String, TaskRecord>,
    /// Services by `service_key(cluster, name)`.
    #[serde(default)]
    pub services: OrdMap<String, ServiceRecord>,
    /// RunTask clientTokens by (cluster, token).
    #[serde(default, with = "token_map")]
    pub client_tokens: OrdMap<(String, String), ClientTokenRecord>,
    /// Tags of container instances by id (TagResource); every other
    /// resource keeps its tags in its record.
    #[serde(default)]
    pub instance_tags: OrdMap<String, Vec<Tag>>,
    /// ECS's account settings: principal ARN ("" for the account's
    /// default) → setting name → value.
    #[serde(default)]
    pub account_settings: OrdMap<String, OrdMap<String, String>>,
    /// Secrets Manager secrets by name (values sealed, `secrets.rs`).
    #[serde(default)]
    pub secrets: OrdMap<String, secrets::SecretRecord>,
    /// Parameter Store parameters by name (values sealed).
    #[serde(default)]
    pub parameters: OrdMap<String, secrets::ParameterRecord>,
    /// The fingerprint of the key that sealed every value above, fixed by
    /// the first one: a controller holding another key refuses to start.
    #[serde(default)]
    pub secrets_key_id: Option<String>,
    /// Instances whose assignments changed in the applies not yet published.
    #[serde(skip)]
    pub changed_assignments: view::ChangedInstances,
    /// The scheduler's index of `instances` (positions in id order,
    /// resources, availability, interned attributes, group counts), kept
    /// current by `apply`. Derived data: never serialized, rebuilt from the
    /// records on restore (`rebuild_indexes`); equal to another when it
    /// holds the same facts.
    #[serde(skip)]
    pub placement_index: placement_index::PlacementIndex,
    /// `tasks` ordered for ListTasks and the purge (`task_index.rs`), kept
    /// current by `apply`. Derived like `placement_index`: never
    /// serialized, rebuilt on restore, checked by `check_task_index`.
    #[serde(skip)]
    pub task_index: task_index::TaskIndex,
}

fn default_task_cidr() -> Ipv4Cidr {
    DEFAULT_TASK_CIDR
}

/// JSON maps need string keys: the token map travels as a list of entries.
mod token_map {
    use imbl::OrdMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::ClientTokenRecord;

    type Map = OrdMap<(String, String), ClientTokenRecord>;

    pub fn serialize<S: Serializer>(map: &Map, s: S) -> Result<S::Ok, S::Error> {
        map.iter().collect::<Vec<_>>().serialize(s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Map, D::Error> {
        let entries: Vec<((String, String), ClientTokenRecord)> = Vec::deserialize(d)?;
        Ok(entries.into_iter().collect())
    }
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
            capacity: Default::default(),
            net_version: 0,
        };
        ClusterState {
            identity: None,
            arn,
            task_cidr: DEFAULT_TASK_CIDR,
            clusters: OrdMap::unit(DEFAULT_CLUSTER.to_string(), default),
            families: OrdMap::new(),
            instances: OrdMap::new(),
            tasks: OrdMap::new(),
            services: OrdMap::new(),
            client_tokens: OrdMap::new(),
            instance_tags: OrdMap::new(),
            account_settings: OrdMap::new(),
            secrets: OrdMap::new(),
            parameters: OrdMap::new(),
            secrets_key_id: None,
            changed_assignments: view::ChangedInstances::default(),
            placement_index: placement_index::PlacementIndex::default(),
            task_index: task_index::TaskIndex::default(),
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
                capacity,
            } => Ok(self.create_cluster(name, settings, tags, capacity)),
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
            Command::RegisterContainerInstance {
                instance_id,
                registration,
                at,
            } => self.register_container_instance(instance_id, registration, at),
            Command::SetAgentConnected {
                instance_id,
                connected,
                decided_in_term,
            } => fence(term, decided_in_term)
                .and_then(|()| self.set_agent_connected(&instance_id, connected)),
            Command::RunTask(run) => self.run_task(*run),
            Command::StopTask {
                cluster,
                task_id,
                reason,
                stop_code,
                at,
            } => self.stop_task(&cluster, &task_id, reason, stop_code, at),
            Command::ReportTaskStates {
                instance_id,
                reports,
            } => self.report_task_states(&instance_id, reports),
            Command::PurgeTasks {
                task_ids,
                decided_in_term,
            } => fence(term, decided_in_term).map(|()| self.purge_tasks(&task_ids)),
            Command::FixIdentity { identity } => Ok(self.fix_identity(identity)),
            Command::InstanceLost {
                instance_id,
                at,
                decided_in_term,
            } => fence(term, decided_in_term).and_then(|()| self.instance_lost(&instance_id, at)),
            Command::PutAttributes {
                cluster,
                attributes,
            } => self.put_attributes(&cluster, attributes),
            Command::DeleteAttributes {
                cluster,
                attributes,
            } => self.delete_attributes(&cluster, attributes),
            Command::SetInstancesStatus {
                cluster,
                instance_ids,
                status,
            } => self.set_instances_status(&cluster, &instance_ids, status),
            Command::DeregisterContainerInstance {
                cluster,
                instance_id,
                force,
                at,
            } => self.deregister_instance(&cluster, &instance_id, force, at),
            Command::CreateService {
                service,
                task_definition,
                deployment_id,
            } => self.create_service(*service, &task_definition, deployment_id),
            Command::UpdateService(update) => self.update_service(*update),
            Command::DeleteService {
                cluster,
                name,
                force,
            } => self.delete_service(&cluster, &name, force),
            Command::ServiceStep {
                step,
                decided_in_term,
            } => fence(term, decided_in_term).and_then(|()| self.service_step(*step)),
            Command::MakeRoomForDaemon {
                cluster,
                task_id,
                daemon_service,
                decided_in_term,
            } => fence(term, decided_in_term)
                .and_then(|()| self.make_room_for_daemon(&cluster, &task_id, daemon_service)),
            Command::TagResource { resource, tags } => self.tag_resource(&resource, tags),
            Command::UntagResource { resource, keys } => self.untag_resource(&resource, &keys),
            Command::PutClusterCapacityProviders { name, capacity } => {
                self.put_cluster_capacity_providers(&name, capacity)
            }
            Command::PutAccountSetting {
                principal,
                name,
                value,
            } => Ok(self.put_account_setting(principal, name, value)),
            Command::Secrets(command) => self.apply_secrets(command),
            Command::RecordServiceEvents {
                cluster,
                name,
                messages,
                at,
                decided_in_term,
            } => fence(term, decided_in_term)
                .and_then(|()| self.record_service_events(&cluster, &name, messages, at)),
            Command::ApplyPlan {
                runs,
                decided_in_term,
            } => fence(term, decided_in_term).map(|()| {
                Outcome::Plan(
                    runs.into_iter()
                        .map(|run| match self.run_task(run) {
                            Ok(outcome) => CommandResult::Applied(outcome),
                            Err(error) => CommandResult::Refused(error),
                        })
                        .collect(),
                )
            }),
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
mod address_tests;
#[cfg(test)]
mod exec_target_tests;
#[cfg(test)]
mod history_tests;
#[cfg(test)]
mod index_tests;
#[cfg(test)]
mod log_target_tests;
#[cfg(test)]
mod net_map_tests;
#[cfg(test)]
mod port_tests;
#[cfg(test)]
mod run_timeout_tests;
#[cfg(test)]
mod secrets_tests;
#[cfg(test)]
mod task_tests;
#[cfg(test)]
mod tests;

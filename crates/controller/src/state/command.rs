//! Every replicated write is one variant of [`Command`]; [`super::ClusterState::apply`]
//! is the only place they take effect.
//!
//! Commands are stored in the Raft log and in snapshots as JSON with stable
//! tags: variants are append-only and never renamed, and whatever the leader
//! read from a clock (timestamps) or chose (identities) travels inside the
//! command so that every replica applies the same thing.

use orca_core::agent_protocol::{Registration, TaskStateReport};
use orca_core::cluster::ClusterSetting;
use orca_core::task::{Failure as TaskFailure, StopCode, Task};
use orca_core::task_definition::{Tag, TaskDefinition, TaskDefinitionSpec, Timestamp};
use orca_core::ApiError;
use serde::{Deserialize, Serialize};

use super::instances::InstanceRecord;
use super::tasks::RunTaskCommand;
use super::ClusterRecord;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum Command {
    /// CreateCluster: creates, re-activates an INACTIVE cluster, or returns the
    /// existing ACTIVE one unchanged (ECS's idempotency).
    CreateCluster {
        name: String,
        settings: Vec<ClusterSetting>,
        tags: Vec<Tag>,
        #[serde(default)]
        capacity: orca_core::cluster::ClusterCapacity,
    },
    /// UpdateCluster: replaces the named settings.
    UpdateClusterSettings {
        name: String,
        settings: Vec<ClusterSetting>,
    },
    /// DeleteCluster: moves an empty cluster to INACTIVE.
    DeleteCluster {
        name: String,
    },
    /// RegisterTaskDefinition: the next revision of `spec.family`.
    RegisterTaskDefinition {
        spec: Box<TaskDefinitionSpec>,
        tags: Vec<Tag>,
        registered_at: Timestamp,
        registered_by: String,
    },
    /// DeregisterTaskDefinition: ACTIVE -> INACTIVE.
    DeregisterTaskDefinition {
        family: String,
        revision: u32,
        at: Timestamp,
    },
    /// DeleteTaskDefinitions: INACTIVE -> DELETE_IN_PROGRESS, each revision on
    /// its own (failures do not stop the others, as in ECS).
    DeleteTaskDefinitions {
        revisions: Vec<(String, u32)>,
        at: Timestamp,
    },
    /// Several commands proposed together (see `proposer`): one log entry,
    /// applied in order, each with its own result.
    Batch {
        commands: Vec<Command>,
    },
    /// Leader-only work: removes DELETE_IN_PROGRESS revisions for good (their
    /// numbers stay used). Refused unless committed in the term it was
    /// decided in, so a deposed leader's decision never takes effect.
    PurgeTaskDefinitions {
        revisions: Vec<(String, u32)>,
        decided_in_term: u64,
    },
    /// RegisterContainerInstance: a new instance with `instance_id`, or the
    /// same instance again when the registration names its ARN.
    RegisterContainerInstance {
        instance_id: String,
        registration: Registration,
        at: Timestamp,
    },
    /// Leader-only: whether the instance's agent holds a session with the
    /// leader (heartbeats themselves never enter the log).
    SetAgentConnected {
        instance_id: String,
        connected: bool,
        decided_in_term: u64,
    },
    /// RunTask with the leader's placements; re-checked at apply.
    RunTask(Box<RunTaskCommand>),
    /// StopTask (or any stop the controller decides): desired STOPPED.
    StopTask {
        cluster: String,
        task_id: String,
        reason: Option<String>,
        stop_code: StopCode,
        at: Timestamp,
    },
    /// An agent's batch of task state reports.
    ReportTaskStates {
        instance_id: String,
        reports: Vec<TaskStateReport>,
    },
    /// Leader-only: forgets STOPPED tasks past their retention.
    PurgeTasks {
        task_ids: Vec<String>,
        decided_in_term: u64,
    },
    /// Fixes the controller cluster's region, account and task CIDR, once:
    /// proposed by the first leader from its flags; later ones change nothing.
    FixIdentity {
        identity: super::Identity,
    },
    /// Leader-only: the plan applier's decisions, one RunTask per ask, as
    /// one entry. Each run is re-checked and applied on its own (a run that
    /// no longer fits changes nothing and is placed again).
    ApplyPlan {
        runs: Vec<RunTaskCommand>,
        decided_in_term: u64,
    },
    /// Leader-only: the instance's agent has been silent past the loss
    /// grace; its unstopped tasks are recorded STOPPED (InfrastructureHealth)
    /// and their reservations released. Changes nothing if the agent is
    /// connected again when it commits.
    InstanceLost {
        instance_id: String,
        at: Timestamp,
        decided_in_term: u64,
    },
    /// PutAttributes on container instances (all or nothing).
    PutAttributes {
        cluster: String,
        attributes: Vec<super::instance_admin::InstanceAttribute>,
    },
    /// DeleteAttributes on container instances (all or nothing).
    DeleteAttributes {
        cluster: String,
        attributes: Vec<super::instance_admin::InstanceAttribute>,
    },
    /// UpdateContainerInstancesState: ACTIVE or DRAINING.
    SetInstancesStatus {
        cluster: String,
        instance_ids: Vec<String>,
        status: super::instances::InstanceStatus,
    },
    /// DeregisterContainerInstance.
    DeregisterContainerInstance {
        cluster: String,
        instance_id: String,
        force: bool,
        at: Timestamp,
    },
    /// CreateService: the record as the handler built it; `apply` resolves
    /// the task definition and opens the first deployment.
    CreateService {
        service: Box<super::ServiceRecord>,
        task_definition: orca_core::arn::TaskDefinitionRef,
        deployment_id: String,
    },
    UpdateService(Box<super::services::ServiceUpdate>),
    DeleteService {
        cluster: String,
        name: String,
        force: bool,
    },
    /// One reconciler step, decided by the leader of `decided_in_term`.
    ServiceStep {
        step: Box<super::services::ServiceStepCommand>,
        decided_in_term: u64,
    },
    /// The leader's service loop moves a replica task off an instance a
    /// DAEMON service's task cannot otherwise land on.
    MakeRoomForDaemon {
        cluster: String,
        task_id: String,
        daemon_service: String,
        decided_in_term: u64,
    },
    /// TagResource: adds or replaces tags.
    TagResource {
        resource: orca_core::arn::TaggedResource,
        tags: Vec<Tag>,
    },
    /// UntagResource: removes tags by key.
    UntagResource {
        resource: orca_core::arn::TaggedResource,
        keys: Vec<String>,
    },
    /// PutClusterCapacityProviders: stored as ECS stores them.
    PutClusterCapacityProviders {
        name: String,
        capacity: orca_core::cluster::ClusterCapacity,
    },
    /// PutAccountSetting / PutAccountSettingDefault (principal "").
    PutAccountSetting {
        principal: String,
        name: String,
        value: String,
    },
    /// Secrets Manager and Parameter Store writes, values sealed by the
    /// handler (never a plaintext in the log).
    Secrets(super::secrets::SecretsCommand),
    /// Events the leader's service loop reports after acting.
    RecordServiceEvents {
        cluster: String,
        name: String,
        messages: Vec<String>,
        at: Timestamp,
        decided_in_term: u64,
    },
}

/// A task definition with the tags it was registered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoredTaskDefinition {
    pub task_definition: TaskDefinition,
    pub tags: Vec<Tag>,
}

/// ECS's `failures[]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub arn: String,
    pub reason: String,
    pub detail: String,
}

/// What applying a command produced, returned to the proposer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Cluster(ClusterRecord),
    TaskDefinition(Box<StoredTaskDefinition>),
    DeletedTaskDefinitions {
        deleted: Vec<TaskDefinition>,
        failures: Vec<Failure>,
    },
    /// How many revisions a purge removed.
    Purged(usize),
    ContainerInstance(Box<InstanceRecord>),
    /// RunTask's tasks and failures.
    Tasks {
        tasks: Vec<Task>,
        failures: Vec<TaskFailure>,
    },
    Task(Box<Task>),
    /// How many tasks a batch of reports changed.
    Reported(usize),
    /// RunTask's placements no longer fit (the state moved since the leader
    /// placed): nothing changed; the leader places again.
    PlacementConflict,
    /// The controller cluster's identity after a FixIdentity.
    Identity(Option<super::Identity>),
    /// ApplyPlan's result for each run, in order.
    Plan(Vec<CommandResult>),
    /// The tasks an InstanceLost stopped.
    Lost {
        task_ids: Vec<String>,
    },
    /// The attributes put or deleted, in ECS's shape.
    Attributes(Vec<orca_core::task_definition::Attribute>),
    /// The instances a command changed, by id.
    Instances(Vec<String>),
    /// The service a command created or changed, by key.
    Service(String),
    /// A resource's tags after TagResource or UntagResource.
    Tags(Vec<Tag>),
    /// The setting PutAccountSetting stored.
    AccountSetting(super::account_settings::AccountSetting),
    /// The task (by id) a MakeRoomForDaemon marked, or left as it was.
    MakingRoom(String),
    /// What a secrets or parameters command changed.
    Secret(super::secrets::SecretChange),
    /// A reconciler step computed from an older version of its service:
    /// nothing changed; the reconciler runs again.
    StaleStep,
}

/// The Raft response type: a command either takes effect or is refused by a
/// rule that needs the state to decide (a missing cluster, a non-empty one).
/// Refusals are deterministic, so every replica refuses alike.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CommandResult {
    /// Raft's own entries (blank, membership) carry no command.
    NoCommand,
    Applied(Outcome),
    Refused(ApiError),
    /// The results of a `Command::Batch`, in order.
    Batch(Vec<CommandResult>),
}

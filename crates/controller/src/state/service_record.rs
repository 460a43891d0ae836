//! A service as the controllers store it: what the user asked for, its
//! deployments with their rollout progress, the crash-loop throttle and the
//! latest events. ECS's describe shape is rendered on read
//! (`service_render.rs`); counts of running and pending tasks are computed
//! from the tasks, never stored.

use std::collections::BTreeSet;

use orca_core::placement::{PlacementConstraintInput, PlacementStrategyInput};
use orca_core::service::{
    DeploymentConfiguration, DeploymentRules, DeploymentStatus, RolloutState, SchedulingStrategy,
    ServiceStatus,
};
use orca_core::task::NetworkConfiguration;
use orca_core::task_definition::{Tag, Timestamp};
use serde::{Deserialize, Serialize};

/// ECS keeps a service's latest 100 events.
pub const MAX_SERVICE_EVENTS: usize = 100;

/// A service as stored, by `service_key(cluster, name)`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub name: String,
    pub cluster: String,
    pub status: ServiceStatus,
    pub strategy: SchedulingStrategy,
    pub desired_count: u32,
    /// Newest first: the first is PRIMARY.
    pub deployments: Vec<DeploymentRecord>,
    pub configuration: DeploymentConfiguration,
    pub placement_constraints: Vec<PlacementConstraintInput>,
    pub placement_strategy: Vec<PlacementStrategyInput>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub launch_type: Option<String>,
    pub enable_execute_command: bool,
    /// Accepted so ECS scripts run; stored and returned, not acted on.
    pub infrastructure: ServiceInfrastructure,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub created_by: String,
    pub client_token: Option<String>,
    /// The request's canonical JSON, for clientToken idempotency.
    pub fingerprint: String,
    /// Newest first, at most [`MAX_SERVICE_EVENTS`].
    pub events: Vec<EventRecord>,
    /// How many events were ever recorded: the next event's id.
    pub events_recorded: u64,
    pub throttle: Throttle,
    /// The task definition of the last deployment that COMPLETED: where a
    /// circuit breaker rolls back to.
    pub last_completed: Option<(String, u32)>,
    /// Bumped on every change; the reconciler's steps are applied only to
    /// the version they were computed from.
    pub version: u64,
    /// The service's name in the cluster's discovery namespace, from its
    /// `serviceRegistries` (the raw entries stay in `infrastructure` for
    /// describe); None: not discoverable. Absent from data written before
    /// discovery existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discovery: Option<ServiceDiscovery>,
}

/// A service's registry (Cloud Map's analogue): tasks that can serve are
/// answered for `<name>.<namespace>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceDiscovery {
    /// The DNS label: the registry ARN's last segment, lowercased.
    pub name: String,
    /// The port SRV records carry, as given (`port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// The container and port whose mapping SRV records carry when `port`
    /// is not given (`containerName` + `containerPort`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container_port: Option<u16>,
}

/// Fields about AWS infrastructure, stored as given.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServiceInfrastructure {
    pub load_balancers: Vec<serde_json::Value>,
    pub service_registries: Vec<serde_json::Value>,
    pub capacity_provider_strategy: Vec<serde_json::Value>,
    pub platform_version: Option<String>,
    pub propagate_tags: Option<String>,
    pub enable_ecs_managed_tags: bool,
}

/// One deployment of a service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeploymentRecord {
    /// `ecs-svc/<19 digits>`, as ECS; the tasks' startedBy.
    pub id: String,
    pub family: String,
    pub revision: u32,
    pub status: DeploymentStatus,
    pub rollout: RolloutState,
    pub rollout_reason: String,
    /// Failures counted by the circuit breaker since the last reset.
    pub failed_tasks: u32,
    /// Tasks of this deployment the breaker has already judged (failed or
    /// healthy), so none counts twice, whichever leader looks.
    pub judged: BTreeSet<String>,
    /// Older deployments whose tasks of this deployment's revision this one
    /// takes over: a rollback keeps the healthy tasks of the revision it
    /// rolls back to instead of replacing them.
    #[serde(default)]
    pub adopts: BTreeSet<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl DeploymentRecord {
    /// Whether `task` belongs to this deployment.
    pub fn owns(&self, task: &super::TaskRecord) -> bool {
        match task.started_by.as_deref() {
            Some(id) if id == self.id => true,
            Some(id) => {
                self.adopts.contains(id)
                    && task.family == self.family
                    && task.revision == self.revision
            }
            None => false,
        }
    }
}

/// One service event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub id: u64,
    pub at: Timestamp,
    pub message: String,
}

/// The crash-loop back-off of tasks that never reach RUNNING.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Throttle {
    /// Tasks in a row that stopped before RUNNING.
    pub failures: u32,
    /// No task is launched before this time.
    pub not_before: Option<Timestamp>,
}

/// The key of a service in the state's map.
pub fn service_key(cluster: &str, name: &str) -> String {
    format!("{cluster}/{name}")
}

/// The group of a service's tasks.
pub fn service_group(name: &str) -> String {
    format!("service:{name}")
}

impl ServiceRecord {
    pub fn key(&self) -> String {
        service_key(&self.cluster, &self.name)
    }

    pub fn group(&self) -> String {
        service_group(&self.name)
    }

    pub fn rules(&self) -> DeploymentRules {
        self.configuration.rules(self.strategy)
    }

    pub fn primary(&self) -> Option<&DeploymentRecord> {
        self.deployments.first()
    }

    /// Records an event, newest first, keeping the latest 100.
    pub fn record_event(&mut self, at: Timestamp, message: String) {
        self.events.insert(
            0,
            EventRecord {
                id: self.events_recorded,
                at,
                message,
            },
        );
        self.events_recorded += 1;
        self.events.truncate(MAX_SERVICE_EVENTS);
    }
}

//! Applying service commands: CreateService, UpdateService, DeleteService,
//! and the reconciler's steps (stops, rollout progress, events), each step
//! applied only to the service version it was computed from.

use orca_core::arn::TaskDefinitionRef;
use orca_core::placement::{PlacementConstraintInput, PlacementStrategyInput};
use orca_core::service::{DeploymentConfiguration, DeploymentStatus, RolloutState, ServiceStatus};
use orca_core::task::{NetworkConfiguration, StopCode};
use orca_core::task_definition::{TaskDefinitionStatus, Timestamp};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};

use super::service_record::{service_key, DeploymentRecord, ServiceRecord, Throttle};
use super::{ClusterState, Outcome, TaskRecord};

/// UpdateService's changes, as the handler parsed them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceUpdate {
    pub cluster: String,
    pub name: String,
    pub desired_count: Option<u32>,
    pub task_definition: Option<TaskDefinitionRef>,
    pub configuration: Option<DeploymentConfiguration>,
    pub placement_constraints: Option<Vec<PlacementConstraintInput>>,
    pub placement_strategy: Option<Vec<PlacementStrategyInput>>,
    pub network_configuration: Option<NetworkConfiguration>,
    pub health_check_grace_period_seconds: Option<u32>,
    pub enable_execute_command: Option<bool>,
    pub force_new_deployment: bool,
    /// The id of the deployment this update starts, if it starts one.
    pub deployment_id: String,
    pub at: Timestamp,
}

/// A reconciler step, as committed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceStepCommand {
    pub cluster: String,
    pub name: String,
    /// The service version the step was computed from.
    pub version: u64,
    pub stops: Vec<(String, String)>,
    pub deployments: Vec<DeploymentRecord>,
    pub throttle: Throttle,
    pub last_completed: Option<(String, u32)>,
    pub status: ServiceStatus,
    pub events: Vec<String>,
    pub at: Timestamp,
}

pub fn service_not_found(name: &str) -> ApiError {
    ApiError::field(
        Exception::ServiceNotFoundException,
        "service",
        format!("Service not found: {name}"),
    )
}

/// A service's name from its name or ARN (`...:service/<cluster>/<name>`).
pub fn service_name(reference: &str) -> &str {
    reference.rsplit('/').next().unwrap_or(reference)
}

impl ClusterState {
    /// The service of `cluster` by name or ARN.
    pub fn service_in(&self, cluster: &str, reference: &str) -> Option<&ServiceRecord> {
        self.services
            .get(&service_key(cluster, service_name(reference)))
    }

    /// The ACTIVE revision a reference names (the latest ACTIVE without one).
    fn active_revision(&self, reference: &TaskDefinitionRef) -> Result<(String, u32), ApiError> {
        let stored = self.describe_task_definition(reference)?;
        if stored.task_definition.status != TaskDefinitionStatus::Active {
            return Err(ApiError::field(
                Exception::ClientException,
                "taskDefinition",
                format!(
                    "{}:{} is {:?}: a service runs only ACTIVE revisions",
                    reference.family,
                    stored.task_definition.revision,
                    stored.task_definition.status
                ),
            ));
        }
        Ok((reference.family.clone(), stored.task_definition.revision))
    }

    pub(super) fn create_service(
        &mut self,
        mut record: ServiceRecord,
        definition: &TaskDefinitionRef,
        deployment_id: String,
    ) -> Result<Outcome, ApiError> {
        self.active_cluster(&record.cluster)?;
        let key = record.key();
        if let Some(existing) = self
            .services
            .get(&key)
            .filter(|s| s.status != ServiceStatus::Inactive)
        {
            let same = existing.client_token.is_some()
                && existing.client_token == record.client_token
                && existing.fingerprint == record.fingerprint;
            return if same {
                Ok(Outcome::Service(key))
            } else {
                Err(ApiError::new(
                    Exception::InvalidParameterException,
                    "Creation of service was not idempotent.",
                ))
            };
        }
        let (family, revision) = self.active_revision(definition)?;
        if let Some(discovery) = &record.discovery {
            discovery
                .check_definition(&self.describe_task_definition(definition)?.task_definition)?;
        }
        let at = record.created_at;
        record.deployments = vec![new_deployment(deployment_id, family, revision, at)];
        record.status = ServiceStatus::Active;
        record.version = 1;
        self.services.insert(key.clone(), record);
        Ok(Outcome::Service(key))
    }

    pub(super) fn update_service(&mut self, update: ServiceUpdate) -> Result<Outcome, ApiError> {
        let key = service_key(&update.cluster, &update.name);
        let current = self
            .services
            .get(&key)
            .ok_or_else(|| service_not_found(&update.name))?;
        if current.status != ServiceStatus::Active {
            return Err(ApiError::new(
                Exception::ServiceNotActiveException,
                format!("Service {} is not ACTIVE", update.name),
            ));
        }
        let target = match &update.task_definition {
            Some(reference) => {
                let target = self.active_revision(reference)?;
                if let Some(discovery) = &current.discovery {
                    // The new revision must still map the registry's port.
                    discovery.check_definition(
                        &self.describe_task_definition(reference)?.task_definition,
                    )?;
                }
                Some(target)
            }
            None => None,
        };
        let Some(service) = self.services.get_mut(&key) else {
            return Err(service_not_found(&update.name));
        };
        let primary = service.primary().map(|p| (p.family.clone(), p.revision));
        let new_definition = target.clone().filter(|t| Some(t) != primary.as_ref());
        let mut redeploy = update.force_new_deployment || new_definition.is_some();
        if let Some(n) = update.desired_count {
            service.desired_count = n;
        }
        if let Some(c) = update.configuration {
            service.configuration = c;
        }
        if let Some(c) = update.placement_constraints {
            redeploy |= c != service.placement_constraints;
            service.placement_constraints = c;
        }
        if let Some(s) = update.placement_strategy {
            redeploy |= s != service.placement_strategy;
            service.placement_strategy = s;
        }
        if let Some(n) = update.network_configuration {
            redeploy |= Some(&n) != service.network_configuration.as_ref();
            service.network_configuration = Some(n);
        }
        if let Some(g) = update.health_check_grace_period_seconds {
            service.health_check_grace_period_seconds = Some(g);
        }
        if let Some(e) = update.enable_execute_command {
            service.enable_execute_command = e;
        }
        if redeploy {
            let (family, revision) = target.or(primary).ok_or_else(|| {
                ApiError::server(format!("service {} has no deployment", update.name))
            })?;
            if new_definition.is_some() {
                // A new task definition resets the crash-loop throttle (ECS).
                service.throttle = Throttle::default();
            }
            for d in &mut service.deployments {
                d.status = DeploymentStatus::Active;
            }
            service.deployments.insert(
                0,
                new_deployment(update.deployment_id, family, revision, update.at),
            );
        }
        service.version += 1;
        Ok(Outcome::Service(key))
    }

    pub(super) fn delete_service(
        &mut self,
        cluster: &str,
        name: &str,
        force: bool,
    ) -> Result<Outcome, ApiError> {
        let key = service_key(cluster, name);
        let service = self
            .services
            .get_mut(&key)
            .ok_or_else(|| service_not_found(name))?;
        if service.status != ServiceStatus::Active {
            return Err(ApiError::new(
                Exception::ServiceNotActiveException,
                format!("Service {name} is not ACTIVE"),
            ));
        }
        let replica = service.strategy == orca_core::service::SchedulingStrategy::Replica;
        if replica && service.desired_count > 0 && !force {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "force",
                "The service cannot be stopped while it is scaled above 0. Scale it to 0 with update-service --desired-count 0, or delete it with --force",
            ));
        }
        service.status = ServiceStatus::Draining;
        service.desired_count = 0;
        service.version += 1;
        Ok(Outcome::Service(key))
    }

    /// Commits a reconciler step computed from `step.version`; a step
    /// computed from an older version is refused (the reconciler runs again
    /// on the newer one), so a user's UpdateService is never overwritten.
    pub(super) fn service_step(&mut self, step: ServiceStepCommand) -> Result<Outcome, ApiError> {
        let key = service_key(&step.cluster, &step.name);
        let service = self
            .services
            .get(&key)
            .ok_or_else(|| service_not_found(&step.name))?;
        if service.version != step.version {
            return Ok(Outcome::StaleStep);
        }
        let group = service.group();
        let at = step.at;
        let mut stopped = Vec::new();
        for (task_id, reason) in step.stops {
            if !self
                .tasks
                .get(&task_id)
                .is_some_and(|t| t.cluster == step.cluster && t.group == group)
            {
                continue;
            }
            let stop = |task: &mut TaskRecord| {
                task.request_stop(StopCode::ServiceSchedulerInitiated, || reason, at)
                    .then(|| task.instance_id.clone())
            };
            if let Some(Some(instance)) = self.update_task(&task_id, stop) {
                stopped.push(instance);
            }
        }
        for instance in stopped {
            self.touch_assignments(&instance);
        }
        let Some(service) = self.services.get_mut(&key) else {
            return Err(service_not_found(&step.name));
        };
        let mut deployments = step.deployments;
        for d in &mut deployments {
            let before = service.deployments.iter().find(|b| b.id == d.id);
            if before != Some(d) {
                d.updated_at = at;
            }
        }
        service.deployments = deployments;
        service.throttle = step.throttle;
        service.last_completed = step.last_completed;
        service.status = step.status;
        for message in step.events {
            service.record_event(at, message);
        }
        service.version += 1;
        Ok(Outcome::Service(key))
    }

    /// Events the leader's loop reports after acting (tasks started,
    /// placement failures); an event identical to the latest is dropped.
    pub(super) fn record_service_events(
        &mut self,
        cluster: &str,
        name: &str,
        messages: Vec<String>,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        let key = service_key(cluster, name);
        let service = self
            .services
            .get_mut(&key)
            .ok_or_else(|| service_not_found(name))?;
        for message in messages {
            if service.events.first().map(|e| &e.message) != Some(&message) {
                service.record_event(at, message);
            }
        }
        Ok(Outcome::Service(key))
    }
}

impl ClusterState {
    /// Marks a live task as making room for a DAEMON service's task; its
    /// own service's reconciler then moves it. A task already stopping, or
    /// already marked, is left as it is.
    pub(super) fn make_room_for_daemon(
        &mut self,
        cluster: &str,
        task_id: &str,
        daemon_service: String,
    ) -> Result<Outcome, ApiError> {
        if self.tasks.get(task_id).is_none_or(|t| t.cluster != cluster) {
            return Err(super::tasks::task_not_found(task_id));
        }
        self.update_task(task_id, |task| {
            if task.is_live() && task.making_room_for.is_none() {
                task.making_room_for = Some(daemon_service);
                task.version += 1;
            }
        });
        Ok(Outcome::MakingRoom(task_id.to_string()))
    }
}

fn new_deployment(id: String, family: String, revision: u32, at: Timestamp) -> DeploymentRecord {
    DeploymentRecord {
        rollout_reason: format!("ECS deployment {id} in progress."),
        id,
        family,
        revision,
        status: DeploymentStatus::Primary,
        rollout: RolloutState::InProgress,
        failed_tasks: 0,
        judged: Default::default(),
        adopts: Default::default(),
        created_at: at,
        updated_at: at,
    }
}

//! ECS's describe shape of a stored service, rendered on read: ARNs from the
//! cluster's identity, running and pending counts (the service's and each
//! deployment's) from its tasks.

use orca_core::service::{Deployment, DeploymentController, Service, ServiceEvent};
use orca_core::task::TaskStatus;

use super::service_record::ServiceRecord;
use super::{ClusterState, TaskRecord};

/// Running and pending tasks wanted running, as DescribeServices counts.
fn counts<'a>(tasks: impl Iterator<Item = &'a TaskRecord>) -> (u32, u32) {
    tasks
        .filter(|t| t.desired_status == TaskStatus::Running)
        .fold((0, 0), |(running, pending), t| match t.last_status {
            TaskStatus::Running => (running + 1, pending),
            s if s.is_pending() => (running, pending + 1),
            _ => (running, pending),
        })
}

impl ClusterState {
    /// The instances a DAEMON service runs one task on: ACTIVE instances of
    /// its cluster that every memberOf constraint (the service's and its
    /// primary task definition's) matches. Disconnected ones included: their
    /// task stays; none is started there until the agent is back.
    pub fn daemon_targets(&self, service: &ServiceRecord) -> Vec<&super::InstanceRecord> {
        use orca_core::placement::{parse_constraints, Constraint};
        let mut inputs = service.placement_constraints.clone();
        if let Some(stored) = service
            .primary()
            .and_then(|p| self.families.get(&p.family)?.revisions.get(&p.revision))
        {
            inputs.extend(
                stored
                    .task_definition
                    .spec
                    .placement_constraints
                    .iter()
                    .flatten()
                    .map(crate::plan_apply::definition_constraint),
            );
        }
        // Validated when stored; an expression that no longer parses matches
        // nothing rather than everything.
        let constraints = parse_constraints(&inputs, "placementConstraints").ok();
        self.instances
            .values()
            .filter(|i| {
                i.cluster == service.cluster && i.status == super::instances::InstanceStatus::Active
            })
            .filter(|i| match &constraints {
                Some(cs) => cs.iter().all(|c| match c {
                    Constraint::MemberOf(e) => e.matches(&super::RecordFacts(i)),
                    Constraint::DistinctInstance => true,
                }),
                None => false,
            })
            .collect()
    }

    /// The count a service wants: desiredCount, or for a DAEMON service its
    /// matching instances.
    pub fn wanted_count(&self, service: &ServiceRecord) -> u32 {
        match service.strategy {
            orca_core::service::SchedulingStrategy::Replica => service.desired_count,
            orca_core::service::SchedulingStrategy::Daemon => {
                if service.status == orca_core::service::ServiceStatus::Active {
                    self.daemon_targets(service).len() as u32
                } else {
                    0
                }
            }
        }
    }

    /// Every task of the service (its group in its cluster), stopped ones too.
    pub fn service_tasks(&self, service: &ServiceRecord) -> Vec<&TaskRecord> {
        let group = service.group();
        self.tasks
            .values()
            .filter(|t| t.cluster == service.cluster && t.group == group)
            .collect()
    }

    pub fn service_arn(&self, service: &ServiceRecord) -> String {
        self.arn.service(&service.cluster, &service.name)
    }

    /// The service as DescribeServices, CreateService, UpdateService and
    /// DeleteService return it.
    pub fn render_service(&self, service: &ServiceRecord) -> Service {
        let tasks = self.service_tasks(service);
        let (running_count, pending_count) = counts(tasks.iter().copied());
        let deployments = service
            .deployments
            .iter()
            .map(|d| {
                let (running, pending) = counts(tasks.iter().copied().filter(|t| d.owns(t)));
                Deployment {
                    id: d.id.clone(),
                    status: d.status,
                    task_definition: self.arn.task_definition(&d.family, d.revision),
                    desired_count: if d.status == orca_core::service::DeploymentStatus::Primary {
                        self.wanted_count(service)
                    } else {
                        0
                    },
                    pending_count: pending,
                    running_count: running,
                    failed_tasks: d.failed_tasks,
                    created_at: d.created_at,
                    updated_at: d.updated_at,
                    launch_type: service.launch_type.clone(),
                    network_configuration: service.network_configuration.clone(),
                    rollout_state: d.rollout,
                    rollout_state_reason: d.rollout_reason.clone(),
                }
            })
            .collect();
        let service_arn = self.service_arn(service);
        let infra = &service.infrastructure;
        Service {
            service_arn: service_arn.clone(),
            service_name: service.name.clone(),
            cluster_arn: self.arn.cluster(&service.cluster),
            status: service.status,
            desired_count: self.wanted_count(service),
            running_count,
            pending_count,
            launch_type: service.launch_type.clone(),
            task_definition: service
                .primary()
                .map(|p| self.arn.task_definition(&p.family, p.revision))
                .unwrap_or_default(),
            deployment_configuration: service.configuration.clone(),
            deployments,
            events: service
                .events
                .iter()
                .map(|e| ServiceEvent {
                    id: event_id(&service_arn, e.id),
                    created_at: e.at,
                    message: e.message.clone(),
                })
                .collect(),
            created_at: service.created_at,
            created_by: Some(service.created_by.clone()),
            placement_constraints: service.placement_constraints.clone(),
            placement_strategy: service.placement_strategy.clone(),
            network_configuration: service.network_configuration.clone(),
            health_check_grace_period_seconds: service.health_check_grace_period_seconds,
            scheduling_strategy: service.strategy,
            deployment_controller: DeploymentController {
                kind: "ECS".to_string(),
            },
            load_balancers: infra.load_balancers.clone(),
            service_registries: infra.service_registries.clone(),
            tags: service.tags.clone(),
            propagate_tags: infra.propagate_tags.clone(),
            enable_ecs_managed_tags: infra.enable_ecs_managed_tags,
            enable_execute_command: service.enable_execute_command,
            platform_version: infra.platform_version.clone(),
            capacity_provider_strategy: infra.capacity_provider_strategy.clone(),
        }
    }
}

/// A stable UUID-shaped id for the service's n-th event.
fn event_id(service_arn: &str, n: u64) -> String {
    let hash = |seed: u64| {
        format!("{service_arn}#{n}").bytes().fold(seed, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
    };
    let (a, b) = (hash(0xcbf2_9ce4_8422_2325), hash(0x8422_2325_cbf2_9ce4));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
}

//! The ECS service calls: CreateService, UpdateService, DeleteService,
//! DescribeServices and ListServices. Each validates ECS's JSON, turns it
//! into one command (ids and times chosen here, as the proposer's), and
//! renders ECS's output from the applied state. Decisions about tasks are
//! the leader's service loop's, never a handler's.

use orca_core::arn::{cluster_name, task_definition_ref};
use orca_core::json_input::parse_input;
use orca_core::service::{
    CreateServiceInput, DeleteServiceInput, DescribeServicesInput, DescribeServicesOutput,
    ListServicesInput, ListServicesOutput, ServiceOutput, ServiceStatus, UpdateServiceInput,
};
use orca_core::task::Failure;
use orca_core::ApiError;

use super::ecs_service::EcsService;
use super::task_api::{cluster_of, page, to_json};
use crate::state::query::{paginate, SortOrder};
use crate::state::services::{service_name, service_not_found, ServiceUpdate};
use crate::state::{service_key, Command, Outcome, ServiceInfrastructure, ServiceRecord};

/// ECS's deployment ids: `ecs-svc/` and 19 digits.
fn deployment_id() -> String {
    let n = u64::from_le_bytes(
        uuid::Uuid::new_v4().as_bytes()[..8]
            .try_into()
            .unwrap_or_default(),
    );
    format!("ecs-svc/{:019}", n % 10u64.pow(19))
}

impl EcsService {
    /// The applied service a write named, rendered. A write forwarded to
    /// the leader is committed but maybe not applied here yet: catch up
    /// first, so the reply shows the write.
    async fn service_reply(&self, outcome: Outcome, call: &str) -> Result<String, ApiError> {
        if self.node.current_leader() != Some(self.node.id) {
            self.node.linearizable_barrier().await?;
        }
        match outcome {
            Outcome::Service(key) => self.read(|s| {
                let service = s
                    .services
                    .get(&key)
                    .ok_or_else(|| ApiError::server(format!("{call}: {key} vanished")))?;
                to_json(&ServiceOutput {
                    service: s.render_service(service),
                })
            }),
            other => Err(ApiError::server(format!(
                "unexpected outcome of {call}: {other:?}"
            ))),
        }
    }

    pub(super) async fn create_service_json(&self, json: &str) -> Result<String, ApiError> {
        let input: CreateServiceInput = parse_input(json, "CreateService")?;
        input.validate()?;
        let cluster = cluster_name(input.cluster.as_deref().unwrap_or(""))?;
        let reference = task_definition_ref(
            input.task_definition.as_deref().unwrap_or_default(),
            "taskDefinition",
        )?;
        self.check_definition_privileges(&cluster, &reference)?;
        let fingerprint = to_json(&input)?;
        let strategy = input.scheduling_strategy();
        let now = self.clock.now();
        let load_balancers = input.load_balancers.clone().unwrap_or_default();
        let service_registries = input.service_registries.clone().unwrap_or_default();
        let discovery = crate::state::discovery::parse_registries(&service_registries)?;
        let mut events = Vec::new();
        if !load_balancers.is_empty() {
            // Stored as ECS stores them; said plainly rather than ignored.
            events.push(format!(
                "(service {}) has load balancers configured: orca stores them but has no load balancer yet, so none is attached.",
                input.service_name
            ));
        }
        let mut record = ServiceRecord {
            name: input.service_name.clone(),
            cluster,
            status: ServiceStatus::Active,
            strategy,
            desired_count: input.desired_count.unwrap_or(0),
            deployments: Vec::new(),
            configuration: input.deployment_configuration.clone().unwrap_or_default(),
            placement_constraints: input.placement_constraints.clone().unwrap_or_default(),
            placement_strategy: input.placement_strategy.clone().unwrap_or_default(),
            network_configuration: input.network_configuration.clone(),
            health_check_grace_period_seconds: input.health_check_grace_period_seconds,
            launch_type: input.launch_type.clone(),
            enable_execute_command: input.enable_execute_command.unwrap_or(false),
            infrastructure: ServiceInfrastructure {
                load_balancers,
                service_registries,
                capacity_provider_strategy: input
                    .capacity_provider_strategy
                    .clone()
                    .unwrap_or_default(),
                platform_version: input.platform_version.clone(),
                propagate_tags: input.propagate_tags.clone(),
                enable_ecs_managed_tags: input.enable_ecs_managed_tags.unwrap_or(false),
            },
            tags: input.tags.clone().unwrap_or_default(),
            created_at: now,
            created_by: self.node.arn.default_principal(),
            client_token: input.client_token.clone(),
            fingerprint,
            events: Vec::new(),
            events_recorded: 0,
            throttle: Default::default(),
            last_completed: None,
            version: 0,
            discovery,
        };
        for message in events {
            record.record_event(now, message);
        }
        let outcome = self
            .node
            .propose(Command::CreateService {
                service: Box::new(record),
                task_definition: reference,
                deployment_id: deployment_id(),
            })
            .await?;
        self.service_reply(outcome, "CreateService").await
    }

    pub(super) async fn update_service_json(&self, json: &str) -> Result<String, ApiError> {
        let input: UpdateServiceInput = parse_input(json, "UpdateService")?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let name = service_name(&input.service).to_string();
        let strategy = self.read(|s| {
            s.services
                .get(&service_key(&cluster, &name))
                .map(|svc| svc.strategy)
                .ok_or_else(|| service_not_found(&input.service))
        })?;
        input.validate(strategy)?;
        if input
            .service_registries
            .as_ref()
            .is_some_and(|r| !r.is_empty())
        {
            // A registry is fixed at creation: changing it would rename the
            // service under clients that already resolve it.
            return Err(ApiError::field(
                orca_core::Exception::InvalidParameterException,
                "serviceRegistries",
                "cannot be changed by UpdateService in orca: delete and recreate the service to change its registry",
            ));
        }
        let task_definition = input
            .task_definition
            .as_deref()
            .map(|r| task_definition_ref(r, "taskDefinition"))
            .transpose()?;
        if let Some(reference) = &task_definition {
            self.check_definition_privileges(&cluster, reference)?;
        }
        let update = ServiceUpdate {
            cluster,
            name,
            desired_count: input.desired_count,
            task_definition,
            configuration: input.deployment_configuration.clone(),
            placement_constraints: input.placement_constraints.clone(),
            placement_strategy: input.placement_strategy.clone(),
            network_configuration: input.network_configuration.clone(),
            health_check_grace_period_seconds: input.health_check_grace_period_seconds,
            enable_execute_command: input.enable_execute_command,
            force_new_deployment: input.force_new_deployment.unwrap_or(false),
            deployment_id: deployment_id(),
            at: self.clock.now(),
        };
        let outcome = self
            .node
            .propose(Command::UpdateService(Box::new(update)))
            .await?;
        self.service_reply(outcome, "UpdateService").await
    }

    pub(super) async fn delete_service_json(&self, json: &str) -> Result<String, ApiError> {
        let input: DeleteServiceInput = parse_input(json, "DeleteService")?;
        if input.service.is_empty() {
            return Err(ApiError::field(
                orca_core::Exception::ClientException,
                "service",
                "is required",
            ));
        }
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let name = service_name(&input.service).to_string();
        let outcome = self
            .node
            .propose(Command::DeleteService {
                cluster,
                name,
                force: input.force.unwrap_or(false),
            })
            .await?;
        self.service_reply(outcome, "DeleteService").await
    }

    pub(super) fn describe_services_json(&self, json: &str) -> Result<String, ApiError> {
        let input: DescribeServicesInput = parse_input(json, "DescribeServices")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let with_tags = input.include.iter().flatten().any(|i| i == "TAGS");
        self.read(|s| {
            let mut output = DescribeServicesOutput::default();
            for reference in &input.services {
                match s.service_in(&cluster, reference) {
                    Some(service) => {
                        let mut rendered = s.render_service(service);
                        if !with_tags {
                            rendered.tags.clear();
                        }
                        output.services.push(rendered);
                    }
                    // ECS names a missing service by its full ARN.
                    None => output.failures.push(Failure {
                        arn: Some(if reference.starts_with("arn:") {
                            reference.clone()
                        } else {
                            s.arn.service(&cluster, reference)
                        }),
                        reason: "MISSING".to_string(),
                        detail: None,
                    }),
                }
            }
            to_json(&output)
        })
    }

    pub(super) fn list_services_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListServicesInput = parse_input(json, "ListServices")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        // ECS's default page is 10 services.
        let request = page(
            input.next_token.clone(),
            Some(input.max_results.unwrap_or(10)),
        );
        self.read(|s| {
            let names = s
                .services
                .values()
                .filter(|svc| svc.cluster == cluster && svc.status != ServiceStatus::Inactive)
                .filter(|svc| {
                    input
                        .launch_type
                        .as_ref()
                        .is_none_or(|l| svc.launch_type.as_ref() == Some(l))
                })
                .filter(|svc| {
                    input
                        .scheduling_strategy
                        .is_none_or(|st| svc.strategy == st)
                })
                .map(|svc| svc.name.clone());
            let page = paginate(names, SortOrder::Asc, &request)?;
            to_json(&ListServicesOutput {
                service_arns: page
                    .items
                    .iter()
                    .map(|name| s.arn.service(&cluster, name))
                    .collect(),
                next_token: page.next_token,
            })
        })
    }
}

//! The ECS API over gRPC. Each handler validates and converts its request,
//! proposes a command or reads the state, and maps the result; no handler
//! changes state itself.

use std::sync::Arc;

use orca_api::error::to_status;
use orca_api::v1::{self, ecs_server::Ecs};
use orca_core::arn::{cluster_name, task_definition_ref, TaskDefinitionRef};
use orca_core::cluster::{validate_cluster_name, validate_settings, DEFAULT_CLUSTER};
use orca_core::task_definition::{parse_register_input, validate_tags};
use orca_core::{ApiError, Exception};
use tonic::{Request, Response, Status};

use super::convert::{self, ClusterInclude};
use crate::clock::Clock;
use crate::node::Node;
use crate::state::query::{
    parse_task_definition_status, FamilyStatusFilter, PageRequest, SortOrder,
};
use crate::state::{ClusterState, Command, Outcome};

/// Most task definitions one DeleteTaskDefinitions call takes (ECS's limit).
const MAX_DELETE: usize = 10;

pub struct EcsService {
    pub(super) node: Arc<Node>,
    pub(super) clock: Arc<dyn Clock>,
}

type Reply<T> = Result<Response<T>, Status>;

fn reply<T>(result: Result<T, ApiError>) -> Reply<T> {
    result.map(Response::new).map_err(|e| to_status(&e))
}

fn unexpected(outcome: Outcome) -> ApiError {
    ApiError::server(format!("unexpected outcome of a command: {outcome:?}"))
}

/// A reference that must name one revision (`family:revision` or an ARN).
fn revision_ref(reference: &str, field: &str) -> Result<(String, u32), ApiError> {
    match task_definition_ref(reference, field)? {
        TaskDefinitionRef {
            family,
            revision: Some(r),
        } => Ok((family, r)),
        TaskDefinitionRef { revision: None, .. } => Err(ApiError::field(
            Exception::ClientException,
            field,
            format!("'{reference}' names no revision: give family:revision or a full ARN"),
        )),
    }
}

fn check_include(include: &[String], allowed: &[&str]) -> Result<(), ApiError> {
    for (i, value) in include.iter().enumerate() {
        if !allowed.contains(&value.as_str()) {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                format!("include[{i}]"),
                format!("must be one of {}, not '{value}'", allowed.join(", ")),
            ));
        }
    }
    Ok(())
}

impl EcsService {
    pub fn new(node: Arc<Node>, clock: Arc<dyn Clock>) -> Self {
        EcsService { node, clock }
    }

    /// A read asking for linearizability waits until this controller has
    /// applied everything committed before the read began.
    pub(crate) async fn barrier<T>(&self, request: &Request<T>) -> Result<(), Status> {
        if orca_api::read::wants_linearizable(request) {
            // No exception on this status: the client should try another
            // controller, as it would for one that is down.
            self.node
                .linearizable_barrier()
                .await
                .map_err(|e| Status::unavailable(e.message))?;
        }
        Ok(())
    }

    /// Runs `f` over the applied state. Reads are local to this controller.
    pub(super) fn read<T>(&self, f: impl FnOnce(&ClusterState) -> T) -> T {
        f(&self.node.view())
    }

    async fn register(
        &self,
        req: v1::RegisterTaskDefinitionRequest,
    ) -> Result<v1::TaskDefinitionReply, ApiError> {
        let input = parse_register_input(&req.input_json)?;
        let registered_by = if req.registered_by.is_empty() {
            self.node.arn.default_principal()
        } else {
            req.registered_by
        };
        let command = Command::RegisterTaskDefinition {
            spec: Box::new(input.spec),
            tags: input.tags,
            registered_at: self.clock.now(),
            registered_by,
        };
        match self.node.propose(command).await? {
            Outcome::TaskDefinition(stored) => {
                tracing::info!(arn = %stored.task_definition.task_definition_arn, "registered task definition");
                convert::task_definition_reply(&stored, true)
            }
            other => Err(unexpected(other)),
        }
    }

    async fn create_cluster(
        &self,
        req: v1::CreateClusterRequest,
    ) -> Result<v1::ClusterReply, ApiError> {
        let name = if req.cluster_name.is_empty() {
            DEFAULT_CLUSTER.to_string()
        } else {
            req.cluster_name
        };
        validate_cluster_name(&name, "clusterName")?;
        let settings = convert::settings_from_wire(req.settings);
        validate_settings(&settings, "settings")?;
        let tags = convert::tags_from_wire(req.tags);
        validate_tags(&tags, "tags")?;
        let default_strategy = if req.default_capacity_provider_strategy_json.is_empty() {
            Vec::new()
        } else {
            serde_json::from_str(&req.default_capacity_provider_strategy_json).map_err(|e| {
                ApiError::field(
                    orca_core::Exception::ClientException,
                    "defaultCapacityProviderStrategy",
                    format!("is not a list of {{capacityProvider, weight, base}}: {e}"),
                )
            })?
        };
        let capacity = orca_core::cluster::ClusterCapacity {
            providers: req.capacity_providers,
            default_strategy,
        };
        capacity.validate()?;
        let outcome = self
            .node
            .propose(Command::CreateCluster {
                name,
                settings,
                tags,
                capacity,
            })
            .await?;
        self.cluster_reply(outcome)
    }

    fn cluster_reply(&self, outcome: Outcome) -> Result<v1::ClusterReply, ApiError> {
        match outcome {
            Outcome::Cluster(c) => {
                let usage = self.read(|s| s.cluster_usage(&c.name));
                Ok(v1::ClusterReply {
                    cluster: Some(convert::cluster_to_wire(&c, usage, ClusterInclude::ALL)),
                })
            }
            other => Err(unexpected(other)),
        }
    }
}

#[tonic::async_trait]
impl Ecs for EcsService {
    async fn register_task_definition(
        &self,
        request: Request<v1::RegisterTaskDefinitionRequest>,
    ) -> Reply<v1::TaskDefinitionReply> {
        reply(self.register(request.into_inner()).await)
    }

    async fn describe_task_definition(
        &self,
        request: Request<v1::DescribeTaskDefinitionRequest>,
    ) -> Reply<v1::TaskDefinitionReply> {
        self.barrier(&request).await?;
        let req = request.into_inner();
        reply((|| {
            check_include(&req.include, &["TAGS"])?;
            let reference = task_definition_ref(&req.task_definition, "taskDefinition")?;
            let with_tags = !req.include.is_empty();
            self.read(|s| {
                convert::task_definition_reply(s.describe_task_definition(&reference)?, with_tags)
            })
        })())
    }

    async fn deregister_task_definition(
        &self,
        request: Request<v1::DeregisterTaskDefinitionRequest>,
    ) -> Reply<v1::TaskDefinitionReply> {
        let req = request.into_inner();
        reply(
            async {
                let (family, revision) = revision_ref(&req.task_definition, "taskDefinition")?;
                let command = Command::DeregisterTaskDefinition {
                    family,
                    revision,
                    at: self.clock.now(),
                };
                match self.node.propose(command).await? {
                    Outcome::TaskDefinition(stored) => {
                        convert::task_definition_reply(&stored, false)
                    }
                    other => Err(unexpected(other)),
                }
            }
            .await,
        )
    }

    async fn delete_task_definitions(
        &self,
        request: Request<v1::DeleteTaskDefinitionsRequest>,
    ) -> Reply<v1::DeleteTaskDefinitionsReply> {
        let req = request.into_inner();
        reply(
            async {
                let n = req.task_definitions.len();
                if n == 0 || n > MAX_DELETE {
                    return Err(ApiError::field(
                        Exception::InvalidParameterException,
                        "taskDefinitions",
                        format!("must name 1 to {MAX_DELETE} task definitions, not {n}"),
                    ));
                }
                let revisions = req
                    .task_definitions
                    .iter()
                    .enumerate()
                    .map(|(i, r)| revision_ref(r, &format!("taskDefinitions[{i}]")))
                    .collect::<Result<Vec<_>, _>>()?;
                let command = Command::DeleteTaskDefinitions {
                    revisions,
                    at: self.clock.now(),
                };
                match self.node.propose(command).await? {
                    Outcome::DeletedTaskDefinitions { deleted, failures } => {
                        Ok(v1::DeleteTaskDefinitionsReply {
                            task_definitions_json: deleted
                                .iter()
                                .map(convert::task_definition_json)
                                .collect::<Result<_, _>>()?,
                            failures: failures.into_iter().map(convert::failure_to_wire).collect(),
                        })
                    }
                    other => Err(unexpected(other)),
                }
            }
            .await,
        )
    }

    async fn list_task_definitions(
        &self,
        request: Request<v1::ListTaskDefinitionsRequest>,
    ) -> Reply<v1::ListTaskDefinitionsReply> {
        self.barrier(&request).await?;
        let req = request.into_inner();
        reply((|| {
            let status = parse_task_definition_status(&req.status)?;
            let order = SortOrder::parse(&req.sort)?;
            let page = PageRequest {
                next_token: req.next_token,
                max_results: req.max_results,
            };
            let page =
                self.read(|s| s.list_task_definitions(&req.family_prefix, status, order, &page))?;
            Ok(v1::ListTaskDefinitionsReply {
                task_definition_arns: page.items,
                next_token: page.next_token.unwrap_or_default(),
            })
        })())
    }

    async fn list_task_definition_families(
        &self,
        request: Request<v1::ListTaskDefinitionFamiliesRequest>,
    ) -> Reply<v1::ListTaskDefinitionFamiliesReply> {
        self.barrier(&request).await?;
        let req = request.into_inner();
        reply((|| {
            let filter = FamilyStatusFilter::parse(&req.status)?;
            let page = PageRequest {
                next_token: req.next_token,
                max_results: req.max_results,
            };
            let page =
                self.read(|s| s.list_task_definition_families(&req.family_prefix, filter, &page))?;
            Ok(v1::ListTaskDefinitionFamiliesReply {
                families: page.items,
                next_token: page.next_token.unwrap_or_default(),
            })
        })())
    }

    async fn create_cluster(
        &self,
        request: Request<v1::CreateClusterRequest>,
    ) -> Reply<v1::ClusterReply> {
        reply(self.create_cluster(request.into_inner()).await)
    }

    async fn describe_clusters(
        &self,
        request: Request<v1::DescribeClustersRequest>,
    ) -> Reply<v1::DescribeClustersReply> {
        self.barrier(&request).await?;
        let req = request.into_inner();
        reply((|| {
            check_include(
                &req.include,
                &[
                    "ATTACHMENTS",
                    "CONFIGURATIONS",
                    "SETTINGS",
                    "STATISTICS",
                    "TAGS",
                ],
            )?;
            let include = ClusterInclude {
                settings: req.include.iter().any(|i| i == "SETTINGS"),
                tags: req.include.iter().any(|i| i == "TAGS"),
            };
            let names = if req.clusters.is_empty() {
                vec![DEFAULT_CLUSTER.to_string()]
            } else {
                req.clusters
                    .iter()
                    .map(|c| cluster_name(c))
                    .collect::<Result<Vec<_>, _>>()?
            };
            let (found, failures) = self.read(|s| s.describe_clusters(&names));
            Ok(v1::DescribeClustersReply {
                clusters: found
                    .iter()
                    .map(|(c, u)| convert::cluster_to_wire(c, *u, include))
                    .collect(),
                failures: failures.into_iter().map(convert::failure_to_wire).collect(),
            })
        })())
    }

    async fn list_clusters(
        &self,
        request: Request<v1::ListClustersRequest>,
    ) -> Reply<v1::ListClustersReply> {
        self.barrier(&request).await?;
        let req = request.into_inner();
        let page = PageRequest {
            next_token: req.next_token,
            max_results: req.max_results,
        };
        reply(
            self.read(|s| s.list_clusters(&page))
                .map(|page| v1::ListClustersReply {
                    cluster_arns: page.items,
                    next_token: page.next_token.unwrap_or_default(),
                }),
        )
    }

    async fn delete_cluster(
        &self,
        request: Request<v1::DeleteClusterRequest>,
    ) -> Reply<v1::ClusterReply> {
        let req = request.into_inner();
        reply(
            async {
                let name = cluster_name(&req.cluster)?;
                let outcome = self.node.propose(Command::DeleteCluster { name }).await?;
                self.cluster_reply(outcome)
            }
            .await,
        )
    }

    async fn update_cluster(
        &self,
        request: Request<v1::UpdateClusterRequest>,
    ) -> Reply<v1::ClusterReply> {
        let req = request.into_inner();
        reply(
            async {
                let name = cluster_name(&req.cluster)?;
                let settings = convert::settings_from_wire(req.settings);
                validate_settings(&settings, "settings")?;
                let outcome = self
                    .node
                    .propose(Command::UpdateClusterSettings { name, settings })
                    .await?;
                self.cluster_reply(outcome)
            }
            .await,
        )
    }

    async fn run_task(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        json_reply(self.run_task_json(&request.into_inner().input_json).await)
    }

    async fn stop_task(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        json_reply(self.stop_task_json(&request.into_inner().input_json).await)
    }

    async fn describe_tasks(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.describe_tasks_json(&request.into_inner().input_json))
    }

    async fn list_tasks(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_tasks_json(&request.into_inner().input_json))
    }

    async fn list_container_instances(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_container_instances_json(&request.into_inner().input_json))
    }

    async fn describe_container_instances(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.describe_container_instances_json(&request.into_inner().input_json))
    }

    async fn put_attributes(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.put_attributes_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn delete_attributes(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.delete_attributes_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn list_attributes(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_attributes_json(&request.into_inner().input_json))
    }

    async fn update_container_instances_state(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.update_container_instances_state_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn deregister_container_instance(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.deregister_container_instance_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn create_service(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.create_service_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn update_service(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.update_service_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn delete_service(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.delete_service_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn describe_services(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.describe_services_json(&request.into_inner().input_json))
    }

    async fn list_services(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_services_json(&request.into_inner().input_json))
    }

    async fn start_task(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        json_reply(self.start_task_json(&request.into_inner().input_json).await)
    }

    async fn tag_resource(&self, request: Request<v1::EcsJsonRequest>) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.tag_resource_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn untag_resource(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.untag_resource_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn list_tags_for_resource(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_tags_for_resource_json(&request.into_inner().input_json))
    }

    async fn list_account_settings(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_account_settings_json(&request.into_inner().input_json))
    }

    async fn put_account_setting(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.put_account_setting_json(&request.into_inner().input_json, false)
                .await,
        )
    }

    async fn put_account_setting_default(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.put_account_setting_json(&request.into_inner().input_json, true)
                .await,
        )
    }

    async fn put_cluster_capacity_providers(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        json_reply(
            self.put_cluster_capacity_providers_json(&request.into_inner().input_json)
                .await,
        )
    }

    async fn list_services_by_namespace(
        &self,
        request: Request<v1::EcsJsonRequest>,
    ) -> Reply<v1::EcsJsonReply> {
        self.barrier(&request).await?;
        json_reply(self.list_services_by_namespace_json(&request.into_inner().input_json))
    }
}

pub(super) fn json_reply(result: Result<String, ApiError>) -> Reply<v1::EcsJsonReply> {
    reply(result.map(|output_json| v1::EcsJsonReply { output_json }))
}

//! The ECS container-instance management calls: PutAttributes,
//! DeleteAttributes, ListAttributes, UpdateContainerInstancesState and
//! DeregisterContainerInstance. Each validates ECS's JSON, resolves the
//! instances it names in the cluster, proposes one command and renders
//! ECS's output from the applied state.

use orca_core::arn::resource_id;
use orca_core::instance_calls::{
    AttributesInput, AttributesOutput, DeregisterContainerInstanceInput,
    DeregisterContainerInstanceOutput, ListAttributesInput, UpdateContainerInstancesStateInput,
    UpdateContainerInstancesStateOutput,
};
use orca_core::json_input::parse_input;
use orca_core::task::Failure;
use orca_core::ApiError;

use super::ecs_service::EcsService;
use super::task_api::{cluster_of, page, to_json};
use crate::state::instance_admin::InstanceAttribute;
use crate::state::instances::{instance_not_found, InstanceStatus};
use crate::state::query::{paginate, SortOrder};
use crate::state::{ClusterState, Command, Outcome};

fn unexpected(call: &str, other: Outcome) -> ApiError {
    ApiError::server(format!("unexpected outcome of {call}: {other:?}"))
}

/// The id of the instance `reference` (id or ARN) names in `cluster`.
fn instance_id(
    state: &ClusterState,
    cluster: &str,
    reference: &str,
    field: &str,
) -> Result<String, ApiError> {
    let (arn_cluster, id) = resource_id(reference, "container-instance", field)?;
    let here = state
        .instances
        .get(&id)
        .is_some_and(|i| i.cluster == cluster && i.status != InstanceStatus::Inactive);
    if arn_cluster.is_some_and(|c| c != cluster) || !here {
        return Err(instance_not_found(reference));
    }
    Ok(id)
}

impl EcsService {
    async fn attributes_call(&self, json: &str, put: bool) -> Result<String, ApiError> {
        let call = if put {
            "PutAttributes"
        } else {
            "DeleteAttributes"
        };
        let input: AttributesInput = parse_input(json, call)?;
        input.validate(put)?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let attributes = self.read(|s| {
            input
                .attributes
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let target = a.target_id.as_deref().unwrap_or_default();
                    Ok(InstanceAttribute {
                        instance_id: instance_id(
                            s,
                            &cluster,
                            target,
                            &format!("attributes[{i}].targetId"),
                        )?,
                        name: a.name.clone(),
                        value: a.value.clone(),
                    })
                })
                .collect::<Result<Vec<_>, ApiError>>()
        })?;
        let command = if put {
            Command::PutAttributes {
                cluster,
                attributes,
            }
        } else {
            Command::DeleteAttributes {
                cluster,
                attributes,
            }
        };
        match self.node.propose(command).await? {
            Outcome::Attributes(attributes) => to_json(&AttributesOutput {
                attributes,
                next_token: None,
            }),
            other => Err(unexpected(call, other)),
        }
    }

    pub(super) async fn put_attributes_json(&self, json: &str) -> Result<String, ApiError> {
        self.attributes_call(json, true).await
    }

    pub(super) async fn delete_attributes_json(&self, json: &str) -> Result<String, ApiError> {
        self.attributes_call(json, false).await
    }

    pub(super) fn list_attributes_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListAttributesInput = parse_input(json, "ListAttributes")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let all = self.read(|s| {
            s.list_attributes(
                &cluster,
                input.attribute_name.as_deref(),
                input.attribute_value.as_deref(),
            )
        });
        // Paged by (instance ARN, name), which is unique.
        let by_key: std::collections::BTreeMap<(String, String), _> = all
            .into_iter()
            .map(|a| ((a.target_id.clone().unwrap_or_default(), a.name.clone()), a))
            .collect();
        let page = paginate(
            by_key.keys().cloned(),
            SortOrder::Asc,
            &page(input.next_token, input.max_results),
        )?;
        to_json(&AttributesOutput {
            attributes: page
                .items
                .iter()
                .filter_map(|k| by_key.get(k).cloned())
                .collect(),
            next_token: page.next_token,
        })
    }

    pub(super) async fn update_container_instances_state_json(
        &self,
        json: &str,
    ) -> Result<String, ApiError> {
        let input: UpdateContainerInstancesStateInput =
            parse_input(json, "UpdateContainerInstancesState")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let status = match input.status.as_str() {
            "DRAINING" => InstanceStatus::Draining,
            _ => InstanceStatus::Active,
        };
        // Unknown instances are failures (ECS: MISSING); the rest change.
        let (ids, failures) = self.read(|s| {
            let mut ids = Vec::new();
            let mut failures = Vec::new();
            for r in &input.container_instances {
                match instance_id(s, &cluster, r, "containerInstances") {
                    Ok(id) => ids.push(id),
                    Err(_) => failures.push(Failure {
                        arn: Some(r.clone()),
                        reason: "MISSING".to_string(),
                        detail: None,
                    }),
                }
            }
            (ids, failures)
        });
        if !ids.is_empty() {
            match self
                .node
                .propose(Command::SetInstancesStatus {
                    cluster: cluster.clone(),
                    instance_ids: ids.clone(),
                    status,
                })
                .await?
            {
                Outcome::Instances(_) => {}
                other => return Err(unexpected("UpdateContainerInstancesState", other)),
            }
        }
        let container_instances = self.read(|s| {
            ids.iter()
                .filter_map(|id| s.instances.get(id).map(|r| s.container_instance_view(r)))
                .collect()
        });
        to_json(&UpdateContainerInstancesStateOutput {
            container_instances,
            failures,
        })
    }

    pub(super) async fn deregister_container_instance_json(
        &self,
        json: &str,
    ) -> Result<String, ApiError> {
        let input: DeregisterContainerInstanceInput =
            parse_input(json, "DeregisterContainerInstance")?;
        input.validate()?;
        let cluster = cluster_of(self, input.cluster.as_deref())?;
        let id = self
            .read(|s| instance_id(s, &cluster, &input.container_instance, "containerInstance"))?;
        let command = Command::DeregisterContainerInstance {
            cluster,
            instance_id: id.clone(),
            force: input.force.unwrap_or(false),
            at: self.clock.now(),
        };
        match self.node.propose(command).await? {
            Outcome::Instances(_) => {}
            other => return Err(unexpected("DeregisterContainerInstance", other)),
        }
        let container_instance = self
            .read(|s| s.instances.get(&id).map(|r| s.container_instance_view(r)))
            .ok_or_else(|| instance_not_found(&id))?;
        to_json(&DeregisterContainerInstanceOutput { container_instance })
    }
}

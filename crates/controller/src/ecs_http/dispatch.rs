//! One ECS operation, by name, through the same handlers the gRPC API
//! serves: the JSON-carrying calls take ECS's input document as it is; the
//! typed ones (task definitions, clusters) have their input members read
//! into the request message and their reply rendered by the one rendering
//! the `orca` CLI also uses (`orca_api::ecs_json`). No decision is made
//! here, and a follower forwards writes exactly as for a gRPC client.

use orca_api::ecs_json;
use orca_api::error::from_status;
use orca_api::v1::{self, ecs_server::Ecs};
use orca_core::{ApiError, Exception};
use serde_json::{json, Map, Value};
use tonic::{Request, Response, Status};

use crate::api::ecs_service::EcsService;

/// Why a call has no answer from the ECS handlers.
#[derive(Debug)]
pub enum CallError {
    /// ECS's model has no such operation, or orca does not serve it.
    UnknownOperation(String),
    Api(ApiError),
}

impl From<ApiError> for CallError {
    fn from(e: ApiError) -> Self {
        CallError::Api(e)
    }
}

/// The output document, as the handlers rendered it.
type Answer = Result<String, CallError>;

fn status(s: Status) -> CallError {
    CallError::Api(from_status(&s))
}

/// Reads go through the linearizable path, so a script that writes and
/// then reads through any controller sees its write.
fn read<T>(message: T) -> Request<T> {
    orca_api::read::linearizable(Request::new(message))
}

fn write<T>(message: T) -> Request<T> {
    Request::new(message)
}

/// A JSON-carrying call: the input document in, the output document out.
async fn json_call<F, Fut>(input: &Value, linearizable: bool, call: F) -> Answer
where
    F: FnOnce(Request<v1::EcsJsonRequest>) -> Fut,
    Fut: std::future::Future<Output = Result<Response<v1::EcsJsonReply>, Status>>,
{
    let message = v1::EcsJsonRequest {
        input_json: input.to_string(),
    };
    let request = if linearizable {
        read(message)
    } else {
        write(message)
    };
    // The handlers' document goes out as it is: no second parse.
    Ok(call(request)
        .await
        .map_err(status)?
        .into_inner()
        .output_json)
}

/// The input's members, by name.
struct Input<'a> {
    members: &'a Map<String, Value>,
}

impl<'a> Input<'a> {
    fn new(input: &'a Value) -> Result<Self, ApiError> {
        input
            .as_object()
            .map(|members| Input { members })
            .ok_or_else(|| {
                ApiError::new(
                    Exception::ClientException,
                    "the request body must be a JSON object",
                )
            })
    }

    fn wrong(field: &str, what: &str) -> ApiError {
        ApiError::field(
            Exception::InvalidParameterException,
            field,
            format!("must be {what}"),
        )
    }

    fn string(&self, field: &str) -> Result<String, ApiError> {
        match self.members.get(field) {
            None | Some(Value::Null) => Ok(String::new()),
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(Self::wrong(field, "a string")),
        }
    }

    fn strings(&self, field: &str) -> Result<Vec<String>, ApiError> {
        match self.members.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    v.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| Self::wrong(&format!("{field}[{i}]"), "a string"))
                })
                .collect(),
            Some(_) => Err(Self::wrong(field, "a list of strings")),
        }
    }

    fn count(&self, field: &str) -> Result<u32, ApiError> {
        match self.members.get(field) {
            None | Some(Value::Null) => Ok(0),
            Some(v) => v
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| Self::wrong(field, "a non-negative integer")),
        }
    }

    /// A list of `{a, b}` objects with two string members.
    fn pairs(&self, field: &str, a: &str, b: &str) -> Result<Vec<(String, String)>, ApiError> {
        match self.members.get(field) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let get = |k: &str| {
                        v.get(k)
                            .and_then(Value::as_str)
                            .map(str::to_string)
                            .ok_or_else(|| Self::wrong(&format!("{field}[{i}].{k}"), "a string"))
                    };
                    Ok((get(a)?, get(b)?))
                })
                .collect(),
            Some(_) => Err(Self::wrong(field, "a list")),
        }
    }

    fn raw(&self, field: &str) -> Option<&'a Value> {
        self.members.get(field).filter(|v| !v.is_null())
    }
}

fn tags(pairs: Vec<(String, String)>) -> Vec<v1::Tag> {
    pairs
        .into_iter()
        .map(|(key, value)| v1::Tag { key, value })
        .collect()
}

fn settings(pairs: Vec<(String, String)>) -> Vec<v1::ClusterSetting> {
    pairs
        .into_iter()
        .map(|(name, value)| v1::ClusterSetting { name, value })
        .collect()
}

/// `{key: items, "nextToken": token}`, the token only when there is one.
fn page(key: &str, items: Vec<String>, next_token: String) -> Value {
    let mut out = Map::new();
    out.insert(key.into(), json!(items));
    if !next_token.is_empty() {
        out.insert("nextToken".into(), Value::String(next_token));
    }
    Value::Object(out)
}

fn cluster_reply(reply: v1::ClusterReply) -> Value {
    json!({"cluster": reply.cluster.as_ref().map(ecs_json::cluster)})
}

fn task_definition_reply(reply: &v1::TaskDefinitionReply) -> Result<Value, CallError> {
    ecs_json::task_definition_reply(reply)
        .map_err(|e| CallError::Api(ApiError::server(format!("an invalid task definition: {e}"))))
}

/// Every operation the endpoint serves, in ECS's names.
pub const OPERATIONS: &[&str] = &[
    "RegisterTaskDefinition",
    "DescribeTaskDefinition",
    "DeregisterTaskDefinition",
    "DeleteTaskDefinitions",
    "ListTaskDefinitions",
    "ListTaskDefinitionFamilies",
    "CreateCluster",
    "DescribeClusters",
    "ListClusters",
    "DeleteCluster",
    "UpdateCluster",
    "UpdateClusterSettings",
    "RunTask",
    "StopTask",
    "DescribeTasks",
    "ListTasks",
    "ListContainerInstances",
    "DescribeContainerInstances",
    "UpdateContainerInstancesState",
    "DeregisterContainerInstance",
    "PutAttributes",
    "DeleteAttributes",
    "ListAttributes",
    "CreateService",
    "UpdateService",
    "DeleteService",
    "DescribeServices",
    "ListServices",
    "StartTask",
    "TagResource",
    "UntagResource",
    "ListTagsForResource",
    "ListAccountSettings",
    "PutAccountSetting",
    "PutAccountSettingDefault",
    "PutClusterCapacityProviders",
    "ListServicesByNamespace",
];

/// The target prefixes of Secrets Manager and Parameter Store, served
/// beside ECS's so `aws secretsmanager` and `aws ssm` work unchanged.
pub const SECRETS_PREFIXES: &[&str] = &["secretsmanager", "AmazonSSM"];

/// A Secrets Manager or Parameter Store call (`prefix.Operation`).
async fn secrets_call(ecs: &EcsService, target: &str, input: &Value) -> Answer {
    let json = input.to_string();
    let result = match target {
        "secretsmanager.CreateSecret" => ecs.create_secret_json(&json).await,
        "secretsmanager.PutSecretValue" => ecs.put_secret_value_json(&json).await,
        "secretsmanager.GetSecretValue" => {
            read_barrier(ecs, || ecs.get_secret_value_json(&json)).await
        }
        "secretsmanager.DescribeSecret" => {
            read_barrier(ecs, || ecs.describe_secret_json(&json)).await
        }
        "secretsmanager.ListSecrets" => read_barrier(ecs, || ecs.list_secrets_json(&json)).await,
        "secretsmanager.DeleteSecret" => ecs.delete_secret_json(&json).await,
        "secretsmanager.RestoreSecret" => ecs.restore_secret_json(&json).await,
        "AmazonSSM.PutParameter" => ecs.put_parameter_json(&json).await,
        "AmazonSSM.GetParameter" => read_barrier(ecs, || ecs.get_parameter_json(&json)).await,
        "AmazonSSM.GetParameters" => read_barrier(ecs, || ecs.get_parameters_json(&json)).await,
        "AmazonSSM.DeleteParameter" => ecs.delete_parameter_json(&json).await,
        other => return Err(CallError::UnknownOperation(other.to_string())),
    };
    Ok(result?)
}

/// A read after the linearizable barrier, as the gRPC reads take it.
async fn read_barrier(
    ecs: &EcsService,
    read: impl FnOnce() -> Result<String, ApiError>,
) -> Result<String, ApiError> {
    ecs.barrier(&orca_api::read::linearizable(Request::new(())))
        .await
        .map_err(|s| from_status(&s))?;
    read()
}

/// Answers `operation` with `input`, ECS's input document.
pub async fn call(ecs: &EcsService, operation: &str, input: &Value) -> Answer {
    if operation.contains('.') {
        return secrets_call(ecs, operation, input).await;
    }
    let i = Input::new(input)?;
    match operation {
        "RunTask" => json_call(input, false, |r| ecs.run_task(r)).await,
        "StopTask" => json_call(input, false, |r| ecs.stop_task(r)).await,
        "DescribeTasks" => json_call(input, true, |r| ecs.describe_tasks(r)).await,
        "ListTasks" => json_call(input, true, |r| ecs.list_tasks(r)).await,
        "ListContainerInstances" => {
            json_call(input, true, |r| ecs.list_container_instances(r)).await
        }
        "DescribeContainerInstances" => {
            json_call(input, true, |r| ecs.describe_container_instances(r)).await
        }
        "UpdateContainerInstancesState" => {
            json_call(input, false, |r| ecs.update_container_instances_state(r)).await
        }
        "DeregisterContainerInstance" => {
            json_call(input, false, |r| ecs.deregister_container_instance(r)).await
        }
        "PutAttributes" => json_call(input, false, |r| ecs.put_attributes(r)).await,
        "DeleteAttributes" => json_call(input, false, |r| ecs.delete_attributes(r)).await,
        "ListAttributes" => json_call(input, true, |r| ecs.list_attributes(r)).await,
        "CreateService" => json_call(input, false, |r| ecs.create_service(r)).await,
        "UpdateService" => json_call(input, false, |r| ecs.update_service(r)).await,
        "DeleteService" => json_call(input, false, |r| ecs.delete_service(r)).await,
        "DescribeServices" => json_call(input, true, |r| ecs.describe_services(r)).await,
        "ListServices" => json_call(input, true, |r| ecs.list_services(r)).await,
        "StartTask" => json_call(input, false, |r| ecs.start_task(r)).await,
        "TagResource" => json_call(input, false, |r| ecs.tag_resource(r)).await,
        "UntagResource" => json_call(input, false, |r| ecs.untag_resource(r)).await,
        "ListTagsForResource" => json_call(input, true, |r| ecs.list_tags_for_resource(r)).await,
        "ListAccountSettings" => json_call(input, true, |r| ecs.list_account_settings(r)).await,
        "PutAccountSetting" => json_call(input, false, |r| ecs.put_account_setting(r)).await,
        "PutAccountSettingDefault" => {
            json_call(input, false, |r| ecs.put_account_setting_default(r)).await
        }
        "PutClusterCapacityProviders" => {
            json_call(input, false, |r| ecs.put_cluster_capacity_providers(r)).await
        }
        "ListServicesByNamespace" => {
            json_call(input, true, |r| ecs.list_services_by_namespace(r)).await
        }
        _ => typed(ecs, operation, input, &i)
            .await
            .map(|output| output.to_string()),
    }
}

/// The operations whose gRPC calls take typed messages: the input members
/// read into the request, the reply rendered as ECS's output.
async fn typed(
    ecs: &EcsService,
    operation: &str,
    input: &Value,
    i: &Input<'_>,
) -> Result<Value, CallError> {
    match operation {
        "RegisterTaskDefinition" => {
            let reply = ecs
                .register_task_definition(write(v1::RegisterTaskDefinitionRequest {
                    input_json: input.to_string(),
                    registered_by: String::new(),
                }))
                .await
                .map_err(status)?;
            task_definition_reply(reply.get_ref())
        }
        "DescribeTaskDefinition" => {
            let reply = ecs
                .describe_task_definition(read(v1::DescribeTaskDefinitionRequest {
                    task_definition: i.string("taskDefinition")?,
                    include: i.strings("include")?,
                }))
                .await
                .map_err(status)?;
            task_definition_reply(reply.get_ref())
        }
        "DeregisterTaskDefinition" => {
            let reply = ecs
                .deregister_task_definition(write(v1::DeregisterTaskDefinitionRequest {
                    task_definition: i.string("taskDefinition")?,
                }))
                .await
                .map_err(status)?;
            task_definition_reply(reply.get_ref())
        }
        "DeleteTaskDefinitions" => {
            let reply = ecs
                .delete_task_definitions(write(v1::DeleteTaskDefinitionsRequest {
                    task_definitions: i.strings("taskDefinitions")?,
                }))
                .await
                .map_err(status)?
                .into_inner();
            let defs = reply
                .task_definitions_json
                .iter()
                .map(|j| serde_json::from_str::<Value>(j))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ApiError::server(format!("an invalid task definition: {e}")))?;
            Ok(json!({"taskDefinitions": defs, "failures": ecs_json::failures(&reply.failures)}))
        }
        "ListTaskDefinitions" => {
            let reply = ecs
                .list_task_definitions(read(v1::ListTaskDefinitionsRequest {
                    family_prefix: i.string("familyPrefix")?,
                    status: i.string("status")?,
                    sort: i.string("sort")?,
                    next_token: i.string("nextToken")?,
                    max_results: i.count("maxResults")?,
                }))
                .await
                .map_err(status)?
                .into_inner();
            Ok(page(
                "taskDefinitionArns",
                reply.task_definition_arns,
                reply.next_token,
            ))
        }
        "ListTaskDefinitionFamilies" => {
            let reply = ecs
                .list_task_definition_families(read(v1::ListTaskDefinitionFamiliesRequest {
                    family_prefix: i.string("familyPrefix")?,
                    status: i.string("status")?,
                    next_token: i.string("nextToken")?,
                    max_results: i.count("maxResults")?,
                }))
                .await
                .map_err(status)?
                .into_inner();
            Ok(page("families", reply.families, reply.next_token))
        }
        "CreateCluster" => {
            let strategy = i
                .raw("defaultCapacityProviderStrategy")
                .map(Value::to_string)
                .unwrap_or_default();
            let reply = ecs
                .create_cluster(write(v1::CreateClusterRequest {
                    cluster_name: i.string("clusterName")?,
                    settings: settings(i.pairs("settings", "name", "value")?),
                    tags: tags(i.pairs("tags", "key", "value")?),
                    capacity_providers: i.strings("capacityProviders")?,
                    default_capacity_provider_strategy_json: strategy,
                }))
                .await
                .map_err(status)?;
            Ok(cluster_reply(reply.into_inner()))
        }
        "DescribeClusters" => {
            let reply = ecs
                .describe_clusters(read(v1::DescribeClustersRequest {
                    clusters: i.strings("clusters")?,
                    include: i.strings("include")?,
                }))
                .await
                .map_err(status)?
                .into_inner();
            Ok(json!({
                "clusters": reply.clusters.iter().map(ecs_json::cluster).collect::<Vec<_>>(),
                "failures": ecs_json::failures(&reply.failures),
            }))
        }
        "ListClusters" => {
            let reply = ecs
                .list_clusters(read(v1::ListClustersRequest {
                    next_token: i.string("nextToken")?,
                    max_results: i.count("maxResults")?,
                }))
                .await
                .map_err(status)?
                .into_inner();
            Ok(page("clusterArns", reply.cluster_arns, reply.next_token))
        }
        "DeleteCluster" => {
            let reply = ecs
                .delete_cluster(write(v1::DeleteClusterRequest {
                    cluster: i.string("cluster")?,
                }))
                .await
                .map_err(status)?;
            Ok(cluster_reply(reply.into_inner()))
        }
        "UpdateCluster" | "UpdateClusterSettings" => {
            let reply = ecs
                .update_cluster(write(v1::UpdateClusterRequest {
                    cluster: i.string("cluster")?,
                    settings: settings(i.pairs("settings", "name", "value")?),
                }))
                .await
                .map_err(status)?;
            Ok(cluster_reply(reply.into_inner()))
        }
        other => Err(CallError::UnknownOperation(other.to_string())),
    }
}

//! Wire types rendered as ECS's JSON, as `aws ecs` prints them: one
//! rendering shared by the `orca` command line and the controller's ECS
//! JSON endpoint.

use serde_json::{json, Value};

use crate::v1::{Cluster, Failure, Tag, TaskDefinitionReply};

/// ECS's `Cluster` object (camelCase, ECS's key order).
pub fn cluster(c: &Cluster) -> Value {
    json!({
        "clusterArn": c.cluster_arn,
        "clusterName": c.cluster_name,
        "status": c.status,
        "registeredContainerInstancesCount": c.registered_container_instances_count,
        "runningTasksCount": c.running_tasks_count,
        "pendingTasksCount": c.pending_tasks_count,
        "activeServicesCount": c.active_services_count,
        "statistics": [],
        "tags": tags(&c.tags),
        "settings": c.settings.iter().map(|s| json!({"name": s.name, "value": s.value})).collect::<Vec<_>>(),
        "capacityProviders": c.capacity_providers,
        "defaultCapacityProviderStrategy": serde_json::from_str::<Value>(&c.default_capacity_provider_strategy_json)
            .unwrap_or_else(|_| json!([])),
    })
}

/// ECS's `Failure`: `detail` only when there is one.
pub fn failure(f: &Failure) -> Value {
    let mut v = json!({"arn": f.arn, "reason": f.reason});
    if let (false, Some(m)) = (f.detail.is_empty(), v.as_object_mut()) {
        m.insert("detail".into(), Value::String(f.detail.clone()));
    }
    v
}

pub fn failures(fs: &[Failure]) -> Value {
    Value::Array(fs.iter().map(failure).collect())
}

pub fn tags(ts: &[Tag]) -> Value {
    Value::Array(
        ts.iter()
            .map(|t| json!({"key": t.key, "value": t.value}))
            .collect(),
    )
}

/// `{"taskDefinition": {...}, "tags": [...]}`, tags only when there are some.
pub fn task_definition_reply(reply: &TaskDefinitionReply) -> Result<Value, serde_json::Error> {
    let mut out = serde_json::Map::new();
    out.insert(
        "taskDefinition".into(),
        serde_json::from_str(&reply.task_definition_json)?,
    );
    if !reply.tags.is_empty() {
        out.insert("tags".into(), tags(&reply.tags));
    }
    Ok(Value::Object(out))
}

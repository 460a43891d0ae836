//! ECS's describe shape of a stored task, rendered on read: ARNs from the
//! cluster's identity, numbers as ECS's strings, the network namespace as an
//! awsvpc ENI attachment. Pure: the same record and identity always render
//! the same task.

use orca_core::arn::ArnContext;
use orca_core::task::{
    Attachment, Container, KeyValue, NetworkBinding, NetworkInterface, Task, TaskStatus,
};

use super::task_record::{ContainerRecord, TaskNetwork, TaskRecord};
use super::ClusterState;

impl ClusterState {
    /// The task as DescribeTasks, RunTask and StopTask return it.
    pub fn render_task(&self, record: &TaskRecord) -> Task {
        render(&self.arn, record)
    }

    /// The task's ARN, as ListTasks returns it.
    pub fn task_arn(&self, record: &TaskRecord) -> String {
        self.arn.task(&record.cluster, &record.id)
    }
}

pub(super) fn render(arn: &ArnContext, record: &TaskRecord) -> Task {
    let task_arn = arn.task(&record.cluster, &record.id);
    let stopped = record.last_status == TaskStatus::Stopped;
    let times = &record.times;
    Task {
        task_arn: task_arn.clone(),
        cluster_arn: arn.cluster(&record.cluster),
        task_definition_arn: arn.task_definition(&record.family, record.revision),
        container_instance_arn: Some(arn.container_instance(&record.cluster, &record.instance_id)),
        overrides: record.overrides.clone(),
        last_status: record.last_status,
        desired_status: record.desired_status,
        cpu: record.reserved.cpu.to_string(),
        memory: record.reserved.memory.to_string(),
        containers: record
            .containers
            .iter()
            .map(|c| render_container(arn, record, &task_arn, c))
            .collect(),
        started_by: record.started_by.clone(),
        group: Some(record.group.clone()),
        launch_type: record.launch_type.clone(),
        attachments: record
            .network
            .iter()
            .map(|n| render_attachment(n, stopped))
            .collect(),
        created_at: times.created_at,
        pull_started_at: times.pull_started_at,
        pull_stopped_at: times.pull_stopped_at,
        started_at: times.started_at,
        stopping_at: times.stopping_at,
        execution_stopped_at: times.execution_stopped_at,
        stopped_at: times.stopped_at,
        stop_code: record.stop_code,
        stopped_reason: record.stopped_reason.clone(),
        version: record.version,
        health_status: record.health.name().to_string(),
        enable_execute_command: record.enable_execute_command,
        run_timeout_seconds: record.run_timeout_seconds,
        tags: record.tags.clone(),
        ephemeral_storage: record.ephemeral_storage.clone(),
    }
}

fn render_container(
    arn: &ArnContext,
    record: &TaskRecord,
    task_arn: &str,
    c: &ContainerRecord,
) -> Container {
    Container {
        container_arn: arn.container(&record.cluster, &record.id, &c.id),
        task_arn: task_arn.to_string(),
        name: c.name.clone(),
        image: c.image.clone(),
        image_digest: c.image_digest.clone(),
        runtime_id: c.runtime_id.clone(),
        last_status: c.last_status,
        exit_code: c.exit_code,
        reason: c.reason.clone(),
        network_bindings: record
            .host_ports
            .iter()
            .filter(|b| b.container_name == c.name)
            .map(NetworkBinding::from)
            .collect(),
        network_interfaces: record
            .network
            .iter()
            .map(|n| NetworkInterface {
                attachment_id: n.netns.clone(),
                private_ipv4_address: n.private_ipv4_address.clone(),
            })
            .collect(),
        health_status: c.health.name().to_string(),
        health_check_output: c.health_output.clone(),
        health_check_exit_code: c.health_exit_code,
        restart_count: Some(c.restart_count),
        cpu: c.cpu.to_string(),
        memory: c.memory.map(|m| m.to_string()),
        memory_reservation: c.memory_reservation.map(|m| m.to_string()),
        essential: c.essential,
    }
}

/// ECS shows an awsvpc task's ENI as an attachment; orca shows the task's
/// namespace in the same shape, DELETED once the task is STOPPED.
fn render_attachment(n: &TaskNetwork, stopped: bool) -> Attachment {
    let detail = |name: &str, value: &str| KeyValue {
        name: name.to_string(),
        value: value.to_string(),
    };
    Attachment {
        id: n.netns.clone(),
        kind: "ElasticNetworkInterface".to_string(),
        status: if stopped { "DELETED" } else { "ATTACHED" }.to_string(),
        details: vec![
            detail("subnetId", &n.subnet),
            detail("networkInterfaceId", &n.netns),
            detail("macAddress", &n.mac_address),
            detail("privateIPv4Address", &n.private_ipv4_address),
        ],
    }
}

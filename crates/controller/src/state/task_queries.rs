//! Reads of tasks and container instances: DescribeTasks, ListTasks,
//! List/DescribeContainerInstances, cluster counts, and the assignments the
//! leader sends an agent. Pure functions of the state.

use orca_core::agent_protocol::TaskAssignment;
use orca_core::arn::resource_id;
use orca_core::container_instance::ContainerInstance;
use orca_core::task::{Failure, Task, TaskStatus};
use orca_core::ApiError;

use super::clusters::ClusterUsage;
use super::query::{paginate, Page, PageRequest, SortOrder};
use super::{ClusterState, InstanceRecord, TaskRecord};

/// ListTasks' filters, resolved.
#[derive(Debug, Clone, Default)]
pub struct TaskFilter {
    pub cluster: String,
    pub instance_id: Option<String>,
    pub family: Option<String>,
    pub started_by: Option<String>,
    /// Tasks of a service carry the group `service:<name>`.
    pub service_name: Option<String>,
    /// RUNNING, PENDING or STOPPED (ECS: desired PENDING matches nothing).
    pub desired_status: String,
    pub launch_type: Option<String>,
}

impl ClusterState {
    /// Counts for DescribeClusters and DeleteCluster's rules.
    pub fn cluster_usage(&self, name: &str) -> ClusterUsage {
        let mut usage = ClusterUsage {
            container_instances: self
                .instances
                .values()
                .filter(|i| i.cluster == name)
                .count() as u32,
            // ECS counts ACTIVE services (DRAINING ones block deletion too).
            active_services: self
                .services
                .values()
                .filter(|s| {
                    s.cluster == name && s.status != orca_core::service::ServiceStatus::Inactive
                })
                .count() as u32,
            ..ClusterUsage::default()
        };
        for t in self.tasks.values().filter(|t| t.cluster == name) {
            match t.last_status {
                TaskStatus::Running => usage.running_tasks += 1,
                s if s.is_pending() => usage.pending_tasks += 1,
                // Stopping tasks still hold the cluster.
                TaskStatus::Stopped => {}
                _ => usage.running_tasks += 1,
            }
        }
        usage
    }

    /// A task of `cluster` by id or ARN.
    pub fn task_in(&self, cluster: &str, reference: &str) -> Option<&TaskRecord> {
        let (arn_cluster, id) = resource_id(reference, "task", "task").ok()?;
        if arn_cluster.is_some_and(|c| c != cluster) {
            return None;
        }
        self.tasks.get(&id).filter(|t| t.cluster == cluster)
    }

    pub fn describe_tasks(
        &self,
        cluster: &str,
        references: &[String],
    ) -> (Vec<Task>, Vec<Failure>) {
        let mut tasks = Vec::new();
        let mut failures = Vec::new();
        for r in references {
            match self.task_in(cluster, r) {
                Some(t) => tasks.push(self.render_task(t)),
                None => failures.push(Failure {
                    arn: Some(r.clone()),
                    reason: "MISSING".to_string(),
                    detail: None,
                }),
            }
        }
        (tasks, failures)
    }

    /// ListTasks: one page in id order. The task index seeks straight to
    /// the cluster's tasks of the wanted desired status after the token's
    /// id, so a page costs a seek and the tasks it looks at, however many
    /// stopped tasks are kept; a task stopped or purged between pages
    /// neither repeats nor shifts the ones that remain.
    pub fn list_tasks(
        &self,
        filter: &TaskFilter,
        page: &PageRequest,
    ) -> Result<Page<String>, ApiError> {
        let desired = match filter.desired_status.as_str() {
            "STOPPED" => Some(TaskStatus::Stopped),
            // ECS: no task is ever wanted PENDING.
            "PENDING" => None,
            _ => Some(TaskStatus::Running),
        };
        let after: Option<String> = page.after()?;
        let matches = |task: &TaskRecord| {
            filter
                .instance_id
                .as_ref()
                .is_none_or(|i| *i == task.instance_id)
                && filter.family.as_ref().is_none_or(|f| *f == task.family)
                && filter
                    .started_by
                    .as_ref()
                    .is_none_or(|s| task.started_by.as_ref() == Some(s))
                && filter
                    .service_name
                    .as_ref()
                    .is_none_or(|s| task.group.strip_prefix("service:") == Some(s.as_str()))
                && filter
                    .launch_type
                    .as_ref()
                    .is_none_or(|l| *l == task.launch_type)
        };
        let ids = desired
            .into_iter()
            .flat_map(|d| self.task_index.ids(&filter.cluster, d, after.as_deref()))
            .filter(|id| self.tasks.get(*id).is_some_and(&matches))
            .map(str::to_string);
        let page = paginate(ids, SortOrder::Asc, page)?;
        Ok(Page {
            items: page
                .items
                .iter()
                .filter_map(|id| self.tasks.get(id).map(|t| self.task_arn(t)))
                .collect(),
            next_token: page.next_token,
        })
    }

    /// A container instance of `cluster` by id or ARN.
    pub fn instance_in(&self, cluster: &str, reference: &str) -> Option<&InstanceRecord> {
        let (arn_cluster, id) =
            resource_id(reference, "container-instance", "containerInstance").ok()?;
        if arn_cluster.is_some_and(|c| c != cluster) {
            return None;
        }
        self.instances.get(&id).filter(|i| i.cluster == cluster)
    }

    pub fn list_container_instances(
        &self,
        cluster: &str,
        wanted: impl Fn(&InstanceRecord) -> bool,
        page: &PageRequest,
    ) -> Result<Page<String>, ApiError> {
        let ids = self
            .instances
            .values()
            .filter(|i| i.cluster == cluster && wanted(i))
            .map(|i| i.id.clone());
        let page = paginate(ids, SortOrder::Asc, page)?;
        Ok(Page {
            items: page
                .items
                .iter()
                .filter_map(|id| self.instances.get(id).map(|i| i.arn.clone()))
                .collect(),
            next_token: page.next_token,
        })
    }

    pub fn describe_container_instances(
        &self,
        cluster: &str,
        references: &[String],
    ) -> (Vec<ContainerInstance>, Vec<Failure>) {
        let mut found = Vec::new();
        let mut failures = Vec::new();
        for r in references {
            match self.instance_in(cluster, r) {
                Some(i) => found.push(self.container_instance_view(i)),
                None => failures.push(Failure {
                    arn: Some(r.clone()),
                    reason: "MISSING".to_string(),
                    detail: None,
                }),
            }
        }
        (found, failures)
    }

    /// What the instance's agent should hold: every task placed on it that
    /// has not reported STOPPED, with its definition.
    pub fn assignments_for(&self, instance_id: &str) -> Vec<TaskAssignment> {
        self.assignments_with_delay(instance_id, None)
    }

    /// [`Self::assignments_for`], with `deregistration_delay` (the discovery
    /// TTL and margin) set on tasks of services with a registry: they wait
    /// it out in DEACTIVATING before their containers get SIGTERM.
    pub fn assignments_with_delay(
        &self,
        instance_id: &str,
        deregistration_delay: Option<std::time::Duration>,
    ) -> Vec<TaskAssignment> {
        let delay_ms =
            deregistration_delay.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        let Some(instance) = self.instances.get(instance_id) else {
            return Vec::new();
        };
        instance
            .task_ids
            .iter()
            .filter_map(|id| self.tasks.get(id))
            .filter_map(|t| {
                let definition = self
                    .families
                    .get(&t.family)?
                    .revisions
                    .get(&t.revision)?
                    .task_definition
                    .clone();
                Some(TaskAssignment {
                    task_arn: self.task_arn(t),
                    task_id: t.id.clone(),
                    desired_status: t.desired_status,
                    task_definition: definition,
                    overrides: t.overrides.clone(),
                    stop_code: t.stop_code,
                    stopped_reason: t.stopped_reason.clone(),
                    host_ports: t.host_ports.clone(),
                    deregistration_delay_ms: delay_ms.filter(|_| self.is_discoverable(t)),
                    secrets: Vec::new(),
                    secrets_error: None,
                    privileges_allowed: self
                        .clusters
                        .get(&t.cluster)
                        .is_some_and(|c| orca_core::cluster::privileges_allowed(&c.settings)),
                })
            })
            .collect()
    }

    /// Whether `task` belongs to a service with a registry.
    fn is_discoverable(&self, task: &TaskRecord) -> bool {
        task.group
            .strip_prefix("service:")
            .and_then(|name| self.services.get(&super::service_key(&task.cluster, name)))
            .is_some_and(|s| s.discovery.is_some())
    }
}

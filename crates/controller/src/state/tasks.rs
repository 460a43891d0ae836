//! Applying task commands: RunTask (re-checking the leader's placements
//! against the resources left now, reserving them), StopTask, and the
//! agents' state reports (statuses only move forward; resources are released
//! exactly once, when the task reaches STOPPED).

use orca_core::agent_protocol::{ContainerStateReport, TaskStateReport};
use orca_core::task::{
    task_resources, ContainerStatus, Failure, HealthStatus, HostPortBinding, NetworkConfiguration,
    Resources, StopCode, TaskOverride, TaskStatus,
};
use orca_core::task_definition::{Tag, TaskDefinitionStatus, Timestamp};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};

use super::host_ports::{key as port_key, PortKey};
use super::instances::instance_not_found;
use super::task_definitions::task_definition_not_found;
use super::task_record::{ContainerRecord, TaskNetwork, TaskRecord, TaskTimes};
use super::task_render::render;
use super::{ClusterState, Outcome};

/// One task of a RunTask, placed by the leader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Placement {
    pub task_id: String,
    pub instance_id: String,
    /// One id per container definition, in order (container ARNs).
    pub container_ids: Vec<String>,
    /// The host ports the task holds on the instance (static and
    /// dynamic), chosen by the leader; apply refuses the run if one is
    /// no longer free.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub host_ports: Vec<HostPortBinding>,
    /// The instance's dynamic-port cursor after this placement (None: it
    /// took no dynamic port).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port_cursor: Option<u16>,
}

/// Everything RunTask decided, as one command.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunTaskCommand {
    pub cluster: String,
    pub family: String,
    pub revision: u32,
    pub overrides: TaskOverride,
    pub started_by: Option<String>,
    pub group: Option<String>,
    pub client_token: Option<String>,
    /// The request's canonical JSON: a clientToken reused with another
    /// request is refused.
    pub fingerprint: String,
    pub launch_type: String,
    pub network_configuration: Option<NetworkConfiguration>,
    pub tags: Vec<Tag>,
    pub enable_execute_command: bool,
    /// RunTask's runTimeoutSeconds (orca's); absent from older commands.
    #[serde(default)]
    pub run_timeout_seconds: Option<u32>,
    pub created_at: Timestamp,
    pub placements: Vec<Placement>,
    /// Tasks that could not be placed (ECS's failures[]).
    pub failures: Vec<Failure>,
}

/// A clientToken's RunTask, kept so a retry returns the same tasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientTokenRecord {
    pub fingerprint: String,
    pub task_ids: Vec<String>,
    pub failures: Vec<Failure>,
    pub at: Timestamp,
}

/// How long a clientToken is remembered (ECS: tokens expire; a day here).
const CLIENT_TOKEN_TTL_MS: i64 = 24 * 3600 * 1000;

impl ClusterState {
    pub(super) fn run_task(&mut self, cmd: RunTaskCommand) -> Result<Outcome, ApiError> {
        self.active_cluster(&cmd.cluster)?;
        // Forget expired tokens; the command's time is the clock here.
        let horizon = cmd.created_at.0.saturating_sub(CLIENT_TOKEN_TTL_MS);
        let expired: Vec<(String, String)> = self
            .client_tokens
            .iter()
            .filter(|(_, t)| t.at.0 < horizon)
            .map(|(k, _)| k.clone())
            .collect();
        for key in expired {
            self.client_tokens.remove(&key);
        }
        if let Some(token) = &cmd.client_token {
            if let Some(known) = self
                .client_tokens
                .get(&(cmd.cluster.clone(), token.clone()))
            {
                if known.fingerprint != cmd.fingerprint {
                    return Err(ApiError::field(
                        Exception::ConflictException,
                        "clientToken",
                        format!("'{token}' was already used with different parameters"),
                    ));
                }
                let tasks = known
                    .task_ids
                    .iter()
                    .filter_map(|id| self.tasks.get(id).map(|t| self.render_task(t)))
                    .collect();
                return Ok(Outcome::Tasks {
                    tasks,
                    failures: known.failures.clone(),
                });
            }
        }
        let stored = self
            .families
            .get(&cmd.family)
            .and_then(|f| f.revisions.get(&cmd.revision))
            .filter(|s| s.task_definition.status == TaskDefinitionStatus::Active)
            .ok_or_else(|| task_definition_not_found(&cmd.family, Some(cmd.revision)))?;
        let definition = stored.task_definition.clone();
        let need = task_resources(&definition, &cmd.overrides);
        let addresses = super::task_addresses::addresses_per_task(
            definition.spec.effective_network_mode(),
            definition.spec.container_definitions.len(),
        );
        // Re-check the placements against what is left now: a placement made
        // on an older view may no longer fit; the leader then places again.
        let mut taken: std::collections::BTreeMap<&str, Resources> = Default::default();
        let mut addresses_taken: std::collections::BTreeMap<&str, u32> = Default::default();
        let mut ports_taken: std::collections::BTreeSet<(&str, PortKey)> = Default::default();
        for p in &cmd.placements {
            let Some(instance) = self.instances.get(&p.instance_id) else {
                return Ok(Outcome::PlacementConflict);
            };
            let used = taken.entry(&p.instance_id).or_default();
            *used = used.plus(need);
            let used_addresses = addresses_taken.entry(&p.instance_id).or_default();
            *used_addresses = used_addresses.saturating_add(addresses);
            let ports_clash = p.host_ports.iter().any(|b| {
                let key = port_key(b);
                !instance.port_free(key) || !ports_taken.insert((p.instance_id.as_str(), key))
            });
            if instance.cluster != cmd.cluster
                || instance.status != super::instances::InstanceStatus::Active
                || !instance.agent_connected
                || !used.fits_in(instance.remaining)
                || *used_addresses > instance.free_addresses()
                || ports_clash
            {
                return Ok(Outcome::PlacementConflict);
            }
        }
        let group = cmd
            .group
            .clone()
            .unwrap_or_else(|| format!("family:{}", cmd.family));
        let mut tasks = Vec::with_capacity(cmd.placements.len());
        for p in &cmd.placements {
            self.reserve(
                &p.instance_id,
                &p.task_id,
                &group,
                (need, addresses),
                (p.host_ports.as_slice(), p.port_cursor),
            )?;
            let containers = definition
                .spec
                .container_definitions
                .iter()
                .zip(&p.container_ids)
                .map(|(def, cid)| {
                    let c = orca_core::task::effective_container(def, &cmd.overrides);
                    ContainerRecord {
                        id: cid.clone(),
                        name: c.name.clone(),
                        image: c.image.clone(),
                        image_digest: None,
                        runtime_id: None,
                        last_status: ContainerStatus::Pending,
                        exit_code: None,
                        reason: None,
                        health: HealthStatus::Unknown,
                        health_output: None,
                        health_exit_code: None,
                        restart_count: 0,
                        cpu: c.cpu.unwrap_or(0),
                        memory: c.memory,
                        memory_reservation: c.memory_reservation,
                        essential: c.essential.unwrap_or(true),
                    }
                })
                .collect();
            let record = TaskRecord {
                id: p.task_id.clone(),
                cluster: cmd.cluster.clone(),
                instance_id: p.instance_id.clone(),
                family: cmd.family.clone(),
                revision: cmd.revision,
                reserved: need,
                network_configuration: cmd.network_configuration.clone(),
                client_token: cmd.client_token.clone(),
                overrides: cmd.overrides.clone(),
                last_status: TaskStatus::Provisioning,
                desired_status: TaskStatus::Running,
                containers,
                started_by: cmd.started_by.clone(),
                group: group.clone(),
                launch_type: cmd.launch_type.clone(),
                network: None,
                times: TaskTimes {
                    created_at: cmd.created_at,
                    pull_started_at: None,
                    pull_stopped_at: None,
                    started_at: None,
                    stopping_at: None,
                    execution_stopped_at: None,
                    stopped_at: None,
                },
                stop_code: None,
                stopped_reason: None,
                version: 1,
                health: HealthStatus::Unknown,
                enable_execute_command: cmd.enable_execute_command,
                run_timeout_seconds: cmd.run_timeout_seconds,
                tags: cmd.tags.clone(),
                making_room_for: None,
                host_ports: p.host_ports.clone(),
                ephemeral_storage: definition.spec.ephemeral_storage.clone(),
            };
            tasks.push(self.render_task(&record));
            self.insert_task(record);
        }
        if let Some(token) = cmd.client_token {
            self.client_tokens.insert(
                (cmd.cluster, token),
                ClientTokenRecord {
                    fingerprint: cmd.fingerprint,
                    task_ids: cmd.placements.iter().map(|p| p.task_id.clone()).collect(),
                    failures: cmd.failures.clone(),
                    at: cmd.created_at,
                },
            );
        }
        Ok(Outcome::Tasks {
            tasks,
            failures: cmd.failures,
        })
    }

    pub(super) fn stop_task(
        &mut self,
        cluster: &str,
        task_id: &str,
        reason: Option<String>,
        stop_code: StopCode,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        if self.tasks.get(task_id).is_none_or(|t| t.cluster != cluster) {
            return Err(task_not_found(task_id));
        }
        let arn = self.arn.clone();
        let (changed, instance_id, task) = self
            .update_task(task_id, |record| {
                let changed = record.request_stop(
                    stop_code,
                    || reason.unwrap_or_else(|| "Task stopped by user".to_string()),
                    at,
                );
                (changed, record.instance_id.clone(), render(&arn, record))
            })
            .ok_or_else(|| task_not_found(task_id))?;
        if changed {
            self.touch_assignments(&instance_id);
        }
        Ok(Outcome::Task(Box::new(task)))
    }

    /// Merges an agent's reports. A report for a task that is not on this
    /// instance is ignored (it may have been purged); each report only moves
    /// statuses forward, so a resent or reordered report changes nothing.
    pub(super) fn report_task_states(
        &mut self,
        instance_id: &str,
        reports: Vec<TaskStateReport>,
    ) -> Result<Outcome, ApiError> {
        if !self.instances.contains_key(instance_id) {
            return Err(instance_not_found(instance_id));
        }
        let mut changed = 0usize;
        for report in reports {
            let Some(task_id) = report.task_arn.rsplit('/').next().map(str::to_string) else {
                continue;
            };
            if self
                .tasks
                .get(&task_id)
                .is_none_or(|t| t.instance_id != instance_id)
            {
                continue;
            }
            let Some((merged, wanted_before, stopped, wanted)) =
                self.update_task(&task_id, |record| {
                    let wanted_before = record.desired_status;
                    let merged = merge_report(record, report);
                    if merged {
                        record.version += 1;
                    }
                    (
                        merged,
                        wanted_before,
                        record.is_stopped(),
                        record.desired_status,
                    )
                })
            else {
                continue;
            };
            changed += usize::from(merged);
            if stopped {
                self.release(&task_id);
            } else if wanted != wanted_before {
                self.touch_assignments(instance_id);
            }
        }
        Ok(Outcome::Reported(changed))
    }
}

impl ClusterState {
    /// Records every unstopped task of a lost instance STOPPED with
    /// InfrastructureHealth and releases its reservation (exactly once:
    /// `release` takes the task off the instance). A task stopped here is
    /// never resurrected: reports only move statuses forward, and the
    /// instance no longer assigns it, so its returning agent stops it.
    pub(super) fn instance_lost(
        &mut self,
        instance_id: &str,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        let instance = self
            .instances
            .get(instance_id)
            .ok_or_else(|| instance_not_found(instance_id))?;
        if instance.agent_connected {
            // The agent came back between the decision and its commit.
            return Ok(Outcome::Lost {
                task_ids: Vec::new(),
            });
        }
        let task_ids: Vec<String> = instance.task_ids.iter().cloned().collect();
        let reason = format!("Container instance {instance_id} lost contact with the controllers");
        for id in &task_ids {
            self.update_task(id, |task| {
                task.desired_status = TaskStatus::Stopped;
                task.last_status = TaskStatus::Stopped;
                task.stop_code = Some(StopCode::InfrastructureHealth);
                task.stopped_reason = Some(reason.clone());
                task.times.stopping_at.get_or_insert(at);
                task.times.execution_stopped_at.get_or_insert(at);
                task.times.stopped_at = Some(at);
                for container in &mut task.containers {
                    if container.last_status != ContainerStatus::Stopped {
                        container.last_status = ContainerStatus::Stopped;
                        container.reason.get_or_insert_with(|| reason.clone());
                    }
                }
                task.version += 1;
            });
            self.release(id);
        }
        Ok(Outcome::Lost { task_ids })
    }
}

/// Folds one report into the task; true if anything changed.
fn merge_report(task: &mut TaskRecord, report: TaskStateReport) -> bool {
    let before = task.clone();
    if report.last_status > task.last_status {
        task.last_status = report.last_status;
    }
    for c in report.containers {
        if let Some(container) = task.containers.iter_mut().find(|x| x.name == c.name) {
            merge_container(container, c);
        }
    }
    if let Some(net) = report.network {
        task.network = Some(TaskNetwork {
            netns: net.netns,
            subnet: net.subnet,
            mac_address: net.mac_address,
            private_ipv4_address: net.private_ipv4_address,
        });
    }
    let times = &mut task.times;
    fill(&mut times.pull_started_at, report.pull_started_at);
    fill(&mut times.pull_stopped_at, report.pull_stopped_at);
    fill(&mut times.started_at, report.started_at);
    fill(&mut times.stopping_at, report.stopping_at);
    fill(&mut times.execution_stopped_at, report.execution_stopped_at);
    fill(&mut times.stopped_at, report.stopped_at);
    if task.stop_code.is_none() {
        if let Some(code) = report.stop_code {
            task.stop_code = Some(code);
            if report.stopped_reason.is_some() {
                task.stopped_reason = report.stopped_reason;
            }
        }
    }
    // UNKNOWN never replaces a verdict: a restarted agent starts its
    // checks over (UNKNOWN until the first verdict), while in ECS a
    // container's health never goes back to UNKNOWN.
    if report.health_status != HealthStatus::Unknown {
        task.health = report.health_status;
    }
    if task.last_status >= TaskStatus::Deactivating {
        // A task that stops on its own is no longer wanted running (ECS).
        task.desired_status = TaskStatus::Stopped;
    }
    *task != before
}

fn merge_container(container: &mut ContainerRecord, c: ContainerStateReport) {
    // A STOPPED container's exit code and reason are its history, kept for
    // the retention: a later report (an agent that restarted and lost the
    // container, a resent older one) fills a gap but never rewrites them.
    let settled = container.last_status == ContainerStatus::Stopped;
    if c.last_status > container.last_status {
        container.last_status = c.last_status;
    }
    if c.exit_code.is_some() && !(settled && container.exit_code.is_some()) {
        container.exit_code = c.exit_code;
    }
    container.restart_count = container.restart_count.max(c.restart_count);
    if c.reason.is_some() && !(settled && container.reason.is_some()) {
        container.reason = c.reason;
    }
    if c.runtime_id.is_some() {
        container.runtime_id = c.runtime_id;
    }
    if c.image_digest.is_some() {
        container.image_digest = c.image_digest;
    }
    if c.health_status != HealthStatus::Unknown {
        container.health = c.health_status;
    }
    // Output and exit code belong to one check: they change together.
    if c.health_output.is_some() || c.health_exit_code.is_some() {
        container.health_output = c.health_output;
        container.health_exit_code = c.health_exit_code;
    }
}

fn fill(slot: &mut Option<Timestamp>, value: Option<Timestamp>) {
    if slot.is_none() {
        *slot = value;
    }
}

impl ClusterState {
    /// At most `limit` STOPPED tasks that stopped at or before `cutoff`,
    /// oldest first (ECS keeps stopped tasks describable for a while, then
    /// forgets them). Read from the task index: a tick with nothing due
    /// costs one look at the oldest stopped task, however many are kept.
    pub fn purgeable_tasks(&self, cutoff: Timestamp, limit: usize) -> Vec<String> {
        self.task_index
            .stopped_through(cutoff)
            .take(limit)
            .map(str::to_string)
            .collect()
    }

    pub(super) fn purge_tasks(&mut self, task_ids: &[String]) -> Outcome {
        let mut purged = 0;
        for id in task_ids {
            let stopped = self.tasks.get(id).is_some_and(TaskRecord::is_stopped);
            if stopped && self.remove_task(id).is_some() {
                purged += 1;
            }
        }
        Outcome::Purged(purged)
    }
}

pub fn task_not_found(id: &str) -> ApiError {
    ApiError::field(
        Exception::InvalidParameterException,
        "task",
        format!("The referenced task was not found: {id}"),
    )
}

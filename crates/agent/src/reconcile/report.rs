//! A task's report, built from what is observed now and what was reported
//! before: statuses and timestamps only move forward, and an exit code or
//! digest once reported is never dropped.

use orca_core::agent_protocol::{ContainerStateReport, TaskNetworkReport, TaskStateReport};
use orca_core::task::{ContainerStatus, StopCode, TaskStatus};
use orca_runtime::ProcessState;

use super::model::Observed;
use super::step::{Def, Task};
use crate::health::{task_health, ContainerHealth, HealthConfig, Member};

/// The reason shown on a container containerd lost track of.
pub const LOST_REASON: &str =
    "the container's exit status was lost: containerd no longer knows its process";
/// ECS's reason for a container the kernel's OOM killer ended.
pub const OOM_REASON: &str = "OutOfMemoryError: Container killed due to memory usage";

/// Where the task is, as the reconcile step derived it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Provisioning,
    Pending,
    Running,
    /// Asked to stop, waiting out the discovery TTL before any SIGTERM.
    Deactivating,
    Stopping,
    Deprovisioning,
    /// The final report (recorded before any container is removed).
    Stopped,
}

impl Phase {
    fn status(self) -> TaskStatus {
        match self {
            Phase::Provisioning => TaskStatus::Provisioning,
            Phase::Pending => TaskStatus::Pending,
            Phase::Running => TaskStatus::Running,
            Phase::Deactivating => TaskStatus::Deactivating,
            Phase::Stopping => TaskStatus::Stopping,
            Phase::Deprovisioning => TaskStatus::Deprovisioning,
            Phase::Stopped => TaskStatus::Stopped,
        }
    }

    fn stopping(self) -> bool {
        matches!(
            self,
            Phase::Stopping | Phase::Deprovisioning | Phase::Stopped
        )
    }
}

/// One container's state for the report.
fn container(
    name: &str,
    observed: Option<(&str, &Observed)>,
    phase: Phase,
    reason: Option<&String>,
    digest: Option<String>,
    before: Option<&ContainerStateReport>,
    health: Option<&ContainerHealth>,
) -> ContainerStateReport {
    let restart_count = observed
        .map(|(_, c)| c.starts.saturating_sub(1))
        .unwrap_or(0)
        .max(before.map_or(0, |b| b.restart_count));
    let (status, exit_code, why) = match observed.map(|(_, c)| &c.state) {
        None | Some(ProcessState::NotStarted) if phase.stopping() => {
            (ContainerStatus::Stopped, None, None)
        }
        None | Some(ProcessState::NotStarted) => (ContainerStatus::Pending, None, None),
        Some(ProcessState::Running { .. })
        | Some(ProcessState::Unknown)
        | Some(ProcessState::Exited {
            recorded: false, ..
        }) => (ContainerStatus::Running, None, None),
        Some(ProcessState::Exited {
            exit,
            recorded: true,
        }) => (
            ContainerStatus::Stopped,
            Some(exit.exit_code),
            exit.oom_killed.then(|| OOM_REASON.to_string()),
        ),
        Some(ProcessState::Lost) => (ContainerStatus::Stopped, None, Some(LOST_REASON.into())),
    };
    // A STOPPED container stays so, unless it has since been restarted.
    let same_run = before.is_some_and(|b| b.restart_count == restart_count);
    let status = match before.map(|b| b.last_status) {
        Some(ContainerStatus::Stopped) if same_run => ContainerStatus::Stopped,
        Some(ContainerStatus::Running) if status == ContainerStatus::Pending => {
            ContainerStatus::Running
        }
        _ => status,
    };
    ContainerStateReport {
        name: name.to_string(),
        last_status: status,
        exit_code: exit_code.or_else(|| before.and_then(|b| b.exit_code)),
        reason: reason
            .cloned()
            .or(why)
            .or_else(|| before.and_then(|b| b.reason.clone())),
        runtime_id: observed
            .map(|(id, _)| id.to_string())
            .or_else(|| before.and_then(|b| b.runtime_id.clone())),
        image_digest: digest.or_else(|| before.and_then(|b| b.image_digest.clone())),
        // The checker's latest, else what was reported (a stopped
        // container keeps its last health).
        health_status: health
            .map(|h| h.status)
            .or_else(|| before.map(|b| b.health_status))
            .unwrap_or_default(),
        health_output: match health {
            Some(h) => h.output.clone(),
            None => before.and_then(|b| b.health_output.clone()),
        },
        restart_count,
        health_exit_code: match health {
            Some(h) => h.exit_code,
            None => before.and_then(|b| b.health_exit_code),
        },
    }
}

/// The task's report in `phase`, or None when nothing names its ARN.
pub(super) fn build(
    task: &Task<'_>,
    defs: &[Def<'_>],
    phase: Phase,
    stop: Option<&(StopCode, String)>,
) -> Option<TaskStateReport> {
    let arn = task.arn()?;
    let mem = task.mem;
    let last = mem.last_report.as_ref();
    let before = |name: &str| last.and_then(|l| l.containers.iter().find(|c| c.name == name));
    let containers: Vec<ContainerStateReport> = if defs.is_empty() {
        let mut observed = task.containers.clone();
        observed.sort_by_key(|(id, c)| (c.index, id.to_string()));
        observed
            .iter()
            .map(|(id, c)| {
                container(
                    &c.name,
                    Some((id, c)),
                    phase,
                    mem.container_reasons.get(&c.name),
                    None,
                    before(&c.name),
                    mem.health.get(*id),
                )
            })
            .collect()
    } else {
        defs.iter()
            .map(|d| {
                let mut report = container(
                    &d.def.name,
                    d.observed.map(|c| (d.id.as_str(), c)),
                    phase,
                    mem.container_reasons.get(&d.def.name),
                    mem.images.get(&d.index).map(|i| i.digest.clone()),
                    before(&d.def.name),
                    mem.health.get(&d.id),
                );
                // About to start again in place: it stays RUNNING for the
                // controller, as ECS shows a container its restartPolicy
                // restarts.
                if !phase.stopping() && task.restarts(d) {
                    report.last_status = ContainerStatus::Running;
                }
                report
            })
            .collect()
    };
    let health_status = if defs.is_empty() {
        last.map(|l| l.health_status).unwrap_or_default()
    } else {
        task_health(defs.iter().zip(&containers).map(|(d, c)| {
            Member {
                essential: d.def.essential.unwrap_or(true),
                has_check: d
                    .def
                    .health_check
                    .as_ref()
                    .and_then(HealthConfig::from_definition)
                    .is_some(),
                status: c.health_status,
            }
        }))
    };
    let status = last
        .map(|l| l.last_status)
        .filter(|s| *s > phase.status() && *s != TaskStatus::Stopped)
        .unwrap_or(phase.status());
    let network = mem
        .network
        .as_ref()
        // `none` has no address; in `bridge` mode each container has its
        // own and, as in ECS, the task shows no interface of its own.
        .filter(|n| !n.loopback_only && n.endpoints.is_empty())
        .map(|n| TaskNetworkReport {
            private_ipv4_address: n.ip.to_string(),
            mac_address: n.mac_address.clone(),
            subnet: task.settings.task_subnet.clone(),
            netns: n
                .netns_path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        })
        .or_else(|| last.and_then(|l| l.network.clone()));
    let wall = task.wall;
    let running = phase == Phase::Running;
    let settled = matches!(phase, Phase::Deprovisioning | Phase::Stopped);
    let (stop_code, stopped_reason) = match stop {
        Some((code, reason)) => (Some(*code), Some(reason.clone()).filter(|r| !r.is_empty())),
        None => (
            last.and_then(|l| l.stop_code),
            last.and_then(|l| l.stopped_reason.clone()),
        ),
    };
    Some(TaskStateReport {
        task_arn: arn,
        last_status: status,
        containers,
        network,
        pull_started_at: mem
            .pull_started_at
            .or_else(|| last.and_then(|l| l.pull_started_at)),
        pull_stopped_at: mem
            .pull_stopped_at
            .or_else(|| last.and_then(|l| l.pull_stopped_at)),
        started_at: last.and_then(|l| l.started_at).or(running.then_some(wall)),
        stopping_at: last
            .and_then(|l| l.stopping_at)
            .or(phase.stopping().then_some(wall)),
        execution_stopped_at: last
            .and_then(|l| l.execution_stopped_at)
            .or(settled.then_some(wall)),
        stopped_at: (phase == Phase::Stopped).then_some(wall),
        stop_code,
        stopped_reason,
        health_status,
    })
}

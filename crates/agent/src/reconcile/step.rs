//! The reconcile step: a pure function from the [`World`] to the
//! [`Action`]s that bring it closer to what the controller wants.
//!
//! Per task, in order:
//! 1. **Run or stop.** A task runs while it is assigned with desired
//!    RUNNING, has no final report on disk, no stop decision (a failure to
//!    start) and no essential container that exited. Otherwise it stops.
//! 2. **Running:** network, then pulls (overlapping), then the task's
//!    volumes and /etc files (`crate::volumes`; one that cannot be made
//!    fails the task with `CannotCreateVolumeError`), then every container
//!    created, then started in dependsOn order; exits of non-essential
//!    containers are reaped (made final).
//! 3. **Stopping:** pulls are abandoned; operations in flight finish;
//!    a task whose assignment carries a deregistration delay (a
//!    discoverable service's) and that was asked to stop while containers
//!    run reports DEACTIVATING and waits the delay out first, so no
//!    resolver still hands out its address (an essential exit or a failure
//!    to start does not wait); then running containers get SIGTERM, then SIGKILL after their stopTimeout
//!    (and again every `kill_resend`); exits are reaped. Once no container
//!    runs and every exit is final, the final report is recorded on disk.
//! 4. **Cleanup** (only after the final report is on disk): containers are
//!    removed, then the task's own volumes and /etc files, then the
//!    network torn down, then the final report is sent;
//!    once the controller no longer assigns the task, it is forgotten.
//!
//! So a container is started at most once (only one that never started is
//! ever started), a task with a final report never runs again, every exit
//! code reported is the one containerd recorded, and the network goes only
//! after the containers that used it.

use std::collections::BTreeSet;
use std::time::Duration;

use orca_core::agent_protocol::{TaskAssignment, TaskStateReport};
use orca_core::task::HostPortBinding;
use orca_core::task::{effective_container, HealthStatus, StopCode, TaskStatus};
use orca_core::task_definition::{ContainerDefinition, NetworkMode, Timestamp, TransportProtocol};
use orca_runtime::{ProcessState, StopSignal};
use tokio::time::Instant;

use super::model::{Action, NetworkRequest, Observed, Op, Settings, TaskMemory, World};
use super::report::{self, Phase};
use crate::health::HealthConfig;
use crate::runner::order::{readiness, Progress, Readiness};
use crate::runner::spec;
use crate::runner::{log_limits, restart};
use crate::volumes;

/// ECS's longest stopTimeout.
pub const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// ECS's stoppedReason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

/// What one reconcile step decided, and when to look again at the latest
/// (a stopTimeout running out, a back-off ending).
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub actions: Vec<Action>,
    pub wake_at: Option<Instant>,
}

impl Plan {
    fn wake(&mut self, at: Instant) {
        self.wake_at = Some(self.wake_at.map_or(at, |w| w.min(at)));
    }
}

/// Decides what to do next. `now` drives deadlines, `wall` the timestamps
/// of reports. Nothing is decided before the controller's first list of
/// assignments has arrived in this process.
pub fn reconcile(world: &World, settings: &Settings, now: Instant, wall: Timestamp) -> Plan {
    let mut plan = Plan::default();
    let Some(assignments) = &world.assignments else {
        return plan;
    };
    let mut ids: BTreeSet<&str> = assignments.keys().map(String::as_str).collect();
    ids.extend(
        world
            .containers
            .values()
            .filter_map(|c| c.task_id.as_deref()),
    );
    ids.extend(world.networks.iter().map(String::as_str));
    ids.extend(world.task_dirs.iter().map(String::as_str));
    ids.extend(world.finished.keys().map(String::as_str));
    ids.extend(world.tasks.keys().map(String::as_str));
    let empty = TaskMemory::default();
    for id in ids {
        let task = Task {
            id,
            assignment: assignments.get(id),
            finished: world.finished.get(id),
            mem: world.tasks.get(id).unwrap_or(&empty),
            containers: world
                .containers
                .iter()
                .filter(|(_, c)| c.task_id.as_deref() == Some(id))
                .map(|(cid, c)| (cid.as_str(), c))
                .collect(),
            holds_network: world.networks.contains(id)
                || world.tasks.get(id).is_some_and(|m| m.network.is_some()),
            holds_files: world.task_dirs.contains(id),
            settings,
            now,
            wall,
        };
        task.plan(&mut plan);
    }
    for m in world.tasks.values() {
        for (at, _) in m.retry.values() {
            if *at > now {
                plan.wake(*at);
            }
        }
    }
    plan
}

/// One container the task definition asks for.
pub(super) struct Def<'a> {
    pub index: usize,
    pub id: String,
    pub def: ContainerDefinition,
    pub observed: Option<&'a Observed>,
}

/// Everything known about one task.
pub(super) struct Task<'a> {
    pub id: &'a str,
    pub assignment: Option<&'a TaskAssignment>,
    pub finished: Option<&'a TaskStateReport>,
    pub mem: &'a TaskMemory,
    /// Its containers in the runtime, by id.
    pub containers: Vec<(&'a str, &'a Observed)>,
    pub holds_network: bool,
    /// Volumes or /etc files of the task's are on the node.
    pub holds_files: bool,
    pub settings: &'a Settings,
    pub now: Instant,
    pub wall: Timestamp,
}

impl<'a> Task<'a> {
    /// The containers the assignment asks for (none when unassigned).
    pub(super) fn defs(&self) -> Vec<Def<'a>> {
        let Some(a) = self.assignment else {
            return Vec::new();
        };
        a.task_definition
            .spec
            .container_definitions
            .iter()
            .enumerate()
            .map(|(index, d)| {
                let id = spec::runtime_id(&a.task_id, index, &d.name);
                let observed = self
                    .containers
                    .iter()
                    .find(|(cid, _)| *cid == id)
                    .map(|(_, c)| *c);
                Def {
                    index,
                    def: effective_container(d, &a.overrides),
                    id,
                    observed,
                }
            })
            .collect()
    }

    /// The task's ARN, if anything names it.
    pub(super) fn arn(&self) -> Option<String> {
        self.assignment
            .map(|a| a.task_arn.clone())
            .or_else(|| self.finished.map(|f| f.task_arn.clone()))
            .or_else(|| self.containers.iter().find_map(|(_, c)| c.task_arn.clone()))
    }

    fn stop_timeout_of(&self, def: Option<&ContainerDefinition>, c: &Observed) -> Duration {
        def.and_then(|d| d.stop_timeout)
            .map(|s| Duration::from_secs(u64::from(s)))
            .or(c.stop_timeout)
            .unwrap_or(self.settings.default_stop_timeout)
            .min(MAX_STOP_TIMEOUT)
    }

    /// The essential container that exited (or was lost), if any. A
    /// container that looks lost, or exited without a recorded status,
    /// while an operation on it is in flight is not judged yet: a start
    /// replacing a task that was created but never started deletes that
    /// task first (a relist then sees no task, and containerd reports the
    /// deleted one's exit), and the start's result says more.
    fn essential_exit(&self, defs: &[Def<'_>]) -> bool {
        defs.iter().any(|d| {
            let in_flight = || self.mem.in_flight.contains(&Op::Container(d.id.clone()));
            d.def.essential.unwrap_or(true)
                && !self.restarts(d)
                && d.observed.is_some_and(|c| match c.state {
                    ProcessState::Exited { recorded: true, .. } => true,
                    ProcessState::Exited {
                        recorded: false, ..
                    }
                    | ProcessState::Lost => !in_flight(),
                    _ => false,
                })
        })
    }

    /// Whether `d`'s container exited and its restartPolicy starts it
    /// again in place (its exit then stops nothing).
    pub(super) fn restarts(&self, d: &Def<'_>) -> bool {
        d.observed.is_some_and(|c| match &c.state {
            ProcessState::Exited { exit, .. } => restart::restarts(
                &d.def,
                exit,
                c.started_at,
                self.settings.max_restart_attempt_period,
            ),
            _ => false,
        })
    }

    /// Why the task stops, if it does: the decision already taken, else a
    /// new one (returned with `true` when it is new).
    fn stop_reason(&self, defs: &[Def<'_>]) -> Option<((StopCode, String), bool)> {
        if let Some(stop) = &self.mem.stop {
            return Some((stop.clone(), false));
        }
        let a = self.assignment?;
        if self.essential_exit(defs) {
            return Some((
                (
                    StopCode::EssentialContainerExited,
                    ESSENTIAL_EXITED.to_string(),
                ),
                true,
            ));
        }
        // Secrets the leader could not resolve: the task never starts (one
        // that started before its secret went keeps running).
        // Names unfit for paths, or privileges the cluster does not allow:
        // refused before anything is made of it.
        if let Some(reason) = crate::runner::admit::refusal(a) {
            if a.desired_status == TaskStatus::Running && defs.iter().all(|d| d.observed.is_none())
            {
                return Some(((StopCode::TaskFailedToStart, reason), true));
            }
        }
        if let Some(reason) = &a.secrets_error {
            if a.desired_status == TaskStatus::Running && defs.iter().all(|d| d.observed.is_none())
            {
                return Some(((StopCode::TaskFailedToStart, reason.clone()), true));
            }
        }
        if a.desired_status == TaskStatus::Stopped {
            return Some((
                (
                    a.stop_code.unwrap_or(StopCode::UserInitiated),
                    a.stopped_reason.clone().unwrap_or_default(),
                ),
                true,
            ));
        }
        None
    }

    fn plan(&self, plan: &mut Plan) {
        let defs = self.defs();
        let reason = self.stop_reason(&defs);
        if let Some((stop, true)) = &reason {
            if self.finished.is_none() {
                plan.actions.push(Action::DecideStop {
                    task_id: self.id.to_string(),
                    code: stop.0,
                    reason: stop.1.clone(),
                });
            }
        }
        let stopping = self.finished.is_some() || self.assignment.is_none() || reason.is_some();
        if stopping {
            self.stop(&defs, reason.map(|(s, _)| s), plan);
        } else {
            self.run(&defs, plan);
        }
    }

    fn push(&self, plan: &mut Plan, action: Action) {
        plan.actions.push(action);
    }

    /// Queues the task's report if it changed.
    fn report(&self, plan: &mut Plan, report: Option<TaskStateReport>) {
        if let Some(r) = report {
            if self.mem.last_report.as_ref() != Some(&r) {
                self.push(plan, Action::Report(Box::new(r)));
            }
        }
    }

    fn run(&self, defs: &[Def<'_>], plan: &mut Plan) {
        let (mem, now, task_id) = (self.mem, self.now, self.id.to_string());
        let Some(a) = self.assignment else { return };
        // Host mode shares the node's network: no namespace of its own.
        let mode = a.task_definition.spec.effective_network_mode();
        let host_mode = mode == NetworkMode::Host;
        if !host_mode && mem.network.is_none() && mem.ready(&Op::Network, now) {
            let request = match mode {
                NetworkMode::None => NetworkRequest::Loopback,
                NetworkMode::Bridge => NetworkRequest::Bridge {
                    containers: defs.iter().map(|d| d.def.name.clone()).collect(),
                    published: a.host_ports.iter().map(published_port).collect(),
                },
                _ => NetworkRequest::Task,
            };
            self.push(
                plan,
                Action::SetupNetwork {
                    task_id: task_id.clone(),
                    request,
                },
            );
        }
        for d in defs {
            if d.observed.is_none()
                && !mem.images.contains_key(&d.index)
                && mem.ready(&Op::Pull(d.index), now)
            {
                self.push(
                    plan,
                    Action::Pull {
                        task_id: task_id.clone(),
                        index: d.index,
                        image: d.def.image.clone(),
                    },
                );
            }
        }
        let net = match &mem.network {
            Some(net) => Some(net),
            None if host_mode => None,
            None => {
                self.report(plan, report::build(self, defs, Phase::Provisioning, None));
                return;
            }
        };
        let to_create = defs.iter().any(|d| d.observed.is_none());
        if to_create && mem.mounts.is_none() && mem.ready(&Op::Prepare, now) {
            let containers: Vec<ContainerDefinition> = defs.iter().map(|d| d.def.clone()).collect();
            let spec = &a.task_definition.spec;
            let setup = volumes::plan::plan(
                &volumes::plan::TaskInput {
                    task_id: &a.task_id,
                    mode: spec.effective_network_mode(),
                    volumes: spec.volumes.as_deref().unwrap_or_default(),
                    containers: &containers,
                    network: net,
                    secrets: &a.secrets,
                },
                &self.settings.volumes,
            );
            self.push(
                plan,
                Action::PrepareTask {
                    task_id: task_id.clone(),
                    setup: setup.map(Box::new),
                },
            );
        }
        let mut all_created = true;
        for d in defs {
            if d.observed.is_some() {
                continue;
            }
            all_created = false;
            let Some(image) = mem.images.get(&d.index) else {
                continue;
            };
            let Some(mounts) = &mem.mounts else {
                continue;
            };
            if !mem.ready(&Op::Container(d.id.clone()), now) {
                continue;
            }
            let spec = spec::container_spec(spec::SpecInput {
                id: d.id.clone(),
                task_arn: &a.task_arn,
                task_id: &a.task_id,
                index: d.index,
                stop_timeout: self.stop_timeout_of(Some(&d.def), &observed_placeholder()),
                def: &d.def,
                image: image.clone(),
                netns_path: net.map(|n| n.netns_of(&d.def.name).to_path_buf()),
                log_path: spec::log_path(&self.settings.logs_dir, &a.task_id, &d.def.name),
                log_rotation: log_limits::rotation(&d.def, self.settings.log_rotation),
                mounts: mounts.get(&d.def.name).cloned().unwrap_or_default(),
                secrets: &a.secrets,
                pids_limit: self.settings.pids_limit,
                privileges_allowed: a.privileges_allowed,
            });
            self.push(
                plan,
                Action::Create {
                    task_id: task_id.clone(),
                    spec: Box::new(spec),
                },
            );
        }
        let mut all_started = all_created;
        if all_created {
            let progress_of = |name: &str| {
                let Some(d) = defs.iter().find(|d| d.def.name == name) else {
                    return Progress::Failed;
                };
                let has_check = d
                    .def
                    .health_check
                    .as_ref()
                    .and_then(HealthConfig::from_definition)
                    .is_some();
                let health = has_check.then(|| {
                    mem.health
                        .get(&d.id)
                        .map_or(HealthStatus::Unknown, |h| h.status)
                });
                d.observed.map_or(Progress::Failed, |c| progress(c, health))
            };
            for d in defs {
                let Some(c) = d.observed else { continue };
                if c.state != ProcessState::NotStarted {
                    continue;
                }
                all_started = false;
                if !mem.ready(&Op::Container(d.id.clone()), now) {
                    continue;
                }
                let deps = d.def.depends_on.clone().unwrap_or_default();
                match readiness(&deps, progress_of) {
                    Readiness::Wait => {}
                    Readiness::Ready => self.push(
                        plan,
                        Action::Start {
                            task_id: task_id.clone(),
                            id: d.id.clone(),
                        },
                    ),
                    Readiness::Never(why) => self.push(
                        plan,
                        Action::DecideStop {
                            task_id: task_id.clone(),
                            code: StopCode::TaskFailedToStart,
                            reason: why,
                        },
                    ),
                }
            }
        }
        // Restarts in place, once the exit is recorded (reaped below).
        for d in defs {
            let reaped = d
                .observed
                .is_some_and(|c| matches!(c.state, ProcessState::Exited { recorded: true, .. }));
            if reaped && self.restarts(d) && mem.ready(&Op::Container(d.id.clone()), now) {
                self.push(
                    plan,
                    Action::Start {
                        task_id: task_id.clone(),
                        id: d.id.clone(),
                    },
                );
            }
        }
        for d in defs {
            let unreaped = d.observed.is_some_and(|c| {
                matches!(
                    c.state,
                    ProcessState::Exited {
                        recorded: false,
                        ..
                    }
                )
            });
            if unreaped && mem.ready(&Op::Container(d.id.clone()), now) {
                self.push(
                    plan,
                    Action::Reap {
                        task_id: task_id.clone(),
                        id: d.id.clone(),
                    },
                );
            }
        }
        let phase = if all_started {
            Phase::Running
        } else {
            Phase::Pending
        };
        self.report(plan, report::build(self, defs, phase, None));
    }

    fn stop(&self, defs: &[Def<'_>], stop: Option<(StopCode, String)>, plan: &mut Plan) {
        if self.finished.is_some() {
            self.cleanup(plan);
            return;
        }
        let (mem, now, task_id) = (self.mem, self.now, self.id.to_string());
        if mem.in_flight.iter().any(|op| matches!(op, Op::Pull(_))) {
            self.push(
                plan,
                Action::CancelPulls {
                    task_id: task_id.clone(),
                },
            );
        }
        if let Some(until) = self.deactivating_until(stop.as_ref()) {
            if now < until {
                self.report(
                    plan,
                    report::build(self, defs, Phase::Deactivating, stop.as_ref()),
                );
                plan.wake(until);
                return;
            }
        }
        // Operations that create things (network, containers) finish
        // first: what they made is then stopped and removed like the rest.
        let mut settled = !mem.in_flight.iter().any(|op| {
            matches!(
                op,
                Op::Network | Op::Container(_) | Op::Record | Op::Prepare
            )
        });
        for (cid, c) in &self.containers {
            let op = Op::Container(cid.to_string());
            match &c.state {
                ProcessState::NotStarted
                | ProcessState::Lost
                | ProcessState::Exited { recorded: true, .. } => continue,
                _ => settled = false,
            }
            if mem.in_flight.contains(&op) {
                continue;
            }
            match &c.state {
                ProcessState::Running { .. } => {
                    let def = defs.iter().find(|d| d.id == *cid).map(|d| &d.def);
                    let timeout = self.stop_timeout_of(def, c);
                    self.signal(plan, cid, timeout);
                }
                ProcessState::Exited {
                    recorded: false, ..
                } if mem.ready(&op, now) => self.push(
                    plan,
                    Action::Reap {
                        task_id: task_id.clone(),
                        id: cid.to_string(),
                    },
                ),
                _ => {}
            }
        }
        let stop = stop.as_ref();
        if !settled {
            self.report(plan, report::build(self, defs, Phase::Stopping, stop));
            return;
        }
        if self.arn().is_none() {
            // Leftovers no record names (a namespace without containers):
            // nothing to report, only to clean.
            self.cleanup(plan);
            return;
        }
        self.report(plan, report::build(self, defs, Phase::Deprovisioning, stop));
        if mem.ready(&Op::Record, now) {
            if let Some(report) = report::build(self, defs, Phase::Stopped, stop) {
                self.push(
                    plan,
                    Action::RecordFinished {
                        task_id,
                        report: Box::new(report),
                    },
                );
            }
        }
    }

    /// Until when the task stays DEACTIVATING before any container gets
    /// SIGTERM: its assignment's deregistration delay after the stop was
    /// decided, when it was asked to stop (not an essential exit or a
    /// failure to start) while a container runs. None: no wait.
    fn deactivating_until(&self, stop: Option<&(StopCode, String)>) -> Option<Instant> {
        let delay = self.assignment?.deregistration_delay_ms?;
        let (code, _) = stop?;
        if matches!(
            code,
            StopCode::EssentialContainerExited | StopCode::TaskFailedToStart
        ) {
            return None;
        }
        let runs = self
            .containers
            .iter()
            .any(|(_, c)| matches!(c.state, ProcessState::Running { .. }));
        if !runs || !self.mem.term_sent.is_empty() {
            return None;
        }
        // Decided in this very step: the wait starts now.
        let since = self.mem.stop_decided_at.unwrap_or(self.now);
        Some(since + Duration::from_millis(delay))
    }

    /// SIGTERM, then SIGKILL once `timeout` has passed since, resent every
    /// `kill_resend` while the process lives.
    fn signal(&self, plan: &mut Plan, cid: &str, timeout: Duration) {
        let (mem, now) = (self.mem, self.now);
        let op = Op::Container(cid.to_string());
        let send = |plan: &mut Plan, signal| {
            plan.actions.push(Action::Signal {
                task_id: self.id.to_string(),
                id: cid.to_string(),
                signal,
            })
        };
        let Some(term) = mem.term_sent.get(cid) else {
            if mem.ready(&op, now) {
                send(plan, StopSignal::Term);
            }
            return;
        };
        let kill_at = *term + timeout;
        if now < kill_at {
            plan.wake(kill_at);
            return;
        }
        let next = mem
            .kill_sent
            .get(cid)
            .map(|k| *k + self.settings.kill_resend);
        match next {
            Some(at) if now < at => plan.wake(at),
            _ if mem.ready(&op, now) => send(plan, StopSignal::Kill),
            _ => {}
        }
    }

    /// After the final report is on disk (or for leftovers no record
    /// names): containers removed, then the network, then the report sent
    /// and, once unassigned, the task forgotten.
    fn cleanup(&self, plan: &mut Plan) {
        let (mem, now, task_id) = (self.mem, self.now, self.id.to_string());
        for (cid, _) in &self.containers {
            if mem.ready(&Op::Container(cid.to_string()), now) {
                self.push(
                    plan,
                    Action::Remove {
                        task_id: task_id.clone(),
                        id: cid.to_string(),
                    },
                );
            }
        }
        let busy = mem.in_flight.iter().any(|op| {
            matches!(
                op,
                Op::Container(_) | Op::Network | Op::Teardown | Op::Prepare | Op::RemoveFiles
            )
        });
        if !self.containers.is_empty() || busy {
            return;
        }
        if self.holds_files {
            if mem.ready(&Op::RemoveFiles, now) {
                self.push(
                    plan,
                    Action::RemoveTaskFiles {
                        task_id: task_id.clone(),
                    },
                );
            }
            return;
        }
        if self.holds_network {
            if mem.ready(&Op::Teardown, now) {
                self.push(plan, Action::TeardownNetwork { task_id });
            }
            return;
        }
        if let Some(fin) = self.finished {
            if mem.last_report.as_ref() != Some(fin) {
                self.push(plan, Action::Report(Box::new(fin.clone())));
            }
        }
        if self.assignment.is_none() {
            self.push(plan, Action::Forget { task_id });
        }
    }
}

/// How far a container got, for dependsOn; `health` is None without a
/// health check.
fn progress(c: &Observed, health: Option<HealthStatus>) -> Progress {
    match &c.state {
        ProcessState::NotStarted => Progress::NotStarted,
        ProcessState::Running { .. } | ProcessState::Unknown => Progress::Running(health),
        ProcessState::Exited { exit, .. } => Progress::Exited(exit.exit_code),
        ProcessState::Lost => Progress::Exited(-1),
    }
}

/// An observation with no labels, for a container not created yet.
fn observed_placeholder() -> Observed {
    Observed {
        task_id: None,
        task_arn: None,
        name: String::new(),
        index: None,
        stop_timeout: None,
        image: String::new(),
        state: ProcessState::NotStarted,
        starts: 0,
        started_at: None,
    }
}

/// A host port the leader chose, as the network layer publishes it.
fn published_port(b: &HostPortBinding) -> orca_net::PublishedPort {
    orca_net::PublishedPort {
        container: b.container_name.clone(),
        protocol: match b.protocol {
            TransportProtocol::Tcp => orca_net::rules::PortProtocol::Tcp,
            TransportProtocol::Udp => orca_net::rules::PortProtocol::Udp,
        },
        host_port: b.host_port,
        container_port: b.container_port,
    }
}

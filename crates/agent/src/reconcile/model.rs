//! What the reconcile step reasons about: the world as the agent sees it
//! ([`World`]: assignments, observed containers, held networks, final
//! reports on disk, and what this process remembers of each task), the
//! [`Action`]s it decides and the [`Completion`]s slow operations send back.
//!
//! [`World::dispatched`] and [`World::complete`] are the only changes to a
//! task's memory: both are deterministic and do no I/O, so the whole
//! decision cycle (observe → reconcile → dispatch → complete) is tested
//! with plain data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use orca_core::agent_protocol::{TaskAssignment, TaskStateReport};
use orca_core::task::StopCode;
use orca_net::TaskNetwork;
use orca_runtime::{
    ContainerExit, ContainerListing, ContainerSpec, ImageInfo, MountSpec, ProcessState,
};
use orca_runtime::{RuntimeError, StopSignal};
use tokio::time::Instant;

use crate::health::ContainerHealth;
use crate::runner::spec::{
    CONTAINER_INDEX_LABEL, CONTAINER_NAME_LABEL, STOP_TIMEOUT_LABEL, TASK_ARN_LABEL, TASK_ID_LABEL,
};
use crate::volumes::{TaskSetup, VolumeError, VolumeSettings};

/// First pause before an operation that failed is tried again; doubled up
/// to [`MAX_RETRY`].
pub const MIN_RETRY: Duration = Duration::from_millis(200);
pub const MAX_RETRY: Duration = Duration::from_secs(10);

/// The knobs of the reconcile step.
#[derive(Debug, Clone)]
pub struct Settings {
    /// SIGTERM → SIGKILL grace when a container names no stopTimeout.
    pub default_stop_timeout: Duration,
    /// SIGKILL is sent again this often while a container still runs.
    pub kill_resend: Duration,
    /// The node's task subnet, reported as the attachment's subnetId.
    pub task_subnet: String,
    /// Container logs live under here, one directory per task.
    pub logs_dir: PathBuf,
    /// Where task volumes and /etc files go, the host paths tasks may
    /// bind, and the resolvers containers get.
    pub volumes: VolumeSettings,
    /// The longest restartAttemptPeriod honoured (None: each definition's,
    /// ECS's 60–1800 s, 300 s by default).
    pub max_restart_attempt_period: Option<Duration>,
    /// Log rotation unless a container's json-file options say otherwise
    /// (None: logs grow without bound).
    pub log_rotation: Option<orca_runtime::log_rotation::LogRotation>,
    /// Every container's pids limit (None: none).
    pub pids_limit: Option<u64>,
}

/// One container as the runtime listed it, with what its labels say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observed {
    pub task_id: Option<String>,
    pub task_arn: Option<String>,
    /// Its container definition's name.
    pub name: String,
    /// Its position in the task definition, when labelled.
    pub index: Option<usize>,
    /// SIGTERM → SIGKILL grace it was created with (for a container whose
    /// task is no longer assigned).
    pub stop_timeout: Option<Duration>,
    pub image: String,
    pub state: ProcessState,
    /// How many times its process was started (its restart count is one
    /// less), and when its latest run began.
    pub starts: u32,
    pub started_at: Option<std::time::SystemTime>,
}

impl Observed {
    /// Reads the labels the agent put on its containers. A container
    /// created by an older agent has no task id label: its ARN's last part
    /// is the id.
    pub fn from_listing(listing: &ContainerListing) -> Observed {
        let label = |k: &str| listing.labels.get(k).cloned();
        let task_arn = label(TASK_ARN_LABEL);
        let task_id = label(TASK_ID_LABEL).or_else(|| {
            task_arn
                .as_deref()
                .and_then(|a| a.rsplit('/').next())
                .map(str::to_string)
        });
        Observed {
            task_id,
            task_arn,
            name: label(CONTAINER_NAME_LABEL).unwrap_or_else(|| listing.id.clone()),
            index: label(CONTAINER_INDEX_LABEL).and_then(|v| v.parse().ok()),
            stop_timeout: label(STOP_TIMEOUT_LABEL)
                .and_then(|v| v.parse().ok())
                .map(Duration::from_secs),
            image: listing.image.clone(),
            state: listing.state.clone(),
            starts: listing.starts,
            started_at: listing.started_at,
        }
    }

    /// Observations ordered in time: a later run (more starts) is newer
    /// whatever its state; within one run states only move forward.
    fn progress(&self) -> (u32, u8) {
        (self.starts, self.rank())
    }

    /// How far along a container is, for merging an observation with an
    /// operation's result: states only move forward within one container.
    fn rank(&self) -> u8 {
        match &self.state {
            ProcessState::Unknown => 0,
            ProcessState::NotStarted => 1,
            ProcessState::Running { .. } => 2,
            ProcessState::Exited {
                recorded: false, ..
            }
            | ProcessState::Lost => 3,
            ProcessState::Exited { recorded: true, .. } => 4,
        }
    }
}

/// One operation in flight for a task: at most one of each at a time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    Network,
    /// The pull for container `index`.
    Pull(usize),
    /// Create, start, signal, reap or remove of one container (by id).
    Container(String),
    /// Writing the final report.
    Record,
    Teardown,
    /// Making the task's volumes and /etc files.
    Prepare,
    /// Removing them.
    RemoveFiles,
}

/// What this process remembers of one task. Lost with the process; a
/// restarted agent rebuilds what matters from containerd, the kernel and
/// its disk, so nothing here is needed for correctness after a crash.
#[derive(Debug, Clone, Default)]
pub struct TaskMemory {
    /// Operations dispatched and not yet completed.
    pub in_flight: BTreeSet<Op>,
    /// Operations that failed, not to be tried again before then, with the
    /// pause that follows the next failure.
    pub retry: BTreeMap<Op, (Instant, Duration)>,
    /// The task's network, once set up (or found) in this process.
    pub network: Option<TaskNetwork>,
    /// Each container's mounts by name, once the task's volumes and /etc
    /// files are made in this process (containers are created only then).
    pub mounts: Option<BTreeMap<String, Vec<MountSpec>>>,
    /// Images pulled for the task, by container index.
    pub images: BTreeMap<usize, ImageInfo>,
    pub pull_started_at: Option<orca_core::task_definition::Timestamp>,
    pub pull_stopped_at: Option<orca_core::task_definition::Timestamp>,
    /// Why the task stops, once decided (the first decision stays).
    pub stop: Option<(StopCode, String)>,
    /// When this process decided the task stops (dispatching DecideStop):
    /// a discoverable task's DEACTIVATING wait is measured from it.
    pub stop_decided_at: Option<Instant>,
    /// Reasons shown on containers (a failed pull, create or start).
    pub container_reasons: BTreeMap<String, String>,
    /// When SIGTERM (and the last SIGKILL) went to a container, by id.
    pub term_sent: BTreeMap<String, Instant>,
    pub kill_sent: BTreeMap<String, Instant>,
    /// The last report queued for the controller.
    pub last_report: Option<TaskStateReport>,
    /// Each checked container's health as its checker last sent it, by
    /// container id (a restarted agent starts the checks over).
    pub health: BTreeMap<String, ContainerHealth>,
}

/// Everything the reconcile step looks at.
#[derive(Debug, Default)]
pub struct World {
    /// The controller's latest full list, by task id; None until the first
    /// list arrived in this process (nothing is stopped or collected before
    /// the agent knows what is wanted).
    pub assignments: Option<BTreeMap<String, TaskAssignment>>,
    /// The runtime's containers by id, from the last relist, moved forward
    /// by the operations completed since.
    pub containers: BTreeMap<String, Observed>,
    /// Task ids holding a namespace or an address.
    pub networks: BTreeSet<String>,
    /// Task ids holding volumes or /etc files on the node.
    pub task_dirs: BTreeSet<String>,
    /// Final reports on disk, by task id.
    pub finished: BTreeMap<String, TaskStateReport>,
    /// This process's memory of each task.
    pub tasks: BTreeMap<String, TaskMemory>,
}

/// The network a task asks for, by its network mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetworkRequest {
    /// `awsvpc`: one namespace and address for the whole task.
    Task,
    /// `none`: a namespace with loopback only.
    Loopback,
    /// `bridge`: a namespace and address for each container (in the task
    /// definition's order), and the host ports the leader chose for it.
    Bridge {
        containers: Vec<String>,
        published: Vec<orca_net::PublishedPort>,
    },
}

/// A decision of the reconcile step, carried out by the executor.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    SetupNetwork {
        task_id: String,
        request: NetworkRequest,
    },
    Pull {
        task_id: String,
        index: usize,
        image: String,
    },
    /// Abandon the task's pulls (it is to stop).
    CancelPulls {
        task_id: String,
    },
    Create {
        task_id: String,
        spec: Box<ContainerSpec>,
    },
    Start {
        task_id: String,
        id: String,
    },
    Signal {
        task_id: String,
        id: String,
        signal: StopSignal,
    },
    Reap {
        task_id: String,
        id: String,
    },
    Remove {
        task_id: String,
        id: String,
    },
    RecordFinished {
        task_id: String,
        report: Box<TaskStateReport>,
    },
    TeardownNetwork {
        task_id: String,
    },
    /// Make the task's volumes and /etc files, or fail the task with the
    /// planner's refusal (the executor hands it straight back).
    PrepareTask {
        task_id: String,
        setup: Result<Box<TaskSetup>, VolumeError>,
    },
    /// Remove the task's own volumes and /etc files.
    RemoveTaskFiles {
        task_id: String,
    },
    Report(Box<TaskStateReport>),
    /// Why the task stops (memory only).
    DecideStop {
        task_id: String,
        code: StopCode,
        reason: String,
    },
    /// The task is done with: its final report and memory go.
    Forget {
        task_id: String,
    },
}

/// The outcome of a slow operation, sent back to the loop.
#[derive(Debug)]
pub enum Completion {
    Network {
        task_id: String,
        result: Result<TaskNetwork, orca_net::NetworkError>,
    },
    Pulled {
        task_id: String,
        index: usize,
        result: Result<ImageInfo, RuntimeError>,
    },
    Created {
        task_id: String,
        spec: Box<ContainerSpec>,
        result: Result<(), RuntimeError>,
    },
    Started {
        task_id: String,
        id: String,
        result: Result<u32, RuntimeError>,
    },
    Signalled {
        task_id: String,
        id: String,
        signal: StopSignal,
        result: Result<(), RuntimeError>,
    },
    Reaped {
        task_id: String,
        id: String,
        result: Result<ContainerExit, RuntimeError>,
    },
    Removed {
        task_id: String,
        id: String,
        result: Result<(), RuntimeError>,
    },
    Recorded {
        task_id: String,
        report: Box<TaskStateReport>,
        result: Result<(), String>,
    },
    TornDown {
        task_id: String,
        result: Result<(), orca_net::NetworkError>,
    },
    Prepared {
        task_id: String,
        result: Result<BTreeMap<String, Vec<MountSpec>>, VolumeError>,
    },
    FilesRemoved {
        task_id: String,
        result: Result<(), String>,
    },
    /// A health checker's news about container `id` (not an operation:
    /// checkers run beside the loop, see `crate::health`).
    Health {
        task_id: String,
        id: String,
        health: ContainerHealth,
    },
}

impl TaskMemory {
    /// The operation may be dispatched: not in flight, not backing off.
    pub fn ready(&self, op: &Op, now: Instant) -> bool {
        !self.in_flight.contains(op) && self.retry.get(op).is_none_or(|(at, _)| *at <= now)
    }

    fn done(&mut self, op: &Op) {
        self.in_flight.remove(op);
    }

    fn succeeded(&mut self, op: &Op) {
        self.in_flight.remove(op);
        self.retry.remove(op);
    }

    /// Backs off before `op` is tried again.
    fn failed(&mut self, op: Op, now: Instant) {
        self.in_flight.remove(&op);
        let pause = self
            .retry
            .get(&op)
            .map_or(MIN_RETRY, |(_, p)| (*p * 2).min(MAX_RETRY));
        self.retry.insert(op, (now + pause, pause));
    }

    /// Records a failure that ends the task (TaskFailedToStart).
    fn fail(&mut self, container: Option<&str>, reason: String) {
        if let Some(name) = container {
            self.container_reasons
                .entry(name.to_string())
                .or_insert_with(|| reason.clone());
        }
        self.stop
            .get_or_insert((StopCode::TaskFailedToStart, reason));
    }
}

impl World {
    pub fn memory(&mut self, task_id: &str) -> &mut TaskMemory {
        self.tasks.entry(task_id.to_string()).or_default()
    }

    /// A fresh relist: it replaces what was observed (operations completed
    /// after it was taken are applied on top, by [`World::complete`]).
    pub fn replace_observed(
        &mut self,
        containers: &[ContainerListing],
        networks: BTreeSet<String>,
        task_dirs: BTreeSet<String>,
    ) {
        self.containers = containers
            .iter()
            .map(|l| (l.id.clone(), Observed::from_listing(l)))
            .collect();
        self.networks = networks;
        self.task_dirs = task_dirs;
    }

    /// Notes an action as dispatched.
    pub fn dispatched(
        &mut self,
        action: &Action,
        now: Instant,
        wall: orca_core::task_definition::Timestamp,
    ) {
        match action {
            Action::SetupNetwork { task_id, .. } => {
                self.memory(task_id).in_flight.insert(Op::Network);
            }
            Action::Pull { task_id, index, .. } => {
                let m = self.memory(task_id);
                m.in_flight.insert(Op::Pull(*index));
                m.pull_started_at.get_or_insert(wall);
            }
            Action::CancelPulls { task_id } => {
                self.memory(task_id)
                    .in_flight
                    .retain(|op| !matches!(op, Op::Pull(_)));
            }
            Action::Create { task_id, spec } => {
                self.memory(task_id)
                    .in_flight
                    .insert(Op::Container(spec.id.clone()));
            }
            Action::Start { task_id, id }
            | Action::Reap { task_id, id }
            | Action::Remove { task_id, id } => {
                self.memory(task_id)
                    .in_flight
                    .insert(Op::Container(id.clone()));
            }
            Action::Signal {
                task_id,
                id,
                signal,
            } => {
                let m = self.memory(task_id);
                m.in_flight.insert(Op::Container(id.clone()));
                match signal {
                    StopSignal::Term => m.term_sent.insert(id.clone(), now),
                    StopSignal::Kill => m.kill_sent.insert(id.clone(), now),
                };
            }
            Action::RecordFinished { task_id, .. } => {
                self.memory(task_id).in_flight.insert(Op::Record);
            }
            Action::TeardownNetwork { task_id } => {
                self.memory(task_id).in_flight.insert(Op::Teardown);
            }
            Action::PrepareTask { task_id, .. } => {
                self.memory(task_id).in_flight.insert(Op::Prepare);
            }
            Action::RemoveTaskFiles { task_id } => {
                self.memory(task_id).in_flight.insert(Op::RemoveFiles);
            }
            Action::Report(report) => {
                if let Some(id) = report.task_arn.rsplit('/').next() {
                    self.memory(id).last_report = Some((**report).clone());
                }
            }
            Action::DecideStop {
                task_id,
                code,
                reason,
            } => {
                let m = self.memory(task_id);
                m.stop.get_or_insert((*code, reason.clone()));
                m.stop_decided_at.get_or_insert(now);
            }
            Action::Forget { task_id } => {
                self.finished.remove(task_id);
                self.tasks.remove(task_id);
            }
        }
    }

    /// Moves an observed container forward (never back: a stale result
    /// applied after a newer relist changes nothing).
    fn observe_forward(&mut self, id: &str, observed: Observed) {
        match self.containers.get_mut(id) {
            Some(current) if current.progress() >= observed.progress() => {}
            Some(current) => {
                current.state = observed.state;
                current.starts = observed.starts;
                current.started_at = observed.started_at;
            }
            None => {
                self.containers.insert(id.to_string(), observed);
            }
        }
    }

    /// Applies an operation's outcome. Errors saying containerd could not
    /// be reached conclude nothing about the task: the operation is simply
    /// tried again later.
    pub fn complete(
        &mut self,
        completion: Completion,
        now: Instant,
        wall: orca_core::task_definition::Timestamp,
    ) {
        match completion {
            Completion::Network { task_id, result } => {
                let m = self.memory(&task_id);
                match result {
                    Ok(net) => {
                        m.succeeded(&Op::Network);
                        m.network = Some(net);
                        self.networks.insert(task_id);
                    }
                    Err(e) => {
                        m.done(&Op::Network);
                        m.fail(
                            None,
                            format!(
                                "ResourceInitializationError: unable to set up the task's network: {e}"
                            ),
                        );
                    }
                }
            }
            Completion::Pulled {
                task_id,
                index,
                result,
            } => {
                let m = self.memory(&task_id);
                // A cancelled pull's late result is dropped.
                if !m.in_flight.contains(&Op::Pull(index)) {
                    return;
                }
                match result {
                    Ok(image) => {
                        m.succeeded(&Op::Pull(index));
                        m.images.insert(index, image);
                        if !m.in_flight.iter().any(|op| matches!(op, Op::Pull(_))) {
                            m.pull_stopped_at = Some(wall);
                        }
                    }
                    Err(e) if e.is_unavailable() => m.failed(Op::Pull(index), now),
                    Err(e) => {
                        m.done(&Op::Pull(index));
                        let container = self.container_name(&task_id, index);
                        self.memory(&task_id).fail(
                            container.as_deref(),
                            format!("CannotPullContainerError: {e}"),
                        );
                    }
                }
            }
            Completion::Created {
                task_id,
                spec,
                result,
            } => {
                let op = Op::Container(spec.id.clone());
                match result {
                    Ok(()) => {
                        self.memory(&task_id).succeeded(&op);
                        let listing = ContainerListing {
                            id: spec.id.clone(),
                            labels: spec.labels.clone(),
                            image: spec.image.reference.clone(),
                            state: ProcessState::NotStarted,
                            starts: 0,
                            started_at: None,
                        };
                        self.observe_forward(&spec.id, Observed::from_listing(&listing));
                    }
                    Err(e) if e.is_unavailable() => self.memory(&task_id).failed(op, now),
                    Err(e) => {
                        let name = spec
                            .labels
                            .get(CONTAINER_NAME_LABEL)
                            .cloned()
                            .unwrap_or_default();
                        let m = self.memory(&task_id);
                        m.done(&op);
                        m.fail(Some(&name), format!("CannotCreateContainerError: {e}"));
                    }
                }
            }
            Completion::Started {
                task_id,
                id,
                result,
            } => {
                let op = Op::Container(id.clone());
                match result {
                    Ok(pid) => {
                        self.memory(&task_id).succeeded(&op);
                        if let Some(c) = self.containers.get(&id) {
                            let mut c = c.clone();
                            let lost_meanwhile = matches!(
                                c.state,
                                ProcessState::Lost
                                    | ProcessState::Exited {
                                        recorded: false,
                                        ..
                                    }
                            );
                            // A first start, or a restart in place of a
                            // reaped run, begins a new run. The runtime
                            // counts it on the container before the process
                            // starts, so a relist taken meanwhile (not
                            // started, yet counted) already shows it.
                            let counted = c.state == ProcessState::NotStarted && c.starts > 0;
                            let new_run = matches!(
                                c.state,
                                ProcessState::NotStarted
                                    | ProcessState::Exited { recorded: true, .. }
                            );
                            if new_run && !counted {
                                c.starts += 1;
                                c.started_at = u64::try_from(wall.0)
                                    .ok()
                                    .map(|ms| std::time::UNIX_EPOCH + Duration::from_millis(ms));
                            }
                            c.state = ProcessState::Running { pid };
                            if lost_meanwhile {
                                // A start that replaces a task created but
                                // never started kills and deletes it first:
                                // a relist in that moment sees it exited, or
                                // no task (lost). The start made this
                                // process; one really gone later shows at
                                // the next relist (its exit event asks for
                                // one, else the periodic one).
                                self.containers.insert(id.clone(), c);
                            } else {
                                self.observe_forward(&id, c);
                            }
                        }
                    }
                    // Started by an earlier agent process whose request
                    // went through after it died: what it does now is for
                    // the next relist to say (never "not started", which
                    // would let the task end without its exit).
                    Err(RuntimeError::AlreadyStarted { .. }) => {
                        self.memory(&task_id).failed(op, now);
                        if let Some(c) = self.containers.get_mut(&id) {
                            c.state = ProcessState::Unknown;
                        }
                    }
                    // Such a start still under way: look again shortly;
                    // one that never ends (a bundle left behind) fails the
                    // task once the back-off has grown to its longest.
                    Err(e @ RuntimeError::Busy { .. })
                        if self
                            .tasks
                            .get(&task_id)
                            .and_then(|m| m.retry.get(&op))
                            .is_none_or(|(_, pause)| *pause < MAX_RETRY) =>
                    {
                        tracing::info!(task = %task_id, container = %id, error = %e, "start deferred");
                        self.memory(&task_id).failed(op, now);
                        if let Some(c) = self.containers.get_mut(&id) {
                            c.state = ProcessState::Unknown;
                        }
                    }
                    // Unreachable, or gone meanwhile: the next relist says.
                    Err(e) if e.is_unavailable() || matches!(e, RuntimeError::NotFound { .. }) => {
                        self.memory(&task_id).failed(op, now)
                    }
                    Err(e) => {
                        let name = self.containers.get(&id).map(|c| c.name.clone());
                        let m = self.memory(&task_id);
                        m.done(&op);
                        m.fail(name.as_deref(), format!("CannotStartContainerError: {e}"));
                    }
                }
            }
            Completion::Signalled {
                task_id,
                id,
                signal,
                result,
            } => {
                let m = self.memory(&task_id);
                let op = Op::Container(id.clone());
                match result {
                    Ok(()) => m.succeeded(&op),
                    Err(e) => {
                        tracing::warn!(task = %task_id, container = %id, error = %e, ?signal, "signal failed");
                        // Not sent: send it again.
                        match signal {
                            StopSignal::Term => m.term_sent.remove(&id),
                            StopSignal::Kill => m.kill_sent.remove(&id),
                        };
                        m.failed(op, now);
                    }
                }
            }
            Completion::Reaped {
                task_id,
                id,
                result,
            } => {
                let op = Op::Container(id.clone());
                match result {
                    Ok(exit) => {
                        self.memory(&task_id).succeeded(&op);
                        if let Some(c) = self.containers.get(&id) {
                            let mut c = c.clone();
                            c.state = ProcessState::Exited {
                                exit,
                                recorded: true,
                            };
                            self.observe_forward(&id, c);
                        }
                    }
                    Err(e) => {
                        tracing::debug!(task = %task_id, container = %id, error = %e, "reap not done");
                        self.memory(&task_id).failed(op, now);
                    }
                }
            }
            Completion::Removed {
                task_id,
                id,
                result,
            } => {
                let op = Op::Container(id.clone());
                match result {
                    Ok(()) => {
                        let m = self.memory(&task_id);
                        m.succeeded(&op);
                        m.term_sent.remove(&id);
                        m.kill_sent.remove(&id);
                        self.containers.remove(&id);
                    }
                    Err(e) => {
                        tracing::warn!(task = %task_id, container = %id, error = %e, "remove failed");
                        self.memory(&task_id).failed(op, now);
                    }
                }
            }
            Completion::Recorded {
                task_id,
                report,
                result,
            } => match result {
                Ok(()) => {
                    self.memory(&task_id).succeeded(&Op::Record);
                    self.finished.insert(task_id, *report);
                }
                Err(e) => {
                    tracing::error!(task = %task_id, error = %e, "could not record the task's end");
                    self.memory(&task_id).failed(Op::Record, now);
                }
            },
            Completion::Health {
                task_id,
                id,
                health,
            } => {
                // A checker's last word about a container that is gone
                // (removed, or its task forgotten) is dropped.
                if self.containers.contains_key(&id) {
                    self.memory(&task_id).health.insert(id, health);
                }
            }
            Completion::Prepared { task_id, result } => {
                // Whatever it made before a failure is removed with the rest.
                self.task_dirs.insert(task_id.clone());
                match result {
                    Ok(mounts) => {
                        let m = self.memory(&task_id);
                        m.succeeded(&Op::Prepare);
                        m.mounts = Some(mounts);
                    }
                    Err(e) => {
                        let reason = e.reason();
                        let names: Vec<String> = self
                            .assignments
                            .as_ref()
                            .and_then(|a| a.get(&task_id))
                            .map(|a| {
                                a.task_definition
                                    .spec
                                    .container_definitions
                                    .iter()
                                    .map(|d| d.name.clone())
                                    .collect()
                            })
                            .unwrap_or_default();
                        let m = self.memory(&task_id);
                        m.done(&Op::Prepare);
                        for name in &names {
                            m.fail(Some(name), reason.clone());
                        }
                        m.fail(None, reason);
                    }
                }
            }
            Completion::FilesRemoved { task_id, result } => match result {
                Ok(()) => {
                    let m = self.memory(&task_id);
                    m.succeeded(&Op::RemoveFiles);
                    m.mounts = None;
                    self.task_dirs.remove(&task_id);
                }
                Err(e) => {
                    tracing::warn!(task = %task_id, error = %e, "removing the task's volumes failed");
                    self.memory(&task_id).failed(Op::RemoveFiles, now);
                }
            },
            Completion::TornDown { task_id, result } => match result {
                Ok(()) => {
                    let m = self.memory(&task_id);
                    m.succeeded(&Op::Teardown);
                    m.network = None;
                    self.networks.remove(&task_id);
                }
                Err(e) => {
                    tracing::warn!(task = %task_id, error = %e, "network teardown failed");
                    self.memory(&task_id).failed(Op::Teardown, now);
                }
            },
        }
    }

    /// The name of container `index` of an assigned task.
    fn container_name(&self, task_id: &str, index: usize) -> Option<String> {
        self.assignments
            .as_ref()?
            .get(task_id)?
            .task_definition
            .spec
            .container_definitions
            .get(index)
            .map(|d| d.name.clone())
    }
}

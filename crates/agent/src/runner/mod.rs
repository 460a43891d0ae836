//! One task's lifecycle on this node, owned by one actor ([`TaskRunner`]):
//! the only writer of the task's status here.
//!
//! PROVISIONING (network namespace) → PENDING (pull images, create
//! containers) → ACTIVATING → RUNNING once every container has started in
//! dependsOn order → DEACTIVATING → STOPPING (SIGTERM, SIGKILL after each
//! container's stopTimeout) → DEPROVISIONING (containers and namespace
//! removed) → STOPPED. Every change goes to the [`Reporter`] as the task's
//! full state. A container that exits is STOPPED with its exit code; an
//! essential one stops the task (EssentialContainerExited). A pull, create
//! or start failure ends the task as TaskFailedToStart with ECS's reason.

pub mod order;
pub mod spec;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use orca_core::agent_protocol::{
    ContainerStateReport, TaskAssignment, TaskNetworkReport, TaskStateReport,
};
use orca_core::task::{effective_container, ContainerStatus, StopCode, TaskStatus};
use orca_core::task_definition::{ContainerDefinition, Timestamp};
use orca_net::{NetworkConfigurator, TaskNetwork};
use orca_runtime::{ContainerExit, ContainerRuntime, ImageInfo, RuntimeError, StopSignal};
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use self::order::{readiness, Progress, Readiness};
use crate::reporter::Reporter;

/// How long a container may take to die after SIGKILL before the agent
/// gives up waiting for it.
const KILL_GRACE: Duration = Duration::from_secs(10);
/// ECS's longest stopTimeout.
const MAX_STOP_TIMEOUT: Duration = Duration::from_secs(120);
/// ECS's stoppedReason when an essential container exits.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

/// What every runner shares.
pub struct RunnerContext {
    pub runtime: Arc<dyn ContainerRuntime>,
    pub network: Arc<dyn NetworkConfigurator>,
    pub reporter: Arc<Reporter>,
    /// Container logs live under here, one directory per task.
    pub logs_dir: PathBuf,
    pub default_stop_timeout: Duration,
    /// The node's task subnet, shown as the attachment's subnetId.
    pub task_subnet: String,
    /// Final reports of tasks that ended here, kept across restarts.
    pub finished: crate::finished::FinishedTasks,
}

/// One container of the task, as this runner sees it.
struct ContainerRun {
    def: ContainerDefinition,
    id: String,
    image: Option<ImageInfo>,
    created: bool,
    progress: Progress,
    status: ContainerStatus,
    exit_code: Option<i32>,
    reason: Option<String>,
}

type ExitEvent = (usize, Result<ContainerExit, RuntimeError>);

/// The actor running one task.
pub struct TaskRunner {
    ctx: Arc<RunnerContext>,
    assignment: watch::Receiver<TaskAssignment>,
    task_arn: String,
    task_id: String,
    containers: Vec<ContainerRun>,
    status: TaskStatus,
    network: Option<TaskNetwork>,
    pull_started_at: Option<Timestamp>,
    pull_stopped_at: Option<Timestamp>,
    started_at: Option<Timestamp>,
    stopping_at: Option<Timestamp>,
    execution_stopped_at: Option<Timestamp>,
    stopped_at: Option<Timestamp>,
    stop_code: Option<StopCode>,
    stopped_reason: Option<String>,
    exits_tx: mpsc::UnboundedSender<ExitEvent>,
    exits_rx: mpsc::UnboundedReceiver<ExitEvent>,
    /// The task may have containers from before an agent restart (it was in
    /// the first assignments this agent process received): look for them.
    adopt: bool,
}

fn now() -> Timestamp {
    Timestamp(chrono::Utc::now().timestamp_millis())
}

impl TaskRunner {
    pub fn new(
        ctx: Arc<RunnerContext>,
        assignment: watch::Receiver<TaskAssignment>,
        adopt: bool,
    ) -> Self {
        let a = assignment.borrow().clone();
        let containers = a
            .task_definition
            .spec
            .container_definitions
            .iter()
            .enumerate()
            .map(|(i, def)| ContainerRun {
                def: effective_container(def, &a.overrides),
                id: spec::runtime_id(&a.task_id, i, &def.name),
                image: None,
                created: false,
                progress: Progress::NotStarted,
                status: ContainerStatus::Pending,
                exit_code: None,
                reason: None,
            })
            .collect();
        let (exits_tx, exits_rx) = mpsc::unbounded_channel();
        TaskRunner {
            ctx,
            assignment,
            task_arn: a.task_arn.clone(),
            task_id: a.task_id.clone(),
            containers,
            status: TaskStatus::Provisioning,
            network: None,
            pull_started_at: None,
            pull_stopped_at: None,
            started_at: None,
            stopping_at: None,
            execution_stopped_at: None,
            stopped_at: None,
            stop_code: None,
            stopped_reason: None,
            exits_tx,
            exits_rx,
            adopt,
        }
    }

    /// Runs the task to STOPPED.
    pub async fn run(mut self) {
        let span = tracing::info_span!("task", task = %self.task_id);
        async move {
            if !self.wants_stop() {
                self.start_and_supervise().await;
            }
            self.shut_down().await;
        }
        .instrument(span)
        .await
    }

    fn wants_stop(&self) -> bool {
        self.assignment.borrow().desired_status == TaskStatus::Stopped
    }

    /// Records why the task stops, unless a reason is already set.
    fn set_stop(&mut self, code: StopCode, reason: impl Into<String>) {
        if self.stop_code.is_none() {
            self.stop_code = Some(code);
            self.stopped_reason = Some(reason.into());
        }
    }

    fn report(&self) {
        self.ctx.reporter.update(self.state_report());
    }

    /// The task's full agent-owned state.
    fn state_report(&self) -> TaskStateReport {
        let network = self.network.as_ref().map(|n| TaskNetworkReport {
            private_ipv4_address: n.ip.to_string(),
            mac_address: n.mac_address.clone(),
            subnet: self.ctx.task_subnet.clone(),
            netns: n
                .netns_path
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default(),
        });
        TaskStateReport {
            task_arn: self.task_arn.clone(),
            last_status: self.status,
            containers: self
                .containers
                .iter()
                .map(|c| ContainerStateReport {
                    name: c.def.name.clone(),
                    last_status: c.status,
                    exit_code: c.exit_code,
                    reason: c.reason.clone(),
                    runtime_id: c.created.then(|| c.id.clone()),
                    image_digest: c.image.as_ref().map(|i| i.digest.clone()),
                })
                .collect(),
            network,
            pull_started_at: self.pull_started_at,
            pull_stopped_at: self.pull_stopped_at,
            started_at: self.started_at,
            stopping_at: self.stopping_at,
            execution_stopped_at: self.execution_stopped_at,
            stopped_at: self.stopped_at,
            stop_code: self.stop_code,
            stopped_reason: self.stopped_reason.clone(),
        }
    }

    fn set_status(&mut self, status: TaskStatus) {
        if status > self.status {
            self.status = status;
            tracing::info!(status = status.name(), "task status");
            self.report();
        }
    }

    async fn start_and_supervise(&mut self) {
        self.report();
        // Images are pulled while the namespace is made: both must be ready
        // before a container is created, and neither needs the other.
        self.pull_started_at = Some(now());
        let pulls = self.spawn_pulls();
        match self.ctx.network.setup(&self.task_id).await {
            Ok(net) => {
                tracing::info!(ip = %net.ip, "task network ready");
                self.network = Some(net);
            }
            Err(e) => {
                self.set_stop(
                    StopCode::TaskFailedToStart,
                    format!(
                        "ResourceInitializationError: unable to set up the task's network: {e}"
                    ),
                );
                return;
            }
        }
        self.set_status(TaskStatus::Pending);
        let results = match pulls.await {
            Ok(results) => results,
            Err(e) => {
                self.set_stop(
                    StopCode::TaskFailedToStart,
                    format!("CannotPullContainerError: the pull was interrupted: {e}"),
                );
                return;
            }
        };
        if !self.record_pulls(results) || !self.create_containers().await {
            return;
        }
        self.supervise().await;
    }

    /// Starts pulling every image (the runtime pulls each image once, however
    /// many containers or tasks ask for it).
    fn spawn_pulls(&self) -> tokio::task::JoinHandle<Vec<Result<ImageInfo, RuntimeError>>> {
        let runtime = self.ctx.runtime.clone();
        let images: Vec<String> = self
            .containers
            .iter()
            .map(|c| c.def.image.clone())
            .collect();
        tokio::spawn(async move {
            let pulls = images.iter().map(|image| runtime.ensure_image(image, None));
            futures::future::join_all(pulls).await
        })
    }

    /// Records the pulls' outcome; false when one failed (the task then
    /// fails to start with CannotPullContainerError).
    fn record_pulls(&mut self, results: Vec<Result<ImageInfo, RuntimeError>>) -> bool {
        self.pull_stopped_at = Some(now());
        let mut failure = None;
        for (c, result) in self.containers.iter_mut().zip(results) {
            match result {
                Ok(image) => c.image = Some(image),
                Err(e) => {
                    let reason = format!("CannotPullContainerError: {e}");
                    tracing::warn!(container = %c.def.name, %reason, "pull failed");
                    c.reason = Some(reason.clone());
                    c.progress = Progress::Failed;
                    failure.get_or_insert(reason);
                }
            }
        }
        if let Some(reason) = failure {
            self.set_stop(StopCode::TaskFailedToStart, reason);
            return false;
        }
        self.report();
        !self.wants_stop()
    }

    /// Creates the containers, adopting any that already exist (an agent
    /// restarted while its task ran).
    async fn create_containers(&mut self) -> bool {
        // Only a task this process did not start can have containers already;
        // listing is skipped for the others (it grows with the node's tasks).
        let existing = if self.adopt {
            self.ctx.runtime.list().await.unwrap_or_default()
        } else {
            Vec::new()
        };
        let netns = self.network.as_ref().map(|n| n.netns_path.clone());
        for i in 0..self.containers.len() {
            let id = self.containers[i].id.clone();
            if let Some(found) = existing.iter().find(|l| l.id == id) {
                // Made by this task before an agent restart: adopt it. One
                // that ran and exited meanwhile reports its exit through the
                // same wait as a running one.
                self.containers[i].created = true;
                tracing::info!(container = %id, running = found.running, "adopting an existing container");
                self.mark_running(i);
                continue;
            }
            let c = &self.containers[i];
            let Some(image) = c.image.clone() else {
                continue;
            };
            let log_path = spec::log_path(&self.ctx.logs_dir, &self.task_id, &c.def.name);
            let container_spec = spec::container_spec(spec::SpecInput {
                id: id.clone(),
                task_arn: &self.task_arn,
                task_id: &self.task_id,
                def: &c.def,
                image,
                netns_path: netns.clone(),
                log_path,
            });
            match self.ctx.runtime.create(&container_spec).await {
                Ok(()) => self.containers[i].created = true,
                Err(e) => {
                    let reason = format!("CannotCreateContainerError: {e}");
                    let c = &mut self.containers[i];
                    c.reason = Some(reason.clone());
                    c.progress = Progress::Failed;
                    self.set_stop(StopCode::TaskFailedToStart, reason);
                    return false;
                }
            }
        }
        true
    }

    fn mark_running(&mut self, i: usize) {
        let c = &mut self.containers[i];
        c.progress = Progress::Running;
        c.status = ContainerStatus::Running;
        let runtime = self.ctx.runtime.clone();
        let id = c.id.clone();
        let tx = self.exits_tx.clone();
        tokio::spawn(async move {
            let exit = runtime.wait(&id).await;
            let _ = tx.send((i, exit));
        });
    }

    fn progress_of(&self, name: &str) -> Progress {
        self.containers
            .iter()
            .find(|c| c.def.name == name)
            .map_or(Progress::Failed, |c| c.progress)
    }

    /// Starts containers as their dependencies allow and watches them until
    /// the task must stop.
    async fn supervise(&mut self) {
        loop {
            for i in 0..self.containers.len() {
                if self.containers[i].progress != Progress::NotStarted {
                    continue;
                }
                let deps = self.containers[i]
                    .def
                    .depends_on
                    .clone()
                    .unwrap_or_default();
                match readiness(&deps, |n| self.progress_of(n)) {
                    Readiness::Wait => {}
                    Readiness::Never(why) => {
                        self.set_stop(StopCode::TaskFailedToStart, why);
                        return;
                    }
                    Readiness::Ready => {
                        let id = self.containers[i].id.clone();
                        match self.ctx.runtime.start(&id).await {
                            Ok(pid) => {
                                tracing::info!(container = %id, pid, "container started");
                                self.mark_running(i);
                            }
                            Err(e) => {
                                let reason = format!("CannotStartContainerError: {e}");
                                let c = &mut self.containers[i];
                                c.reason = Some(reason.clone());
                                c.progress = Progress::Failed;
                                self.set_stop(StopCode::TaskFailedToStart, reason);
                                return;
                            }
                        }
                    }
                }
            }
            let all_started = self
                .containers
                .iter()
                .all(|c| c.progress != Progress::NotStarted);
            if all_started && self.status < TaskStatus::Running {
                self.set_status(TaskStatus::Activating);
                self.started_at = Some(now());
                self.set_status(TaskStatus::Running);
            } else {
                self.report();
            }
            tokio::select! {
                Some((i, exit)) = self.exits_rx.recv() => {
                    self.record_exit(i, exit);
                    if self.containers[i].def.essential.unwrap_or(true) {
                        self.set_stop(StopCode::EssentialContainerExited, ESSENTIAL_EXITED);
                        return;
                    }
                }
                changed = self.assignment.changed() => {
                    if changed.is_err() || self.wants_stop() {
                        return;
                    }
                }
            }
        }
    }

    fn record_exit(&mut self, i: usize, exit: Result<ContainerExit, RuntimeError>) {
        let c = &mut self.containers[i];
        match exit {
            Ok(exit) => {
                tracing::info!(container = %c.id, code = exit.exit_code, oom = exit.oom_killed, "container exited");
                c.exit_code = Some(exit.exit_code);
                c.progress = Progress::Exited(exit.exit_code);
                if exit.oom_killed {
                    c.reason =
                        Some("OutOfMemoryError: Container killed due to memory usage".to_string());
                }
            }
            Err(e) => {
                tracing::warn!(container = %c.id, error = %e, "lost track of a container");
                c.reason = Some(format!("error waiting for the container: {e}"));
                c.progress = Progress::Exited(-1);
            }
        }
        c.status = ContainerStatus::Stopped;
    }

    fn stop_timeout(&self, i: usize) -> Duration {
        self.containers[i]
            .def
            .stop_timeout
            .map(|s| Duration::from_secs(u64::from(s)))
            .unwrap_or(self.ctx.default_stop_timeout)
            .min(MAX_STOP_TIMEOUT)
    }

    /// Stops what runs, removes containers and the namespace, reports STOPPED.
    async fn shut_down(&mut self) {
        if self.stop_code.is_none() {
            let a = self.assignment.borrow().clone();
            self.stop_code = a.stop_code.or(Some(StopCode::UserInitiated));
            self.stopped_reason = a.stopped_reason;
        }
        self.set_status(TaskStatus::Deactivating);
        self.stopping_at.get_or_insert_with(now);
        self.set_status(TaskStatus::Stopping);
        self.stop_containers().await;
        self.execution_stopped_at = Some(now());
        for c in &mut self.containers {
            c.status = ContainerStatus::Stopped;
        }
        self.set_status(TaskStatus::Deprovisioning);
        for c in &self.containers {
            if c.created {
                if let Err(e) = self.ctx.runtime.remove(&c.id).await {
                    tracing::warn!(container = %c.id, error = %e, "could not remove the container");
                }
            }
        }
        if let Err(e) = self.ctx.network.teardown(&self.task_id).await {
            tracing::warn!(error = %e, "could not tear down the task's network");
        }
        self.stopped_at = Some(now());
        self.status = TaskStatus::Stopped;
        // Remembered before it is reported, so a crash before the
        // controller's acknowledgement cannot make this task run again.
        if let Err(e) = self
            .ctx
            .finished
            .record(&self.task_id, &self.state_report())
        {
            tracing::error!(error = %e, "could not record the task's end");
        }
        tracing::info!(status = "STOPPED", "task status");
        self.report();
    }

    /// SIGTERM to every running container, SIGKILL to each one still
    /// running after its stopTimeout.
    async fn stop_containers(&mut self) {
        let started = Instant::now();
        let running: Vec<usize> = (0..self.containers.len())
            .filter(|i| self.containers[*i].progress == Progress::Running)
            .collect();
        for &i in &running {
            let id = self.containers[i].id.clone();
            if let Err(e) = self.ctx.runtime.kill(&id, StopSignal::Term).await {
                tracing::warn!(container = %id, error = %e, "SIGTERM failed");
            }
        }
        let mut killed: BTreeSet<usize> = BTreeSet::new();
        loop {
            let still: Vec<usize> = running
                .iter()
                .copied()
                .filter(|i| self.containers[*i].progress == Progress::Running)
                .collect();
            if still.is_empty() {
                return;
            }
            let next_kill = still
                .iter()
                .filter(|i| !killed.contains(i))
                .map(|i| started + self.stop_timeout(*i))
                .min();
            let give_up = started
                + still
                    .iter()
                    .map(|i| self.stop_timeout(*i))
                    .max()
                    .unwrap_or_default()
                + KILL_GRACE;
            let wake = next_kill.map_or(give_up, |k| k.min(give_up));
            tokio::select! {
                Some((i, exit)) = self.exits_rx.recv() => self.record_exit(i, exit),
                _ = tokio::time::sleep_until(wake) => {
                    let now = Instant::now();
                    if now >= give_up {
                        for i in still {
                            let c = &mut self.containers[i];
                            c.reason = Some("the container did not stop after SIGKILL".to_string());
                            c.progress = Progress::Exited(-1);
                        }
                        return;
                    }
                    for &i in &still {
                        if !killed.contains(&i) && now >= started + self.stop_timeout(i) {
                            let id = self.containers[i].id.clone();
                            tracing::info!(container = %id, "stopTimeout passed: SIGKILL");
                            if let Err(e) = self.ctx.runtime.kill(&id, StopSignal::Kill).await {
                                tracing::warn!(container = %id, error = %e, "SIGKILL failed");
                            }
                            killed.insert(i);
                        }
                    }
                }
            }
        }
    }
}

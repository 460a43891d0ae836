//! Carries out the reconcile step's actions: the thin layer that does I/O.
//! Slow operations (network, pulls, containers, the final record) run as
//! tasks of their own and send a [`Completion`] back to the loop, which is
//! the only place that changes the world; quick ones (queueing a report,
//! forgetting a task) happen here and now.

use std::collections::BTreeMap;
use std::sync::Arc;

use orca_net::NetworkConfigurator;
use orca_runtime::ContainerRuntime;
use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tracing::Instrument as _;

use crate::crash;
use crate::finished::FinishedTasks;
use crate::reconcile::{Action, Completion, NetworkRequest};
use crate::reporter::Reporter;
use crate::volumes::VolumeSettings;

/// What the executor acts on.
pub struct Executor {
    /// containerd (or the fake).
    runtime: Arc<dyn ContainerRuntime>,
    /// Task namespaces and addresses.
    network: Arc<dyn NetworkConfigurator>,
    /// Reports on their way to the controller.
    reporter: Arc<Reporter>,
    /// Final reports on disk.
    finished: FinishedTasks,
    /// Where operations send their outcome.
    completions: mpsc::UnboundedSender<Completion>,
    /// Every operation in flight, aborted when the agent stops (containers
    /// keep running; a restarted agent finds them).
    ops: JoinSet<()>,
    /// Each task's pulls, so that a task told to stop abandons them.
    pulls: BTreeMap<String, Vec<AbortHandle>>,
    /// Where a task's own volumes and files are, to remove them.
    volumes: VolumeSettings,
}

impl Executor {
    pub fn new(
        runtime: Arc<dyn ContainerRuntime>,
        network: Arc<dyn NetworkConfigurator>,
        reporter: Arc<Reporter>,
        finished: FinishedTasks,
        completions: mpsc::UnboundedSender<Completion>,
        volumes: VolumeSettings,
    ) -> Self {
        Executor {
            runtime,
            network,
            reporter,
            finished,
            completions,
            ops: JoinSet::new(),
            pulls: BTreeMap::new(),
            volumes,
        }
    }

    /// Drops the bookkeeping of operations that ended.
    pub fn reap_finished(&mut self) {
        while self.ops.try_join_next().is_some() {}
        for handles in self.pulls.values_mut() {
            handles.retain(|h| !h.is_finished());
        }
        self.pulls.retain(|_, h| !h.is_empty());
    }

    /// Runs one operation as a task of its own; its completion goes to the
    /// loop.
    fn spawn_op<F>(&mut self, task_id: &str, what: &'static str, op: F) -> AbortHandle
    where
        F: std::future::Future<Output = Completion> + Send + 'static,
    {
        let tx = self.completions.clone();
        let span = tracing::info_span!("op", task = %task_id, op = what);
        self.ops.spawn(
            async move {
                let completion = op.await;
                // The loop is gone only when the agent stops.
                let _ = tx.send(completion);
            }
            .instrument(span),
        )
    }

    /// Carries out one action.
    pub fn execute(&mut self, action: Action) {
        match action {
            Action::SetupNetwork { task_id, request } => {
                let network = self.network.clone();
                let id = task_id.clone();
                self.spawn_op(&task_id, "network", async move {
                    let result = match &request {
                        NetworkRequest::Task => network.setup(&id).await,
                        NetworkRequest::Loopback => network.setup_loopback(&id).await,
                        NetworkRequest::Bridge {
                            containers,
                            published,
                        } => network.setup_bridge(&id, containers, published).await,
                    };
                    if result.is_ok() {
                        crash::point("after-network");
                    }
                    Completion::Network {
                        task_id: id,
                        result,
                    }
                });
            }
            Action::Pull {
                task_id,
                index,
                image,
            } => {
                let runtime = self.runtime.clone();
                let id = task_id.clone();
                let handle = self.spawn_op(&task_id, "pull", async move {
                    let result = runtime.ensure_image(&image, None).await;
                    Completion::Pulled {
                        task_id: id,
                        index,
                        result,
                    }
                });
                self.pulls.entry(task_id).or_default().push(handle);
            }
            Action::CancelPulls { task_id } => {
                tracing::info!(task = %task_id, "abandoning the task's pulls: it is to stop");
                for handle in self.pulls.remove(&task_id).unwrap_or_default() {
                    handle.abort();
                }
            }
            Action::Create { task_id, spec } => {
                let runtime = self.runtime.clone();
                self.spawn_op(&task_id.clone(), "create", async move {
                    let result = runtime.create(&spec).await;
                    if result.is_ok() {
                        tracing::info!(container = %spec.id, "container created");
                        crash::point("after-create");
                    }
                    Completion::Created {
                        task_id,
                        spec,
                        result,
                    }
                });
            }
            Action::Start { task_id, id } => {
                let runtime = self.runtime.clone();
                self.spawn_op(&task_id.clone(), "start", async move {
                    let result = runtime.start(&id).await;
                    if let Ok(pid) = &result {
                        tracing::info!(container = %id, pid, "container started");
                        crash::point("after-start");
                    }
                    Completion::Started {
                        task_id,
                        id,
                        result,
                    }
                });
            }
            Action::Signal {
                task_id,
                id,
                signal,
            } => {
                let runtime = self.runtime.clone();
                tracing::info!(task = %task_id, container = %id, ?signal, "stopping a container");
                self.spawn_op(&task_id.clone(), "signal", async move {
                    let result = runtime.kill(&id, signal).await;
                    Completion::Signalled {
                        task_id,
                        id,
                        signal,
                        result,
                    }
                });
            }
            Action::Reap { task_id, id } => {
                let runtime = self.runtime.clone();
                self.spawn_op(&task_id.clone(), "reap", async move {
                    let result = runtime.reap(&id).await;
                    if let Ok(exit) = &result {
                        tracing::info!(container = %id, code = exit.exit_code, oom = exit.oom_killed, "container exited");
                        crash::point("after-reap");
                    }
                    Completion::Reaped {
                        task_id,
                        id,
                        result,
                    }
                });
            }
            Action::Remove { task_id, id } => {
                let runtime = self.runtime.clone();
                self.spawn_op(&task_id.clone(), "remove", async move {
                    let result = runtime.remove(&id).await;
                    if result.is_ok() {
                        tracing::info!(container = %id, "container removed");
                        crash::point("after-remove");
                    }
                    Completion::Removed {
                        task_id,
                        id,
                        result,
                    }
                });
            }
            Action::RecordFinished { task_id, report } => {
                let finished = self.finished.clone();
                self.spawn_op(&task_id.clone(), "record", async move {
                    let (id, r) = (task_id.clone(), (*report).clone());
                    let result = tokio::task::spawn_blocking(move || finished.record(&id, &r))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()));
                    if result.is_ok() {
                        tracing::info!(task = %task_id, "final report recorded");
                        crash::point("after-record");
                    }
                    Completion::Recorded {
                        task_id,
                        report,
                        result,
                    }
                });
            }
            Action::TeardownNetwork { task_id } => {
                let network = self.network.clone();
                self.spawn_op(&task_id.clone(), "teardown", async move {
                    let result = network.teardown(&task_id).await;
                    if result.is_ok() {
                        tracing::info!(task = %task_id, "task network torn down");
                        crash::point("after-teardown");
                    }
                    Completion::TornDown { task_id, result }
                });
            }
            Action::PrepareTask { task_id, setup } => {
                self.spawn_op(&task_id.clone(), "prepare", async move {
                    let result = match setup {
                        Ok(setup) => tokio::task::spawn_blocking(move || {
                            crate::volumes::store::prepare(&setup)
                        })
                        .await
                        .unwrap_or_else(|e| Err(crate::volumes::VolumeError::Io(e.to_string()))),
                        Err(refused) => Err(refused),
                    };
                    match &result {
                        Ok(_) => crash::point("after-prepare"),
                        Err(e) => {
                            tracing::warn!(task = %task_id, error = %e, "task volumes not made")
                        }
                    }
                    Completion::Prepared { task_id, result }
                });
            }
            Action::RemoveTaskFiles { task_id } => {
                let settings = self.volumes.clone();
                self.spawn_op(&task_id.clone(), "remove-files", async move {
                    let id = task_id.clone();
                    let result = tokio::task::spawn_blocking(move || {
                        crate::volumes::store::remove_task(&settings, &id)
                    })
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()));
                    if result.is_ok() {
                        tracing::info!(task = %task_id, "task volumes and files removed");
                        crash::point("after-remove-files");
                    }
                    Completion::FilesRemoved { task_id, result }
                });
            }
            Action::Report(report) => {
                tracing::info!(task = %report.task_arn, status = report.last_status.name(), "task status");
                self.reporter.update(*report);
            }
            Action::DecideStop {
                task_id,
                code,
                reason,
            } => {
                tracing::info!(task = %task_id, ?code, %reason, "task is to stop");
            }
            Action::Forget { task_id } => {
                if let Err(e) = self.finished.forget(&task_id) {
                    tracing::warn!(task = %task_id, error = %e, "could not forget a finished task");
                }
            }
        }
    }

    /// Aborts every operation in flight and waits for them to go.
    pub async fn shutdown(&mut self) {
        self.ops.abort_all();
        while self.ops.join_next().await.is_some() {}
    }
}

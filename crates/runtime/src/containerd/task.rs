//! A container's task: waiting for its exit, making the exit final (with
//! OOM attribution), signalling it, deleting everything about a container,
//! and listing every container with its process state.
//!
//! `reap` records the exit as a label on the container before it deletes
//! the task, so the exit outlives the task, the agent process and a
//! containerd restart; deleting the task also makes the log complete (with
//! FIFOs this process's copiers finish first, [`super::logio`]; with the
//! logging driver the delete returns once the driver has read the last
//! output and exited, [`super::logdriver`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::snapshots::RemoveSnapshotRequest;
use containerd_client::services::v1::{
    Container, DeleteContainerRequest, DeleteTaskRequest, GetContainerRequest, GetRequest,
    KillRequest, ListContainersRequest, ListTasksRequest, UpdateContainerRequest, WaitRequest,
};
use containerd_client::types::v1::Status as TaskStatus;
use tonic::Code;

use super::client::{is_not_found, status_error, Ctrd, SNAPSHOTTER};
use super::container::{EXIT_LABEL, RUNTIME_LABEL_PREFIX, STARTED_LABEL, STARTS_LABEL};
use super::logdriver;
use super::logio::LogPipes;
use super::oom::{cgroup_oom_kills, OomWatch};
use crate::{ContainerExit, ContainerListing, ProcessState, RuntimeError, StopSignal};

/// How long an exit with SIGKILL's status waits for containerd's OOM event,
/// which the shim may forward just after the exit.
const OOM_EVENT_GRACE: Duration = Duration::from_millis(250);

/// How long `wait` lets the output copiers finish after the exit.
const LOG_DRAIN_LIMIT: Duration = Duration::from_secs(2);

/// Exits observed, so `wait` keeps answering after the task is deleted.
#[derive(Default)]
pub struct ExitCache {
    exits: Mutex<HashMap<String, ContainerExit>>,
}

impl ExitCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ContainerExit>> {
        self.exits.lock().unwrap_or_else(|p| p.into_inner())
    }
    pub fn get(&self, id: &str) -> Option<ContainerExit> {
        self.lock().get(id).cloned()
    }
    pub fn put(&self, id: &str, exit: ContainerExit) {
        self.lock().insert(id.to_string(), exit);
    }
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }
}

/// One lock per container, held by `wait` from the exit until the exit is
/// cached (the task may be deleted meanwhile) and by `remove`: a second
/// waiter answers only once the first made the log complete.
#[derive(Default)]
pub struct ReapLocks {
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl ReapLocks {
    async fn lock(&self, id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = self
            .locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(id.to_string())
            .or_default()
            .clone();
        lock.lock_owned().await
    }

    fn forget(&self, id: &str) {
        self.locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }
}

/// The runtime's per-container bookkeeping `wait` and `remove` use.
pub struct State<'a> {
    pub logs: &'a LogPipes,
    pub oom: &'a OomWatch,
    pub exits: &'a ExitCache,
    pub reaps: &'a ReapLocks,
}

fn to_system_time(ts: Option<prost_types::Timestamp>) -> SystemTime {
    ts.and_then(|t| {
        let secs = u64::try_from(t.seconds).ok()?;
        let nanos = u32::try_from(t.nanos).ok()?;
        Some(SystemTime::UNIX_EPOCH + Duration::new(secs, nanos))
    })
    .unwrap_or_else(SystemTime::now)
}

/// Resolves when the container's process exits, and makes the exit final
/// ([`reap`]).
pub async fn wait(ctrd: &Ctrd, st: &State<'_>, id: &str) -> Result<ContainerExit, RuntimeError> {
    if let Some(exit) = st.exits.get(id) {
        return Ok(exit);
    }
    match ctrd
        .tasks()
        .wait(ctrd.req(WaitRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
    {
        Ok(_) => {}
        // Reaped meanwhile (by a concurrent wait or reap): the exit is
        // recorded on the container.
        Err(s) if is_not_found(&s) => {}
        Err(s) => return Err(status_error(&format!("wait for {id}"), s)),
    }
    reap(ctrd, st, id).await
}

/// The exit recorded on a container by [`reap`], if any.
pub fn recorded_exit(labels: &HashMap<String, String>) -> Option<ContainerExit> {
    let text = labels.get(EXIT_LABEL)?;
    let mut parts = text.split(',');
    let exit_code = parts.next()?.parse().ok()?;
    let oom_killed = parts.next()? == "oom";
    let millis: u64 = parts.next()?.parse().ok()?;
    Some(ContainerExit {
        exit_code,
        oom_killed,
        exited_at: SystemTime::UNIX_EPOCH + Duration::from_millis(millis),
    })
}

fn exit_label(exit: &ContainerExit) -> String {
    let millis = exit
        .exited_at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let oom = if exit.oom_killed { "oom" } else { "-" };
    format!("{},{oom},{millis}", exit.exit_code)
}

/// Sets one label on the container record (containerd's field mask
/// `labels.<key>` leaves the others alone).
pub async fn set_label(ctrd: &Ctrd, id: &str, key: &str, value: &str) -> Result<(), RuntimeError> {
    update_labels(ctrd, id, &[(key, value.to_string())], &[]).await
}

/// Sets `set` and removes `remove` among a container's labels, in one
/// update (a label named in the mask and absent from the map is deleted).
pub async fn update_labels(
    ctrd: &Ctrd,
    id: &str,
    set: &[(&str, String)],
    remove: &[&str],
) -> Result<(), RuntimeError> {
    let paths = set
        .iter()
        .map(|(k, _)| *k)
        .chain(remove.iter().copied())
        .map(|k| format!("labels.{k}"))
        .collect();
    ctrd.containers()
        .update(
            ctrd.req(UpdateContainerRequest {
                container: Some(Container {
                    id: id.to_string(),
                    labels: set
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.clone()))
                        .collect(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask { paths }),
            }),
        )
        .await
        .map(|_| ())
        .map_err(|s| status_error(&format!("label {id}"), s))
}

/// How many times the container's process was started, from its labels.
pub fn starts(labels: &HashMap<String, String>) -> u32 {
    labels
        .get(STARTS_LABEL)
        .and_then(|n| n.parse().ok())
        .unwrap_or(u32::from(labels.contains_key(STARTED_LABEL)))
}

/// When the container's latest run started, from its labels.
fn started_at(labels: &HashMap<String, String>) -> Option<SystemTime> {
    let millis: u64 = labels.get(STARTED_LABEL)?.parse().ok()?;
    Some(std::time::UNIX_EPOCH + Duration::from_millis(millis))
}

/// Makes the exit of a container's process final: the exit code (and
/// whether the kernel OOM-killed it, read from the cgroup, which lives
/// until the task is deleted) is recorded as a label on the container
/// *before* the task is deleted, so an agent that crashes at any point
/// finds the exit again with [`list`]; deleting the task then lets the
/// logging driver finish the log. Idempotent.
pub async fn reap(ctrd: &Ctrd, st: &State<'_>, id: &str) -> Result<ContainerExit, RuntimeError> {
    let _reaping = st.reaps.lock(id).await;
    let container = match ctrd
        .containers()
        .get(ctrd.req(GetContainerRequest { id: id.to_string() }))
        .await
    {
        Ok(r) => r.into_inner().container,
        Err(s) if is_not_found(&s) => None,
        Err(s) => return Err(status_error(&format!("get container {id}"), s)),
    };
    let Some(container) = container else {
        // Removed: only this process's cache may still know the exit.
        return st
            .exits
            .get(id)
            .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() });
    };
    let recorded = recorded_exit(&container.labels);
    let task = match ctrd
        .tasks()
        .get(ctrd.req(GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
    {
        Ok(r) => r.into_inner().process,
        Err(s) if is_not_found(&s) => None,
        Err(s) => return Err(status_error(&format!("get task {id}"), s)),
    };
    let exit = match (recorded, &task) {
        (Some(exit), _) => exit,
        (None, Some(p)) if p.status == TaskStatus::Stopped as i32 => {
            // The exit is reported once the output is in the log file.
            st.logs.drain_done(id, LOG_DRAIN_LIMIT).await;
            let exit_code = i32::try_from(p.exit_status).unwrap_or(i32::MAX);
            let mut oom_killed =
                st.oom.saw(id) || cgroup_oom_kills(ctrd.namespace(), id).unwrap_or(0) > 0;
            if !oom_killed && exit_code == 137 {
                tokio::time::sleep(OOM_EVENT_GRACE).await;
                oom_killed = st.oom.saw(id);
            }
            let exit = ContainerExit {
                exit_code,
                oom_killed,
                exited_at: to_system_time(p.exited_at),
            };
            set_label(ctrd, id, EXIT_LABEL, &exit_label(&exit)).await?;
            exit
        }
        (None, Some(p)) if p.status == TaskStatus::Created as i32 => {
            return Err(RuntimeError::NotFound { id: id.to_string() })
        }
        (None, Some(_)) => return Err(RuntimeError::Running { id: id.to_string() }),
        (None, None) => {
            return st
                .exits
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })
        }
    };
    if task.is_some() {
        // After the exit is recorded and the cgroup read (deleting the task
        // removes it); waits for the logging driver to finish the log.
        logdriver::delete_exited(ctrd, id).await?;
    }
    tracing::debug!(
        container = id,
        exit_code = exit.exit_code,
        oom_killed = exit.oom_killed,
        "exit recorded"
    );
    st.exits.put(id, exit.clone());
    Ok(exit)
}

/// Signals every process of the container; not an error if it is gone.
pub async fn kill(ctrd: &Ctrd, id: &str, signal: StopSignal) -> Result<(), RuntimeError> {
    let signo = match signal {
        StopSignal::Term => libc::SIGTERM,
        StopSignal::Kill => libc::SIGKILL,
    };
    match ctrd
        .tasks()
        .kill(ctrd.req(KillRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
            signal: u32::try_from(signo).unwrap_or(15),
            all: true,
        }))
        .await
    {
        Ok(_) => Ok(()),
        // "process already finished" arrives as NotFound or
        // FailedPrecondition depending on timing.
        Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
        Err(s) => Err(status_error(&format!("kill {id}"), s)),
    }
}

/// Deletes task, container record and snapshot; each may already be gone.
pub async fn remove(ctrd: &Ctrd, st: &State<'_>, id: &str) -> Result<(), RuntimeError> {
    let (logs, oom, cache) = (st.logs, st.oom, st.exits);
    let _reaping = st.reaps.lock(id).await;
    let task = ctrd
        .tasks()
        .get(ctrd.req(GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await;
    match task {
        Ok(r) => {
            let running = r
                .into_inner()
                .process
                .is_some_and(|p| p.status != TaskStatus::Stopped as i32);
            if running {
                kill(ctrd, id, StopSignal::Kill).await?;
                // Delete refuses a running task; SIGKILL lands within ms.
                let waited = tokio::time::timeout(
                    Duration::from_secs(10),
                    ctrd.tasks().wait(ctrd.req(WaitRequest {
                        container_id: id.to_string(),
                        exec_id: String::new(),
                    })),
                )
                .await;
                if waited.is_err() {
                    return Err(RuntimeError::Containerd(format!(
                        "remove {id}: the task did not exit within 10s of SIGKILL"
                    )));
                }
            }
            match ctrd
                .tasks()
                .delete(ctrd.req(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await
            {
                Ok(_) => {}
                Err(s) if is_not_found(&s) => {}
                Err(s) => return Err(status_error(&format!("delete task {id}"), s)),
            }
        }
        Err(s) if is_not_found(&s) => {}
        Err(s) => return Err(status_error(&format!("get task {id}"), s)),
    }
    match ctrd
        .containers()
        .delete(ctrd.req(DeleteContainerRequest { id: id.to_string() }))
        .await
    {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) => return Err(status_error(&format!("delete container {id}"), s)),
    }
    match ctrd
        .snapshots()
        .remove(ctrd.req(RemoveSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: id.to_string(),
        }))
        .await
    {
        Ok(_) => {}
        Err(s) if is_not_found(&s) => {}
        Err(s) => return Err(status_error(&format!("remove snapshot {id}"), s)),
    }
    logs.cleanup(id);
    oom.forget(id);
    cache.forget(id);
    st.reaps.forget(id);
    Ok(())
}

/// The namespace's containers, each with how far its process got: two
/// calls (containers with their labels, tasks with their status), cheap
/// enough to repeat every few seconds.
pub async fn list(ctrd: &Ctrd, oom: &OomWatch) -> Result<Vec<ContainerListing>, RuntimeError> {
    let containers = ctrd
        .containers()
        .list(ctrd.req(ListContainersRequest { filters: vec![] }))
        .await
        .map_err(|s| status_error("list containers", s))?
        .into_inner()
        .containers;
    let tasks = ctrd
        .tasks()
        .list(ctrd.req(ListTasksRequest {
            filter: String::new(),
        }))
        .await
        .map_err(|s| status_error("list tasks", s))?
        .into_inner()
        .tasks;
    let tasks: HashMap<String, containerd_client::types::v1::Process> = tasks
        .into_iter()
        // containerd 1.6 fills only `id` (the container id) in listings.
        .map(|t| {
            let id = if t.container_id.is_empty() {
                t.id.clone()
            } else {
                t.container_id.clone()
            };
            (id, t)
        })
        .collect();
    Ok(containers
        .into_iter()
        .map(|c| {
            let state = process_state(tasks.get(&c.id), &c.labels, oom.saw(&c.id));
            ContainerListing {
                state,
                starts: starts(&c.labels),
                started_at: started_at(&c.labels),
                image: c.image,
                labels: c
                    .labels
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with(RUNTIME_LABEL_PREFIX))
                    .collect(),
                id: c.id,
            }
        })
        .collect())
}

/// A container's process state from its task (if any) and labels.
fn process_state(
    task: Option<&containerd_client::types::v1::Process>,
    labels: &HashMap<String, String>,
    oom_seen: bool,
) -> ProcessState {
    match task {
        Some(p) => match TaskStatus::try_from(p.status) {
            Ok(TaskStatus::Created) => ProcessState::NotStarted,
            Ok(TaskStatus::Running | TaskStatus::Paused | TaskStatus::Pausing) => {
                ProcessState::Running { pid: p.pid }
            }
            Ok(TaskStatus::Stopped) => ProcessState::Exited {
                exit: recorded_exit(labels).unwrap_or(ContainerExit {
                    exit_code: i32::try_from(p.exit_status).unwrap_or(i32::MAX),
                    oom_killed: oom_seen,
                    exited_at: to_system_time(p.exited_at),
                }),
                recorded: false,
            },
            _ => ProcessState::Unknown,
        },
        None => match recorded_exit(labels) {
            Some(exit) => ProcessState::Exited {
                exit,
                recorded: true,
            },
            None if labels.contains_key(STARTED_LABEL) => ProcessState::Lost,
            None => ProcessState::NotStarted,
        },
    }
}

//! A running container's task: waiting for its exit (with OOM attribution),
//! signalling it, deleting everything about a container, and listing.
//!
//! `wait` also makes the log complete before it answers: with FIFOs it lets
//! this process's copiers finish ([`super::logio`]); with the logging driver
//! it deletes the exited task, which returns once the driver has read the
//! last output and exited ([`super::logdriver`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use containerd_client::services::v1::snapshots::RemoveSnapshotRequest;
use containerd_client::services::v1::{
    DeleteContainerRequest, DeleteTaskRequest, GetRequest, KillRequest, ListContainersRequest,
    ListTasksRequest, WaitRequest,
};
use containerd_client::types::v1::Status as TaskStatus;
use tonic::Code;

use super::client::{is_not_found, status_error, status_message, Ctrd, SNAPSHOTTER};
use super::container::LOG_PATH_LABEL;
use super::logdriver;
use super::logio::LogPipes;
use super::oom::{cgroup_oom_kills, OomWatch};
use crate::{ContainerExit, ContainerListing, RuntimeError, StopSignal};

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

/// Resolves when the container's process exits.
pub async fn wait(ctrd: &Ctrd, st: &State<'_>, id: &str) -> Result<ContainerExit, RuntimeError> {
    let (logs, oom, cache) = (st.logs, st.oom, st.exits);
    if let Some(exit) = cache.get(id) {
        return Ok(exit);
    }
    let resp = match ctrd
        .tasks()
        .wait(ctrd.req(WaitRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
    {
        Ok(r) => r.into_inner(),
        Err(s) if is_not_found(&s) => {
            // Deleted meanwhile by a concurrent wait that cached the exit
            // (or is about to: it holds the lock until then).
            let _reaping = st.reaps.lock(id).await;
            return cache
                .get(id)
                .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() });
        }
        Err(s) => return Err(status_error(&format!("wait for {id}"), s)),
    };
    let _reaping = st.reaps.lock(id).await;
    if let Some(exit) = cache.get(id) {
        return Ok(exit);
    }
    // The exit is reported once the output is in the log file.
    logs.drain_done(id, LOG_DRAIN_LIMIT).await;
    let exit_code = i32::try_from(resp.exit_status).unwrap_or(i32::MAX);
    let mut oom_killed = oom.saw(id) || cgroup_oom_kills(ctrd.namespace(), id).unwrap_or(0) > 0;
    if !oom_killed && exit_code == 137 {
        tokio::time::sleep(OOM_EVENT_GRACE).await;
        oom_killed = oom.saw(id);
    }
    let exit = ContainerExit {
        exit_code,
        oom_killed,
        exited_at: to_system_time(resp.exited_at),
    };
    // After the cgroup was read (deleting the task removes it).
    logdriver::reap(ctrd, id).await;
    tracing::debug!(container = id, exit_code, oom_killed, "container exited");
    cache.put(id, exit.clone());
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

/// The namespace's containers, with whether each has a running task.
pub async fn list(ctrd: &Ctrd) -> Result<Vec<ContainerListing>, RuntimeError> {
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
        .map_err(|s| RuntimeError::Containerd(format!("list tasks: {}", status_message(&s))))?
        .into_inner()
        .tasks;
    let running: std::collections::HashSet<String> = tasks
        .into_iter()
        .filter(|t| t.status == TaskStatus::Running as i32 || t.status == TaskStatus::Paused as i32)
        // containerd 1.6 fills only `id` (the container id) in listings.
        .map(|t| {
            if t.container_id.is_empty() {
                t.id
            } else {
                t.container_id
            }
        })
        .collect();
    Ok(containers
        .into_iter()
        .map(|c| ContainerListing {
            running: running.contains(&c.id),
            labels: c
                .labels
                .into_iter()
                .filter(|(k, _)| k != LOG_PATH_LABEL)
                .collect(),
            id: c.id,
        })
        .collect())
}

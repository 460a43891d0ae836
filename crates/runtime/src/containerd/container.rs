//! Creating and starting containers: the rootfs snapshot and container record
//! (with its OCI spec), then the task, whose stdout and stderr reach the
//! container's log file through the logging driver ([`super::logdriver`])
//! or, without one, through FIFOs this process drains ([`super::logio`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use containerd_client::services::v1::container::Runtime;
use containerd_client::services::v1::snapshots::{
    MountsRequest, PrepareSnapshotRequest, RemoveSnapshotRequest,
};
use containerd_client::services::v1::{
    Container, CreateContainerRequest, CreateTaskRequest, DeleteTaskRequest, GetContainerRequest,
    GetRequest, StartRequest,
};
use oci_spec::runtime::PosixRlimitType;

use super::client::{is_already_exists, status_message, Ctrd, SNAPSHOTTER};
use super::image::{with_lease, ImageStore};
use super::logio::LogPipes;
use super::{logdriver, rootfs, spec, user};
use crate::{ContainerSpec, RuntimeError};

/// The runc shim every container runs under.
pub const RUNTIME_NAME: &str = "io.containerd.runc.v2";

/// The runtime's own labels on container records start with this; they are
/// hidden from [`crate::ContainerListing`].
pub const RUNTIME_LABEL_PREFIX: &str = "io.orca.runtime.";

/// Where `start` finds the log file `create` was given.
pub const LOG_PATH_LABEL: &str = "io.orca.runtime.log-path";

/// The log file's rotation limits `create` was given
/// (`logdriver::rotation_label`).
pub const LOG_ROTATION_LABEL: &str = "io.orca.runtime.log-rotation";

/// Set by `start` once the task exists and before it starts: from then on
/// the process may have run, so a container without a task is never
/// mistaken for one that never started ([`crate::ProcessState::Lost`]).
pub const STARTED_LABEL: &str = "io.orca.runtime.started";

/// How many times `start` started the container's process (a restart in
/// place starts it again); absent on containers of older runtimes, where
/// [`STARTED_LABEL`] means one.
pub const STARTS_LABEL: &str = "io.orca.runtime.starts";

/// Marks a container's rootfs snapshot (keyed by the container id), so
/// that one left by a removal cut short can be told from other snapshots.
pub const ROOTFS_LABEL: &str = "io.orca.runtime.rootfs";

/// The exit `reap` recorded: `<code>,<oom|->,<unix millis>`.
pub const EXIT_LABEL: &str = "io.orca.runtime.exit";

/// This process's hard limit for an rlimit (containers get at most this).
pub fn current_hard_limit(typ: PosixRlimitType) -> Option<u64> {
    let resource = match typ {
        PosixRlimitType::RlimitCpu => libc::RLIMIT_CPU,
        PosixRlimitType::RlimitFsize => libc::RLIMIT_FSIZE,
        PosixRlimitType::RlimitData => libc::RLIMIT_DATA,
        PosixRlimitType::RlimitStack => libc::RLIMIT_STACK,
        PosixRlimitType::RlimitCore => libc::RLIMIT_CORE,
        PosixRlimitType::RlimitRss => libc::RLIMIT_RSS,
        PosixRlimitType::RlimitNproc => libc::RLIMIT_NPROC,
        PosixRlimitType::RlimitNofile => libc::RLIMIT_NOFILE,
        PosixRlimitType::RlimitMemlock => libc::RLIMIT_MEMLOCK,
        PosixRlimitType::RlimitAs => libc::RLIMIT_AS,
        PosixRlimitType::RlimitLocks => libc::RLIMIT_LOCKS,
        PosixRlimitType::RlimitSigpending => libc::RLIMIT_SIGPENDING,
        PosixRlimitType::RlimitMsgqueue => libc::RLIMIT_MSGQUEUE,
        PosixRlimitType::RlimitNice => libc::RLIMIT_NICE,
        PosixRlimitType::RlimitRtprio => libc::RLIMIT_RTPRIO,
        PosixRlimitType::RlimitRttime => libc::RLIMIT_RTTIME,
    };
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the rlimit struct we own.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    (rc == 0 && lim.rlim_max != libc::RLIM_INFINITY).then_some(lim.rlim_max)
}

fn create_err(id: &str, message: impl Into<String>) -> RuntimeError {
    RuntimeError::Create {
        id: id.to_string(),
        message: message.into(),
    }
}

/// Creates the container's snapshot and record.
pub async fn create(
    ctrd: &Ctrd,
    images: &ImageStore,
    cs: &ContainerSpec,
) -> Result<(), RuntimeError> {
    let id = cs.id.as_str();
    let parent = images
        .top_chain_id(&cs.image)
        .await
        .map_err(|e| create_err(id, e))?
        .unwrap_or_default();
    // Under a lease: between Prepare and the container record nothing else
    // refers to the snapshot, and containerd's GC may run at any moment.
    with_lease(ctrd, |lease| async move {
        let prepare = || {
            let request = ctrd.leased_req(
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: id.to_string(),
                    parent: parent.clone(),
                    labels: HashMap::from([(ROOTFS_LABEL.to_string(), "1".to_string())]),
                },
                &lease,
            );
            async move { ctrd.snapshots().prepare(request).await }
        };
        let prepared = match prepare().await {
            Err(s) if is_already_exists(&s) && !container_exists(ctrd, id).await? => {
                // The rootfs of a create cut short by a crash (its lease
                // still holds it): no container uses it, so start over.
                tracing::warn!(
                    container = id,
                    "removing the rootfs snapshot of an earlier, unfinished create"
                );
                remove_snapshot(ctrd, id).await?;
                prepare().await
            }
            other => other,
        };
        let mounts = prepared
            .map_err(|s| {
                if is_already_exists(&s) {
                    format!("a snapshot named {id} already exists (remove the old container first)")
                } else {
                    format!("prepare rootfs snapshot: {}", status_message(&s))
                }
            })?
            .into_inner()
            .mounts;
        let result = create_record(ctrd, cs, &mounts, &lease).await;
        if result.is_err() {
            let _ = remove_snapshot(ctrd, id).await;
        }
        result
    })
    .await
    .map_err(|e| create_err(id, e))
}

async fn container_exists(ctrd: &Ctrd, id: &str) -> Result<bool, String> {
    match ctrd
        .containers()
        .get(ctrd.req(GetContainerRequest { id: id.to_string() }))
        .await
    {
        Ok(_) => Ok(true),
        Err(s) if super::client::is_not_found(&s) => Ok(false),
        Err(s) => Err(format!("get container {id}: {}", status_message(&s))),
    }
}

async fn remove_snapshot(ctrd: &Ctrd, key: &str) -> Result<(), String> {
    match ctrd
        .snapshots()
        .remove(ctrd.req(RemoveSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: key.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if super::client::is_not_found(&s) => Ok(()),
        Err(s) => Err(format!("remove snapshot {key}: {}", status_message(&s))),
    }
}

async fn create_record(
    ctrd: &Ctrd,
    cs: &ContainerSpec,
    mounts: &[containerd_client::types::Mount],
    lease: &str,
) -> Result<(), String> {
    let requested = spec::requested_user(cs);
    let files = match requested {
        Some(u) if user::needs_files(u) => rootfs::account_files(mounts),
        _ => user::AccountFiles::default(),
    };
    let resolved = user::resolve(requested, &files)?;
    let current_caps = super::spec_defaults::current_bounding_set();
    let oci = spec::build(
        cs,
        &spec::SpecContext {
            namespace: ctrd.namespace(),
            user: resolved,
            hard_limit: &current_hard_limit,
            current_caps: current_caps.as_deref(),
        },
    )
    .map_err(|e| match e {
        RuntimeError::Create { message, .. } => message,
        other => other.to_string(),
    })?;
    let mut labels: HashMap<String, String> = cs.labels.clone().into_iter().collect();
    labels.insert(
        LOG_PATH_LABEL.to_string(),
        cs.log_path.display().to_string(),
    );
    if let Some(r) = cs.log_rotation {
        labels.insert(LOG_ROTATION_LABEL.to_string(), logdriver::rotation_label(r));
    }
    let container = Container {
        id: cs.id.clone(),
        labels,
        image: cs.image.reference.clone(),
        runtime: Some(Runtime {
            name: RUNTIME_NAME.to_string(),
            options: None,
        }),
        spec: Some(spec::to_any(&oci)?),
        snapshotter: SNAPSHOTTER.to_string(),
        snapshot_key: cs.id.clone(),
        ..Default::default()
    };
    ctrd.containers()
        .create(ctrd.leased_req(
            CreateContainerRequest {
                container: Some(container),
            },
            lease,
        ))
        .await
        .map_err(|s| {
            if is_already_exists(&s) {
                format!("container {} already exists", cs.id)
            } else {
                format!("create container record: {}", status_message(&s))
            }
        })?;
    Ok(())
}

/// Starts the container's process and returns its pid. With `log_driver`
/// the shim runs it for the container's output; without, this process
/// drains FIFOs.
pub async fn start(
    ctrd: &Ctrd,
    logs: &LogPipes,
    log_driver: Option<&Path>,
    id: &str,
) -> Result<u32, RuntimeError> {
    let start_err = |message: String| RuntimeError::Start {
        id: id.to_string(),
        message,
    };
    let container = ctrd
        .containers()
        .get(ctrd.req(GetContainerRequest { id: id.to_string() }))
        .await
        .map_err(|s| {
            if super::client::is_not_found(&s) {
                RuntimeError::NotFound { id: id.to_string() }
            } else {
                classify(s, |m| start_err(format!("get container: {m}")))
            }
        })?
        .into_inner()
        .container
        .ok_or_else(|| RuntimeError::NotFound { id: id.to_string() })?;
    let log_path = container
        .labels
        .get(LOG_PATH_LABEL)
        .map(PathBuf::from)
        .ok_or_else(|| start_err("the container record has no log path label".into()))?;
    rootfs::ensure_parent(&log_path).map_err(|e| {
        start_err(format!(
            "create log directory for {}: {e}",
            log_path.display()
        ))
    })?;
    let rootfs = ctrd
        .snapshots()
        .mounts(ctrd.req(MountsRequest {
            snapshotter: container.snapshotter.clone(),
            key: container.snapshot_key.clone(),
        }))
        .await
        .map_err(|s| classify(s, |m| start_err(format!("rootfs mounts: {m}"))))?
        .into_inner()
        .mounts;
    // Stale FIFOs and copiers of an earlier run go either way.
    logs.cleanup(id);
    let (pipes, stdout, stderr) = match log_driver {
        Some(driver) => {
            // The shim runs the driver from its bundle directory.
            let log_path = std::path::absolute(&log_path)
                .map_err(|e| start_err(format!("log path {}: {e}", log_path.display())))?;
            let rotation =
                logdriver::parse_rotation_label(container.labels.get(LOG_ROTATION_LABEL));
            let uri = logdriver::uri(driver, &log_path, rotation);
            (None, uri.clone(), uri)
        }
        None => {
            let pipes = logs
                .prepare(id)
                .map_err(|e| start_err(format!("log pipes: {e}")))?;
            let (stdout, stderr) = (
                pipes.stdout.display().to_string(),
                pipes.stderr.display().to_string(),
            );
            (Some(pipes), stdout, stderr)
        }
    };
    let create_task = || {
        let request = ctrd.req(CreateTaskRequest {
            container_id: id.to_string(),
            rootfs: rootfs.clone(),
            stdout: stdout.clone(),
            stderr: stderr.clone(),
            ..Default::default()
        });
        async move { ctrd.tasks().create(request).await }
    };
    let created = match create_task().await {
        Err(s) if is_already_exists(&s) => {
            // A task created but never started before a crash: its process
            // never ran (a started one is refused below), so replace it.
            replace_unstarted_task(ctrd, id).await?;
            create_task().await
        }
        other => other,
    };
    if let Err(s) = created {
        logs.cleanup(id);
        // The shim's bundle directory exists: another Tasks.Create of this
        // container is under way (an agent process that died mid-start).
        if status_message(&s).contains("file exists") {
            return Err(RuntimeError::Busy {
                id: id.to_string(),
                message: status_message(&s),
            });
        }
        return Err(classify(s, start_err));
    }
    if let Some(pipes) = pipes {
        logs.attach(id, pipes, &log_path);
    }
    // From here on the process may run: mark the container, so that one
    // whose task is lost later is never taken for one that never started,
    // count the start, and forget the exit of an earlier run (a restart in
    // place), which would otherwise stand for this run's.
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let starts = super::task::starts(&container.labels) + 1;
    let marked = super::task::update_labels(
        ctrd,
        id,
        &[
            (STARTED_LABEL, millis.to_string()),
            (STARTS_LABEL, starts.to_string()),
        ],
        &[EXIT_LABEL],
    )
    .await;
    if let Err(e) = marked {
        let _ = ctrd
            .tasks()
            .delete(ctrd.req(DeleteTaskRequest {
                container_id: id.to_string(),
            }))
            .await;
        logs.cleanup(id);
        return Err(e);
    }
    match ctrd
        .tasks()
        .start(ctrd.req(StartRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
    {
        Ok(r) => Ok(r.into_inner().pid),
        Err(s) => {
            // A task that never started is only debris for the next start.
            let _ = ctrd
                .tasks()
                .delete(ctrd.req(DeleteTaskRequest {
                    container_id: id.to_string(),
                }))
                .await;
            logs.cleanup(id);
            Err(classify(s, start_err))
        }
    }
}

/// containerd unreachable is [`RuntimeError::Unavailable`] (retry later);
/// anything else is the operation's own error.
fn classify(s: tonic::Status, err: impl Fn(String) -> RuntimeError) -> RuntimeError {
    if super::client::is_unavailable(&s) {
        RuntimeError::Unavailable(status_message(&s))
    } else {
        err(status_message(&s))
    }
}

/// Deletes the container's task if it was created and never started; an
/// error if its process runs or ran (a container is started once).
async fn replace_unstarted_task(ctrd: &Ctrd, id: &str) -> Result<(), RuntimeError> {
    let start_err = |message: String| RuntimeError::Start {
        id: id.to_string(),
        message,
    };
    let process = ctrd
        .tasks()
        .get(ctrd.req(GetRequest {
            container_id: id.to_string(),
            exec_id: String::new(),
        }))
        .await
        .map_err(|s| classify(s, start_err))?
        .into_inner()
        .process;
    let created = process
        .as_ref()
        .is_some_and(|p| p.status == containerd_client::types::v1::Status::Created as i32);
    if !created {
        return Err(RuntimeError::AlreadyStarted { id: id.to_string() });
    }
    tracing::warn!(
        container = id,
        "replacing a task that was created but never started"
    );
    ctrd.tasks()
        .delete(ctrd.req(DeleteTaskRequest {
            container_id: id.to_string(),
        }))
        .await
        .map(|_| ())
        .map_err(|s| classify(s, start_err))
}

/// Resumes draining the output of every running container (after an agent
/// restart: see [`super::logio`]).
pub async fn reattach_logs(
    ctrd: &Ctrd,
    logs: &LogPipes,
    oom: &super::oom::OomWatch,
) -> Result<(), RuntimeError> {
    for listing in super::task::list(ctrd, oom).await? {
        if !listing.is_running() {
            continue;
        }
        let container = ctrd
            .containers()
            .get(ctrd.req(GetContainerRequest {
                id: listing.id.clone(),
            }))
            .await
            .map_err(|s| super::client::status_error("get container", s))?
            .into_inner()
            .container;
        if let Some(path) = container.and_then(|c| c.labels.get(LOG_PATH_LABEL).cloned()) {
            if let Err(e) = logs.reattach(&listing.id, Path::new(&path)) {
                tracing::warn!(container = %listing.id, error = %e, "cannot resume draining container output");
            }
        }
    }
    Ok(())
}

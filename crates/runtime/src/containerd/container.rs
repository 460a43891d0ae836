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
    StartRequest,
};
use oci_spec::runtime::PosixRlimitType;

use super::client::{is_already_exists, status_message, Ctrd, SNAPSHOTTER};
use super::image::{with_lease, ImageStore};
use super::logio::LogPipes;
use super::{logdriver, rootfs, spec, user};
use crate::{ContainerSpec, RuntimeError};

/// The runc shim every container runs under.
pub const RUNTIME_NAME: &str = "io.containerd.runc.v2";

/// Where `start` finds the log file `create` was given: a label on the
/// container record, hidden from [`crate::ContainerListing`].
pub const LOG_PATH_LABEL: &str = "io.orca.runtime.log-path";

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
        let mounts = ctrd
            .snapshots()
            .prepare(ctrd.leased_req(
                PrepareSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: id.to_string(),
                    parent,
                    labels: HashMap::new(),
                },
                &lease,
            ))
            .await
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
            let _ = ctrd
                .snapshots()
                .remove(ctrd.req(RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: id.to_string(),
                }))
                .await;
        }
        result
    })
    .await
    .map_err(|e| create_err(id, e))
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
    let oci = spec::build(
        cs,
        &spec::SpecContext {
            namespace: ctrd.namespace(),
            user: resolved,
            hard_limit: &current_hard_limit,
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
                start_err(format!("get container: {}", status_message(&s)))
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
        .map_err(|s| start_err(format!("rootfs mounts: {}", status_message(&s))))?
        .into_inner()
        .mounts;
    // Stale FIFOs and copiers of an earlier run go either way.
    logs.cleanup(id);
    let (pipes, stdout, stderr) = match log_driver {
        Some(driver) => {
            // The shim runs the driver from its bundle directory.
            let log_path = std::path::absolute(&log_path)
                .map_err(|e| start_err(format!("log path {}: {e}", log_path.display())))?;
            let uri = logdriver::uri(driver, &log_path);
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
    if let Err(s) = ctrd
        .tasks()
        .create(ctrd.req(CreateTaskRequest {
            container_id: id.to_string(),
            rootfs,
            stdout,
            stderr,
            ..Default::default()
        }))
        .await
    {
        logs.cleanup(id);
        return Err(start_err(status_message(&s)));
    }
    if let Some(pipes) = pipes {
        logs.attach(id, pipes, &log_path);
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
            Err(start_err(status_message(&s)))
        }
    }
}

/// Resumes draining the output of every running container (after an agent
/// restart: see [`super::logio`]).
pub async fn reattach_logs(ctrd: &Ctrd, logs: &LogPipes) -> Result<(), RuntimeError> {
    for listing in super::task::list(ctrd).await? {
        if !listing.running {
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

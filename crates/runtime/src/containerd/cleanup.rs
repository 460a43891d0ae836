//! Inspecting and emptying this runtime's containerd namespace: for an agent
//! leaving the machine for good, and for tests that must leave containerd as
//! they found it; and the agent's garbage collection (images no task uses,
//! root filesystems of containers that are gone).

use containerd_client::services::v1::snapshots::{ListSnapshotsRequest, RemoveSnapshotRequest};
use containerd_client::services::v1::{
    DeleteContentRequest, DeleteImageRequest, DeleteNamespaceRequest,
    DeleteRequest as DeleteLeaseRequest, ListContentRequest, ListImagesRequest,
    ListRequest as ListLeasesRequest,
};
use futures::StreamExt;

use super::client::{is_not_found, status_error, Ctrd, SNAPSHOTTER};
use super::container::ROOTFS_LABEL;
use crate::{ContainerRuntime, RuntimeError};

/// Names (keys) of every snapshot in the namespace.
pub async fn snapshot_keys(ctrd: &Ctrd) -> Result<Vec<String>, RuntimeError> {
    let mut stream = ctrd
        .snapshots()
        .list(ctrd.req(ListSnapshotsRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            filters: vec![],
        }))
        .await
        .map_err(|s| status_error("list snapshots", s))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(page) = stream.next().await {
        let page = page.map_err(|s| status_error("list snapshots", s))?;
        out.extend(page.info.into_iter().map(|i| (i.name, i.parent)));
    }
    // Children first, so a removal loop never meets a parent still in use.
    let mut ordered = Vec::with_capacity(out.len());
    while !out.is_empty() {
        let parents: std::collections::HashSet<String> =
            out.iter().map(|(_, p)| p.clone()).collect();
        let (leaves, rest): (Vec<_>, Vec<_>) = out
            .into_iter()
            .partition(|(name, _)| !parents.contains(name));
        if leaves.is_empty() {
            ordered.extend(rest.into_iter().map(|(n, _)| n));
            break;
        }
        ordered.extend(leaves.into_iter().map(|(n, _)| n));
        out = rest;
    }
    Ok(ordered)
}

/// Attempts at removing the snapshots left, 100 ms apart.
const PURGE_PASSES: usize = 30;

/// Removes every container, image, snapshot, lease and blob in the
/// namespace, then the namespace itself.
pub async fn purge(ctrd: &Ctrd, runtime: &impl ContainerRuntime) -> Result<(), RuntimeError> {
    for c in runtime.list().await? {
        runtime.remove(&c.id).await?;
    }
    let images = ctrd
        .images()
        .list(ctrd.req(ListImagesRequest { filters: vec![] }))
        .await
        .map_err(|s| status_error("list images", s))?
        .into_inner()
        .images;
    for image in images {
        ignore_not_found(
            ctrd.images()
                .delete(ctrd.req(DeleteImageRequest {
                    name: image.name.clone(),
                    sync: false,
                    target: None,
                }))
                .await,
            "delete image",
        )?;
    }
    let leases = ctrd
        .leases()
        .list(ctrd.req(ListLeasesRequest { filters: vec![] }))
        .await
        .map_err(|s| status_error("list leases", s))?
        .into_inner()
        .leases;
    for lease in leases {
        ignore_not_found(
            ctrd.leases()
                .delete(ctrd.req(DeleteLeaseRequest {
                    id: lease.id,
                    sync: false,
                }))
                .await,
            "delete lease",
        )?;
    }
    // Children before parents; several passes in case one was still in use
    // (containerd's garbage collector may hold one briefly after an image
    // delete).
    for pass in 0..PURGE_PASSES {
        let keys = snapshot_keys(ctrd).await?;
        if keys.is_empty() {
            break;
        }
        let mut last_error = None;
        for key in keys {
            match ctrd
                .snapshots()
                .remove(ctrd.req(RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: key.clone(),
                }))
                .await
            {
                Ok(_) => {}
                Err(s) if is_not_found(&s) => {}
                Err(s) => last_error = Some(status_error(&format!("remove snapshot {key}"), s)),
            }
        }
        if let Some(e) = last_error {
            if pass + 1 == PURGE_PASSES {
                return Err(e);
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
    let mut blobs = ctrd
        .content()
        .list(ctrd.req(ListContentRequest { filters: vec![] }))
        .await
        .map_err(|s| status_error("list content", s))?
        .into_inner();
    let mut digests = Vec::new();
    while let Some(page) = blobs.next().await {
        let page = page.map_err(|s| status_error("list content", s))?;
        digests.extend(page.info.into_iter().map(|i| i.digest));
    }
    for digest in digests {
        ignore_not_found(
            ctrd.content()
                .delete(ctrd.req(DeleteContentRequest { digest }))
                .await,
            "delete content",
        )?;
    }
    ignore_not_found(
        ctrd.namespaces()
            .delete(ctrd.req(DeleteNamespaceRequest {
                name: ctrd.namespace().to_string(),
            }))
            .await,
        "delete namespace",
    )
}

fn ignore_not_found<T>(r: Result<T, tonic::Status>, what: &str) -> Result<(), RuntimeError> {
    match r {
        Ok(_) => Ok(()),
        Err(s) if is_not_found(&s) => Ok(()),
        Err(s) => Err(status_error(what, s)),
    }
}

/// Removes an image record synchronously: containerd's garbage collector
/// then drops the blobs and layer snapshots nothing else refers to. Not an
/// error if the record is gone.
pub async fn remove_image(ctrd: &Ctrd, reference: &str) -> Result<(), RuntimeError> {
    ignore_not_found(
        ctrd.images()
            .delete(ctrd.req(DeleteImageRequest {
                name: reference.to_string(),
                sync: true,
                target: None,
            }))
            .await,
        &format!("delete image {reference}"),
    )
}

/// Removes the container root filesystems (active snapshots labelled
/// [`ROOTFS_LABEL`] at create) that no container record uses: what a
/// removal or a create cut short leaves. Returns the keys removed.
pub async fn remove_stray_snapshots(ctrd: &Ctrd) -> Result<Vec<String>, RuntimeError> {
    use containerd_client::services::v1::snapshots::Kind;
    use containerd_client::services::v1::ListContainersRequest;
    let in_use: std::collections::HashSet<String> = ctrd
        .containers()
        .list(ctrd.req(ListContainersRequest { filters: vec![] }))
        .await
        .map_err(|s| status_error("list containers", s))?
        .into_inner()
        .containers
        .into_iter()
        .map(|c| c.snapshot_key)
        .collect();
    let mut stream = ctrd
        .snapshots()
        .list(ctrd.req(ListSnapshotsRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            filters: vec![],
        }))
        .await
        .map_err(|s| status_error("list snapshots", s))?
        .into_inner();
    let mut stray = Vec::new();
    while let Some(page) = stream.next().await {
        let page = page.map_err(|s| status_error("list snapshots", s))?;
        stray.extend(
            page.info
                .into_iter()
                .filter(|i| i.kind == Kind::Active as i32 && i.labels.contains_key(ROOTFS_LABEL))
                .map(|i| i.name)
                .filter(|name| !in_use.contains(name)),
        );
    }
    for key in &stray {
        tracing::info!(snapshot = %key, "removing the rootfs of a container that no longer exists");
        ignore_not_found(
            ctrd.snapshots()
                .remove(ctrd.req(RemoveSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    key: key.clone(),
                }))
                .await,
            &format!("remove snapshot {key}"),
        )?;
    }
    Ok(stray)
}

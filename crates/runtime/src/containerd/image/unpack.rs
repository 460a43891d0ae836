//! Unpacking: turn an image's layer blobs (already in the Content store) into
//! committed overlayfs snapshots named by chain id, the way containerd's own
//! unpacker does: Prepare on the parent chain, Diff.Apply the layer into the
//! prepared mounts, Commit under the chain id.

use std::collections::HashMap;

use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::ApplyRequest;
use containerd_client::types::Descriptor as CtrdDescriptor;

use super::super::client::{is_already_exists, is_not_found, status_message, Ctrd, SNAPSHOTTER};
use super::model::{chain_ids, Manifest};

/// Whether a committed snapshot with this name (a chain id) exists.
pub async fn snapshot_exists(ctrd: &Ctrd, name: &str) -> Result<bool, String> {
    match ctrd
        .snapshots()
        .stat(ctrd.req(StatSnapshotRequest {
            snapshotter: SNAPSHOTTER.to_string(),
            key: name.to_string(),
        }))
        .await
    {
        Ok(_) => Ok(true),
        Err(s) if is_not_found(&s) => Ok(false),
        Err(s) => Err(format!("stat snapshot {name}: {}", status_message(&s))),
    }
}

/// Unpacks every layer not yet unpacked; returns the top chain id (`None`
/// for an image without layers).
pub async fn unpack(
    ctrd: &Ctrd,
    lease: &str,
    manifest: &Manifest,
    diff_ids: &[String],
) -> Result<Option<String>, String> {
    if manifest.layers.len() != diff_ids.len() {
        return Err(format!(
            "the manifest has {} layers but the config lists {} diff ids",
            manifest.layers.len(),
            diff_ids.len()
        ));
    }
    let chains = chain_ids(diff_ids);
    // Most images share their lower layers: find the highest chain present
    // and start above it.
    let mut first_missing = chains.len();
    for (i, chain) in chains.iter().enumerate().rev() {
        if snapshot_exists(ctrd, chain).await? {
            break;
        }
        first_missing = i;
    }
    for i in first_missing..chains.len() {
        let parent = if i == 0 {
            String::new()
        } else {
            chains[i - 1].clone()
        };
        apply_layer(
            ctrd,
            lease,
            &manifest.layers[i],
            &diff_ids[i],
            &parent,
            &chains[i],
        )
        .await?;
    }
    Ok(chains.last().cloned())
}

/// Prepare, apply, commit one layer.
async fn apply_layer(
    ctrd: &Ctrd,
    lease: &str,
    layer: &super::model::Descriptor,
    diff_id: &str,
    parent: &str,
    chain: &str,
) -> Result<(), String> {
    let seq = super::super::unique_suffix();
    // A unique key: two agents (or two images) may unpack the same chain at
    // once; the loser's Commit finds it already exists.
    let key = format!("orca-extract-{seq} {chain}");
    let mounts = match ctrd
        .snapshots()
        .prepare(ctrd.leased_req(
            PrepareSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key: key.clone(),
                parent: parent.to_string(),
                labels: HashMap::new(),
            },
            lease,
        ))
        .await
    {
        Ok(r) => r.into_inner().mounts,
        Err(s) if is_already_exists(&s) => return Ok(()),
        Err(s) => {
            return Err(format!(
                "prepare snapshot for layer {}: {}",
                layer.digest,
                status_message(&s)
            ))
        }
    };
    let result = async {
        let applied = ctrd
            .diff()
            .apply(ctrd.leased_req(
                ApplyRequest {
                    diff: Some(CtrdDescriptor {
                        media_type: layer.media_type.clone(),
                        digest: layer.digest.clone(),
                        size: layer.size,
                        annotations: HashMap::new(),
                    }),
                    mounts,
                    payloads: HashMap::new(),
                    sync_fs: false,
                },
                lease,
            ))
            .await
            .map_err(|s| format!("apply layer {}: {}", layer.digest, status_message(&s)))?
            .into_inner();
        let got = applied.applied.map(|d| d.digest).unwrap_or_default();
        if got != diff_id {
            return Err(format!(
                "layer {} unpacked to {got}, the image config says {diff_id}",
                layer.digest
            ));
        }
        match ctrd
            .snapshots()
            .commit(ctrd.leased_req(
                CommitSnapshotRequest {
                    snapshotter: SNAPSHOTTER.to_string(),
                    name: chain.to_string(),
                    key: key.clone(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
        {
            Ok(_) => Ok(true),
            Err(s) if is_already_exists(&s) => Ok(false),
            Err(s) => Err(format!("commit snapshot {chain}: {}", status_message(&s))),
        }
    }
    .await;
    // A committed key is consumed; anything else is scratch to drop.
    if !matches!(result, Ok(true)) {
        let _ = ctrd
            .snapshots()
            .remove(ctrd.req(RemoveSnapshotRequest {
                snapshotter: SNAPSHOTTER.to_string(),
                key,
            }))
            .await;
    }
    result.map(|_| ())
}

//! Loading an OCI image-layout archive (`skopeo copy ... oci-archive:X.tar:REF`,
//! `ctr images export`) into containerd without any registry: for nodes that
//! cannot reach one (`orca image load`).
//!
//! The tar is indexed once (path -> byte range) and blobs are streamed from
//! their ranges into the Content store, so large layers are never held in
//! memory. Each `index.json` entry becomes an image record named by its
//! `io.containerd.image.name` annotation if present, else by its
//! `org.opencontainers.image.ref.name` annotation normalised to a full
//! reference (`busybox:1` -> `docker.io/library/busybox:1`). `ensure_image`
//! finds such an image under either spelling, without network.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use futures::StreamExt;
use tokio::io::{AsyncReadExt, AsyncSeekExt};

use super::super::client::Ctrd;
use super::super::content;
use super::model::{
    chain_ids, config_gc_labels, index_gc_labels, is_index, manifest_gc_labels, media_type_of,
    pick_platform, ConfigFile, Descriptor, Index, Manifest,
};
use super::{put_record, unpack, with_lease};
use crate::{ImageInfo, RuntimeError};

/// Where a member's data lies in the archive.
#[derive(Debug, Clone, Copy)]
struct Range {
    offset: u64,
    size: u64,
}

/// The archive's members by path (without any leading `./`).
struct Members {
    path: PathBuf,
    ranges: HashMap<String, Range>,
    index_json: Vec<u8>,
}

/// Loads every image in the archive at `path`.
pub async fn load(ctrd: &Ctrd, path: &Path) -> Result<Vec<ImageInfo>, RuntimeError> {
    let err = |message: String| RuntimeError::Pull {
        reference: path.display().to_string(),
        message,
    };
    let owned = path.to_path_buf();
    let members = tokio::task::spawn_blocking(move || scan(&owned))
        .await
        .map_err(|e| err(format!("archive scan task failed: {e}")))?
        .map_err(err)?;
    let index: Index = serde_json::from_slice(&members.index_json)
        .map_err(|e| err(format!("bad index.json: {e}")))?;
    let mut loaded = Vec::new();
    for entry in &index.manifests {
        let name = image_name(entry).ok_or_else(|| {
            err(format!(
                "index.json entry {} names no image (no org.opencontainers.image.ref.name annotation)",
                entry.digest
            ))
        })?;
        let info = with_lease(ctrd, |lease| {
            load_one(ctrd, &members, entry, name.clone(), lease)
        })
        .await
        .map_err(|message| RuntimeError::Pull {
            reference: name.clone(),
            message: format!("load from {}: {message}", path.display()),
        })?;
        tracing::info!(image = %info.reference, digest = %info.digest, "loaded image from archive");
        loaded.push(info);
    }
    Ok(loaded)
}

/// The image record name for an `index.json` entry.
fn image_name(entry: &Descriptor) -> Option<String> {
    if let Some(name) = entry.annotations.get("io.containerd.image.name") {
        return Some(name.clone());
    }
    let reference = entry.annotations.get("org.opencontainers.image.ref.name")?;
    Some(
        super::pull::parse_reference(reference)
            .map(|r| r.whole())
            .unwrap_or_else(|_| reference.clone()),
    )
}

fn scan(path: &Path) -> Result<Members, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("open {}: {e}", path.display()))?;
    let mut archive = tar::Archive::new(file);
    let mut ranges = HashMap::new();
    let mut index_json = None;
    let entries = archive
        .entries()
        .map_err(|e| format!("read {}: {e}", path.display()))?;
    for entry in entries {
        let mut entry = entry.map_err(|e| format!("read {}: {e}", path.display()))?;
        let member = entry
            .path()
            .map_err(|e| format!("bad member path in {}: {e}", path.display()))?
            .to_string_lossy()
            .trim_start_matches("./")
            .to_string();
        if member == "index.json" {
            let mut buf = Vec::new();
            entry
                .read_to_end(&mut buf)
                .map_err(|e| format!("read index.json: {e}"))?;
            index_json = Some(buf);
        } else if member.starts_with("blobs/") {
            ranges.insert(
                member,
                Range {
                    offset: entry.raw_file_position(),
                    size: entry.size(),
                },
            );
        }
    }
    Ok(Members {
        path: path.to_path_buf(),
        ranges,
        index_json: index_json
            .ok_or_else(|| format!("{} has no index.json: not an OCI archive", path.display()))?,
    })
}

impl Members {
    fn range(&self, digest: &str) -> Result<Range, String> {
        let member = format!("blobs/{}", digest.replacen(':', "/", 1));
        self.ranges
            .get(&member)
            .copied()
            .ok_or_else(|| format!("the archive lacks blob {digest}"))
    }

    async fn open(
        &self,
        digest: &str,
    ) -> Result<(tokio::io::Take<tokio::fs::File>, Range), String> {
        let range = self.range(digest)?;
        let mut file = tokio::fs::File::open(&self.path)
            .await
            .map_err(|e| format!("open {}: {e}", self.path.display()))?;
        file.seek(std::io::SeekFrom::Start(range.offset))
            .await
            .map_err(|e| format!("seek {}: {e}", self.path.display()))?;
        Ok((file.take(range.size), range))
    }

    async fn read_small(&self, digest: &str) -> Result<Bytes, String> {
        let (mut reader, range) = self.open(digest).await?;
        if range.size > 16 << 20 {
            return Err(format!("blob {digest} is too big to be metadata"));
        }
        let mut buf = Vec::new();
        reader
            .read_to_end(&mut buf)
            .await
            .map_err(|e| format!("read blob {digest}: {e}"))?;
        Ok(Bytes::from(buf))
    }

    async fn copy_blob(
        &self,
        ctrd: &Ctrd,
        lease: &str,
        desc: &Descriptor,
        labels: HashMap<String, String>,
    ) -> Result<(), String> {
        if content::info(ctrd, &desc.digest).await?.is_some() {
            return content::set_labels(ctrd, &desc.digest, labels).await;
        }
        let (reader, _) = self.open(&desc.digest).await?;
        let stream = tokio_util::io::ReaderStream::with_capacity(reader, 1 << 20)
            .map(|chunk| chunk.map_err(|e| e.to_string()));
        content::write(ctrd, lease, &desc.digest, desc.size, labels, stream).await
    }
}

async fn load_one(
    ctrd: &Ctrd,
    members: &Members,
    entry: &Descriptor,
    name: String,
    lease: String,
) -> Result<ImageInfo, String> {
    let top_raw = members.read_small(&entry.digest).await?;
    // Some writers leave the media type out of index.json; containerd's
    // image record needs it.
    let mut entry = entry.clone();
    if entry.media_type.is_empty() {
        entry.media_type = media_type_of(&top_raw);
    }
    let entry = &entry;
    let (manifest_desc, manifest_raw) = if is_index(&entry.media_type, &top_raw) {
        let index: Index = serde_json::from_slice(&top_raw)
            .map_err(|e| format!("bad image index {}: {e}", entry.digest))?;
        let chosen = pick_platform(&index)
            .ok_or_else(|| {
                format!(
                    "image index {} has no manifest for this platform",
                    entry.digest
                )
            })?
            .clone();
        let raw = members.read_small(&chosen.digest).await?;
        content::write_bytes(
            ctrd,
            &lease,
            &entry.digest,
            top_raw,
            index_gc_labels(&index, &chosen.digest),
        )
        .await?;
        (chosen, raw)
    } else {
        (entry.clone(), top_raw)
    };
    let manifest: Manifest = serde_json::from_slice(&manifest_raw)
        .map_err(|e| format!("bad image manifest {}: {e}", manifest_desc.digest))?;
    let config_raw = members.read_small(&manifest.config.digest).await?;
    let config: ConfigFile = serde_json::from_slice(&config_raw)
        .map_err(|e| format!("bad image config {}: {e}", manifest.config.digest))?;
    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(format!(
            "manifest {} has {} layers but its config lists {} diff ids",
            manifest_desc.digest,
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        ));
    }
    let chains = chain_ids(&config.rootfs.diff_ids);
    members
        .copy_blob(
            ctrd,
            &lease,
            &manifest.config,
            config_gc_labels(chains.last()),
        )
        .await?;
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        let mut labels = HashMap::new();
        labels.insert("containerd.io/uncompressed".to_string(), diff_id.clone());
        members.copy_blob(ctrd, &lease, layer, labels).await?;
    }
    members
        .copy_blob(ctrd, &lease, &manifest_desc, manifest_gc_labels(&manifest))
        .await?;
    unpack::unpack(ctrd, &lease, &manifest, &config.rootfs.diff_ids).await?;
    put_record(ctrd, &name, entry).await?;
    Ok(ImageInfo {
        reference: name,
        digest: entry.digest.clone(),
        config: config.image_config(),
    })
}

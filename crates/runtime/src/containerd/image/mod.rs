//! Images: make a reference present (image record, blobs, unpacked
//! snapshots) with at most one pull in flight per reference, and serve it
//! from containerd alone when it is already there.
//!
//! Reading order: [`model`] (documents and chain ids), [`pull`] (registry to
//! Content store), [`unpack`] (Content store to snapshots), [`archive`] (an
//! OCI archive file to Content store), then this file, which ties them
//! together around containerd's Images records and leases.

pub mod archive;
pub mod model;
pub mod pull;
pub mod unpack;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use containerd_client::services::v1::{
    CreateImageRequest, GetImageRequest, Image, UpdateImageRequest,
};
use containerd_client::services::v1::{CreateRequest as LeaseCreate, DeleteRequest as LeaseDelete};
use containerd_client::types::Descriptor as CtrdDescriptor;
use futures::future::{BoxFuture, FutureExt, Shared};

use super::client::{is_already_exists, is_not_found, status_message, Ctrd};
use super::content;
use super::registry_config::RegistriesConfig;
use crate::{ImageInfo, RegistryAuth, RuntimeError};
use model::{chain_ids, is_index, pick_platform, ConfigFile, Descriptor, Index, Manifest};

/// One pull (or local lookup) that concurrent callers share.
type Flight = Shared<BoxFuture<'static, Result<ImageInfo, String>>>;

/// The image half of the containerd runtime.
pub struct ImageStore {
    inner: Arc<Inner>,
}

struct Inner {
    ctrd: Ctrd,
    /// Mirrors, plain-HTTP permissions and credentials per registry host.
    registries: RegistriesConfig,
    /// Flights in progress by reference; an entry leaves when its flight
    /// ends, so a failed pull is retried by the next call.
    inflight: Mutex<HashMap<String, Flight>>,
    /// Registry pulls started, by reference: lets tests prove single-flight
    /// and that a present image costs no network.
    pulls: Mutex<HashMap<String, u64>>,
}

impl ImageStore {
    pub fn new(ctrd: Ctrd, registries: RegistriesConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                ctrd,
                registries,
                inflight: Mutex::new(HashMap::new()),
                pulls: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// How many registry pulls were started for `reference`.
    pub fn pull_count(&self, reference: &str) -> u64 {
        lock(&self.inner.pulls).get(reference).copied().unwrap_or(0)
    }

    /// Makes `reference` present; see [`crate::ContainerRuntime::ensure_image`].
    pub async fn ensure(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError> {
        let flight = {
            let mut inflight = lock(&self.inner.inflight);
            match inflight.get(reference) {
                Some(f) => f.clone(),
                None => {
                    let inner = self.inner.clone();
                    let key = reference.to_string();
                    let auth = auth.cloned();
                    // Spawned, so that a caller giving up (a stopped task)
                    // does not abort a pull others are waiting for.
                    let handle = tokio::spawn(async move {
                        let result = inner.ensure_uncached(&key, auth.as_ref()).await;
                        lock(&inner.inflight).remove(&key);
                        result
                    });
                    let flight: Flight = handle
                        .map(|joined| {
                            joined.unwrap_or_else(|e| Err(format!("pull task failed: {e}")))
                        })
                        .boxed()
                        .shared();
                    inflight.insert(reference.to_string(), flight.clone());
                    flight
                }
            }
        };
        flight.await.map_err(|message| RuntimeError::Pull {
            reference: reference.to_string(),
            message,
        })
    }

    /// Loads an OCI archive; see [`archive`].
    pub async fn load_archive(
        &self,
        path: &std::path::Path,
    ) -> Result<Vec<ImageInfo>, RuntimeError> {
        archive::load(&self.inner.ctrd, path).await
    }

    /// The top snapshot (chain id) of a present image, for container rootfs.
    pub async fn top_chain_id(&self, image: &ImageInfo) -> Result<Option<String>, String> {
        let ctrd = &self.inner.ctrd;
        let Some(record) = find_record(ctrd, &image.reference).await? else {
            return Err(format!("image {} is not present", image.reference));
        };
        let (_, config) = read_manifest_and_config(ctrd, &record).await?;
        Ok(chain_ids(&config.rootfs.diff_ids).last().cloned())
    }
}

impl Inner {
    #[tracing::instrument(skip(self, auth), fields(namespace = %self.ctrd.namespace()))]
    async fn ensure_uncached(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, String> {
        if let Some(info) = local_image(&self.ctrd, reference).await? {
            tracing::debug!(digest = %info.digest, "image present locally");
            return Ok(info);
        }
        *lock(&self.pulls).entry(reference.to_string()).or_default() += 1;
        let started = std::time::Instant::now();
        let result = with_lease(&self.ctrd, |lease| async move {
            let fetched =
                pull::fetch(&self.ctrd, &lease, &self.registries, reference, auth).await?;
            let chain =
                unpack::unpack(&self.ctrd, &lease, &fetched.manifest, &fetched.config.rootfs.diff_ids)
                    .await?;
            put_record(&self.ctrd, reference, &fetched.target).await?;
            tracing::info!(digest = %fetched.target.digest, top = ?chain, elapsed_ms = started.elapsed().as_millis() as u64, "pulled image");
            Ok(ImageInfo {
                reference: reference.to_string(),
                digest: fetched.target.digest.clone(),
                config: fetched.config.image_config(),
            })
        })
        .await;
        result
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding one of these maps leaves it consistent (every
    // critical section is a single insert/remove), so poison is ignored.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Runs `work` holding a fresh containerd lease, so content and snapshots it
/// creates survive garbage collection until an image record refers to them;
/// the lease is dropped afterwards whatever happened.
pub(crate) async fn with_lease<F, Fut, T>(ctrd: &Ctrd, work: F) -> Result<T, String>
where
    F: FnOnce(String) -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let id = format!("orca-{}-{}", ctrd.namespace(), super::unique_suffix());
    let mut labels = HashMap::new();
    // If orca dies mid-pull, containerd drops the lease by itself.
    let expire = chrono::Utc::now() + chrono::Duration::hours(1);
    labels.insert(
        "containerd.io/gc.expire".to_string(),
        expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
    );
    ctrd.leases()
        .create(ctrd.req(LeaseCreate {
            id: id.clone(),
            labels,
        }))
        .await
        .map_err(|s| format!("create lease: {}", status_message(&s)))?;
    let result = work(id.clone()).await;
    if let Err(s) = ctrd
        .leases()
        .delete(ctrd.req(LeaseDelete {
            id: id.clone(),
            sync: false,
        }))
        .await
    {
        tracing::warn!(lease = %id, error = %status_message(&s), "could not delete lease; it expires in an hour");
    }
    result
}

/// Creates or retargets the image record `name`.
pub(crate) async fn put_record(ctrd: &Ctrd, name: &str, target: &Descriptor) -> Result<(), String> {
    let image = Image {
        name: name.to_string(),
        labels: HashMap::new(),
        target: Some(CtrdDescriptor {
            media_type: target.media_type.clone(),
            digest: target.digest.clone(),
            size: target.size,
            annotations: HashMap::new(),
        }),
        created_at: None,
        updated_at: None,
    };
    match ctrd
        .images()
        .create(ctrd.req(CreateImageRequest {
            image: Some(image.clone()),
            source_date_epoch: None,
        }))
        .await
    {
        Ok(_) => Ok(()),
        Err(s) if is_already_exists(&s) => ctrd
            .images()
            .update(ctrd.req(UpdateImageRequest {
                image: Some(image),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["target".to_string()],
                }),
                source_date_epoch: None,
            }))
            .await
            .map(|_| ())
            .map_err(|s| format!("update image record {name}: {}", status_message(&s))),
        Err(s) => Err(format!(
            "create image record {name}: {}",
            status_message(&s)
        )),
    }
}

/// The namespace's images with their size in the content store (manifest,
/// config and layers), for image garbage collection. An image whose
/// documents cannot be read is listed with the size of its target alone.
pub async fn list(ctrd: &Ctrd) -> Result<Vec<crate::ImageListing>, RuntimeError> {
    use containerd_client::services::v1::ListImagesRequest;
    let images = ctrd
        .images()
        .list(ctrd.req(ListImagesRequest { filters: vec![] }))
        .await
        .map_err(|s| super::client::status_error("list images", s))?
        .into_inner()
        .images;
    let mut out = Vec::with_capacity(images.len());
    for record in images {
        let target = record.target.clone().unwrap_or_default();
        let mut size = u64::try_from(target.size).unwrap_or(0);
        if let Ok((manifest, _)) = read_manifest_and_config(ctrd, &record).await {
            size += std::iter::once(&manifest.config)
                .chain(&manifest.layers)
                .map(|d| u64::try_from(d.size).unwrap_or(0))
                .sum::<u64>();
        }
        let created_at = record
            .created_at
            .and_then(|t| {
                let secs = u64::try_from(t.seconds).ok()?;
                let nanos = u32::try_from(t.nanos).ok()?;
                Some(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::new(secs, nanos))
            })
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        out.push(crate::ImageListing {
            reference: record.name,
            digest: target.digest,
            size,
            created_at,
        });
    }
    Ok(out)
}

/// The image record for `reference`, under its name as given or, failing
/// that, its normalised name (`busybox:1` -> `docker.io/library/busybox:1`,
/// the name [`archive`] loads under).
async fn find_record(ctrd: &Ctrd, reference: &str) -> Result<Option<Image>, String> {
    let mut names = vec![reference.to_string()];
    if let Ok(parsed) = pull::parse_reference(reference) {
        let whole = parsed.whole();
        if whole != reference {
            names.push(whole);
        }
    }
    for name in names {
        match ctrd
            .images()
            .get(ctrd.req(GetImageRequest { name: name.clone() }))
            .await
        {
            Ok(r) => return Ok(r.into_inner().image),
            Err(s) if is_not_found(&s) => continue,
            Err(s) => return Err(format!("get image record {name}: {}", status_message(&s))),
        }
    }
    Ok(None)
}

/// Follows an image record to its manifest and config (both read from the
/// Content store).
async fn read_manifest_and_config(
    ctrd: &Ctrd,
    record: &Image,
) -> Result<(Manifest, ConfigFile), String> {
    let target = record
        .target
        .as_ref()
        .ok_or_else(|| format!("image record {} has no target", record.name))?;
    let mut raw = content::read_all(ctrd, &target.digest).await?;
    if is_index(&target.media_type, &raw) {
        let index: Index = serde_json::from_slice(&raw)
            .map_err(|e| format!("bad image index {}: {e}", target.digest))?;
        let chosen = pick_platform(&index).ok_or_else(|| {
            format!(
                "image index {} has no manifest for this platform",
                target.digest
            )
        })?;
        raw = content::read_all(ctrd, &chosen.digest).await?;
    }
    let manifest: Manifest =
        serde_json::from_slice(&raw).map_err(|e| format!("bad image manifest: {e}"))?;
    let config_raw = content::read_all(ctrd, &manifest.config.digest).await?;
    let config: ConfigFile = serde_json::from_slice(&config_raw)
        .map_err(|e| format!("bad image config {}: {e}", manifest.config.digest))?;
    Ok((manifest, config))
}

/// The image if containerd already holds it: record, blobs and unpacked
/// snapshots; unpacks from local blobs when only the snapshots are missing.
/// `None` means a pull is needed.
pub(crate) async fn local_image(ctrd: &Ctrd, reference: &str) -> Result<Option<ImageInfo>, String> {
    let Some(record) = find_record(ctrd, reference).await? else {
        return Ok(None);
    };
    let digest = record
        .target
        .as_ref()
        .map(|t| t.digest.clone())
        .unwrap_or_default();
    let (manifest, config) = match read_manifest_and_config(ctrd, &record).await {
        Ok(found) => found,
        Err(e) => {
            tracing::info!(reference, error = %e, "image record present but incomplete; pulling");
            return Ok(None);
        }
    };
    let chains = chain_ids(&config.rootfs.diff_ids);
    let unpacked = match chains.last() {
        Some(top) => unpack::snapshot_exists(ctrd, top).await?,
        None => true,
    };
    if !unpacked {
        for layer in &manifest.layers {
            if content::info(ctrd, &layer.digest).await?.is_none() {
                return Ok(None);
            }
        }
        let (manifest, diff_ids) = (&manifest, &config.rootfs.diff_ids);
        with_lease(ctrd, |lease| async move {
            unpack::unpack(ctrd, &lease, manifest, diff_ids).await
        })
        .await?;
    }
    Ok(Some(ImageInfo {
        reference: reference.to_string(),
        digest,
        config: config.image_config(),
    }))
}

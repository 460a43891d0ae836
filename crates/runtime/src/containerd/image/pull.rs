//! Fetching an image from a registry into containerd's Content store.
//!
//! containerd 1.6 has no Transfer service, so the client does what `ctr pull`
//! does: resolve the tag to a manifest (choosing linux on this machine's
//! architecture from an index), then stream config and layers into the
//! Content store with their expected digests, skipping blobs already there,
//! and label each blob so containerd's garbage collector keeps what an image
//! refers to.

use std::collections::HashMap;
use std::error::Error as _;

use bytes::Bytes;
use futures::{FutureExt, StreamExt, TryStreamExt};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::secrets::RegistryAuth as OciAuth;
use oci_client::Reference;

use super::super::client::Ctrd;
use super::super::content;
use super::super::registry_config::{Endpoint, RegistriesConfig};
use super::model::{
    chain_ids, config_gc_labels, index_gc_labels, is_index, manifest_gc_labels, media_type_of,
    pick_platform, ConfigFile, Descriptor, Index, Manifest, ACCEPTED_MANIFESTS,
};
use crate::RegistryAuth;

/// Layers fetched at once: enough to overlap latency, few enough not to
/// swamp a small machine's disk.
const PARALLEL_LAYERS: usize = 3;

/// An image whose blobs are all in the Content store.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// What the reference resolved to (an index or a manifest): the image
    /// record's target, and the digest reported as the image digest.
    pub target: Descriptor,
    pub manifest: Manifest,
    pub config: ConfigFile,
}

/// Parses an image reference, normalising Docker Hub short names.
pub fn parse_reference(reference: &str) -> Result<Reference, String> {
    reference
        .parse::<Reference>()
        .map_err(|e| format!("invalid image reference: {e}"))
}

/// Fetches `reference` into the Content store, trying the configured
/// mirrors before the registry itself.
pub async fn fetch(
    ctrd: &Ctrd,
    lease: &str,
    registries: &RegistriesConfig,
    reference: &str,
    auth: Option<&RegistryAuth>,
) -> Result<Fetched, String> {
    let parsed = parse_reference(reference)?;
    // One client per pull: oci-client keeps the first credentials it sees
    // for a registry, and per-call credentials must be able to differ.
    let client = oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(registries.plain_http_endpoints()),
        connect_timeout: Some(std::time::Duration::from_secs(10)),
        read_timeout: Some(std::time::Duration::from_secs(60)),
        ..Default::default()
    });
    let endpoints = registries.endpoints(parsed.registry(), auth);
    let mut errors = Vec::new();
    for endpoint in &endpoints {
        let at = retarget(&parsed, endpoint);
        match fetch_from(ctrd, lease, &client, &at, &oci_auth(endpoint)).await {
            Ok(fetched) => return Ok(fetched),
            Err(e) => {
                tracing::warn!(reference, endpoint = %endpoint.host, error = %e, "pull from endpoint failed");
                errors.push(if endpoints.len() > 1 {
                    format!("{}: {e}", endpoint.host)
                } else {
                    e
                });
            }
        }
    }
    Err(errors.join("; "))
}

/// The same repository and tag (or digest) on another endpoint.
fn retarget(parsed: &Reference, endpoint: &Endpoint) -> Reference {
    let registry = endpoint.host.clone();
    let repository = parsed.repository().to_string();
    match (parsed.tag(), parsed.digest()) {
        (_, Some(digest)) => Reference::with_digest(registry, repository, digest.to_string()),
        (tag, None) => {
            Reference::with_tag(registry, repository, tag.unwrap_or("latest").to_string())
        }
    }
}

fn oci_auth(endpoint: &Endpoint) -> OciAuth {
    match &endpoint.auth {
        Some(a) => OciAuth::Basic(a.username.clone(), a.password.clone()),
        None => OciAuth::Anonymous,
    }
}

/// An oci-client error with its causes (reqwest hides "connection refused"
/// two levels down).
fn describe(err: &oci_client::errors::OciDistributionError) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    // The registry's own words for a missing tag, whatever the client says.
    if text.contains("MANIFEST_UNKNOWN") || text.contains("manifest unknown") {
        return format!("manifest unknown ({text})");
    }
    // rustls meeting a plain-HTTP server: say what to do about it.
    if text.contains("InvalidContentType") {
        return format!(
            "{text} (the endpoint speaks plain HTTP; allow that with insecure = true in its registry config)"
        );
    }
    text
}

async fn fetch_from(
    ctrd: &Ctrd,
    lease: &str,
    client: &oci_client::Client,
    at: &Reference,
    auth: &OciAuth,
) -> Result<Fetched, String> {
    let (raw, digest) = client
        .pull_manifest_raw(at, auth, &ACCEPTED_MANIFESTS)
        .await
        .map_err(|e| describe(&e))?;
    let media_type = media_type_of(&raw);
    let target = Descriptor {
        media_type: media_type.clone(),
        digest: digest.clone(),
        size: i64::try_from(raw.len()).unwrap_or(i64::MAX),
        platform: None,
        annotations: Default::default(),
    };

    let (manifest_raw, manifest_digest) = if is_index(&media_type, &raw) {
        let index: Index =
            serde_json::from_slice(&raw).map_err(|e| format!("bad image index {digest}: {e}"))?;
        let chosen = pick_platform(&index).ok_or_else(|| {
            format!(
                "image index {digest} has no manifest for linux/{}",
                super::model::host_arch()
            )
        })?;
        let chosen_digest = chosen.digest.clone();
        let by_digest = Reference::with_digest(
            at.registry().to_string(),
            at.repository().to_string(),
            chosen_digest.clone(),
        );
        let (m_raw, m_digest) = client
            .pull_manifest_raw(&by_digest, auth, &ACCEPTED_MANIFESTS)
            .await
            .map_err(|e| describe(&e))?;
        let labels = index_gc_labels(&index, &chosen_digest);
        content::write_bytes(ctrd, lease, &digest, raw, labels).await?;
        (m_raw, m_digest)
    } else {
        (raw, digest.clone())
    };

    let manifest: Manifest = serde_json::from_slice(&manifest_raw)
        .map_err(|e| format!("bad image manifest {manifest_digest}: {e}"))?;

    // Config first: its diff ids name the snapshots, and its label keeps them.
    let mut config_raw = Vec::new();
    client
        .pull_blob(at, manifest.config.digest.as_str(), &mut config_raw)
        .await
        .map_err(|e| describe(&e))?;
    let config: ConfigFile = serde_json::from_slice(&config_raw)
        .map_err(|e| format!("bad image config {}: {e}", manifest.config.digest))?;
    let chains = chain_ids(&config.rootfs.diff_ids);
    content::write_bytes(
        ctrd,
        lease,
        &manifest.config.digest,
        Bytes::from(config_raw),
        config_gc_labels(chains.last()),
    )
    .await?;

    if manifest.layers.len() != config.rootfs.diff_ids.len() {
        return Err(format!(
            "manifest {manifest_digest} has {} layers but its config lists {} diff ids",
            manifest.layers.len(),
            config.rootfs.diff_ids.len()
        ));
    }
    // Built in a loop rather than a closure over the iterator: rustc cannot
    // yet prove such a stream Send inside a spawned future.
    let mut layer_fetches = Vec::with_capacity(manifest.layers.len());
    for (layer, diff_id) in manifest.layers.iter().zip(&config.rootfs.diff_ids) {
        layer_fetches.push(fetch_layer(ctrd, lease, client, at, layer, diff_id).boxed());
    }
    futures::stream::iter(layer_fetches)
        .buffer_unordered(PARALLEL_LAYERS)
        .try_collect::<Vec<()>>()
        .await?;

    // The manifest last: once it is stored, everything it names is too.
    content::write_bytes(
        ctrd,
        lease,
        &manifest_digest,
        manifest_raw,
        manifest_gc_labels(&manifest),
    )
    .await?;
    Ok(Fetched {
        target,
        manifest,
        config,
    })
}

async fn fetch_layer(
    ctrd: &Ctrd,
    lease: &str,
    client: &oci_client::Client,
    at: &Reference,
    layer: &Descriptor,
    diff_id: &str,
) -> Result<(), String> {
    if content::info(ctrd, &layer.digest).await?.is_some() {
        tracing::debug!(digest = %layer.digest, "layer already in the content store");
        return Ok(());
    }
    let stream = client
        .pull_blob_stream(at, layer.digest.as_str())
        .await
        .map_err(|e| describe(&e))?;
    let data = stream.map(|chunk| chunk.map_err(|e| e.to_string()));
    let mut labels = HashMap::new();
    labels.insert(
        "containerd.io/uncompressed".to_string(),
        diff_id.to_string(),
    );
    content::write(ctrd, lease, &layer.digest, layer.size, labels, data).await
}

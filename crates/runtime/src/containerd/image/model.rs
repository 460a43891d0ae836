//! The OCI (and Docker schema 2) image documents a pull reads: index,
//! manifest, config; plus layer chain ids and the GC labels derived from them.
//!
//! Only the fields orca uses are modelled; unknown fields are ignored so that
//! both OCI and Docker media types parse.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::ImageConfig;

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";

/// The media types a pull accepts for the document a tag points to.
pub const ACCEPTED_MANIFESTS: [&str; 4] = [OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_LIST];

/// A content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    #[serde(default)]
    pub media_type: String,
    pub digest: String,
    pub size: i64,
    #[serde(default)]
    pub platform: Option<Platform>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
}

/// An image index (or Docker manifest list).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    #[serde(default)]
    pub manifests: Vec<Descriptor>,
}

/// An image manifest.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    pub config: Descriptor,
    #[serde(default)]
    pub layers: Vec<Descriptor>,
}

/// The image config file (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Deserialize)]
pub struct ConfigFile {
    #[serde(default)]
    pub config: Option<RunConfig>,
    pub rootfs: RootFs,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct RunConfig {
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    #[serde(default)]
    pub env: Option<Vec<String>>,
    #[serde(default)]
    pub working_dir: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct RootFs {
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

/// Whether a document with this media type (or, when the type is absent,
/// this shape) is an index rather than a manifest.
pub fn is_index(media_type: &str, raw: &[u8]) -> bool {
    match media_type {
        OCI_INDEX | DOCKER_LIST => true,
        OCI_MANIFEST | DOCKER_MANIFEST => false,
        _ => serde_json::from_slice::<serde_json::Value>(raw)
            .ok()
            .is_some_and(|v| v.get("manifests").is_some()),
    }
}

/// The media type a document declares, or a guess from its shape.
pub fn media_type_of(raw: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(raw).unwrap_or_default();
    match v.get("mediaType").and_then(|m| m.as_str()) {
        Some(m) => m.to_string(),
        None if v.get("manifests").is_some() => OCI_INDEX.to_string(),
        None => OCI_MANIFEST.to_string(),
    }
}

/// The GOARCH name of the machine orca runs on.
pub fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// The index entry for linux on this machine's architecture.
pub fn pick_platform(index: &Index) -> Option<&Descriptor> {
    index.manifests.iter().find(|d| {
        d.platform
            .as_ref()
            .is_some_and(|p| p.os == "linux" && p.architecture == host_arch())
    })
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// The chain ids of a layer stack (OCI image spec: ChainID(L0) = DiffID(L0),
/// ChainID(Ln) = sha256(ChainID(Ln-1) + " " + DiffID(Ln))). A committed
/// snapshot is named by its chain id, so identical stacks are unpacked once.
pub fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for diff in diff_ids {
        let next = match out.last() {
            None => diff.clone(),
            Some(parent) => sha256_digest(format!("{parent} {diff}").as_bytes()),
        };
        out.push(next);
    }
    out
}

impl ConfigFile {
    /// The parts of the config that shape a container.
    pub fn image_config(&self) -> ImageConfig {
        let c = self.config.clone().unwrap_or_default();
        ImageConfig {
            entrypoint: c.entrypoint.unwrap_or_default(),
            cmd: c.cmd.unwrap_or_default(),
            env: c.env.unwrap_or_default(),
            working_dir: c.working_dir.filter(|w| !w.is_empty()),
            user: c.user.filter(|u| !u.is_empty()),
        }
    }
}

/// Labels for a manifest blob: it keeps its config and layers alive.
pub fn manifest_gc_labels(manifest: &Manifest) -> HashMap<String, String> {
    let mut labels = HashMap::new();
    labels.insert(
        "containerd.io/gc.ref.content.config".to_string(),
        manifest.config.digest.clone(),
    );
    for (i, layer) in manifest.layers.iter().enumerate() {
        labels.insert(
            format!("containerd.io/gc.ref.content.l.{i}"),
            layer.digest.clone(),
        );
    }
    labels
}

/// Labels for an index blob: it keeps the manifest orca chose alive.
pub fn index_gc_labels(index: &Index, chosen: &str) -> HashMap<String, String> {
    index
        .manifests
        .iter()
        .enumerate()
        .filter(|(_, d)| d.digest == chosen)
        .map(|(i, d)| {
            (
                format!("containerd.io/gc.ref.content.m.{i}"),
                d.digest.clone(),
            )
        })
        .collect()
}

/// Labels for a config blob: it keeps the unpacked snapshot chain alive.
pub fn config_gc_labels(top_chain_id: Option<&String>) -> HashMap<String, String> {
    top_chain_id
        .map(|c| {
            (
                format!(
                    "containerd.io/gc.ref.snapshot.{}",
                    super::super::client::SNAPSHOTTER
                ),
                c.clone(),
            )
        })
        .into_iter()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_image_spec() {
        let a = "sha256:aaaa".to_string();
        let b = "sha256:bbbb".to_string();
        let ids = chain_ids(&[a.clone(), b.clone()]);
        assert_eq!(ids[0], a);
        assert_eq!(ids[1], sha256_digest(b"sha256:aaaa sha256:bbbb"));
        assert!(chain_ids(&[]).is_empty());
    }

    #[test]
    fn docker_and_oci_configs_parse() {
        let raw = br#"{"architecture":"amd64","config":{"Entrypoint":null,"Cmd":["sh"],
            "Env":["PATH=/bin"],"WorkingDir":"","User":"1000"},"rootfs":{"type":"layers",
            "diff_ids":["sha256:01"]}}"#;
        let cfg: ConfigFile = serde_json::from_slice(raw).expect("config parses");
        let ic = cfg.image_config();
        assert_eq!(ic.cmd, vec!["sh"]);
        assert!(ic.entrypoint.is_empty());
        assert_eq!(ic.working_dir, None);
        assert_eq!(ic.user.as_deref(), Some("1000"));
        assert_eq!(cfg.rootfs.diff_ids, vec!["sha256:01"]);
    }

    #[test]
    fn the_host_platform_is_picked_from_an_index() {
        let raw = format!(
            r#"{{"manifests":[
              {{"digest":"sha256:arm","size":1,"platform":{{"os":"linux","architecture":"s390x"}}}},
              {{"digest":"sha256:me","size":2,"platform":{{"os":"linux","architecture":"{}"}}}}]}}"#,
            host_arch()
        );
        assert!(is_index("", raw.as_bytes()));
        let index: Index = serde_json::from_str(&raw).expect("index parses");
        assert_eq!(
            pick_platform(&index).map(|d| d.digest.as_str()),
            Some("sha256:me")
        );
        assert_eq!(
            index_gc_labels(&index, "sha256:me").get("containerd.io/gc.ref.content.m.1"),
            Some(&"sha256:me".to_string())
        );
    }
}

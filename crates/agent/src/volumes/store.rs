//! The shell of [`super::plan`]: makes a task's directories, shared
//! volumes and /etc files, and removes a task's. Blocking file system
//! calls; the executor runs them on the blocking pool.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};

use orca_runtime::{MountKind, MountSpec};
use serde::{Deserialize, Serialize};

use super::plan::{is_allowed, SharedVolume, TaskSetup, VolumeError, VolumeSettings};

/// What a shared volume was made with (`meta.json` beside its `_data`),
/// compared with every later task that names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SharedMeta {
    pub driver: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Milliseconds since the epoch.
    pub created_at: i64,
}

const META: &str = "meta.json";

fn io_err(what: &str, path: &Path, e: io::Error) -> VolumeError {
    VolumeError::Io(format!("{what} {}: {e}", path.display()))
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    serde_json::to_string(labels).unwrap_or_default()
}

/// Makes (or finds, matching) one shared volume.
fn ensure_shared(v: &SharedVolume) -> Result<(), VolumeError> {
    let meta_path = v.dir.join(META);
    match std::fs::read(&meta_path) {
        Ok(bytes) => {
            let meta: SharedMeta = serde_json::from_slice(&bytes)
                .map_err(|e| VolumeError::Io(format!("reading {}: {e}", meta_path.display())))?;
            if meta.driver != v.driver || meta.labels != v.labels {
                return Err(VolumeError::SharedMismatch {
                    volume: v.name.clone(),
                    existing_driver: meta.driver,
                    existing_labels: labels_text(&meta.labels),
                    driver: v.driver.clone(),
                    labels: labels_text(&v.labels),
                });
            }
            let data = v.dir.join("_data");
            std::fs::create_dir_all(&data).map_err(|e| io_err("creating", &data, e))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if !v.autoprovision {
                return Err(VolumeError::SharedMissing {
                    volume: v.name.clone(),
                });
            }
            let data = v.dir.join("_data");
            std::fs::create_dir_all(&data).map_err(|e| io_err("creating", &data, e))?;
            let meta = SharedMeta {
                driver: v.driver.clone(),
                labels: v.labels.clone(),
                created_at: chrono::Utc::now().timestamp_millis(),
            };
            let bytes = serde_json::to_vec_pretty(&meta)
                .map_err(|e| VolumeError::Io(format!("encoding {}: {e}", meta_path.display())))?;
            // The meta file last: a volume without one is made again.
            orca_fs::write_atomic(&meta_path, &bytes).map_err(|e| io_err("writing", &meta_path, e))
        }
        Err(e) => Err(io_err("reading", &meta_path, e)),
    }
}

/// Makes everything `setup` names and returns each container's mounts with
/// host paths in their canonical form. Idempotent: a second call (an agent
/// restarted before the containers were made) finds what the first made.
pub fn prepare(setup: &TaskSetup) -> Result<BTreeMap<String, Vec<MountSpec>>, VolumeError> {
    for dir in &setup.task_dirs {
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
    }
    for v in &setup.shared {
        ensure_shared(v)?;
    }
    let mut canonical: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for h in &setup.host_paths {
        // Docker makes a missing bind source; the allow-list was checked.
        if !h.path.exists() {
            std::fs::create_dir_all(&h.path).map_err(|e| io_err("creating", &h.path, e))?;
        }
        let real = std::fs::canonicalize(&h.path).map_err(|e| io_err("resolving", &h.path, e))?;
        let roots: Vec<PathBuf> = setup
            .allowed_roots
            .iter()
            .map(|r| std::fs::canonicalize(r).unwrap_or_else(|_| r.clone()))
            .collect();
        if !is_allowed(&real, &roots) {
            return Err(VolumeError::HostPathNotAllowed {
                volume: h.volume.clone(),
                path: format!("{} (resolves to {})", h.path.display(), real.display()),
                allowed: roots
                    .iter()
                    .map(|r| r.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        canonical.insert(h.path.clone(), real);
    }
    for (path, content) in &setup.files {
        let dir = path.parent().unwrap_or(Path::new("/"));
        std::fs::create_dir_all(dir).map_err(|e| io_err("creating", dir, e))?;
        // Rewritten only when it changed: a container already binding the
        // file keeps seeing the one the agent renders.
        if std::fs::read(path).ok().as_deref() != Some(content.as_bytes()) {
            orca_fs::write_atomic(path, content.as_bytes())
                .map_err(|e| io_err("writing", path, e))?;
        }
    }
    for files in &setup.secret_files {
        super::secret_files::write(files)?;
    }
    let mut mounts = setup.mounts.clone();
    for list in mounts.values_mut() {
        for m in list.iter_mut() {
            if let MountKind::Bind { source, .. } = &mut m.kind {
                if let Some(real) = canonical.get(source) {
                    *source = real.clone();
                }
            }
        }
    }
    Ok(mounts)
}

fn remove_dir(path: &Path) -> io::Result<()> {
    match std::fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Removes a task's own volumes and /etc files; not an error if gone.
/// Shared volumes and host paths are never touched.
pub fn remove_task(settings: &VolumeSettings, task_id: &str) -> io::Result<()> {
    remove_dir(&settings.task_volumes_dir(task_id))?;
    let files = settings.task_files_dir(task_id);
    super::secret_files::unmount_all(&files)?;
    remove_dir(&files)
}

fn entries(dir: &Path) -> io::Result<Vec<String>> {
    match std::fs::read_dir(dir) {
        Ok(list) => list
            .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
            .collect(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(e),
    }
}

/// Task ids holding volumes or /etc files on this node: what the reconcile
/// step compares with the tasks it holds, removing the others.
pub fn held(settings: &VolumeSettings) -> io::Result<BTreeSet<String>> {
    let mut ids: BTreeSet<String> = entries(&settings.volumes_dir.join("tasks"))?
        .into_iter()
        .collect();
    ids.extend(entries(&settings.files_dir)?);
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::volumes::plan::HostPath;

    fn settings(root: &Path) -> VolumeSettings {
        VolumeSettings {
            volumes_dir: root.join("volumes"),
            files_dir: root.join("task-files"),
            host_volume_paths: vec![root.join("allowed")],
            dns_servers: Vec::new(),
        }
    }

    fn shared(s: &VolumeSettings, labels: &[(&str, &str)], autoprovision: bool) -> SharedVolume {
        SharedVolume {
            name: "cache".into(),
            dir: s.shared_dir("cache"),
            driver: "local".into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            autoprovision,
        }
    }

    #[test]
    fn a_task_is_prepared_listed_and_removed_while_shared_volumes_stay() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = settings(tmp.path());
        let setup = TaskSetup {
            task_dirs: vec![s.task_volumes_dir("t1").join("scratch")],
            shared: vec![shared(&s, &[("a", "b")], true)],
            files: vec![(s.task_files_dir("t1").join("app/hosts"), "x\n".into())],
            ..TaskSetup::default()
        };
        prepare(&setup).unwrap_or_else(|e| panic!("{e}"));
        prepare(&setup).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.task_volumes_dir("t1").join("scratch").is_dir());
        assert!(s.shared_dir("cache").join("_data").is_dir());
        assert_eq!(
            std::fs::read_to_string(s.task_files_dir("t1").join("app/hosts")).ok(),
            Some("x\n".into())
        );
        assert_eq!(held(&s).ok(), Some(BTreeSet::from(["t1".to_string()])));
        remove_task(&s, "t1").unwrap_or_else(|e| panic!("{e}"));
        remove_task(&s, "t1").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(held(&s).ok(), Some(BTreeSet::new()));
        assert!(s.shared_dir("cache").join("_data").is_dir());
    }

    #[test]
    fn shared_volumes_need_autoprovision_and_matching_labels() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = settings(tmp.path());
        let only = |v: SharedVolume| TaskSetup {
            shared: vec![v],
            ..TaskSetup::default()
        };
        assert!(matches!(
            prepare(&only(shared(&s, &[], false))),
            Err(VolumeError::SharedMissing { .. })
        ));
        prepare(&only(shared(&s, &[("a", "b")], true))).unwrap_or_else(|e| panic!("{e}"));
        // Made once, later tasks may name it without autoprovision.
        prepare(&only(shared(&s, &[("a", "b")], false))).unwrap_or_else(|e| panic!("{e}"));
        let e = prepare(&only(shared(&s, &[("a", "c")], true)));
        assert!(
            matches!(e, Err(VolumeError::SharedMismatch { .. })),
            "{e:?}"
        );
    }

    #[test]
    fn host_paths_are_made_resolved_and_a_symlink_out_is_refused() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let s = settings(tmp.path());
        let allowed = tmp.path().join("allowed");
        std::fs::create_dir_all(&allowed).unwrap_or_else(|e| panic!("{e}"));
        let inside = allowed.join("web");
        let setup = TaskSetup {
            host_paths: vec![HostPath {
                volume: "h".into(),
                path: inside.clone(),
            }],
            allowed_roots: s.host_volume_paths.clone(),
            mounts: BTreeMap::from([(
                "c".to_string(),
                vec![MountSpec {
                    destination: "/web".into(),
                    kind: MountKind::Bind {
                        source: inside.clone(),
                        readonly: false,
                    },
                }],
            )]),
            ..TaskSetup::default()
        };
        let mounts = prepare(&setup).unwrap_or_else(|e| panic!("{e}"));
        assert!(inside.is_dir());
        let real = std::fs::canonicalize(&inside).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            mounts["c"][0].kind,
            MountKind::Bind {
                source: real,
                readonly: false
            }
        );
        let out = allowed.join("out");
        std::os::unix::fs::symlink(tmp.path(), &out).unwrap_or_else(|e| panic!("{e}"));
        let escape = TaskSetup {
            host_paths: vec![HostPath {
                volume: "h".into(),
                path: out,
            }],
            ..setup
        };
        let e = prepare(&escape);
        assert!(
            matches!(e, Err(VolumeError::HostPathNotAllowed { .. })),
            "{e:?}"
        );
    }
}

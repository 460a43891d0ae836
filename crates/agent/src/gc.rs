//! Garbage collection of what tasks leave behind once they are gone, and of
//! images no task has used for a while. The decisions are pure functions
//! ([`images_to_remove`], [`stale_log_dirs`]); [`Collector::run`] gathers
//! their inputs and carries them out. Containers, namespaces and addresses
//! of tasks that are gone are the reconcile step's business (it stops and
//! removes them like any task the controller no longer wants, and so are a
//! task's own volumes and /etc files: a directory under `volumes/tasks` or
//! `task-files` of a task nothing else names is removed by that same
//! cleanup, `crate::volumes`); this pass
//! covers what outlives a task: log files past their retention, root
//! filesystems of containers whose removal was cut short, and images.
//!
//! Images are collected as the kubelet does: only when the disk holding
//! them is fuller than `image_gc_high_threshold_percent`, least recently
//! used first (so the newest stay), until it is expected under
//! `image_gc_low_threshold_percent`; never an image a container or a
//! running task uses, nor one used within `image_gc_min_unused`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use orca_core::task::TaskStatus;
use orca_runtime::{ContainerRuntime, ImageListing};
use tokio::time::Instant;

use crate::reconcile::World;

/// The collector's settings (all from the agent's config).
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Log directories of tasks that are gone are kept this long.
    pub task_log_retention: Duration,
    /// Image GC starts when the disk is fuller than this (percent)...
    pub image_gc_high_threshold_percent: u8,
    /// ... and removes images until it expects to be under this.
    pub image_gc_low_threshold_percent: u8,
    /// An image unused for less than this is kept.
    pub image_gc_min_unused: Duration,
    /// The file system holding the images (containerd's root).
    pub image_gc_disk_path: PathBuf,
}

/// How full a file system is, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiskUsage {
    pub used: u64,
    pub capacity: u64,
}

/// The images to remove, least recently used first. `last_used` holds when
/// each image was last seen in use (or first seen at all).
pub fn images_to_remove(
    images: &[ImageListing],
    in_use: &BTreeSet<String>,
    last_used: &BTreeMap<String, Instant>,
    usage: DiskUsage,
    config: &GcConfig,
    now: Instant,
) -> Vec<String> {
    let percent = |p: u8| usage.capacity / 100 * u64::from(p);
    if usage.used < percent(config.image_gc_high_threshold_percent) || usage.capacity == 0 {
        return Vec::new();
    }
    let mut to_free = usage
        .used
        .saturating_sub(percent(config.image_gc_low_threshold_percent));
    let mut candidates: Vec<(&ImageListing, Instant)> = images
        .iter()
        .filter(|i| !in_use.contains(&i.reference))
        .filter_map(|i| {
            let used = last_used.get(&i.reference).copied().unwrap_or(now);
            (now.saturating_duration_since(used) >= config.image_gc_min_unused).then_some((i, used))
        })
        .collect();
    candidates.sort_by_key(|(i, used)| (*used, i.created_at, i.reference.clone()));
    let mut out = Vec::new();
    for (image, _) in candidates {
        // At threshold 0 everything unused goes, even a size-less image.
        if to_free == 0 && config.image_gc_low_threshold_percent > 0 {
            break;
        }
        to_free = to_free.saturating_sub(image.size);
        out.push(image.reference.clone());
    }
    out
}

/// Task log directories to remove: tasks no longer known here whose
/// directory was last written more than `retention` ago.
pub fn stale_log_dirs(
    dirs: &[(String, SystemTime)],
    live: &BTreeSet<String>,
    now: SystemTime,
    retention: Duration,
) -> Vec<String> {
    dirs.iter()
        .filter(|(id, modified)| {
            !live.contains(id)
                && now
                    .duration_since(*modified)
                    .is_ok_and(|age| age >= retention)
        })
        .map(|(id, _)| id.clone())
        .collect()
}

/// The images in use: every container's, and every image a task still to
/// run needs.
pub fn images_in_use(world: &World) -> BTreeSet<String> {
    let mut used: BTreeSet<String> = world.containers.values().map(|c| c.image.clone()).collect();
    for (id, a) in world.assignments.iter().flatten() {
        if a.desired_status == TaskStatus::Running && !world.finished.contains_key(id) {
            used.extend(
                a.task_definition
                    .spec
                    .container_definitions
                    .iter()
                    .map(|d| orca_core::task::effective_container(d, &a.overrides).image),
            );
        }
    }
    used
}

/// The task ids the agent still knows of (their logs are kept).
fn live_tasks(world: &World) -> BTreeSet<String> {
    let mut live: BTreeSet<String> = world.tasks.keys().cloned().collect();
    live.extend(world.assignments.iter().flatten().map(|(id, _)| id.clone()));
    live.extend(world.finished.keys().cloned());
    live.extend(world.containers.values().filter_map(|c| c.task_id.clone()));
    live.extend(world.networks.iter().cloned());
    live
}

fn disk_usage(path: &Path) -> std::io::Result<DiskUsage> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).map_err(std::io::Error::other)?;
    // SAFETY: statvfs writes into the zeroed struct we own; c is a valid C string.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(c.as_ptr(), &mut st) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let block = st.f_frsize as u64;
    let capacity = st.f_blocks as u64 * block;
    let free = st.f_bavail as u64 * block;
    Ok(DiskUsage {
        used: capacity.saturating_sub(free),
        capacity,
    })
}

fn log_dirs(logs_dir: &Path) -> Vec<(String, SystemTime)> {
    let Ok(entries) = std::fs::read_dir(logs_dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let modified = e.metadata().ok()?.modified().ok()?;
            Some((e.file_name().to_string_lossy().into_owned(), modified))
        })
        .collect()
}

/// The periodic collection pass.
pub struct Collector {
    config: GcConfig,
    /// Container logs live under here, one directory per task.
    logs_dir: PathBuf,
    /// When each image was last seen in use (first seen, if never).
    last_used: BTreeMap<String, Instant>,
}

impl Collector {
    pub fn new(config: GcConfig, logs_dir: PathBuf) -> Self {
        Collector {
            config,
            logs_dir,
            last_used: BTreeMap::new(),
        }
    }

    /// One pass. `creating`: a container is being created now (its rootfs
    /// exists before its record, so stray root filesystems wait).
    pub async fn run(
        &mut self,
        runtime: &Arc<dyn ContainerRuntime>,
        world: &World,
        creating: bool,
        now: Instant,
    ) {
        let live = live_tasks(world);
        for id in stale_log_dirs(
            &log_dirs(&self.logs_dir),
            &live,
            SystemTime::now(),
            self.config.task_log_retention,
        ) {
            let dir = self.logs_dir.join(&id);
            match std::fs::remove_dir_all(&dir) {
                Ok(()) => {
                    tracing::info!(task = %id, "removed the logs of a task gone past their retention")
                }
                Err(e) => tracing::warn!(task = %id, error = %e, "could not remove old task logs"),
            }
        }
        if !creating {
            match runtime.remove_stray_snapshots().await {
                Ok(keys) if !keys.is_empty() => {
                    tracing::info!(?keys, "removed stray container root filesystems")
                }
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "stray snapshot collection skipped"),
            }
        }
        let images = match runtime.list_images().await {
            Ok(images) => images,
            Err(e) => {
                tracing::debug!(error = %e, "image collection skipped");
                return;
            }
        };
        let in_use = images_in_use(world);
        let present: BTreeSet<&String> = images.iter().map(|i| &i.reference).collect();
        self.last_used.retain(|r, _| present.contains(r));
        for image in &images {
            let entry = self.last_used.entry(image.reference.clone()).or_insert(now);
            if in_use.contains(&image.reference) {
                *entry = now;
            }
        }
        let usage = match disk_usage(&self.config.image_gc_disk_path) {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(path = %self.config.image_gc_disk_path.display(), error = %e, "cannot read disk usage; image collection skipped");
                return;
            }
        };
        for reference in
            images_to_remove(&images, &in_use, &self.last_used, usage, &self.config, now)
        {
            match runtime.remove_image(&reference).await {
                Ok(()) => {
                    tracing::info!(image = %reference, "removed an unused image");
                    self.last_used.remove(&reference);
                }
                Err(e) => {
                    tracing::warn!(image = %reference, error = %e, "could not remove an unused image")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(reference: &str, size: u64, created: u64) -> ImageListing {
        ImageListing {
            reference: reference.to_string(),
            digest: format!("sha256:{reference}"),
            size,
            created_at: SystemTime::UNIX_EPOCH + Duration::from_secs(created),
        }
    }

    fn config(high: u8, low: u8) -> GcConfig {
        GcConfig {
            task_log_retention: Duration::from_secs(60),
            image_gc_high_threshold_percent: high,
            image_gc_low_threshold_percent: low,
            image_gc_min_unused: Duration::from_secs(10),
            image_gc_disk_path: PathBuf::from("/"),
        }
    }

    #[test]
    fn images_go_least_recently_used_first_and_only_above_the_threshold() {
        let now = Instant::now() + Duration::from_secs(1000);
        let ago = |s: u64| now - Duration::from_secs(s);
        let images = [
            image("old", 30, 1),
            image("older", 30, 0),
            image("recent", 30, 2),
            image("busy", 30, 3),
            image("fresh", 30, 4),
        ];
        let in_use = BTreeSet::from(["busy".to_string()]);
        let last_used = BTreeMap::from([
            ("old".to_string(), ago(100)),
            ("older".to_string(), ago(200)),
            ("recent".to_string(), ago(50)),
            ("busy".to_string(), ago(500)),
            ("fresh".to_string(), ago(5)),
        ]);
        let cases = [
            // (used, high, low, expected)
            (700, 80, 60, vec![]),
            // 900 used of 1000: free 300 to reach 60%.
            (900, 80, 60, vec!["older", "old", "recent"]),
            // 850 used: 50 to free to reach 80%: two images of 30.
            (850, 80, 80, vec!["older", "old"]),
            // Threshold 0: every unused image old enough.
            (1, 0, 0, vec!["older", "old", "recent"]),
        ];
        for (used, high, low, expected) in cases {
            let got = images_to_remove(
                &images,
                &in_use,
                &last_used,
                DiskUsage {
                    used,
                    capacity: 1000,
                },
                &config(high, low),
                now,
            );
            assert_eq!(got, expected, "used {used}, high {high}, low {low}");
        }
    }

    #[test]
    fn logs_of_gone_tasks_go_after_their_retention() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1000);
        let at = |s: u64| SystemTime::UNIX_EPOCH + Duration::from_secs(s);
        let dirs = [
            ("gone-old".to_string(), at(100)),
            ("gone-new".to_string(), at(990)),
            ("live-old".to_string(), at(100)),
        ];
        let live = BTreeSet::from(["live-old".to_string()]);
        assert_eq!(
            stale_log_dirs(&dirs, &live, now, Duration::from_secs(60)),
            ["gone-old"]
        );
    }
}

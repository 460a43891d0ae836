//! From a container definition (with RunTask's overrides applied) to what
//! the runtime creates: ids, labels, resources, limits, the task's netns.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use orca_core::task_definition::ContainerDefinition;
use orca_runtime::{ContainerSpec, ImageInfo, Sensitive, Ulimit};

/// containerd allows ids of at most 76 characters.
const MAX_RUNTIME_ID: usize = 76;

/// The containerd id of container `index` of task `task_id`: readable, and
/// unique within the agent's namespace.
pub fn runtime_id(task_id: &str, index: usize, name: &str) -> String {
    let id = format!("{task_id}-{index}-{name}");
    truncate_at_char(&id, MAX_RUNTIME_ID).to_string()
}

/// The longest prefix of `s` of at most `max` bytes that ends on a
/// character boundary (`String::truncate` panics inside a character).
pub fn truncate_at_char(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The log file of one container. Callers pass names that passed
/// `orca_core::names` (the reconcile step refuses a task whose names do
/// not, before it makes any path of it).
pub fn log_path(logs_dir: &Path, task_id: &str, name: &str) -> PathBuf {
    logs_dir.join(task_id).join(format!("{name}.log"))
}

/// A container's hostname: its definition's, else the task id's first 12
/// characters (as Docker uses the container id's).
pub fn hostname(def: &ContainerDefinition, task_id: &str) -> String {
    def.hostname
        .clone()
        .unwrap_or_else(|| task_id.chars().take(12).collect())
}

/// The label naming a container's task (ARN).
pub const TASK_ARN_LABEL: &str = "orca.task-arn";
/// The label naming a container's task (id).
pub const TASK_ID_LABEL: &str = "orca.task-id";
/// The label naming a container's definition.
pub const CONTAINER_NAME_LABEL: &str = "orca.container-name";
/// The label giving a container's position in its task definition.
pub const CONTAINER_INDEX_LABEL: &str = "orca.container-index";
/// The label giving a container's stopTimeout in seconds: a container
/// whose task is no longer assigned is still stopped with its own grace.
pub const STOP_TIMEOUT_LABEL: &str = "orca.stop-timeout";

/// Labels that mark the agent's containers: after a restart they tie each
/// container to its task without any state of the agent's own.
pub fn labels(
    task_arn: &str,
    task_id: &str,
    container: &str,
    index: usize,
    stop_timeout: std::time::Duration,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        (TASK_ARN_LABEL.to_string(), task_arn.to_string()),
        (TASK_ID_LABEL.to_string(), task_id.to_string()),
        (CONTAINER_NAME_LABEL.to_string(), container.to_string()),
        (CONTAINER_INDEX_LABEL.to_string(), index.to_string()),
        (
            STOP_TIMEOUT_LABEL.to_string(),
            stop_timeout.as_secs().to_string(),
        ),
    ])
}

/// What the runtime needs to create `def`.
pub struct SpecInput<'a> {
    pub id: String,
    pub task_arn: &'a str,
    pub task_id: &'a str,
    /// The container's position in its task definition.
    pub index: usize,
    /// Its SIGTERM → SIGKILL grace.
    pub stop_timeout: std::time::Duration,
    pub def: &'a ContainerDefinition,
    pub image: ImageInfo,
    pub netns_path: Option<PathBuf>,
    pub log_path: PathBuf,
    pub log_rotation: Option<orca_runtime::log_rotation::LogRotation>,
    /// Volumes, tmpfs and /etc files (`crate::volumes::plan`).
    pub mounts: Vec<orca_runtime::MountSpec>,
    /// The task's resolved secrets (every container's): this container's
    /// become environment variables, unless it takes them as files
    /// (`orca.secrets.files`, mounted by the volumes plan).
    pub secrets: &'a [orca_core::agent_protocol::ContainerSecret],
    /// The agent's `pids_limit` (None: none).
    pub pids_limit: Option<u64>,
    /// Whether the task's cluster allows privileges: without it,
    /// `privileged` and `capabilities.add` are dropped (the reconcile step
    /// refuses such a task before it gets here; this keeps the spec safe
    /// whatever the caller).
    pub privileges_allowed: bool,
}

pub fn container_spec(input: SpecInput<'_>) -> ContainerSpec {
    let def = input.def;
    let linux = def.linux_parameters.as_ref();
    let caps = linux.and_then(|l| l.capabilities.as_ref());
    let as_files = matches!(orca_core::secrets::secret_files_dir("", def), Ok(Some(_)));
    ContainerSpec {
        id: input.id,
        image: input.image,
        labels: labels(
            input.task_arn,
            input.task_id,
            &def.name,
            input.index,
            input.stop_timeout,
        ),
        entry_point: def.entry_point.clone(),
        command: def.command.clone(),
        environment: def
            .environment
            .iter()
            .flatten()
            .map(|kv| (kv.name.clone(), kv.value.clone()))
            .collect(),
        secret_environment: if as_files {
            Vec::new()
        } else {
            input
                .secrets
                .iter()
                .filter(|s| s.container == def.name)
                .map(|s| (s.name.clone(), Sensitive(s.value.expose().to_string())))
                .collect()
        },
        working_directory: def.working_directory.clone(),
        user: def.user.clone(),
        cpu_shares: u64::from(def.cpu.unwrap_or(0)),
        memory_limit_mib: def.memory.map(u64::from),
        memory_reservation_mib: def.memory_reservation.map(u64::from),
        pids_limit: input.pids_limit,
        ulimits: def
            .ulimits
            .iter()
            .flatten()
            .map(|u| Ulimit {
                name: serde_json::to_value(u.name)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                soft: u64::try_from(u.soft_limit).unwrap_or(0),
                hard: u64::try_from(u.hard_limit).unwrap_or(0),
            })
            .collect(),
        readonly_root_filesystem: def.readonly_root_filesystem.unwrap_or(false),
        privileged: input.privileges_allowed && def.privileged.unwrap_or(false),
        cap_add: if input.privileges_allowed {
            caps.and_then(|c| c.add.clone()).unwrap_or_default()
        } else {
            Vec::new()
        },
        cap_drop: caps.and_then(|c| c.drop.clone()).unwrap_or_default(),
        hostname: Some(hostname(def, input.task_id)),
        netns_path: input.netns_path,
        log_path: input.log_path,
        log_rotation: input.log_rotation,
        mounts: input.mounts,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_ids_fit_containerd() {
        let long = "x".repeat(255);
        let id = runtime_id(&"a".repeat(32), 3, &long);
        assert_eq!(id.len(), MAX_RUNTIME_ID);
        assert!(id.starts_with(&format!("{}-3-x", "a".repeat(32))));
        assert_eq!(runtime_id("t", 0, "web"), "t-0-web");
    }

    #[test]
    fn truncation_never_splits_a_character() {
        // 2-byte characters straddling byte 76 would panic String::truncate.
        let id = runtime_id("t", 0, &"é".repeat(60));
        assert!(id.len() <= MAX_RUNTIME_ID);
        assert_eq!(id, format!("t-0-{}", "é".repeat(36)));
        assert_eq!(truncate_at_char("aé", 2), "a");
        assert_eq!(truncate_at_char("ab", 10), "ab");
        assert_eq!(truncate_at_char("", 0), "");
    }
}

//! What a task needs on the node before its containers are created, and
//! what each container mounts. Pure: the node's paths are only named here;
//! `super::store` makes them, and checks again what only the file system
//! can tell (a host path's symlinks).
//!
//! ECS's rules, as the agent on EC2 applies them:
//! - `host.sourcePath`: a bind of the node's path; here only under one of
//!   the agent's `host_volume_paths` (none by default), since a task
//!   definition is anyone's who can register one;
//! - a volume with no `host` and no configuration (or `host: {}`): a
//!   directory of the task's, shared by its containers, removed with it;
//! - `dockerVolumeConfiguration`: driver `local` only, no `driverOpts`;
//!   scope `task` (the default) is the task's directory again, scope
//!   `shared` a named volume that outlives its tasks, made only with
//!   `autoprovision`, whose driver and labels must match an existing one's;
//! - EFS, FSx and volumes configured at launch do not exist on-premises;
//! - `mountPoints` with `readOnly`; `volumesFrom` gives a container the
//!   mounts of another (recursively, its own mounts winning on the same
//!   path), read-only when `readOnly` says so, else as the source has them;
//! - `linuxParameters.tmpfs`: a tmpfs of `size` MiB with `mountOptions`.
//!
//! Every volume of the definition is made, mounted or not, as ECS does.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Component, Path, PathBuf};

use orca_core::task_definition::{ContainerDefinition, NetworkMode, Scope, Volume};
use orca_runtime::{MountKind, MountSpec};

use crate::runner::dns_files;

/// The suffix of a container's secrets directory in the task's files.
pub const SECRETS_SUFFIX: &str = ".secrets";

/// ECS's container reason prefix for a volume that could not be made.
pub const REASON_PREFIX: &str = "CannotCreateVolumeError: ";

/// Why a volume cannot be made; shown after [`REASON_PREFIX`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumeError {
    #[error("volume {volume}: host path {path} is not absolute")]
    HostPathNotAbsolute { volume: String, path: String },
    #[error(
        "volume {volume}: host path {path} is not under the agent's host_volume_paths ({allowed})"
    )]
    HostPathNotAllowed {
        volume: String,
        path: String,
        allowed: String,
    },
    #[error("volume {volume}: driver {driver} is not supported (only local)")]
    Driver { volume: String, driver: String },
    #[error("volume {volume}: driverOpts are not supported by the local driver here")]
    DriverOpts { volume: String },
    #[error("volume {volume}: {kind} volumes are not supported on orca instances")]
    Unsupported { volume: String, kind: &'static str },
    #[error("volume {volume}: shared volume does not exist and autoprovision is not set")]
    SharedMissing { volume: String },
    #[error("volume {volume}: shared volume exists with driver {existing_driver} and labels {existing_labels}, the task definition asks for driver {driver} and labels {labels}")]
    SharedMismatch {
        volume: String,
        existing_driver: String,
        existing_labels: String,
        driver: String,
        labels: String,
    },
    #[error("container {container}: volumesFrom forms a cycle through {through}")]
    VolumesFromCycle { container: String, through: String },
    #[error("container {container}: {message}")]
    Mount { container: String, message: String },
    #[error("{0}")]
    Io(String),
}

impl VolumeError {
    /// The container reason ECS shows.
    pub fn reason(&self) -> String {
        format!("{REASON_PREFIX}{self}")
    }
}

/// What the planner needs from the agent's configuration.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VolumeSettings {
    /// `<data_dir>/volumes`.
    pub volumes_dir: PathBuf,
    /// `<data_dir>/task-files`: per task and container, the /etc files.
    pub files_dir: PathBuf,
    /// Node paths `host.sourcePath` may name (themselves or below), as
    /// canonical paths (the agent resolves them at start).
    pub host_volume_paths: Vec<PathBuf>,
    /// Nameservers a container gets when its definition names none.
    pub dns_servers: Vec<Ipv4Addr>,
}

impl VolumeSettings {
    /// The directory of a task's own volumes.
    pub fn task_volumes_dir(&self, task_id: &str) -> PathBuf {
        self.volumes_dir.join("tasks").join(task_id)
    }

    /// The directory of a task's /etc files.
    pub fn task_files_dir(&self, task_id: &str) -> PathBuf {
        self.files_dir.join(task_id)
    }

    /// The directory of a shared volume (its data is in `_data`, as in
    /// Docker's layout).
    pub fn shared_dir(&self, name: &str) -> PathBuf {
        self.volumes_dir.join("shared").join(name)
    }
}

/// A named volume that outlives its tasks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedVolume {
    pub name: String,
    /// `<volumes_dir>/shared/<name>`: `_data` and `meta.json` inside.
    pub dir: PathBuf,
    pub driver: String,
    pub labels: BTreeMap<String, String>,
    /// Make it if missing; without it a missing volume is an error.
    pub autoprovision: bool,
}

/// A `host.sourcePath` bind, checked again by the shell on the canonical
/// path (a symlink under an allowed path may lead out of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostPath {
    pub volume: String,
    /// Lexically normalised; the shell creates it if missing (as Docker
    /// does) and replaces it by its canonical form in the mounts.
    pub path: PathBuf,
}

/// Everything to make on the node before the task's containers are
/// created, and what they then mount.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TaskSetup {
    /// Directories of the task's own volumes.
    pub task_dirs: Vec<PathBuf>,
    pub shared: Vec<SharedVolume>,
    pub host_paths: Vec<HostPath>,
    /// The allow-list the host paths were checked against.
    pub allowed_roots: Vec<PathBuf>,
    /// Files to write (path, content): the containers' /etc files.
    pub files: Vec<(PathBuf, String)>,
    /// Each container's mounts, by container name, in the order given to
    /// the runtime.
    pub mounts: BTreeMap<String, Vec<MountSpec>>,
    /// Secrets taken as files (`orca.secrets.files`): a tmpfs per
    /// container holding one file per secret, bound read-only.
    pub secret_files: Vec<SecretFiles>,
}

/// One container's secrets as files: `dir` (under the task's files) is a
/// tmpfs on the node, so the values never reach a disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretFiles {
    pub dir: PathBuf,
    /// (file name, value); values print as `***`.
    pub files: Vec<(String, orca_core::secrets::SecretValue)>,
}

/// The task facts the plan depends on.
pub struct TaskInput<'a> {
    pub task_id: &'a str,
    pub mode: NetworkMode,
    pub volumes: &'a [Volume],
    /// The containers with RunTask's overrides applied.
    pub containers: &'a [ContainerDefinition],
    /// The task's network (none in host mode): each container's address
    /// (in bridge mode its own) and the addresses `links` name.
    pub network: Option<&'a orca_net::TaskNetwork>,
    /// The task's resolved secrets, for the containers taking them as
    /// files.
    pub secrets: &'a [orca_core::agent_protocol::ContainerSecret],
}

/// `path` with `.` and `..` resolved without the file system; None if it
/// is not absolute.
pub fn normalize(path: &str) -> Option<PathBuf> {
    let p = Path::new(path);
    if !p.is_absolute() {
        return None;
    }
    let mut out = PathBuf::from("/");
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    Some(out)
}

/// `path` is one of `roots` or below one.
pub fn is_allowed(path: &Path, roots: &[PathBuf]) -> bool {
    roots.iter().any(|r| path.starts_with(r))
}

fn allowed_list(roots: &[PathBuf]) -> String {
    if roots.is_empty() {
        "none configured".to_string()
    } else {
        roots
            .iter()
            .map(|r| r.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Where a volume's data lives on the node.
fn volume_source(
    v: &Volume,
    task_id: &str,
    settings: &VolumeSettings,
    setup: &mut TaskSetup,
) -> Result<PathBuf, VolumeError> {
    let name = v.name.clone();
    let unsupported = |kind| VolumeError::Unsupported {
        volume: name.clone(),
        kind,
    };
    if v.efs_volume_configuration.is_some() {
        return Err(unsupported("efsVolumeConfiguration"));
    }
    if v.fsx_windows_file_server_volume_configuration.is_some() {
        return Err(unsupported("fsxWindowsFileServerVolumeConfiguration"));
    }
    if v.configured_at_launch == Some(true) {
        return Err(unsupported("configuredAtLaunch"));
    }
    if let Some(path) = v.host.as_ref().and_then(|h| h.source_path.as_deref()) {
        let normal = normalize(path).ok_or_else(|| VolumeError::HostPathNotAbsolute {
            volume: name.clone(),
            path: path.to_string(),
        })?;
        if !is_allowed(&normal, &settings.host_volume_paths) {
            return Err(VolumeError::HostPathNotAllowed {
                volume: name,
                path: path.to_string(),
                allowed: allowed_list(&settings.host_volume_paths),
            });
        }
        setup.host_paths.push(HostPath {
            volume: name,
            path: normal.clone(),
        });
        return Ok(normal);
    }
    if let Some(docker) = &v.docker_volume_configuration {
        let driver = docker.driver.clone().unwrap_or_else(|| "local".to_string());
        if driver != "local" {
            return Err(VolumeError::Driver {
                volume: name,
                driver,
            });
        }
        if docker.driver_opts.as_ref().is_some_and(|o| !o.is_empty()) {
            return Err(VolumeError::DriverOpts { volume: name });
        }
        if docker.scope == Some(Scope::Shared) {
            let dir = settings.shared_dir(&name);
            setup.shared.push(SharedVolume {
                name,
                dir: dir.clone(),
                driver,
                labels: docker.labels.clone().unwrap_or_default(),
                autoprovision: docker.autoprovision.unwrap_or(false),
            });
            return Ok(dir.join("_data"));
        }
    }
    let dir = settings.task_volumes_dir(task_id).join(&name);
    setup.task_dirs.push(dir.clone());
    Ok(dir)
}

/// A container's volume mounts: those of its `volumesFrom` sources first
/// (recursively; `readOnly: true` makes them read-only), then its own
/// `mountPoints`, which replace an inherited mount at the same path.
fn volume_mounts(
    name: &str,
    containers: &BTreeMap<&str, &ContainerDefinition>,
    sources: &BTreeMap<String, PathBuf>,
    visiting: &mut Vec<String>,
) -> Result<Vec<MountSpec>, VolumeError> {
    if visiting.iter().any(|v| v == name) {
        return Err(VolumeError::VolumesFromCycle {
            container: visiting.first().cloned().unwrap_or_default(),
            through: name.to_string(),
        });
    }
    let Some(def) = containers.get(name) else {
        return Err(VolumeError::Mount {
            container: visiting.last().cloned().unwrap_or_default(),
            message: format!("volumesFrom names no container {name}"),
        });
    };
    visiting.push(name.to_string());
    let mut out: Vec<MountSpec> = Vec::new();
    let put = |out: &mut Vec<MountSpec>, m: MountSpec| {
        out.retain(|o| o.destination != m.destination);
        out.push(m);
    };
    for from in def.volumes_from.iter().flatten() {
        let source = from.source_container.as_deref().unwrap_or_default();
        for mut m in volume_mounts(source, containers, sources, visiting)? {
            if from.read_only == Some(true) {
                if let MountKind::Bind { readonly, .. } = &mut m.kind {
                    *readonly = true;
                }
            }
            put(&mut out, m);
        }
    }
    for mp in def.mount_points.iter().flatten() {
        let volume = mp.source_volume.as_deref().unwrap_or_default();
        let Some(source) = sources.get(volume) else {
            return Err(VolumeError::Mount {
                container: name.to_string(),
                message: format!("mountPoints names no volume {volume}"),
            });
        };
        let path = mp.container_path.as_deref().unwrap_or_default();
        let destination = normalize(path).ok_or_else(|| VolumeError::Mount {
            container: name.to_string(),
            message: format!("containerPath {path} is not absolute"),
        })?;
        put(
            &mut out,
            MountSpec {
                destination: destination.display().to_string(),
                kind: MountKind::Bind {
                    source: source.clone(),
                    readonly: mp.read_only.unwrap_or(false),
                },
            },
        );
    }
    visiting.pop();
    Ok(out)
}

fn tmpfs_mounts(def: &ContainerDefinition) -> Result<Vec<MountSpec>, VolumeError> {
    let mut out = Vec::new();
    for t in def
        .linux_parameters
        .iter()
        .flat_map(|l| l.tmpfs.iter().flatten())
    {
        let destination = normalize(&t.container_path).ok_or_else(|| VolumeError::Mount {
            container: def.name.clone(),
            message: format!("tmpfs containerPath {} is not absolute", t.container_path),
        })?;
        out.push(MountSpec {
            destination: destination.display().to_string(),
            kind: MountKind::Tmpfs {
                size_mib: t.size,
                options: t.mount_options.clone().unwrap_or_default(),
            },
        });
    }
    Ok(out)
}

/// The /etc/hosts entries of `def`'s `links` (bridge mode): each linked
/// container's own address under its alias and its name, as Docker writes
/// them. A link to a container the task does not have was refused when the
/// task definition was registered.
fn links(
    def: &ContainerDefinition,
    network: Option<&orca_net::TaskNetwork>,
) -> Vec<(Ipv4Addr, String)> {
    let Some(network) = network.filter(|n| !n.endpoints.is_empty()) else {
        return Vec::new();
    };
    def.links
        .iter()
        .flatten()
        .filter_map(|link| {
            let (name, alias) = link.split_once(':').unwrap_or((link, link));
            let ip = network.endpoints.iter().find(|e| e.container == name)?.ip;
            let names = if alias == name {
                name.to_string()
            } else {
                format!("{alias} {name}")
            };
            Some((ip, names))
        })
        .collect()
}

/// Plans the task's volumes, tmpfs mounts and /etc files.
pub fn plan(task: &TaskInput<'_>, settings: &VolumeSettings) -> Result<TaskSetup, VolumeError> {
    let mut setup = TaskSetup {
        allowed_roots: settings.host_volume_paths.clone(),
        ..TaskSetup::default()
    };
    let mut sources = BTreeMap::new();
    for v in task.volumes {
        let source = volume_source(v, task.task_id, settings, &mut setup)?;
        sources.insert(v.name.clone(), source);
    }
    let by_name: BTreeMap<&str, &ContainerDefinition> = task
        .containers
        .iter()
        .map(|c| (c.name.as_str(), c))
        .collect();
    let files_dir = settings.task_files_dir(task.task_id);
    for def in task.containers {
        let mut mounts = volume_mounts(&def.name, &by_name, &sources, &mut Vec::new())?;
        for t in tmpfs_mounts(def)? {
            mounts.retain(|m| m.destination != t.destination);
            mounts.push(t);
        }
        // The /etc files, unless the definition mounts something there
        // itself (Docker leaves such a path to the user's mount).
        let hostname = crate::runner::spec::hostname(def, task.task_id);
        let taken: BTreeSet<String> = mounts.iter().map(|m| m.destination.clone()).collect();
        let dir = files_dir.join(&def.name);
        for (destination, file) in dns_files::ETC_FILES {
            if taken.contains(destination) {
                continue;
            }
            let content = match file {
                "resolv.conf" => dns_files::resolv_conf(def, task.mode, &settings.dns_servers),
                "hosts" => dns_files::hosts(
                    def,
                    task.mode,
                    task.network.and_then(|n| n.ip_of(&def.name)),
                    &hostname,
                    &links(def, task.network),
                ),
                _ => dns_files::hostname_file(&hostname),
            };
            setup.files.push((dir.join(file), content));
            // Writable as Docker makes them, unless the root is read-only.
            mounts.push(MountSpec {
                destination: destination.to_string(),
                kind: MountKind::Bind {
                    source: dir.join(file),
                    readonly: def.readonly_root_filesystem.unwrap_or(false),
                },
            });
        }
        if let Ok(Some(at)) = orca_core::secrets::secret_files_dir("", def) {
            let files: Vec<_> = task
                .secrets
                .iter()
                .filter(|s| s.container == def.name)
                .map(|s| (s.name.clone(), s.value.clone()))
                .collect();
            if !files.is_empty() {
                // Container names have no dot: no other container's
                // directory can be called this.
                let source = files_dir.join(format!("{}{SECRETS_SUFFIX}", def.name));
                mounts.retain(|m| m.destination != at);
                mounts.push(MountSpec {
                    destination: at,
                    kind: MountKind::Bind {
                        source: source.clone(),
                        readonly: true,
                    },
                });
                setup.secret_files.push(SecretFiles { dir: source, files });
            }
        }
        setup.mounts.insert(def.name.clone(), mounts);
    }
    Ok(setup)
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;

//! orca-runtime: the container runtime layer under the agent.
//!
//! The agent speaks to [`ContainerRuntime`], never to containerd directly, so the
//! task lifecycle above it can be tested with [`fake::FakeRuntime`] (no root, no
//! containerd) and run for real with [`containerd::ContainerdRuntime`].
//!
//! The contract: `ensure_image` makes an image present (pulling at most once per
//! image even when called concurrently) and returns its digest and config;
//! `create` builds a container (rootfs snapshot + OCI spec) from a
//! [`ContainerSpec`]; `start` runs it with stdout/stderr appended to the spec's
//! log file; `wait` resolves when the process exits; `kill` signals it;
//! `reap` makes an exit final (recorded on the container, task deleted);
//! `remove` deletes every trace (task, container, snapshot) and is idempotent.
//! `list` is the level the agent reconciles against: every container with
//! its [`ProcessState`]; `changes` only hints that it is worth looking again.
//! `exec` runs a command inside a running container (health checks);
//! `exec_session` runs one interactively, its input and output streamed
//! ([`exec_session`], ECS Exec).

pub mod containerd;
pub mod error;
pub mod exec_session;
pub mod fake;
mod fake_exec;
pub mod log_format;
pub mod log_reader;
pub mod log_rotation;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

pub use error::RuntimeError;
pub use exec_session::{ExecExit, ExecInput, ExecOutput, ExecRequest, ExecSession, TtySize};

/// An image made present by [`ContainerRuntime::ensure_image`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageInfo {
    /// The reference as the task definition names it (e.g. `127.0.0.1:5000/busybox:1`).
    pub reference: String,
    /// The manifest digest the reference resolved to (`sha256:...`): ECS's imageDigest.
    pub digest: String,
    /// The parts of the image config that shape a container.
    pub config: ImageConfig,
}

/// The image config fields that the OCI spec is built from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// `KEY=value` entries.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// Registry credentials (ECS's repositoryCredentials analogue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryAuth {
    pub username: String,
    pub password: String,
}

/// A resource limit, with ECS's ulimit names (`nofile`, `nproc`, `core`...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: u64,
    pub hard: u64,
}

/// Everything the runtime needs to create one container of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct ContainerSpec {
    /// The containerd container id; unique within the agent's namespace.
    pub id: String,
    pub image: ImageInfo,
    /// Labels stored on the containerd container (the agent marks its own).
    pub labels: BTreeMap<String, String>,
    /// ECS entryPoint; `None` keeps the image's Entrypoint.
    pub entry_point: Option<Vec<String>>,
    /// ECS command; `None` keeps the image's Cmd (and an entryPoint given
    /// without a command drops the image's Cmd, as Docker does).
    pub command: Option<Vec<String>>,
    /// Definition environment then overrides, already merged by the agent;
    /// these win over the image's env for the same key.
    pub environment: Vec<(String, String)>,
    /// Secrets as environment variables, set last (winning over the rest
    /// for the same key); never printed.
    pub secret_environment: Vec<(String, Sensitive)>,
    pub working_directory: Option<String>,
    pub user: Option<String>,
    /// cgroup CPU shares (ECS cpu units; 0 means the kernel minimum of 2).
    pub cpu_shares: u64,
    /// Hard memory limit in MiB (ECS memory).
    pub memory_limit_mib: Option<u64>,
    /// Soft memory limit in MiB (ECS memoryReservation).
    pub memory_reservation_mib: Option<u64>,
    /// The most processes and threads the container may hold at once (its
    /// cgroup's pids.max; a fork bomb stops here). `None`: no limit.
    pub pids_limit: Option<u64>,
    pub ulimits: Vec<Ulimit>,
    pub readonly_root_filesystem: bool,
    pub privileged: bool,
    /// Linux capability names as ECS writes them (`NET_ADMIN`, `SYS_TIME`...).
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub hostname: Option<String>,
    /// The task's network namespace; `None` shares the host's.
    pub netns_path: Option<PathBuf>,
    /// stdout and stderr are appended here: by `orca-log-driver`, run by
    /// containerd's shim (`containerd::logdriver`), or without one through
    /// FIFOs the containerd runtime drains (`containerd::logio`).
    pub log_path: PathBuf,
    /// Size-based rotation of that file (with the logging driver; the
    /// agent's own draining fallback appends without rotating).
    pub log_rotation: Option<log_rotation::LogRotation>,
    /// Volumes, tmpfs and the agent's /etc files, mounted after the
    /// default mounts in this order (a later mount over the same path
    /// wins, as in the kernel).
    pub mounts: Vec<MountSpec>,
}

/// A value that is handed to a container but never printed: `Debug`
/// shows `***`, so a spec in a log line keeps its secrets.
#[derive(Clone, PartialEq, Eq)]
pub struct Sensitive(pub String);

impl std::fmt::Debug for Sensitive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// One mount into a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MountSpec {
    /// Absolute path inside the container; runc creates it if missing.
    pub destination: String,
    pub kind: MountKind,
}

/// What is mounted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A directory or file of the node, bound recursively.
    Bind { source: PathBuf, readonly: bool },
    /// A fresh tmpfs of at most `size_mib`; `options` are mount(8)
    /// options appended to Docker's defaults (nosuid, nodev, noexec), so
    /// `exec` lifts `noexec`.
    Tmpfs { size_mib: u32, options: Vec<String> },
}

impl ContainerSpec {
    /// A container of `image` that runs the image's own command, with no
    /// limits, labels or namespace of its own; set the rest field by field.
    pub fn new(id: impl Into<String>, image: ImageInfo, log_path: PathBuf) -> Self {
        ContainerSpec {
            id: id.into(),
            image,
            labels: BTreeMap::new(),
            entry_point: None,
            command: None,
            environment: Vec::new(),
            secret_environment: Vec::new(),
            working_directory: None,
            user: None,
            cpu_shares: 0,
            memory_limit_mib: None,
            memory_reservation_mib: None,
            pids_limit: None,
            ulimits: Vec::new(),
            readonly_root_filesystem: false,
            privileged: false,
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            hostname: None,
            netns_path: None,
            log_path,
            log_rotation: None,
            mounts: Vec::new(),
        }
    }
}

/// How a container's process ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerExit {
    pub exit_code: i32,
    /// The kernel's OOM killer ended it (its cgroup hit the memory limit).
    pub oom_killed: bool,
    pub exited_at: SystemTime,
}

/// How far a container's process got, as the runtime holds it now: what
/// the agent's reconcile step compares with what the controller wants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProcessState {
    /// Never started: no task and no sign that one ran. A task created but
    /// never started (a crash between the two calls) counts as this;
    /// `start` replaces it.
    NotStarted,
    /// Running (or paused), with the host pid of its init.
    Running { pid: u32 },
    /// Its process exited. `recorded`: [`ContainerRuntime::reap`] has
    /// recorded the exit on the container and deleted its task; until then
    /// `exit.oom_killed` is only what events said, and the exit is not
    /// final (reap it).
    Exited { exit: ContainerExit, recorded: bool },
    /// Started once, but neither a task nor a recorded exit remains
    /// (containerd lost the task, e.g. its shim died with it): the exit
    /// status is unknown, and the container must never be started again.
    Lost,
    /// containerd cannot tell now (the task's shim does not answer).
    Unknown,
}

/// A container the runtime holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerListing {
    pub id: String,
    /// The labels given at create (the runtime's own are left out).
    pub labels: BTreeMap<String, String>,
    /// The image reference it was created from.
    pub image: String,
    pub state: ProcessState,
    /// How many times its process was started (more than one: restarted
    /// in place).
    pub starts: u32,
    /// When its latest run started (None before the first start).
    pub started_at: Option<SystemTime>,
}

impl ContainerListing {
    /// Its process is running.
    pub fn is_running(&self) -> bool {
        matches!(self.state, ProcessState::Running { .. })
    }
}

/// An image the runtime holds, for image garbage collection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageListing {
    /// The image record's name (the reference it was pulled as).
    pub reference: String,
    pub digest: String,
    /// Bytes of its manifest, config and layers in the content store.
    pub size: u64,
    /// When the record was created (pulled or loaded).
    pub created_at: SystemTime,
}

/// The signals the agent sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Term,
    Kill,
}

/// How much of an exec's output [`ContainerRuntime::exec`] keeps (Docker
/// keeps 4 KiB of a health check's output too).
pub const EXEC_OUTPUT_LIMIT: usize = 4096;

/// How an exec'd process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecStatus {
    /// It exited with this code.
    Exited(i32),
    /// It ran past its timeout and was killed.
    TimedOut,
}

/// The outcome of [`ContainerRuntime::exec`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecOutcome {
    pub status: ExecStatus,
    /// stdout and stderr interleaved as they arrived, lossy UTF-8, at most
    /// [`EXEC_OUTPUT_LIMIT`] bytes (cut on a character boundary).
    pub output: String,
}

/// `bytes` as text of at most `limit` bytes, cut on a character boundary.
pub fn truncate_output(bytes: &[u8], limit: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    truncate_str(&text, limit).to_string()
}

/// The longest prefix of `text` of at most `limit` bytes that ends on a
/// character boundary.
pub fn truncate_str(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The runtime operations the agent's task lifecycle needs.
#[async_trait::async_trait]
pub trait ContainerRuntime: Send + Sync + 'static {
    /// Makes `reference` present and returns its digest and config. Concurrent
    /// calls for the same reference share one pull. Failure is
    /// [`RuntimeError::Pull`].
    async fn ensure_image(
        &self,
        reference: &str,
        auth: Option<&RegistryAuth>,
    ) -> Result<ImageInfo, RuntimeError>;

    /// Creates the container (snapshot and spec), not yet running.
    async fn create(&self, spec: &ContainerSpec) -> Result<(), RuntimeError>;

    /// Starts the container's process; returns its pid. A container whose
    /// earlier run exited and was reaped starts again in place (same
    /// container, root filesystem and log file: ECS's restartPolicy); the
    /// earlier run's recorded exit is forgotten.
    async fn start(&self, id: &str) -> Result<u32, RuntimeError>;

    /// Resolves when the container's process has exited. May be called
    /// before or after the exit, and more than once.
    async fn wait(&self, id: &str) -> Result<ContainerExit, RuntimeError>;

    /// Signals the container's process; not an error if it already exited.
    async fn kill(&self, id: &str, signal: StopSignal) -> Result<(), RuntimeError>;

    /// Makes a container's exit final: records it on the container (with
    /// whether the kernel OOM-killed it) and deletes the exited task, so the
    /// output is complete and [`ContainerRuntime::list`] keeps answering
    /// [`ProcessState::Exited`] with `recorded`. Idempotent: a recorded exit
    /// is returned as it is. An error if the process still runs
    /// ([`RuntimeError::Running`]) or no exit is known
    /// ([`RuntimeError::NotFound`]).
    async fn reap(&self, id: &str) -> Result<ContainerExit, RuntimeError>;

    /// Deletes the container's task, container record and snapshot; not an
    /// error if some or all are already gone.
    async fn remove(&self, id: &str) -> Result<(), RuntimeError>;

    /// The containers in this runtime's namespace, with their process state.
    async fn list(&self) -> Result<Vec<ContainerListing>, RuntimeError>;

    /// The images in this runtime's namespace.
    async fn list_images(&self) -> Result<Vec<ImageListing>, RuntimeError>;

    /// Removes an image record and, through containerd's garbage collector,
    /// whatever only it held (blobs, layer snapshots); not an error if gone.
    async fn remove_image(&self, reference: &str) -> Result<(), RuntimeError>;

    /// Removes the root filesystems of containers that no longer exist (a
    /// removal or create cut short). Returns the snapshot keys removed. Run
    /// it only while no container is being created (its snapshot exists
    /// before its record).
    async fn remove_stray_snapshots(&self) -> Result<Vec<String>, RuntimeError>;

    /// Runs `args` inside the running container `id`, as its own process
    /// (the container's user, environment and working directory), and waits
    /// at most `timeout` for it: past that it is killed and the outcome is
    /// [`ExecStatus::TimedOut`]. The process is deleted afterwards either
    /// way. [`RuntimeError::NotFound`] if the container does not run;
    /// [`RuntimeError::Exec`] if the process could not be started (no such
    /// executable, ...).
    async fn exec(
        &self,
        id: &str,
        args: Vec<String>,
        timeout: Duration,
    ) -> Result<ExecOutcome, RuntimeError>;

    /// Starts `request` inside the running container `id` as its own
    /// process (the container's environment, working directory and user,
    /// unless the request overrides them) with stdin and output streamed
    /// through the returned [`ExecSession`] (see [`crate::exec_session`] for the
    /// protocol and exit codes). [`RuntimeError::NotFound`] if the
    /// container does not run; [`RuntimeError::Exec`] if the process could
    /// not be started.
    async fn exec_session(
        &self,
        id: &str,
        request: ExecRequest,
    ) -> Result<ExecSession, RuntimeError>;

    /// A counter that moves whenever the runtime saw something change (an
    /// event such as an exit, or the event stream breaking): a hint to look
    /// again with [`ContainerRuntime::list`], never the state itself.
    fn changes(&self) -> tokio::sync::watch::Receiver<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_is_cut_on_a_char_boundary() {
        assert_eq!(truncate_str("héllo", 2), "h");
        assert_eq!(truncate_str("héllo", 3), "hé");
        assert_eq!(truncate_str("hi", 10), "hi");
        assert_eq!(truncate_output(b"ab\xffcd", 3), "ab");
    }
}

//! Named network namespaces bound under `/run/netns`, made the way
//! `ip netns add` makes them but without forking.
//!
//! `fork()` in a multithreaded (tokio) process is unsafe, and `unshare` on a
//! runtime worker would strand that worker in the new namespace. So each
//! namespace is born on a dedicated short-lived std thread: it unshares its
//! network namespace, bind-mounts `/proc/thread-self/ns/net` onto the name's
//! file (which keeps the namespace alive after the thread exits), and opens a
//! netlink socket while still inside, which stays bound to that namespace for
//! its lifetime. The thread then exits and takes its namespace membership
//! with it; no other thread ever changes namespace.

use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sched::{unshare, CloneFlags};
use nix::sys::statfs::{statfs, NSFS_MAGIC};

use crate::names::NETNS_RUN_DIR;
use crate::NetworkError;

use super::kernel_err;

/// A namespace just created: a handle to it and a netlink socket inside it.
pub(crate) struct Created {
    /// The namespace's file, open: its fd names the namespace to the kernel
    /// (the veth peer's `IFLA_NET_NS_FD`).
    pub file: File,
    /// rtnetlink bound to the new namespace (its connection task ends when
    /// the last handle clone is dropped).
    pub netlink: rtnetlink::Handle,
}

/// Makes `/run/netns` exist and be a shared mount point, as iproute2 does,
/// so that namespace mounts made later propagate into mount namespaces
/// copied from ours (containers) and their unmounts propagate too instead of
/// pinning dead namespaces there.
pub(crate) fn ensure_run_dir() -> Result<(), NetworkError> {
    let dir = Path::new(NETNS_RUN_DIR);
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(|e| kernel_err(format!("creating {NETNS_RUN_DIR}"), e))?;
    let shared = || {
        mount(
            Some("none"),
            dir,
            Some("none"),
            MsFlags::MS_SHARED | MsFlags::MS_REC,
            None::<&str>,
        )
    };
    match shared() {
        Ok(()) => Ok(()),
        // Not a mount point yet: bind it onto itself first.
        Err(Errno::EINVAL) => {
            mount(
                Some(dir),
                dir,
                Some("none"),
                MsFlags::MS_BIND | MsFlags::MS_REC,
                None::<&str>,
            )
            .map_err(|e| kernel_err(format!("bind-mounting {NETNS_RUN_DIR} onto itself"), e))?;
            shared().map_err(|e| kernel_err(format!("making {NETNS_RUN_DIR} shared"), e))
        }
        Err(e) => Err(kernel_err(format!("making {NETNS_RUN_DIR} shared"), e)),
    }
}

/// The path a namespace name is bound at.
pub fn netns_path(name: &str) -> PathBuf {
    Path::new(NETNS_RUN_DIR).join(name)
}

/// Creates a namespace bound at `path` (which must not exist) and a netlink
/// connection inside it, on a dedicated thread (see the module docs).
pub(crate) async fn create(path: &Path) -> Result<Created, NetworkError> {
    let runtime = tokio::runtime::Handle::current();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let thread_path = path.to_path_buf();
    std::thread::Builder::new()
        .name("orca-netns".into())
        .spawn(move || {
            // The receiver only disappears if setup was cancelled; the
            // namespace is then a leftover that the next setup replaces.
            let _ = tx.send(create_on_this_thread(&thread_path, &runtime));
        })
        .map_err(|e| kernel_err("spawning the namespace thread", e))?;
    rx.await
        .map_err(|_| kernel_err("creating a namespace", "the namespace thread died"))?
}

fn create_on_this_thread(
    path: &Path,
    runtime: &tokio::runtime::Handle,
) -> Result<Created, NetworkError> {
    let op = || format!("creating namespace {}", path.display());
    // An empty mount target, mode 0 like iproute2's; create_new so that two
    // setups racing for one name cannot both think they made it.
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(path)
        .map_err(|e| kernel_err(op(), e))?;
    let bound = unshare(CloneFlags::CLONE_NEWNET)
        .map_err(|e| kernel_err(format!("{}: unshare", op()), e))
        .and_then(|()| {
            mount(
                Some("/proc/thread-self/ns/net"),
                path,
                Some("none"),
                MsFlags::MS_BIND,
                None::<&str>,
            )
            .map_err(|e| kernel_err(format!("{}: bind mount", op()), e))
        });
    if let Err(e) = bound {
        let _ = fs::remove_file(path);
        return Err(e);
    }
    let inside = || -> Result<Created, NetworkError> {
        let file = File::open(path).map_err(|e| kernel_err(op(), e))?;
        // The socket is created in this thread's (the new) namespace; the
        // runtime context lets it register with the reactor from here.
        let _entered = runtime.enter();
        let (connection, netlink, _) =
            rtnetlink::new_connection().map_err(|e| kernel_err(format!("{}: netlink", op()), e))?;
        runtime.spawn(connection);
        Ok(Created { file, netlink })
    };
    inside().inspect_err(|_| {
        let _ = delete(path);
    })
}

/// Unbinds and removes a namespace's file, like `ip netns del`. The kernel
/// frees the namespace (and the veth in it, and so its host end) once no
/// process or mount holds it any more. Not an error if already gone.
pub fn delete(path: &Path) -> Result<(), NetworkError> {
    match umount2(path, MntFlags::MNT_DETACH) {
        // EINVAL: not a mount point (a file left by a crash before the bind).
        Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
        Err(e) => return Err(kernel_err(format!("unmounting {}", path.display()), e)),
    }
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(kernel_err(format!("removing {}", path.display()), e)),
    }
}

/// Whether `path` is a bound namespace (nsfs), not a plain leftover file.
pub(crate) fn is_netns(path: &Path) -> bool {
    statfs(path).is_ok_and(|s| s.filesystem_type() == NSFS_MAGIC)
}

/// The names under `/run/netns` that start with `{prefix}-`, sorted: the
/// namespaces an agent with that prefix made (for garbage collection and
/// for tests checking for leftovers).
pub fn list_namespaces(prefix: &str) -> Result<Vec<String>, NetworkError> {
    let wanted = format!("{prefix}-");
    let entries = match fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(kernel_err(format!("listing {NETNS_RUN_DIR}"), e)),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| kernel_err(format!("listing {NETNS_RUN_DIR}"), e))?;
        if let Some(name) = entry.file_name().to_str() {
            if name.starts_with(&wanted) {
                names.push(name.to_string());
            }
        }
    }
    names.sort();
    Ok(names)
}

/// Deletes the namespace named `name` under `/run/netns`: unbinds and removes
/// its file (its veth goes with it once nothing else holds it); not an error
/// if already gone.
pub fn delete_namespace(name: &str) -> Result<(), NetworkError> {
    if name.is_empty() || name.contains('/') || name.starts_with('.') {
        return Err(NetworkError::Config(format!(
            "{name:?} is not a namespace name"
        )));
    }
    delete(&netns_path(name))
}

/// Runs `f` on a fresh thread that has joined the network namespace bound at
/// `path`, and returns its result. Sockets `f` opens stay in that namespace
/// after it returns (e.g. a listener for a probe, or a test's client). The
/// thread is discarded afterwards, so no other thread changes namespace.
pub fn in_namespace<T, F>(path: &Path, f: F) -> Result<T, NetworkError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let file =
        File::open(path).map_err(|e| kernel_err(format!("opening {}", path.display()), e))?;
    let op = format!("entering {}", path.display());
    std::thread::Builder::new()
        .name("orca-in-netns".into())
        .spawn(move || nix::sched::setns(&file, CloneFlags::CLONE_NEWNET).map(|()| f()))
        .map_err(|e| kernel_err(op.clone(), e))?
        .join()
        .map_err(|_| kernel_err(op.clone(), "the thread panicked"))?
        .map_err(|e| kernel_err(op, e))
}

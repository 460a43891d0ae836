//! Finding the machine's containerd for the runtime tests, and giving each
//! test its own containerd namespace.
//!
//! A test that needs containerd calls [`containerd_socket`]: `Ok(Some(path))`
//! when containerd answers there (and the test runs as root, which creating
//! containers needs); `Ok(None)` after printing why, on a developer's machine
//! without them; an error under `CI=true`, where a missing prerequisite is a
//! failure (`deploy/start-containerd.sh` starts one; tests/run.sh calls it).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};

/// containerd's default socket.
pub const SOCKET: &str = "/run/containerd/containerd.sock";

/// Whether the tests run under CI (`CI=true`).
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// A missing prerequisite: an error under CI, else `Ok(None)` with the
/// reason printed.
pub fn missing<T>(reason: &str) -> anyhow::Result<Option<T>> {
    if in_ci() {
        anyhow::bail!("{reason} (CI=true: a missing prerequisite is a failure)");
    }
    eprintln!("skipping: {reason}");
    Ok(None)
}

/// The socket of a containerd that answers, if the tests can use it.
pub fn containerd_socket() -> anyhow::Result<Option<PathBuf>> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc_geteuid() } != 0 {
        return missing("the containerd tests need root (creating containers)");
    }
    let answers = Command::new("timeout")
        .args(["5", "ctr", "--address", SOCKET, "version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !answers {
        return missing(&format!(
            "no containerd answers on {SOCKET} (run deploy/start-containerd.sh)"
        ));
    }
    Ok(Some(PathBuf::from(SOCKET)))
}

extern "C" {
    #[link_name = "geteuid"]
    fn libc_geteuid() -> u32;
}

/// A containerd namespace no other test (or test process) uses.
pub fn unique_namespace(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "orca-test-{prefix}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

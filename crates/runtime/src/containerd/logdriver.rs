//! Container output through `orca-log-driver`, a containerd "binary"
//! logging driver run by the runc shim, so a container's output never
//! passes through (and never waits for) the agent.
//!
//! With [`super::ContainerdConfig::log_driver`] set, `start` creates the task
//! with stdout = stderr = [`uri`]`(driver, log file)`. containerd 1.6's runc
//! shim (`pkg/process/io.go`, `NewBinaryIO`) then runs the driver with the
//! container's stdout and stderr pipes as fds 3 and 4, and the container
//! only starts once the driver signalled ready; the driver appends both
//! streams to the log file as they arrive (see `src/bin/log_driver.rs`). The
//! shim keeps the pipes' write ends open until the task is *deleted*: only
//! `Tasks.Delete` closes them, and then waits (up to 12 s, then SIGKILL) for
//! the driver to exit. The driver exits once it has read both pipes to EOF
//! and fsynced the file.
//!
//! So `reap`, after the exit, deletes the task ([`delete_exited`]): when
//! `Tasks.Delete` returns, the driver has exited, and the log holds
//! everything the container wrote.
//! That is a guarantee by containerd's protocol rather than a timing
//! guess; it is bounded by the shim's own 12 s limit (and [`REAP_LIMIT`]
//! here). The exit code stays on the container as a label, and the
//! container record and snapshot stay until `remove`.
//!
//! Without a driver (the fallback, [`super::logio`]) the agent process
//! drains FIFOs: while the agent is down a chatty container blocks once the
//! pipe buffers fill (~128 KiB).

use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::time::Duration;

use containerd_client::services::v1::DeleteTaskRequest;

use super::client::{is_not_found, status_error, Ctrd};
use crate::log_rotation::LogRotation;
use crate::RuntimeError;

/// The URI query key the driver reads the log file path from.
pub const PATH_KEY: &str = "path";

/// How long `wait` lets `Tasks.Delete` (which waits for the driver) take
/// before giving up on it; above the shim's own 12 s.
pub const REAP_LIMIT: Duration = Duration::from_secs(15);

/// The stdio URI that runs `driver` to append to `log_path`:
/// `binary:///<driver>?path=<log_path>`, both percent-encoded (the shim
/// parses it with Go's `net/url`, which would split the query on `&`,
/// turn `+` into a space and drop pairs holding `;`).
pub fn uri(driver: &Path, log_path: &Path, rotation: Option<LogRotation>) -> String {
    let mut uri = format!(
        "binary://{}?{PATH_KEY}={}",
        encode(driver.as_os_str().as_bytes()),
        encode(log_path.as_os_str().as_bytes())
    );
    if let Some(r) = rotation {
        uri.push_str(&format!(
            "&max-size={}&max-files={}",
            r.max_bytes, r.max_files
        ));
    }
    uri
}

/// The rotation limits as a container label's value: `<bytes>,<files>`.
pub fn rotation_label(r: LogRotation) -> String {
    format!("{},{}", r.max_bytes, r.max_files)
}

/// The limits of a [`rotation_label`] (None if absent or malformed).
pub fn parse_rotation_label(value: Option<&String>) -> Option<LogRotation> {
    let (bytes, files) = value?.split_once(',')?;
    Some(LogRotation {
        max_bytes: bytes.parse().ok()?,
        max_files: files.parse().ok()?,
    })
}

/// Percent-encodes every byte but the unreserved ones and `/`.
fn encode(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Whether a task's stdout URI names a binary logging driver.
pub fn uses_driver(stdout: &str) -> bool {
    stdout.starts_with("binary:")
}

/// After the exit (recorded by `reap`): deletes the exited task. With a
/// logging driver the delete returns once the driver has read to EOF and
/// exited (see the module doc), so the log is complete; without one the
/// FIFOs were drained already. Not an error if the task is gone.
pub async fn delete_exited(ctrd: &Ctrd, id: &str) -> Result<(), RuntimeError> {
    let deleted = tokio::time::timeout(
        REAP_LIMIT,
        ctrd.tasks().delete(ctrd.req(DeleteTaskRequest {
            container_id: id.to_string(),
        })),
    )
    .await;
    match deleted {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(s)) if is_not_found(&s) => Ok(()),
        Ok(Err(s)) => Err(status_error(&format!("delete exited task {id}"), s)),
        Err(_) => Err(RuntimeError::Containerd(format!(
            "deleting the exited task {id} took over {REAP_LIMIT:?} (its logging driver did not finish)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_uri_encodes_what_go_would_misread() {
        assert_eq!(
            uri(
                Path::new("/usr/local/bin/orca-log-driver"),
                Path::new("/var/lib/orca-agent/tasks/t1/web.log"),
                None
            ),
            "binary:///usr/local/bin/orca-log-driver?path=/var/lib/orca-agent/tasks/t1/web.log"
        );
        let rotation = LogRotation {
            max_bytes: 10_485_760,
            max_files: 5,
        };
        assert_eq!(
            uri(Path::new("/d"), Path::new("/l"), Some(rotation)),
            "binary:///d?path=/l&max-size=10485760&max-files=5"
        );
        assert_eq!(
            parse_rotation_label(Some(&rotation_label(rotation))),
            Some(rotation)
        );
        assert_eq!(parse_rotation_label(Some(&"10m,5".to_string())), None);
        assert_eq!(
            uri(
                Path::new("/opt/my bin/d?x"),
                Path::new("/l/a&b=c+d;e%f#g é"),
                None
            ),
            "binary:///opt/my%20bin/d%3Fx?path=/l/a%26b%3Dc%2Bd%3Be%25f%23g%20%C3%A9"
        );
    }

    #[test]
    fn only_binary_uris_use_the_driver() {
        assert!(uses_driver("binary:///usr/bin/orca-log-driver?path=/x"));
        assert!(!uses_driver("/var/lib/orca-agent/runtime/io/c1/stdout"));
        assert!(!uses_driver(""));
    }
}

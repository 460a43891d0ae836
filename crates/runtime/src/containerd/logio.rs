//! Container stdout/stderr into the container's log file, through FIFOs this
//! process drains: the fallback when no logging driver is configured (see
//! [`super::logdriver`], the default). Its limit: while this process is
//! down (an agent restart, a crash) nobody drains, and a container blocks
//! in `write` once the pipe buffers (~128 KiB across FIFO and shim) fill.
//!
//! Why not containerd's `file://` log URI (the shim appending to the file
//! itself)? On containerd 1.6.20 it loses output: a container running
//! `echo hi; echo oops >&2; exit 3` ended with only `hi` in about one run in
//! thirty (reproduced with `ctr run --log-uri file://...` as well), while the
//! FIFO path ctr uses by default lost nothing in forty runs.
//!
//! So each started container gets `<state_dir>/io/<id>/{stdout,stderr}`
//! FIFOs. The read ends are opened (non-blocking) before the task is
//! created; once `Tasks.Create` returns the shim holds the write ends, so EOF
//! on a FIFO means the shim has copied everything and closed it. A tokio task
//! per stream appends to the log file as `log_format` records (`O_APPEND`,
//! so the two interleave by whole writes). `wait` drains them before
//! answering, so the log is complete when the exit is reported. After an agent restart, [`LogPipes::reattach`]
//! resumes draining running containers' FIFOs (an undrained FIFO would
//! eventually block the container's writes).

use std::collections::HashMap;
use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::unix::pipe;

use crate::log_format::{self, Stream};
use tokio::task::AbortHandle;

/// The FIFOs of one container, read ends open.
pub struct Prepared {
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    receivers: Vec<pipe::Receiver>,
}

/// Per-container FIFO directories and the tasks draining them.
pub struct LogPipes {
    /// `<state_dir>/io`.
    dir: PathBuf,
    /// Drain tasks by container id.
    copiers: Mutex<HashMap<String, Copiers>>,
}

/// The two drain tasks of one container.
struct Copiers {
    /// Resolves when both streams are done; shared by concurrent waiters.
    done: Shared<BoxFuture<'static, ()>>,
    aborts: Vec<AbortHandle>,
}

pub(crate) fn mkfifo(path: &Path) -> std::io::Result<()> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    // SAFETY: `c` is a valid NUL-terminated path for the duration of the call.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

impl LogPipes {
    pub fn new(state_dir: &Path) -> Self {
        Self {
            dir: state_dir.join("io"),
            copiers: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Copiers>> {
        self.copiers.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn paths(&self, id: &str) -> (PathBuf, PathBuf, PathBuf) {
        let dir = self.dir.join(id);
        (dir.join("stdout"), dir.join("stderr"), dir)
    }

    /// Makes fresh FIFOs for `id` and opens their read ends.
    pub fn prepare(&self, id: &str) -> Result<Prepared, String> {
        self.cleanup(id);
        let (stdout, stderr, dir) = self.paths(id);
        std::fs::create_dir_all(&dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        let mut receivers = Vec::new();
        for fifo in [&stdout, &stderr] {
            mkfifo(fifo).map_err(|e| format!("mkfifo {}: {e}", fifo.display()))?;
            receivers.push(open(fifo)?);
        }
        Ok(Prepared {
            stdout,
            stderr,
            receivers,
        })
    }

    /// Starts draining into `log_path` (the shim now holds the write ends).
    pub fn attach(&self, id: &str, prepared: Prepared, log_path: &Path) {
        // `prepare` and `reattach` open stdout first, then stderr.
        let streams = [Stream::Stdout, Stream::Stderr];
        let handles: Vec<_> = prepared
            .receivers
            .into_iter()
            .zip(streams)
            .map(|(r, stream)| {
                tokio::spawn(drain(r, stream, log_path.to_path_buf(), id.to_string()))
            })
            .collect();
        let aborts = handles.iter().map(|h| h.abort_handle()).collect();
        let done = futures::future::join_all(handles)
            .map(|_| ())
            .boxed()
            .shared();
        self.lock().insert(id.to_string(), Copiers { done, aborts });
    }

    /// Resumes draining a running container's FIFOs (after an agent
    /// restart); no FIFOs means nothing to do.
    pub fn reattach(&self, id: &str, log_path: &Path) -> Result<(), String> {
        if self.lock().contains_key(id) {
            return Ok(());
        }
        let (stdout, stderr, _) = self.paths(id);
        if !stdout.exists() || !stderr.exists() {
            return Ok(());
        }
        let receivers = vec![open(&stdout)?, open(&stderr)?];
        self.attach(
            id,
            Prepared {
                stdout,
                stderr,
                receivers,
            },
            log_path,
        );
        Ok(())
    }

    /// Waits (at most `limit`) until both streams reached EOF: a process
    /// that left a background child holding stdout does not hold up `wait`.
    pub async fn drain_done(&self, id: &str, limit: Duration) {
        let done = self.lock().get(id).map(|c| c.done.clone());
        let Some(done) = done else { return };
        if tokio::time::timeout(limit, done).await.is_err() {
            tracing::warn!(
                container = id,
                "log streams still open after the exit; not waiting longer"
            );
        }
    }

    /// Stops draining and removes the FIFOs.
    pub fn cleanup(&self, id: &str) {
        if let Some(copiers) = self.lock().remove(id) {
            for a in copiers.aborts {
                a.abort();
            }
        }
        let (_, _, dir) = self.paths(id);
        let _ = std::fs::remove_dir_all(dir);
    }
}

impl Drop for LogPipes {
    /// A dropped runtime stops draining; a successor reattaches.
    fn drop(&mut self) {
        for (_, copiers) in self.lock().drain() {
            for a in copiers.aborts {
                a.abort();
            }
        }
    }
}

pub(crate) fn open(fifo: &Path) -> Result<pipe::Receiver, String> {
    pipe::OpenOptions::new()
        .open_receiver(fifo)
        .map_err(|e| format!("open {}: {e}", fifo.display()))
}

/// Copies one stream into the log file as records (`log_format`), each
/// chunk's records in one append so the two streams interleave whole.
async fn drain(mut from: pipe::Receiver, stream: Stream, log_path: PathBuf, id: String) {
    let file = tokio::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .await;
    let mut file = match file {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(container = %id, log = %log_path.display(), error = %e,
                "cannot open the log file; output is discarded");
            // Keep reading so the container never blocks on a full pipe.
            let _ = tokio::io::copy(&mut from, &mut tokio::io::sink()).await;
            return;
        }
    };
    let mut buf = vec![0u8; 64 * 1024];
    let mut records = Vec::new();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) => return,
            Ok(n) => n,
            Err(e) => {
                tracing::warn!(container = %id, error = %e, "reading container output failed");
                return;
            }
        };
        records.clear();
        log_format::encode_chunk(&mut records, log_format::now_ns(), stream, &buf[..n]);
        if let Err(e) = file.write_all(&records).await {
            tracing::warn!(container = %id, error = %e, "writing container output failed");
        }
    }
}

//! `orca-log-driver`: a containerd "binary" logging driver that appends a
//! container's stdout and stderr to its log file, so that the container's
//! output never depends on the agent being up.
//!
//! The runtime starts tasks with stdout = stderr =
//! `binary:///<this binary>?path=<log file>` (see
//! `orca_runtime::containerd::logdriver`). containerd 1.6's runc shim then
//! (`pkg/process/io.go`, `NewBinaryIO`; `pkg/process/io_util.go`,
//! `NewBinaryCmd`):
//! - runs this binary with the URI's query as arguments, each key followed
//!   by its first value (in no particular order: Go map iteration), with
//!   only `CONTAINER_ID` and `CONTAINER_NAMESPACE` in the environment and
//!   stdin/stdout/stderr on /dev/null;
//! - passes the read ends of the container's stdout and stderr pipes as
//!   fds 3 and 4 and the write end of a "ready" pipe as fd 5, and blocks
//!   task creation until it reads a byte or EOF from that pipe: closing
//!   fd 5 says "ready";
//! - keeps the pipes' write ends open until the task is deleted: only
//!   `Tasks.Delete` closes them (EOF here), then sends SIGTERM and waits up
//!   to 12 s for this process to exit before SIGKILL.
//!
//! So this driver: closes descriptors it inherited beyond 3–5, opens the
//! log file (parents created, `O_APPEND`), closes fd 5, copies whatever
//! arrives on fds 3 and 4 into the file (one thread, `poll`, each chunk
//! written whole as soon as it is read, so the file is current while the
//! task runs and the two streams interleave in arrival order), and exits 0
//! after fsync once both reach EOF. SIGTERM (and
//! SIGINT, SIGHUP) do not end it early: they come right after the shim
//! closed the write ends, with the last output possibly still in the pipes,
//! so it keeps reading to EOF and only gives up [`TERM_GRACE`] later (a
//! writer that outlived the container), after taking what is buffered.
//! If the log file cannot be opened the output is still read and discarded:
//! the container must never block on a full pipe.

use std::ffi::OsString;
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use orca_runtime::log_format::{self, Stream};
use orca_runtime::log_rotation::{LogRotation, RotatingLog};

/// The streams of fds 3 and 4, in that order.
const STREAMS: [Stream; 2] = [Stream::Stdout, Stream::Stderr];
/// The container's stdout pipe (read end).
const STDOUT_FD: RawFd = 3;
/// The container's stderr pipe (read end).
const STDERR_FD: RawFd = 4;
/// The shim waits on this pipe until the driver closes (or writes to) it.
const READY_FD: RawFd = 5;
/// How long after SIGTERM the driver still waits for EOF.
const TERM_GRACE: Duration = Duration::from_secs(5);
/// The URI query key naming the log file.
const PATH_KEY: &str = "path";
/// The URI query keys of the rotation limits (both or neither).
const MAX_SIZE_KEY: &str = "max-size";
const MAX_FILES_KEY: &str = "max-files";

fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let Some(path) = log_path(&args) else {
        eprintln!(
            "usage: orca-log-driver path <log file>\n\
             (a containerd binary logging driver: containerd's shim runs it with the\n\
             container's stdout and stderr as fds 3 and 4 and a ready pipe as fd 5)"
        );
        return ExitCode::from(2);
    };
    for fd in [STDOUT_FD, STDERR_FD, READY_FD] {
        // SAFETY: F_GETFD only inspects the descriptor table.
        if unsafe { libc::fcntl(fd, libc::F_GETFD) } < 0 {
            eprintln!("orca-log-driver: fd {fd} is not open (run by containerd's shim)");
            return ExitCode::from(2);
        }
    }
    close_inherited_fds();
    // Before anything else, so a SIGTERM can never kill us mid-copy.
    let signals = match block_termination() {
        Ok(fd) => Some(fd),
        Err(e) => {
            eprintln!("orca-log-driver: signalfd: {e}; SIGTERM will end the copy early");
            None
        }
    };
    // SAFETY: the shim hands us fds 3, 4 and 5 (checked open above) and
    // nothing else in this process uses them.
    let (stdout, stderr, ready) = unsafe {
        (
            OwnedFd::from_raw_fd(STDOUT_FD),
            OwnedFd::from_raw_fd(STDERR_FD),
            OwnedFd::from_raw_fd(READY_FD),
        )
    };
    let mut log = match RotatingLog::open(&path, rotation(&args)) {
        Ok(f) => Some(f),
        Err(e) => {
            eprintln!(
                "orca-log-driver: cannot open {}: {e}; discarding the output",
                path.display()
            );
            None
        }
    };
    // Ready: the shim may now start the container.
    drop(ready);
    copy_streams(
        [File::from(stdout), File::from(stderr)],
        signals.as_ref(),
        &mut log,
        TERM_GRACE,
    );
    if let Some(f) = &log {
        f.sync();
    }
    ExitCode::SUCCESS
}

/// The log file named by the arguments: the value after a `path` key (the
/// shim passes key/value pairs in any order), or a lone argument.
fn log_path(args: &[OsString]) -> Option<PathBuf> {
    if let [only] = args {
        return (!only.is_empty()).then(|| PathBuf::from(only));
    }
    value_of(args, PATH_KEY)
        .map(PathBuf::from)
        .filter(|p| !p.as_os_str().is_empty())
}

/// The value after `key` among the shim's key/value arguments.
fn value_of<'a>(args: &'a [OsString], key: &str) -> Option<&'a OsString> {
    args.chunks(2)
        .find(|pair| pair.len() == 2 && pair[0] == key)
        .map(|pair| &pair[1])
}

/// The rotation limits named by the arguments (`max-size` bytes and
/// `max-files`), if both are there and valid.
fn rotation(args: &[OsString]) -> Option<LogRotation> {
    let value = |key: &str| value_of(args, key)?.to_str()?.parse::<u64>().ok();
    Some(LogRotation {
        max_bytes: value(MAX_SIZE_KEY).filter(|b| *b > 0)?,
        max_files: u32::try_from(value(MAX_FILES_KEY)?)
            .ok()
            .filter(|f| *f > 0)?,
    })
}

/// Closes descriptors above 5 leaked to us through the shim (containerd's
/// own, for one): this process may outlive nothing it should not hold.
fn close_inherited_fds() {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return;
    };
    let fds: Vec<RawFd> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .filter(|fd| *fd > READY_FD)
        .collect();
    for fd in fds {
        // SAFETY: nothing in this process owns these descriptors yet (the
        // one read_dir used is closed, and closing it again is harmless).
        unsafe { libc::close(fd) };
    }
}

/// Blocks SIGTERM, SIGINT and SIGHUP and returns a signalfd reporting them.
fn block_termination() -> std::io::Result<OwnedFd> {
    // SAFETY: plain libc calls on a sigset we own; the fd returned is new
    // and owned by the OwnedFd.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, sig);
        }
        if libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let fd = libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Copies both streams into `log` until both reach EOF, or until `grace`
/// after a termination signal on `signals` (then takes what is buffered).
fn copy_streams(
    mut streams: [File; 2],
    signals: Option<&OwnedFd>,
    log: &mut Option<RotatingLog>,
    grace: Duration,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut open = [true, true];
    let mut deadline: Option<Instant> = None;
    while open.iter().any(|o| *o) {
        let mut fds = [
            pollfd(streams[0].as_raw_fd(), open[0]),
            pollfd(streams[1].as_raw_fd(), open[1]),
            pollfd(signals.map_or(-1, |s| s.as_raw_fd()), true),
        ];
        let timeout = deadline.map_or(-1, |d| {
            // Rounded up: poll's timeout is in whole milliseconds.
            let left = d.saturating_duration_since(Instant::now()) + Duration::from_micros(999);
            i32::try_from(left.as_millis()).unwrap_or(i32::MAX)
        });
        // SAFETY: `fds` is a valid array of pollfd for the call's duration.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, timeout) };
        if n < 0 {
            if std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if n == 0 && deadline.is_some_and(|d| Instant::now() >= d) {
            // The grace after SIGTERM is over: someone else still holds a
            // write end. Take what is already in the pipes, then stop.
            for (i, s) in streams.iter_mut().enumerate() {
                if open[i] {
                    drain_buffered(s, STREAMS[i], &mut buf, log);
                }
            }
            break;
        }
        for i in 0..2 {
            if !open[i] || fds[i].revents == 0 {
                continue;
            }
            match streams[i].read(&mut buf) {
                Ok(0) => open[i] = false,
                Ok(k) => write_chunk(log, STREAMS[i], &buf[..k]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => open[i] = false,
            }
        }
        if fds[2].revents != 0 {
            if let Some(s) = signals {
                // One siginfo per read; another pending one polls again.
                let mut info = [0u8; std::mem::size_of::<libc::signalfd_siginfo>()];
                // SAFETY: reads into a buffer of exactly one siginfo.
                unsafe { libc::read(s.as_raw_fd(), info.as_mut_ptr().cast(), info.len()) };
            }
            deadline.get_or_insert_with(|| Instant::now() + grace);
        }
    }
}

fn pollfd(fd: RawFd, wanted: bool) -> libc::pollfd {
    libc::pollfd {
        // poll ignores negative descriptors.
        fd: if wanted { fd } else { -1 },
        events: libc::POLLIN,
        revents: 0,
    }
}

/// Reads what is buffered in `stream` without blocking.
fn drain_buffered(stream: &mut File, which: Stream, buf: &mut [u8], log: &mut Option<RotatingLog>) {
    // SAFETY: sets O_NONBLOCK on a descriptor this process owns.
    unsafe {
        let flags = libc::fcntl(stream.as_raw_fd(), libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(stream.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
    loop {
        match stream.read(buf) {
            Ok(0) => return,
            Ok(k) => write_chunk(log, which, &buf[..k]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

/// Appends one chunk read from `stream` as log records stamped now
/// (`log_format`); a failed write (disk full) drops it, and the copy goes
/// on so the container never blocks.
fn write_chunk(log: &mut Option<RotatingLog>, stream: Stream, chunk: &[u8]) {
    if let Some(f) = log {
        let mut records = Vec::with_capacity(chunk.len() + 64);
        log_format::encode_chunk(&mut records, log_format::now_ns(), stream, chunk);
        f.write_chunk(&records);
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn os(args: &[&str]) -> Vec<OsString> {
        args.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_log_path_comes_from_the_path_pair_in_any_order() {
        assert_eq!(
            log_path(&os(&["path", "/var/log/a b.log"])),
            Some(PathBuf::from("/var/log/a b.log"))
        );
        assert_eq!(
            log_path(&os(&["other", "x", "path", "/l"])),
            Some(PathBuf::from("/l"))
        );
        assert_eq!(log_path(&os(&["/lone"])), Some(PathBuf::from("/lone")));
        assert_eq!(log_path(&os(&[])), None);
        assert_eq!(log_path(&os(&["other", "x"])), None);
        assert_eq!(log_path(&os(&["path", ""])), None);
    }

    #[test]
    fn rotation_needs_both_limits() {
        assert_eq!(
            rotation(&os(&["path", "/l", "max-files", "3", "max-size", "1024"])),
            Some(LogRotation {
                max_bytes: 1024,
                max_files: 3
            })
        );
        assert_eq!(rotation(&os(&["path", "/l", "max-size", "1024"])), None);
        assert_eq!(rotation(&os(&["max-size", "0", "max-files", "3"])), None);
        assert_eq!(rotation(&os(&["max-size", "1k", "max-files", "3"])), None);
    }

    fn pipe() -> (File, File) {
        let mut fds = [0; 2];
        // SAFETY: pipe2 fills the two-element array with new descriptors.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both descriptors are new and owned here.
        unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
    }

    #[test]
    fn both_streams_are_copied_to_eof_into_one_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("nested/dir/c.log");
        let mut log = Some(RotatingLog::open(&path, None).unwrap_or_else(|e| panic!("{e}")));
        let (out_r, mut out_w) = pipe();
        let (err_r, mut err_w) = pipe();
        // More than a pipe buffer on stdout: the writer needs the reader.
        let writer = std::thread::spawn(move || {
            out_w.write_all(&vec![b'x'; 300_000]).ok();
            err_w.write_all(b"err\n").ok();
        });
        copy_streams([out_r, err_r], None, &mut log, TERM_GRACE);
        writer.join().ok();
        let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{e}"));
        let lines = log_format::parse_lines(&bytes);
        let out: usize = lines
            .iter()
            .filter(|l| l.stream == Stream::Stdout)
            .map(|l| l.content.iter().filter(|b| **b == b'x').count())
            .sum();
        assert_eq!(out, 300_000, "partial records joined");
        let err: Vec<&[u8]> = lines
            .iter()
            .filter(|l| l.stream == Stream::Stderr)
            .map(|l| l.content.as_slice())
            .collect();
        assert_eq!(err, [&b"err"[..]]);
    }

    #[test]
    fn a_held_write_end_ends_the_copy_after_the_grace_with_the_buffered_bytes() {
        let (out_r, mut out_w) = pipe();
        let (err_r, err_w) = pipe();
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("c.log");
        let mut log = Some(RotatingLog::open(&path, None).unwrap_or_else(|e| panic!("{e}")));
        out_w.write_all(b"tail\n").ok();
        // A readable pipe stands in for the signalfd reporting SIGTERM.
        let (sig_r, mut sig_w) = pipe();
        sig_w.write_all(b"t").ok();
        let t0 = Instant::now();
        copy_streams(
            [out_r, err_r],
            Some(&OwnedFd::from(sig_r)),
            &mut log,
            Duration::from_millis(200),
        );
        assert!(t0.elapsed() >= Duration::from_millis(200));
        let bytes = std::fs::read(&path).unwrap_or_default();
        assert_eq!(log_format::output_text(&bytes), "tail\n");
        drop((out_w, err_w, sig_w));
    }
}

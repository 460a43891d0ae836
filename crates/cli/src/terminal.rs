//! The local terminal of an interactive `orca execute-command`: raw mode
//! (restored on every way out, panics included, by a guard), the window
//! size and its changes (SIGWINCH), stdin as a stream of events, and
//! Ctrl-C caught instead of ending this process; [`run`] puts them around
//! [`exec_session::pump`].
//!
//! stdin is read on a plain thread, not tokio's blocking pool: a read that
//! is still waiting for a key when the session ends would otherwise hold up
//! the runtime's shutdown, and so the exit.

use std::io::Read;
use std::os::fd::RawFd;

use futures::Stream;
use tokio::sync::mpsc;

use crate::exec_session::{self, ExecInput, ExecOutput, LocalEvent, Mode};

const STDIN: RawFd = libc::STDIN_FILENO;

/// Whether `fd` is a terminal.
pub fn is_tty(fd: RawFd) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

/// The window size of the terminal on `fd` as (rows, cols); `None` if it
/// is not a terminal or reports no size.
pub fn window_size(fd: RawFd) -> Option<(u16, u16)> {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ writes one winsize into the struct we own.
    let r = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    (r == 0 && size.ws_row > 0 && size.ws_col > 0).then_some((size.ws_row, size.ws_col))
}

/// The terminal on a descriptor in raw mode until dropped: keys reach the
/// remote terminal unchanged (no local echo, line editing or signals), and
/// the remote terminal's output is shown as it comes.
pub struct RawMode {
    fd: RawFd,
    /// The settings to put back.
    saved: libc::termios,
}

impl RawMode {
    pub fn enable(fd: RawFd) -> std::io::Result<RawMode> {
        // SAFETY: termios is plain data; tcgetattr fills it in.
        let mut saved: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `saved` is a valid termios for the call.
        if unsafe { libc::tcgetattr(fd, &mut saved) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        let mut raw = saved;
        // SAFETY: cfmakeraw only edits the struct.
        unsafe { libc::cfmakeraw(&mut raw) };
        // SAFETY: `raw` is a valid termios.
        if unsafe { libc::tcsetattr(fd, libc::TCSANOW, &raw) } != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(RawMode { fd, saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: `saved` came from tcgetattr on this descriptor. TCSAFLUSH
        // drops typed-ahead keys meant for the remote side.
        unsafe { libc::tcsetattr(self.fd, libc::TCSAFLUSH, &self.saved) };
    }
}

/// Reads stdin on a thread of its own into `events`: chunks as they come,
/// then `StdinEof` once. Stops when nobody listens any more.
fn read_stdin(events: mpsc::Sender<LocalEvent>) {
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 8192];
        loop {
            let event = match stdin.read(&mut buf) {
                Ok(0) => LocalEvent::StdinEof,
                Ok(n) => LocalEvent::Stdin(buf[..n].to_vec()),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => LocalEvent::StdinEof,
            };
            let eof = event == LocalEvent::StdinEof;
            if events.blocking_send(event).is_err() || eof {
                return;
            }
        }
    });
}

/// Local events for a session in `mode`: stdin, and window changes with a
/// terminal or Ctrl-C (SIGINT) without one. Call inside the runtime.
pub fn local_events(mode: Mode) -> std::io::Result<mpsc::Receiver<LocalEvent>> {
    use tokio::signal::unix::{signal, SignalKind};
    let (tx, rx) = mpsc::channel(64);
    if mode.tty {
        let mut winch = signal(SignalKind::window_change())?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while winch.recv().await.is_some() {
                if let Some((rows, cols)) = window_size(STDIN) {
                    if tx.send(LocalEvent::Resized { rows, cols }).await.is_err() {
                        return;
                    }
                }
            }
        });
    } else {
        // Registering the handler is what keeps Ctrl-C from ending this
        // process: it ends the remote command instead.
        let mut interrupts = signal(SignalKind::interrupt())?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while interrupts.recv().await.is_some() {
                if tx.send(LocalEvent::Interrupt).await.is_err() {
                    return;
                }
            }
        });
    }
    if mode.stdin {
        read_stdin(tx);
    } else {
        // Nothing to read: the remote process sees EOF at once.
        let _ = tx.try_send(LocalEvent::StdinEof);
    }
    Ok(rx)
}

/// The terminal size to start a session with (only with a terminal).
pub fn initial_size(mode: Mode) -> Option<(u16, u16)> {
    if mode.tty {
        window_size(STDIN)
    } else {
        None
    }
}

/// Runs a session on this process's terminal: raw mode for its duration
/// with a terminal, `local` events ([`local_events`], taken by the caller
/// once the session started, so a Ctrl-C from then on is the session's)
/// to `remote_in`, remote output to stdout and stderr; returns the remote
/// exit code. The transport opens the remote session first (with
/// [`initial_size`]).
pub async fn run<S, E>(
    mode: Mode,
    local: mpsc::Receiver<LocalEvent>,
    remote_in: mpsc::Sender<ExecInput>,
    remote_out: S,
) -> anyhow::Result<i32>
where
    S: Stream<Item = Result<ExecOutput, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let _raw = if mode.tty {
        Some(RawMode::enable(STDIN)?)
    } else {
        None
    };
    exec_session::pump(
        mode,
        local,
        remote_in,
        remote_out,
        tokio::io::stdout(),
        tokio::io::stderr(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_descriptor_that_is_no_terminal_has_no_size_or_raw_mode() -> std::io::Result<()> {
        let file = tempfile::tempfile()?;
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        assert!(!is_tty(fd));
        assert_eq!(window_size(fd), None);
        assert!(RawMode::enable(fd).is_err());
        Ok(())
    }

    /// The local-mode flags of the terminal on `fd`.
    fn lflags(fd: RawFd) -> libc::tcflag_t {
        // SAFETY: termios is plain data; tcgetattr fills it in.
        let mut t: libc::termios = unsafe { std::mem::zeroed() };
        // SAFETY: `t` is a valid termios for the call.
        unsafe { libc::tcgetattr(fd, &mut t) };
        t.c_lflag
    }

    #[test]
    fn raw_mode_on_a_pseudo_terminal_is_undone_on_drop() -> std::io::Result<()> {
        let (mut master, mut slave) = (-1, -1);
        let size = libc::winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: openpty writes two descriptors; the name and termios
        // pointers may be null; `size` outlives the call.
        let r = unsafe {
            libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                std::ptr::null(),
                &size,
            )
        };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
        assert!(is_tty(slave));
        assert_eq!(window_size(slave), Some((24, 80)));
        let cooked = lflags(slave);
        assert_ne!(cooked & libc::ICANON, 0);
        {
            let _raw = RawMode::enable(slave)?;
            assert_eq!(lflags(slave) & (libc::ICANON | libc::ECHO | libc::ISIG), 0);
        }
        assert_eq!(lflags(slave), cooked);
        // SAFETY: both descriptors are ours and closed once.
        unsafe {
            libc::close(slave);
            libc::close(master);
        }
        Ok(())
    }

    #[test]
    fn no_terminal_no_size() {
        assert_eq!(
            initial_size(Mode {
                tty: false,
                stdin: true
            }),
            None
        );
    }
}

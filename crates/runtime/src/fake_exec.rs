//! [`crate::fake::FakeRuntime`]'s exec sessions: the args act themselves
//! out, read left to right as words (split at whitespace and `;`):
//! - first the session writes `ran: <args>` and a newline to stdout;
//! - `sleep <secs>`: wait (tokio time);
//! - `cat`: copy stdin to stdout until stdin is closed;
//! - `exit <code>`: exit with that code;
//! - anything else is skipped; running out of words exits 0.
//!
//! A signal ends the process at once with 128 + its number (as a process
//! without a handler); dropping the session's `exit` ends it with 137.
//! Resizes are reported to the runtime, which keeps them for assertions.

use bytes::Bytes;
use tokio::time::Instant;

use crate::exec_session::{channels, signal_exit_code, SessionEnds};
use crate::{ExecInput, ExecOutput, ExecSession, TtySize};

/// Where a session reports the terminal sizes it was given.
pub(crate) type ResizeLog = Box<dyn Fn(TtySize) + Send + 'static>;

/// Starts acting `args` out (see the module documentation).
pub(crate) fn start(
    id: &str,
    exec_id: &str,
    args: Vec<String>,
    on_resize: ResizeLog,
) -> ExecSession {
    let (session, ends) = channels(id, exec_id);
    tokio::spawn(async move {
        let SessionEnds {
            mut input,
            output,
            mut exit,
        } = ends;
        let mut script = Script {
            input: &mut input,
            output,
            on_resize,
            stdin_open: true,
        };
        let code = tokio::select! {
            code = script.run(&args) => code,
            _ = exit.closed() => signal_exit_code(libc::SIGKILL),
        };
        // The output ends before the exit is told, as on containerd.
        drop(script);
        let _ = exit.send(Ok(code));
    });
    session
}

struct Script<'a> {
    input: &'a mut tokio::sync::mpsc::Receiver<ExecInput>,
    output: tokio::sync::mpsc::Sender<ExecOutput>,
    on_resize: ResizeLog,
    /// Stdin has not been closed yet.
    stdin_open: bool,
}

/// What waiting for input produced.
enum Event {
    Stdin(Bytes),
    Eof,
    Killed(i32),
}

impl Script<'_> {
    async fn run(&mut self, args: &[String]) -> i32 {
        let words: Vec<&str> = args
            .iter()
            .flat_map(|a| a.split(|c: char| c.is_whitespace() || c == ';'))
            .filter(|w| !w.is_empty())
            .collect();
        let banner = format!("ran: {}\n", args.join(" "));
        let _ = self.output.send(ExecOutput::Stdout(banner.into())).await;
        let mut i = 0;
        while i < words.len() {
            match words[i] {
                "sleep" => {
                    let secs: f64 = words.get(i + 1).and_then(|w| w.parse().ok()).unwrap_or(0.0);
                    i += 1;
                    let until = Instant::now() + std::time::Duration::from_secs_f64(secs.max(0.0));
                    loop {
                        match self.next(Some(until)).await {
                            Some(Event::Killed(code)) => return code,
                            Some(_) => {}
                            None => break,
                        }
                    }
                }
                "cat" => loop {
                    match self.next(None).await {
                        Some(Event::Killed(code)) => return code,
                        Some(Event::Stdin(bytes)) => {
                            let _ = self.output.send(ExecOutput::Stdout(bytes)).await;
                        }
                        Some(Event::Eof) | None => break,
                    }
                },
                "exit" => return words.get(i + 1).and_then(|w| w.parse().ok()).unwrap_or(0),
                _ => {}
            }
            i += 1;
        }
        0
    }

    /// The next input that matters, or `None` at `deadline` (with no
    /// deadline: once stdin is closed and nothing else can come).
    async fn next(&mut self, deadline: Option<Instant>) -> Option<Event> {
        loop {
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending::<()>().await,
                }
            };
            let msg = tokio::select! {
                _ = sleep => return None,
                msg = self.input.recv() => msg,
            };
            match msg {
                Some(ExecInput::Stdin(bytes)) if self.stdin_open => {
                    return Some(Event::Stdin(bytes))
                }
                Some(ExecInput::Stdin(_)) => {}
                Some(ExecInput::CloseStdin) | None if self.stdin_open => {
                    self.stdin_open = false;
                    return Some(Event::Eof);
                }
                Some(ExecInput::CloseStdin) => {}
                Some(ExecInput::Resize(size)) => (self.on_resize)(size),
                Some(ExecInput::Signal(signal)) => {
                    return Some(Event::Killed(signal_exit_code(signal)))
                }
                // No input can come any more: only the deadline is left.
                None => match deadline {
                    Some(d) => {
                        tokio::time::sleep_until(d).await;
                        return None;
                    }
                    None => return Some(Event::Eof),
                },
            }
        }
    }
}

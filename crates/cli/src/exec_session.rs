//! The client half of `orca execute-command`: what travels between the
//! local terminal and the remote exec process, without the transport.
//!
//! The transport (a bidirectional gRPC stream through the controller to the
//! agent) maps [`ExecInput`] and [`ExecOutput`] one to one onto its wire
//! messages: [`pump`] takes any sink of inputs (an mpsc sender, turned into
//! the request stream) and any stream of outputs (tonic's `Streaming`,
//! mapped), so it runs unchanged over the wire and in tests.
//!
//! Local events become inputs by [`to_remote`]:
//! - stdin bytes go as they are; on a terminal that includes Ctrl-C (0x03)
//!   and Ctrl-D, since raw mode hands them over as bytes and the remote
//!   terminal gives them their meaning (SIGINT to its foreground job, EOF);
//! - stdin EOF (a pipe or file ran out) becomes `CloseStdin`, once;
//! - a resized local window becomes `Resize`, only with a terminal;
//! - SIGINT to this process (Ctrl-C without a terminal) becomes
//!   `Signal(SIGINT)` for the remote process, so it ends as 130 unless it
//!   handles the signal; this process keeps running until the remote exit.
//!
//! The remote exit code becomes this process's ([`exit_status`]).

use futures::{Stream, StreamExt};
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

/// A message to the remote process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecInput {
    Stdin(Vec<u8>),
    /// No more stdin: the remote process reads EOF.
    CloseStdin,
    Resize {
        rows: u16,
        cols: u16,
    },
    /// A Linux signal number for the remote process.
    Signal(i32),
}

/// A message from the remote process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExecOutput {
    Stdout(Vec<u8>),
    Stderr(Vec<u8>),
    /// The process exited with this code (128 + signal if a signal ended
    /// it): the session's last message.
    Exit(i32),
}

/// Something that happened on this side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalEvent {
    Stdin(Vec<u8>),
    StdinEof,
    Resized {
        rows: u16,
        cols: u16,
    },
    /// SIGINT reached this process.
    Interrupt,
}

/// How a session runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    /// A remote terminal, with the local one in raw mode.
    pub tty: bool,
    /// Local stdin goes to the remote process; otherwise it reads EOF at
    /// once (`docker exec` without `-i`).
    pub stdin: bool,
}

/// A terminal is used when the session is interactive and stdin is one:
/// `--interactive` with piped stdin (`echo x | orca execute-command ...`)
/// streams plain pipes instead of failing, and the exit code still comes
/// back.
pub fn mode(interactive: bool, stdin_is_tty: bool) -> Mode {
    Mode {
        tty: interactive && stdin_is_tty,
        stdin: interactive,
    }
}

/// SIGINT's number on Linux (the remote side is always Linux).
pub const SIGINT: i32 = 2;

/// The input a local event calls for, if any (see the module docs).
pub fn to_remote(event: LocalEvent, mode: Mode) -> Option<ExecInput> {
    match event {
        LocalEvent::Stdin(bytes) if bytes.is_empty() => None,
        LocalEvent::Stdin(bytes) => Some(ExecInput::Stdin(bytes)),
        LocalEvent::StdinEof => Some(ExecInput::CloseStdin),
        LocalEvent::Resized { rows, cols } if mode.tty => Some(ExecInput::Resize { rows, cols }),
        LocalEvent::Resized { .. } => None,
        // In raw mode Ctrl-C arrives as a byte; a SIGINT from elsewhere is
        // passed on the same way, for the remote terminal to interpret.
        LocalEvent::Interrupt if mode.tty => Some(ExecInput::Stdin(vec![0x03])),
        LocalEvent::Interrupt => Some(ExecInput::Signal(SIGINT)),
    }
}

/// The remote exit code as this process's: codes wrap modulo 256 as a
/// shell shows them (-1, a status containerd could not tell, is 255).
pub fn exit_status(code: i32) -> u8 {
    u8::try_from(code.rem_euclid(256)).unwrap_or(u8::MAX)
}

/// Runs a session: local events to `remote_in`, remote output to `stdout`
/// and `stderr`, until the remote exit, whose code it returns. An input is
/// never waited on at the expense of output, so a remote process blocked
/// on its output cannot deadlock the session. `remote_in` closing (the
/// remote stopped listening) only stops the inputs; the output still runs
/// to the exit.
pub async fn pump<S, E, O, W>(
    mode: Mode,
    mut local: mpsc::Receiver<LocalEvent>,
    remote_in: mpsc::Sender<ExecInput>,
    mut remote_out: S,
    mut stdout: O,
    mut stderr: W,
) -> anyhow::Result<i32>
where
    S: Stream<Item = Result<ExecOutput, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
    O: AsyncWrite + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut pending: Option<ExecInput> = None;
    let mut local_open = true;
    let mut sent_eof = false;
    loop {
        tokio::select! {
            permit = remote_in.reserve(), if pending.is_some() => match permit {
                Ok(permit) => {
                    if let Some(input) = pending.take() {
                        permit.send(input);
                    }
                }
                Err(_) => {
                    // The remote takes no more input: drop what comes.
                    pending = None;
                    local_open = false;
                }
            },
            event = local.recv(), if pending.is_none() && local_open => match event {
                Some(event) => {
                    if event == LocalEvent::StdinEof {
                        if sent_eof {
                            continue;
                        }
                        sent_eof = true;
                    }
                    pending = to_remote(event, mode);
                }
                None => local_open = false,
            },
            output = remote_out.next() => match output {
                Some(Ok(ExecOutput::Stdout(bytes))) => {
                    stdout.write_all(&bytes).await?;
                    stdout.flush().await?;
                }
                Some(Ok(ExecOutput::Stderr(bytes))) => {
                    stderr.write_all(&bytes).await?;
                    stderr.flush().await?;
                }
                Some(Ok(ExecOutput::Exit(code))) => return Ok(code),
                Some(Err(e)) => return Err(anyhow::Error::new(e).context("the exec session failed")),
                None => anyhow::bail!("the exec session ended without an exit status"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PIPES: Mode = Mode {
        tty: false,
        stdin: true,
    };
    const TTY: Mode = Mode {
        tty: true,
        stdin: true,
    };

    #[test]
    fn a_terminal_needs_interactive_and_a_terminal() {
        assert!(mode(true, true).tty);
        assert!(!mode(true, false).tty);
        assert!(!mode(false, true).tty);
    }

    #[test]
    fn local_events_map_by_mode() {
        let bytes = LocalEvent::Stdin(b"ls\n".to_vec());
        assert_eq!(
            to_remote(bytes.clone(), PIPES),
            Some(ExecInput::Stdin(b"ls\n".to_vec()))
        );
        assert_eq!(
            to_remote(bytes, TTY),
            Some(ExecInput::Stdin(b"ls\n".to_vec()))
        );
        assert_eq!(to_remote(LocalEvent::Stdin(Vec::new()), PIPES), None);
        assert_eq!(
            to_remote(LocalEvent::StdinEof, TTY),
            Some(ExecInput::CloseStdin)
        );
        let resized = LocalEvent::Resized {
            rows: 30,
            cols: 100,
        };
        assert_eq!(to_remote(resized.clone(), PIPES), None);
        assert_eq!(
            to_remote(resized, TTY),
            Some(ExecInput::Resize {
                rows: 30,
                cols: 100
            })
        );
        assert_eq!(
            to_remote(LocalEvent::Interrupt, PIPES),
            Some(ExecInput::Signal(SIGINT))
        );
        assert_eq!(
            to_remote(LocalEvent::Interrupt, TTY),
            Some(ExecInput::Stdin(vec![3]))
        );
    }

    #[test]
    fn exit_codes_wrap_like_a_shell() {
        assert_eq!(exit_status(0), 0);
        assert_eq!(exit_status(3), 3);
        assert_eq!(exit_status(130), 130);
        assert_eq!(exit_status(256), 0);
        assert_eq!(exit_status(-1), 255);
    }

    type Outputs = futures::channel::mpsc::UnboundedSender<Result<ExecOutput, std::io::Error>>;

    /// A session whose remote end is driven by `remote`, given the inputs
    /// and the output sender; returns the exit code, stdout and stderr.
    async fn session<F, Fut>(
        mode: Mode,
        events: Vec<LocalEvent>,
        remote: F,
    ) -> (anyhow::Result<i32>, Vec<u8>, Vec<u8>)
    where
        F: FnOnce(mpsc::Receiver<ExecInput>, Outputs) -> Fut,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let (local_tx, local_rx) = mpsc::channel(8);
        for e in events {
            local_tx
                .try_send(e)
                .unwrap_or_else(|_| panic!("room for the events"));
        }
        let (in_tx, in_rx) = mpsc::channel(1);
        let (out_tx, out_rx) = futures::channel::mpsc::unbounded();
        let server = tokio::spawn(remote(in_rx, out_tx));
        let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
        let code = pump(mode, local_rx, in_tx, out_rx, &mut stdout, &mut stderr).await;
        server.abort();
        (code, stdout, stderr)
    }

    #[tokio::test]
    async fn inputs_go_out_and_output_comes_back_until_the_exit() {
        let events = vec![
            LocalEvent::Stdin(b"hello\n".to_vec()),
            LocalEvent::Resized { rows: 1, cols: 2 },
            LocalEvent::StdinEof,
            LocalEvent::StdinEof,
            LocalEvent::Interrupt,
        ];
        let (code, stdout, stderr) = session(PIPES, events, |mut rx, tx| async move {
            let mut got = Vec::new();
            for _ in 0..3 {
                got.extend(rx.recv().await);
            }
            let expected = [
                ExecInput::Stdin(b"hello\n".to_vec()),
                ExecInput::CloseStdin,
                ExecInput::Signal(SIGINT),
            ];
            let answer = if got == expected { 130 } else { 1 };
            let _ = tx.unbounded_send(Ok(ExecOutput::Stdout(b"got hello\n".to_vec())));
            let _ = tx.unbounded_send(Ok(ExecOutput::Stderr(b"oops\n".to_vec())));
            let _ = tx.unbounded_send(Ok(ExecOutput::Exit(answer)));
        })
        .await;
        assert_eq!(
            code.ok(),
            Some(130),
            "the inputs arrived in order, once each"
        );
        assert_eq!(stdout, b"got hello\n");
        assert_eq!(stderr, b"oops\n");
    }

    #[tokio::test]
    async fn output_flows_while_the_remote_takes_no_input() {
        // The remote never reads its input (a channel of one fills), yet
        // its output and exit still arrive.
        let events = (0..5).map(|i| LocalEvent::Stdin(vec![i])).collect();
        let (code, stdout, _) = session(PIPES, events, |rx, tx| async move {
            let _keep = rx;
            for _ in 0..3 {
                let _ = tx.unbounded_send(Ok(ExecOutput::Stdout(b"x".to_vec())));
            }
            let _ = tx.unbounded_send(Ok(ExecOutput::Exit(0)));
            std::future::pending::<()>().await;
        })
        .await;
        assert_eq!(code.ok(), Some(0));
        assert_eq!(stdout, b"xxx");
    }

    #[tokio::test]
    async fn a_session_without_an_exit_is_an_error() {
        let (code, stdout, _) = session(TTY, Vec::new(), |_rx, tx| async move {
            let _ = tx.unbounded_send(Ok(ExecOutput::Stdout(b"partial".to_vec())));
        })
        .await;
        assert!(code.is_err());
        assert_eq!(stdout, b"partial");

        let (code, _, _) = session(TTY, Vec::new(), |_rx, tx| async move {
            let _ = tx.unbounded_send(Err(std::io::Error::other("connection reset")));
        })
        .await;
        let message = code.err().map(|e| format!("{e:#}")).unwrap_or_default();
        assert!(message.contains("failed"), "{message}");
    }
}

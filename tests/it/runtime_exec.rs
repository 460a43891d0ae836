//! Interactive exec sessions (`ContainerRuntime::exec_session`, ECS Exec's
//! runtime half) against real containerd, on the rig of [`crate::runtime`]:
//! stdin then EOF, separate stdout and stderr, a terminal (line editing,
//! resize, exit code), signals, an abandoned session, a missing executable,
//! and no FIFOs left behind.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orca_runtime::containerd::{ContainerdConfig, ContainerdRuntime, RegistriesConfig};
use orca_runtime::{
    ContainerRuntime, ExecInput, ExecOutput, ExecRequest, ExecSession, RuntimeError, TtySize,
};

use crate::runtime::Env;
use crate::support::HEAVY;

const SIGINT: i32 = 2;

/// How long any one step may take on a loaded 2-core machine.
const STEP: Duration = Duration::from_secs(20);

fn request(args: &[&str]) -> ExecRequest {
    ExecRequest {
        args: args.iter().map(|a| a.to_string()).collect(),
        ..ExecRequest::default()
    }
}

/// A session's output, gathered by a task of its own as it arrives.
#[derive(Clone, Default)]
struct Gathered {
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
}

impl Gathered {
    fn stdout(&self) -> String {
        self.stdout.lock().map(|s| s.clone()).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Waits until stdout contains `text`.
    async fn wait_for(&self, text: &str) -> anyhow::Result<()> {
        let t0 = Instant::now();
        while !self.stdout().contains(text) {
            anyhow::ensure!(
                t0.elapsed() < STEP,
                "no {text:?} in the output: {:?}",
                self.stdout()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }
}

/// Splits `session`: output gathered in the background, input and the
/// exit code (after all output) handed back.
fn gather(
    session: ExecSession,
) -> (
    Gathered,
    tokio::sync::mpsc::Sender<ExecInput>,
    tokio::task::JoinHandle<Result<i32, RuntimeError>>,
) {
    let ExecSession {
        input,
        mut output,
        exit,
        ..
    } = session;
    let gathered = Gathered::default();
    let g = gathered.clone();
    let done = tokio::spawn(async move {
        while let Some(chunk) = output.recv().await {
            let (to, bytes) = match chunk {
                ExecOutput::Stdout(b) => (&g.stdout, b),
                ExecOutput::Stderr(b) => (&g.stderr, b),
            };
            if let Ok(mut s) = to.lock() {
                s.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
        exit.wait().await
    });
    (gathered, input, done)
}

async fn exit_code(
    done: tokio::task::JoinHandle<Result<i32, RuntimeError>>,
) -> anyhow::Result<i32> {
    Ok(tokio::time::timeout(STEP, done)
        .await
        .map_err(|_| anyhow::anyhow!("the exec did not end"))???)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exec_session_streams_stdin_and_output() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("exec-session", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    env.run(&env.spec("box", &image, "sleep 1000")).await?;

    // stdin, then EOF; stdout and stderr apart; the exit code.
    let session = env
        .rt
        .exec_session(
            "box",
            request(&["sh", "-c", "read x; echo got $x; echo oops >&2; exit 3"]),
        )
        .await?;
    let (out, input, done) = gather(session);
    input.send(ExecInput::Stdin("hello\n".into())).await?;
    input.send(ExecInput::CloseStdin).await?;
    assert_eq!(exit_code(done).await?, 3);
    assert_eq!(out.stdout(), "got hello\n");
    assert_eq!(out.stderr(), "oops\n");

    // EOF really arrives: `cat` ends once stdin is closed, with every byte.
    let session = env.rt.exec_session("box", request(&["cat"])).await?;
    let (out, input, done) = gather(session);
    input.send(ExecInput::Stdin("abc".into())).await?;
    input.send(ExecInput::Stdin("def\n".into())).await?;
    drop(input); // every sender gone counts as EOF
    assert_eq!(exit_code(done).await?, 0);
    assert_eq!(out.stdout(), "abcdef\n");

    // Much more output than the pipes hold arrives whole before the exit.
    let session = env
        .rt
        .exec_session("box", request(&["head", "-c", "300000", "/dev/zero"]))
        .await?;
    let (out, input, done) = gather(session);
    drop(input);
    assert_eq!(exit_code(done).await?, 0);
    assert_eq!(out.stdout().len(), 300_000);

    // A signal ends a command run without a terminal, as 128 + signal.
    let session = env
        .rt
        .exec_session("box", request(&["sleep", "100"]))
        .await?;
    let (_, input, done) = gather(session);
    input.send(ExecInput::Signal(SIGINT)).await?;
    assert_eq!(exit_code(done).await?, 130);

    // An abandoned session (its exit dropped) is killed.
    let ExecSession {
        mut output, exit, ..
    } = env
        .rt
        .exec_session("box", request(&["sleep", "100"]))
        .await?;
    drop(exit);
    tokio::time::timeout(STEP, async { while output.recv().await.is_some() {} })
        .await
        .map_err(|_| anyhow::anyhow!("an abandoned exec was not killed"))?;

    // Abandoned while the process reads no stdin and every queue of input
    // is full: still killed.
    let ExecSession {
        input,
        mut output,
        exit,
        ..
    } = env
        .rt
        .exec_session("box", request(&["sleep", "100"]))
        .await?;
    let feeder = {
        let input = input.clone();
        let chunk = bytes::Bytes::from(vec![b'x'; 64 * 1024]);
        tokio::spawn(
            async move { while input.send(ExecInput::Stdin(chunk.clone())).await.is_ok() {} },
        )
    };
    let t0 = Instant::now();
    while input.capacity() > 0 {
        anyhow::ensure!(t0.elapsed() < STEP, "the input never filled up");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(exit);
    tokio::time::timeout(STEP, async { while output.recv().await.is_some() {} })
        .await
        .map_err(|_| anyhow::anyhow!("an abandoned exec with full input was not killed"))?;
    drop(input);
    tokio::time::timeout(STEP, feeder).await??;

    // A missing executable fails the call itself.
    match env
        .rt
        .exec_session("box", request(&["/no/such/thing"]))
        .await
    {
        Err(RuntimeError::Exec { message, .. }) => {
            assert!(message.contains("no such file"), "{message}")
        }
        other => anyhow::bail!("expected an exec error, got {other:?}"),
    }
    assert!(matches!(
        env.rt.exec_session("nothing", request(&["true"])).await,
        Err(RuntimeError::NotFound { .. })
    ));

    // A restarted agent ends the sessions its predecessor left: a shell
    // whose stdin stays open would otherwise live as long as the container.
    let session = env.rt.exec_session("box", request(&["sh"])).await?;
    let (_, _open_stdin, done) = gather(session);
    let scratch = tempfile::tempdir()?;
    let successor = ContainerdRuntime::connect(ContainerdConfig {
        state_dir: scratch.path().join("state"),
        ..env.config.clone()
    })
    .await?;
    successor.end_orphaned_execs().await;
    assert_eq!(exit_code(done).await?, 137);
    // Only execs: the container itself runs on.
    let listed = env.rt.list().await?;
    assert!(listed.iter().any(|c| c.id == "box" && c.is_running()));

    // No session leaves its FIFOs behind (the abandoned one is cleaned up
    // by its driver, shortly after its output ended).
    let exec_dir = env.rt.state_dir().join("exec");
    let t0 = Instant::now();
    loop {
        let left: Vec<_> = std::fs::read_dir(&exec_dir)
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        anyhow::ensure!(t0.elapsed() < STEP, "exec FIFOs left: {left:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exec_session_on_a_terminal() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("exec-tty", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    env.run(&env.spec("box", &image, "sleep 1000")).await?;

    let session = env
        .rt
        .exec_session(
            "box",
            ExecRequest {
                tty: true,
                size: Some(TtySize { rows: 24, cols: 80 }),
                ..request(&["sh"])
            },
        )
        .await?;
    let (out, input, done) = gather(session);
    // The typed line echoes as `$((6*7))`; only the shell's answer is 42.
    input
        .send(ExecInput::Stdin("echo $((6*7))\r".into()))
        .await?;
    out.wait_for("42").await?;
    // The terminal's size, initial then resized.
    input
        .send(ExecInput::Stdin("busybox stty size\r".into()))
        .await?;
    out.wait_for("24 80").await?;
    input
        .send(ExecInput::Resize(TtySize {
            rows: 30,
            cols: 100,
        }))
        .await?;
    input
        .send(ExecInput::Stdin("busybox stty size\r".into()))
        .await?;
    out.wait_for("30 100").await?;
    input.send(ExecInput::Stdin("exit 5\r".into())).await?;
    assert_eq!(exit_code(done).await?, 5);
    assert!(out.stderr().is_empty(), "a terminal has one stream");

    // Ctrl-C on a terminal is a byte: the terminal turns it into SIGINT
    // for the foreground command, and the shell carries on.
    let session = env
        .rt
        .exec_session(
            "box",
            ExecRequest {
                tty: true,
                ..request(&["sh"])
            },
        )
        .await?;
    let (out, input, done) = gather(session);
    // Without the interrupt the shell would sit in `sleep` past STEP; the
    // marker is printed by the shell, never by the echo of the typed line.
    input
        .send(ExecInput::Stdin("echo st$((1))arted; sleep 100\r".into()))
        .await?;
    out.wait_for("st1arted").await?;
    input.send(ExecInput::Stdin(vec![3u8].into())).await?;
    input
        .send(ExecInput::Stdin("echo after-$((1+1))\r".into()))
        .await?;
    out.wait_for("after-2").await?;
    input.send(ExecInput::CloseStdin).await?;
    exit_code(done).await?;
    env.purge().await
}

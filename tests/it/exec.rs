//! ECS Exec's analogue end to end, on real containerd, with the `orca`
//! binary: a command in a task's container returns its output on stdout
//! and stderr and its exit code as the CLI's own; piped stdin reaches it
//! (and its EOF); Ctrl-C without a terminal interrupts it; on a terminal the session is interactive (a shell's
//! prompt, arithmetic, `exit 5`); a task started without
//! enableExecuteCommand, a task with two containers and no --container,
//! and an unknown container are refused with ECS's reasons.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use orca_tests::agents::{ecs, wait_running, wait_stopped};
use serde_json::json;

use crate::containerd_node::Node;
use crate::support::{orca, HEAVY};

const WAIT: Duration = Duration::from_secs(60);

fn orca_command(endpoint: &str) -> std::process::Command {
    let mut c = std::process::Command::new(orca_tests::bin_path("orca").expect("orca binary"));
    c.env("ORCA_ENDPOINT", endpoint)
        .env("ORCA_CONFIG", "/nonexistent/orca-test-config.toml");
    c
}

/// A pseudo-terminal: (master, slave).
fn openpty() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (-1, -1);
    let size = libc::winsize {
        ws_row: 24,
        ws_col: 80,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: openpty writes two descriptors; no name or termios asked.
    let r = unsafe {
        libc::openpty(
            &mut master,
            &mut slave,
            std::ptr::null_mut(),
            std::ptr::null(),
            &size,
        )
    };
    assert_eq!(r, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both are fresh descriptors owned by nothing else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

/// Waits until what the terminal showed contains `needle`.
fn wait_for(screen: &Arc<Mutex<Vec<u8>>>, needle: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let text =
            String::from_utf8_lossy(&screen.lock().unwrap_or_else(|p| p.into_inner())).into_owned();
        if text.contains(needle) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on the terminal: {text:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn e2e_execute_command_runs_in_the_container_and_returns_its_code() {
    let _heavy = HEAVY.lock().await;
    let Some(mut n) = Node::start("exec").await.expect("setup") else {
        return;
    };
    let ep = n.endpoint();
    let app = n.container("app", "echo ready; sleep 300");
    let side = n.container("side", "sleep 300");
    n.register("shell", vec![app, side]).await;
    let arn = n
        .run(json!({"taskDefinition": "shell", "enableExecuteCommand": true}))
        .await;
    wait_running(&mut n.client, "default", &arn, WAIT)
        .await
        .expect("running");
    let id = arn.rsplit('/').next().unwrap_or_default().to_string();

    // Output on both streams and the exit code as the CLI's.
    let run = orca(
        &ep,
        &[
            "execute-command",
            "--task",
            &id,
            "--container",
            "app",
            "--command",
            "sh -c 'echo out; echo err >&2; exit 7'",
        ],
    )
    .await;
    assert_eq!(run.code, 7, "stderr: {}", run.stderr);
    assert_eq!(run.stdout, "out\n");
    assert!(
        run.stderr.contains("err\n") && run.stderr.contains("Starting session"),
        "{}",
        run.stderr
    );

    // Piped stdin and its end reach the command.
    let mut child = orca_command(&ep)
        .args([
            "execute-command",
            "--task",
            &id,
            "--container",
            "app",
            "--interactive",
            "--command",
            "sh -c 'cat; echo eof'",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"hello\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\neof\n");

    // Ctrl-C without a terminal: SIGINT reaches the command, which ends
    // with 128 + 2.
    let mut child = orca_command(&ep)
        .args([
            "execute-command",
            "--task",
            &id,
            "--container",
            "app",
            "--command",
            "sleep 100",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stderr = std::io::BufReader::new(child.stderr.take().expect("stderr"));
    let mut line = String::new();
    std::io::BufRead::read_line(&mut stderr, &mut line).expect("read");
    assert!(line.contains("Starting session"), "{line}");
    let pid = libc::pid_t::try_from(child.id()).expect("pid");
    // SAFETY: signalling the child this test started, by its pid.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGINT) }, 0);
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(130), "SIGINT ended the command");

    // On a terminal: an interactive shell.
    let (master, slave) = openpty();
    let mut child = orca_command(&ep)
        .args([
            "execute-command",
            "--task",
            &id,
            "--container",
            "app",
            "--interactive",
            "--command",
            "/bin/sh",
        ])
        .stdin(Stdio::from(slave.try_clone().expect("dup")))
        .stdout(Stdio::from(slave.try_clone().expect("dup")))
        .stderr(Stdio::from(slave))
        .spawn()
        .expect("spawn");
    let screen = Arc::new(Mutex::new(Vec::new()));
    let mut reader = std::fs::File::from(master.try_clone().expect("dup"));
    let seen = screen.clone();
    let reading = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // EIO once the CLI (the last holder of the slave) exits.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend_from_slice(&buf[..n]);
        }
    });
    let mut writer = std::fs::File::from(master);
    wait_for(&screen, "Starting session");
    writer.write_all(b"echo $((6*7))\r").expect("type");
    wait_for(&screen, "42");
    writer.write_all(b"stty size\r").expect("type");
    wait_for(&screen, "24 80");
    writer.write_all(b"exit 5\r").expect("type");
    let deadline = Instant::now() + WAIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(Instant::now() < deadline, "the session did not end");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(5));
    drop(writer);
    let _ = reading.join();

    // Refusals, with ECS's reasons.
    let two = orca(
        &ep,
        &["execute-command", "--task", &id, "--command", "true"],
    )
    .await;
    assert_eq!(two.code, 254, "{}", two.stderr);
    assert!(
        two.stderr.contains("more than one container"),
        "{}",
        two.stderr
    );
    let unknown = orca(
        &ep,
        &[
            "execute-command",
            "--task",
            &id,
            "--container",
            "nope",
            "--command",
            "true",
        ],
    )
    .await;
    assert!(
        unknown.stderr.contains("has no container 'nope'"),
        "{}",
        unknown.stderr
    );
    let other = n.run(json!({"taskDefinition": "shell"})).await;
    wait_running(&mut n.client, "default", &other, WAIT)
        .await
        .expect("running");
    let other_id = other.rsplit('/').next().unwrap_or_default().to_string();
    let off = orca(
        &ep,
        &[
            "execute-command",
            "--task",
            &other_id,
            "--container",
            "app",
            "--command",
            "true",
        ],
    )
    .await;
    assert_eq!(off.code, 254, "{}", off.stderr);
    assert!(
        off.stderr.contains("execute command was not enabled"),
        "{}",
        off.stderr
    );

    for task in [&arn, &other] {
        ecs(&mut n.client, "StopTask", json!({"task": task}))
            .await
            .expect("stop");
        wait_stopped(&mut n.client, "default", task, WAIT)
            .await
            .expect("stopped");
    }
    n.assert_clean().await;
    n.finish().await;
}

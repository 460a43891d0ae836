//! Tests of the fake runtime's scripted behaviour (paused tokio time).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use super::*;

fn spec(id: &str, image: &ImageInfo, command: &[&str]) -> ContainerSpec {
    ContainerSpec {
        labels: BTreeMap::from([("task".to_string(), "t1".to_string())]),
        command: Some(command.iter().map(|s| s.to_string()).collect()),
        ..ContainerSpec::new(id, image.clone(), PathBuf::from("/dev/null"))
    }
}

async fn runtime_with_image() -> (FakeRuntime, ImageInfo) {
    let rt = FakeRuntime::new();
    rt.add_image(
        "busybox:1",
        ImageConfig {
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    );
    let image = rt
        .ensure_image("busybox:1", None)
        .await
        .expect("image pulls");
    (rt, image)
}

async fn run(rt: &FakeRuntime, image: &ImageInfo, id: &str, command: &[&str]) {
    rt.create(&spec(id, image, command)).await.expect("create");
    rt.start(id).await.expect("start");
}

#[tokio::test(start_paused = true)]
async fn scripts_sleep_then_exit() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "a", &["sh", "-c", "sleep 5; exit 3"]).await;
    let t0 = Instant::now();
    let exit = rt.wait("a").await.expect("wait");
    assert_eq!(exit.exit_code, 3);
    assert!(!exit.oom_killed);
    assert_eq!(t0.elapsed(), Duration::from_secs(5));
    // wait after the exit answers again
    assert_eq!(rt.wait("a").await.expect("wait again").exit_code, 3);
}

#[tokio::test(start_paused = true)]
async fn signals_end_processes_unless_ignored() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "forever", &["sleep", "1"]).await;
    run(&rt, &image, "stubborn", &["ignore-sigterm"]).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        rt.running_ids(),
        vec!["forever".to_string(), "stubborn".to_string()]
    );
    rt.kill("forever", StopSignal::Term).await.expect("kill");
    assert_eq!(rt.wait("forever").await.expect("wait").exit_code, 143);
    rt.kill("stubborn", StopSignal::Term).await.expect("term");
    tokio::time::sleep(Duration::from_secs(30)).await;
    assert!(
        rt.running_ids().contains(&"stubborn".to_string()),
        "SIGTERM is ignored"
    );
    rt.kill("stubborn", StopSignal::Kill).await.expect("kill");
    assert_eq!(rt.wait("stubborn").await.expect("wait").exit_code, 137);
    assert_eq!(
        rt.signals("stubborn"),
        vec![StopSignal::Term, StopSignal::Kill]
    );
    // killing an exited container is fine
    rt.kill("stubborn", StopSignal::Kill)
        .await
        .expect("kill again");
}

#[tokio::test(start_paused = true)]
async fn oom_and_fail_start() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "o", &["sleep", "1", "oom"]).await;
    let exit = rt.wait("o").await.expect("wait");
    assert_eq!((exit.exit_code, exit.oom_killed), (137, true));
    rt.create(&spec("f", &image, &["fail-start"]))
        .await
        .expect("create");
    assert!(matches!(
        rt.start("f").await,
        Err(RuntimeError::Start { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn images_pull_once_and_missing_ones_fail() {
    let rt = FakeRuntime::new();
    rt.add_image(
        "web:1",
        ImageConfig {
            cmd: vec!["sh".into()],
            ..Default::default()
        },
    );
    rt.set_pull_delay(Duration::from_secs(1));
    let pulls: Vec<_> = (0..8)
        .map(|_| {
            let rt = rt.clone();
            tokio::spawn(async move { rt.ensure_image("web:1", None).await })
        })
        .collect();
    for p in pulls {
        p.await.expect("join").expect("pull");
    }
    assert_eq!(rt.pull_count("web:1"), 1);
    for bad in ["web:missing", "never-added:1"] {
        match rt.ensure_image(bad, None).await {
            Err(RuntimeError::Pull { message, .. }) => {
                assert!(message.contains("manifest unknown"))
            }
            other => panic!("expected a pull error, got {other:?}"),
        }
    }
}

#[tokio::test(start_paused = true)]
async fn remove_cleans_up_and_start_order_is_recorded() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "db", &["sleep", "100"]).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    run(&rt, &image, "web", &["sh"]).await;
    let order: Vec<String> = rt.starts().into_iter().map(|(id, _)| id).collect();
    assert_eq!(order, vec!["db", "web"]);
    let listed = rt.list().await.expect("list");
    assert!(listed
        .iter()
        .all(|c| c.is_running() && c.labels["task"] == "t1"));
    rt.remove("db").await.expect("remove");
    rt.remove("web").await.expect("remove");
    rt.remove("web").await.expect("remove is idempotent");
    assert!(rt.container_ids().is_empty());
    assert!(matches!(
        rt.wait("db").await,
        Err(RuntimeError::NotFound { .. })
    ));
}

#[tokio::test]
async fn create_needs_a_present_image_and_a_command() {
    let rt = FakeRuntime::new();
    let image = ImageInfo {
        reference: "nope:1".into(),
        digest: String::new(),
        config: ImageConfig::default(),
    };
    assert!(matches!(
        rt.create(&spec("x", &image, &["sh"])).await,
        Err(RuntimeError::Create { .. })
    ));
    let (rt, mut image) = runtime_with_image().await;
    image.config.cmd.clear();
    let mut s = spec("y", &image, &[]);
    s.command = None;
    assert!(matches!(
        rt.create(&s).await,
        Err(RuntimeError::Create { .. })
    ));
}

#[tokio::test(start_paused = true)]
async fn exec_acts_out_its_args_and_times_out() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "app", &["sleep", "3600"]).await;
    let sh = |cmd: &str| vec!["/bin/sh".to_string(), "-c".to_string(), cmd.to_string()];
    let out = rt
        .exec("app", sh("exit 2"), Duration::from_secs(1))
        .await
        .expect("exec");
    assert_eq!(out.status, ExecStatus::Exited(2));
    assert_eq!(out.output, "ran: /bin/sh -c exit 2");
    let t0 = Instant::now();
    let out = rt
        .exec("app", sh("sleep 10"), Duration::from_secs(2))
        .await
        .expect("exec");
    assert_eq!(out.status, ExecStatus::TimedOut);
    assert_eq!(t0.elapsed(), Duration::from_secs(2));
    rt.set_exec_exit("app", Some(0));
    let out = rt
        .exec("app", sh("exit 2"), Duration::from_secs(1))
        .await
        .expect("exec");
    assert_eq!(out.status, ExecStatus::Exited(0), "scripted");
    assert_eq!(rt.exec_count("app"), 3);
    assert!(matches!(
        rt.exec("nothing", sh("true"), Duration::from_secs(1)).await,
        Err(RuntimeError::NotFound { .. })
    ));
}

/// All of a session's output as text, then its exit code.
async fn finish(mut session: crate::ExecSession) -> (String, i32) {
    let mut text = String::new();
    while let Some(chunk) = session.output.recv().await {
        match chunk {
            crate::ExecOutput::Stdout(b) | crate::ExecOutput::Stderr(b) => {
                text.push_str(&String::from_utf8_lossy(&b))
            }
        }
    }
    (text, session.exit.wait().await.expect("an exit code"))
}

#[tokio::test(start_paused = true)]
async fn exec_session_echoes_stdin_until_eof() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "app", &["sleep 100"]).await;
    let request = crate::ExecRequest {
        args: vec!["cat".into()],
        tty: true,
        size: Some(crate::TtySize { rows: 24, cols: 80 }),
        ..Default::default()
    };
    let session = rt.exec_session("app", request).await.expect("session");
    let input = session.input.clone();
    input
        .send(crate::ExecInput::Stdin("hello\n".into()))
        .await
        .expect("send");
    let size = crate::TtySize {
        rows: 40,
        cols: 120,
    };
    input
        .send(crate::ExecInput::Resize(size))
        .await
        .expect("send");
    input
        .send(crate::ExecInput::CloseStdin)
        .await
        .expect("send");
    let (text, code) = finish(session).await;
    assert_eq!(text, "ran: cat\nhello\n");
    assert_eq!(code, 0);
    assert_eq!(
        rt.exec_sizes("app"),
        [crate::TtySize { rows: 24, cols: 80 }, size]
    );
}

#[tokio::test(start_paused = true)]
async fn exec_session_ends_on_a_signal_or_when_abandoned() {
    let (rt, image) = runtime_with_image().await;
    run(&rt, &image, "app", &["sleep 100"]).await;
    let request = crate::ExecRequest {
        args: vec!["sleep".into(), "100".into()],
        ..Default::default()
    };
    let session = rt
        .exec_session("app", request.clone())
        .await
        .expect("session");
    session
        .input
        .send(crate::ExecInput::Signal(libc::SIGINT))
        .await
        .expect("send");
    assert_eq!(finish(session).await.1, 130);

    // The exit dropped: the process is killed and the output ends.
    let crate::ExecSession {
        mut output, exit, ..
    } = rt.exec_session("app", request).await.expect("session");
    drop(exit);
    while output.recv().await.is_some() {}

    assert!(matches!(
        rt.exec_session("nothing", crate::ExecRequest::default())
            .await,
        Err(RuntimeError::NotFound { .. })
    ));
}

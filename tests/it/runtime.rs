//! orca-runtime against the machine's real containerd (each test in a fresh
//! containerd namespace, purged at the end) and a local `docker-registry`
//! serving a hand-built busybox image. Needs root and containerd: skipped
//! with a printed reason elsewhere, failed under `CI=true`.
//!
//! Tests hold `HEAVY`: containers and pulls compete for the 2 cores with the
//! cluster tests.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use orca_runtime::containerd::{
    ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
};
use orca_runtime::{ContainerRuntime, ContainerSpec, ImageInfo, RuntimeError, StopSignal};
use orca_tests::containerd::{containerd_socket, unique_namespace};
use orca_tests::registry::{build_busybox_oci_archive, tools_available, TestRegistry};

use crate::support::HEAVY;

/// One test's runtime, namespace and scratch directory. Dropped without
/// [`Env::purge`] (a failed assertion, an early `?`), it still empties and
/// deletes its namespace, so failing tests leave containerd clean too.
pub(crate) struct Env {
    pub(crate) rt: Arc<ContainerdRuntime>,
    dir: tempfile::TempDir,
    archive: PathBuf,
    pub(crate) config: ContainerdConfig,
    purged: bool,
}

impl Drop for Env {
    fn drop(&mut self) {
        if self.purged {
            return;
        }
        // Drop may run while a test panics inside its runtime: purge from a
        // thread with a runtime of its own.
        let config = self.config.clone();
        let done = std::thread::spawn(move || -> anyhow::Result<()> {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            rt.block_on(async {
                ContainerdRuntime::connect(config)
                    .await?
                    .purge_namespace()
                    .await?;
                Ok(())
            })
        })
        .join();
        if !matches!(done, Ok(Ok(()))) {
            eprintln!("could not purge namespace {}", self.config.namespace);
        }
    }
}

impl Env {
    /// `None` (after printing why) when containerd or the tools are missing
    /// outside CI. Containers log through `orca-log-driver`.
    pub(crate) async fn new(
        prefix: &str,
        registries: RegistriesConfig,
    ) -> anyhow::Result<Option<Env>> {
        let driver = orca_tests::bin_path("orca-log-driver")?;
        Self::with_log_driver(prefix, registries, Some(driver)).await
    }

    /// As [`Env::new`], with `log_driver` (`None`: the FIFO fallback).
    async fn with_log_driver(
        prefix: &str,
        registries: RegistriesConfig,
        log_driver: Option<PathBuf>,
    ) -> anyhow::Result<Option<Env>> {
        let Some(socket) = containerd_socket()? else {
            return Ok(None);
        };
        if !tools_available()? {
            return Ok(None);
        }
        let dir = tempfile::tempdir()?;
        let archive = build_busybox_oci_archive(dir.path())?;
        let config = ContainerdConfig {
            socket,
            namespace: unique_namespace(prefix),
            registries,
            state_dir: dir.path().join("state"),
            log_driver,
        };
        let rt = ContainerdRuntime::connect(config.clone()).await?;
        Ok(Some(Env {
            rt: Arc::new(rt),
            dir,
            archive,
            config,
            purged: false,
        }))
    }

    /// Loads the busybox archive (no registry) and returns the image.
    pub(crate) async fn busybox(&self) -> anyhow::Result<ImageInfo> {
        let loaded = self.rt.load_archive(&self.archive).await?;
        anyhow::ensure!(loaded.len() == 1, "one image in the archive");
        Ok(loaded[0].clone())
    }

    fn log_path(&self, id: &str) -> PathBuf {
        self.dir.path().join("logs").join(format!("{id}.log"))
    }

    pub(crate) fn spec(&self, id: &str, image: &ImageInfo, script: &str) -> ContainerSpec {
        ContainerSpec {
            labels: BTreeMap::from([("orca.test".to_string(), "runtime".to_string())]),
            entry_point: Some(vec!["sh".into(), "-c".into()]),
            command: Some(vec![script.to_string()]),
            cpu_shares: 128,
            memory_limit_mib: Some(64),
            ..ContainerSpec::new(id, image.clone(), self.log_path(id))
        }
    }

    /// Creates and starts; returns the elapsed time.
    pub(crate) async fn run(&self, spec: &ContainerSpec) -> anyhow::Result<Duration> {
        let t0 = Instant::now();
        self.rt.create(spec).await?;
        self.rt.start(&spec.id).await?;
        Ok(t0.elapsed())
    }

    /// What the container printed (its log file's records parsed).
    pub(crate) fn log(&self, id: &str) -> String {
        let bytes = std::fs::read(self.log_path(id)).unwrap_or_default();
        orca_runtime::log_format::output_text(&bytes)
    }

    /// Removes everything the test made, namespace included.
    pub(crate) async fn purge(mut self) -> anyhow::Result<()> {
        self.rt.purge_namespace().await?;
        self.purged = true;
        Ok(())
    }
}

/// Registries config allowing plain HTTP to `host`.
fn insecure(host: &str) -> RegistriesConfig {
    let mut cfg = RegistriesConfig::default();
    cfg.hosts.insert(
        host.to_string(),
        RegistryHostConfig {
            insecure: true,
            ..Default::default()
        },
    );
    cfg
}

/// The manifest digest the archive's index.json names.
fn archive_manifest_digest(archive: &Path) -> anyhow::Result<String> {
    let mut tar = tar::Archive::new(std::fs::File::open(archive)?);
    for entry in tar.entries()? {
        let mut entry = entry?;
        if entry.path()?.to_string_lossy() == "index.json" {
            let mut text = String::new();
            entry.read_to_string(&mut text)?;
            let index: serde_json::Value = serde_json::from_str(&text)?;
            return Ok(index["manifests"][0]["digest"]
                .as_str()
                .unwrap_or_default()
                .to_string());
        }
    }
    anyhow::bail!("no index.json in {}", archive.display())
}

fn pull_message(r: Result<ImageInfo, RuntimeError>) -> String {
    match r {
        Err(RuntimeError::Pull { message, .. }) => message,
        other => panic!("expected a pull error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_pull_by_tag_then_served_locally() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    if !tools_available()? {
        return Ok(());
    }
    let mut registry = TestRegistry::start()?;
    let Some(env) = Env::new("pull", insecure(&registry.host())).await? else {
        return Ok(());
    };
    let reference = registry.push(&env.archive, "busybox:1")?;
    let t0 = Instant::now();
    let info = env.rt.ensure_image(&reference, None).await?;
    let pull_ms = t0.elapsed().as_millis();
    assert_eq!(info.digest, archive_manifest_digest(&env.archive)?);
    assert_eq!(info.config.cmd, vec!["sh"]);
    assert_eq!(env.rt.pull_count(&reference), 1);

    // No registry any more: the second ensure must be served by containerd.
    registry.stop();
    let t1 = Instant::now();
    let again = env.rt.ensure_image(&reference, None).await?;
    let local_ms = t1.elapsed().as_millis();
    assert_eq!(again.digest, info.digest);
    assert_eq!(
        env.rt.pull_count(&reference),
        1,
        "a present image is not pulled"
    );
    eprintln!("measured: pull {pull_ms} ms, ensure of a present image {local_ms} ms");

    // And it runs.
    let spec = env.spec("pulled", &info, "echo from-registry");
    env.run(&spec).await?;
    assert_eq!(env.rt.wait("pulled").await?.exit_code, 0);
    assert!(env.log("pulled").contains("from-registry"));
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_concurrent_ensure_shares_one_pull() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    if !tools_available()? {
        return Ok(());
    }
    let registry = TestRegistry::start()?;
    let Some(env) = Env::new("single", insecure(&registry.host())).await? else {
        return Ok(());
    };
    let reference = registry.push(&env.archive, "busybox:1")?;
    let mut joins = Vec::new();
    for _ in 0..8 {
        let rt = env.rt.clone();
        let r = reference.clone();
        joins.push(tokio::spawn(async move { rt.ensure_image(&r, None).await }));
    }
    let mut digests = Vec::new();
    for j in joins {
        digests.push(j.await??.digest);
    }
    digests.dedup();
    assert_eq!(digests.len(), 1);
    assert_eq!(
        env.rt.pull_count(&reference),
        1,
        "8 concurrent calls, one pull"
    );
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_mirror_serves_another_registry_host() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    if !tools_available()? {
        return Ok(());
    }
    let mut registry = TestRegistry::start()?;
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com";
    let mut cfg = RegistriesConfig::default();
    cfg.hosts.insert(
        ecr.to_string(),
        RegistryHostConfig {
            mirrors: vec![registry.host()],
            insecure: true,
            auth: None,
        },
    );
    let Some(env) = Env::new("mirror", cfg).await? else {
        return Ok(());
    };
    registry.push(&env.archive, "busybox:1")?;
    let reference = format!("{ecr}/busybox:1");
    let info = env.rt.ensure_image(&reference, None).await?;
    assert_eq!(info.reference, reference);
    assert_eq!(info.digest, archive_manifest_digest(&env.archive)?);
    // The record carries the ECR name: found again with no registry at all.
    registry.stop();
    env.rt.ensure_image(&reference, None).await?;
    assert_eq!(env.rt.pull_count(&reference), 1);
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_pull_errors_are_clear() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    if !tools_available()? {
        return Ok(());
    }
    let registry = TestRegistry::start()?;
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let dead = format!("127.0.0.1:{dead_port}");
    let mut cfg = insecure(&registry.host());
    cfg.hosts.insert(
        dead.clone(),
        RegistryHostConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let Some(env) = Env::new("errors", cfg).await? else {
        return Ok(());
    };
    registry.push(&env.archive, "busybox:1")?;

    let missing_tag = format!("{}/busybox:nope", registry.host());
    let msg = pull_message(env.rt.ensure_image(&missing_tag, None).await);
    assert!(msg.contains("manifest unknown"), "{msg}");
    // A failed pull is not cached: the next call tries again.
    let _ = env.rt.ensure_image(&missing_tag, None).await;
    assert_eq!(env.rt.pull_count(&missing_tag), 2);

    let msg = pull_message(
        env.rt
            .ensure_image(&format!("{dead}/busybox:1"), None)
            .await,
    );
    assert!(msg.to_lowercase().contains("connection refused"), "{msg}");

    // The same registry, not listed as insecure: HTTPS only, so refused.
    let Some(strict) = Env::new("strict", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let msg = pull_message(
        strict
            .rt
            .ensure_image(&format!("{}/busybox:1", registry.host()), None)
            .await,
    );
    assert!(msg.contains("insecure = true"), "{msg}");
    strict.purge().await?;
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exit_code_and_log_file() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("exit", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    exit_code_and_log_file(env).await
}

/// The same without a logging driver: the FIFOs this process drains.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_exit_code_and_log_file_through_fifos() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::with_log_driver("exitfifo", RegistriesConfig::default(), None).await?
    else {
        return Ok(());
    };
    assert!(env.rt.log_driver().is_none());
    exit_code_and_log_file(env).await
}

async fn exit_code_and_log_file(env: Env) -> anyhow::Result<()> {
    let image = env.busybox().await?;
    let mut latencies = Vec::new();
    // Several rounds: losing a short-lived container's last output is a race
    // (containerd's own file:// logging loses it about once in thirty).
    for i in 0..10 {
        let id = format!("exit-{i}");
        let spec = env.spec(&id, &image, "echo hi; echo oops >&2; exit 3");
        latencies.push(env.run(&spec).await?.as_millis());
        let exit = env.rt.wait(&id).await?;
        assert_eq!(exit.exit_code, 3);
        assert!(!exit.oom_killed);
        // wait after the exit answers the same
        assert_eq!(env.rt.wait(&id).await?.exit_code, 3);
        let log = env.log(&id);
        assert!(log.contains("hi") && log.contains("oops"), "log: {log:?}");
        env.rt.remove(&id).await?;
    }
    eprintln!("measured: create+start {latencies:?} ms");
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_env_cwd_and_user_are_applied() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("env", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    let mut spec = env.spec(
        "env",
        &image,
        r#"echo "$FOO|$(pwd)|$(id -u):$(id -g)|$HOSTNAME""#,
    );
    spec.environment = vec![("FOO".into(), "bar".into())];
    spec.working_directory = Some("/tmp".into());
    spec.user = Some("1234:1234".into());
    spec.hostname = Some("web-1".into());
    env.run(&spec).await?;
    assert_eq!(env.rt.wait("env").await?.exit_code, 0);
    assert_eq!(env.log("env").trim(), "bar|/tmp|1234:1234|web-1");

    // A user name resolves through the image's /etc/passwd and /etc/group.
    let mut named = env.spec("named", &image, "echo $(id -u):$(id -g):$(id -G)");
    named.user = Some("orca".into());
    env.run(&named).await?;
    assert_eq!(env.rt.wait("named").await?.exit_code, 0);
    assert_eq!(env.log("named").trim(), "1234:1234:1234 10");

    let mut unknown = env.spec("unknown", &image, "true");
    unknown.user = Some("nosuchuser".into());
    match env.rt.create(&unknown).await {
        Err(RuntimeError::Create { message, .. }) => {
            assert!(message.contains("nosuchuser"), "{message}")
        }
        other => panic!("expected a create error, got {other:?}"),
    }
    assert!(!env
        .rt
        .snapshot_keys()
        .await?
        .contains(&"unknown".to_string()));
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_memory_limit_ends_in_an_oom_kill() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("oom", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    // The shell holds 64 MB of command output in a variable: far over 16 MiB.
    let mut spec = env.spec(
        "oom",
        &image,
        "x=$(head -c 64000000 /dev/zero | tr '\\0' a); echo survived",
    );
    spec.memory_limit_mib = Some(16);
    env.run(&spec).await?;
    let exit = tokio::time::timeout(Duration::from_secs(60), env.rt.wait("oom")).await??;
    assert!(exit.oom_killed, "exit {exit:?}, log {:?}", env.log("oom"));
    assert_eq!(exit.exit_code, 137);

    // A container well within its limit is not reported as OOM-killed.
    let fine = env.spec(
        "fine",
        &image,
        "x=$(head -c 1000 /dev/zero | tr '\\0' a); exit 0",
    );
    env.run(&fine).await?;
    let exit = env.rt.wait("fine").await?;
    assert_eq!((exit.exit_code, exit.oom_killed), (0, false));
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_term_and_kill() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("signals", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    // Each script has set its traps once its `sleep` runs: the signals are
    // sent only when that child is seen, never after a guessed delay.
    let mut inits = BTreeMap::new();
    for (id, script) in [
        ("sleeper", "sleep 100; echo woke"),
        (
            "handler",
            "trap 'echo got-term; exit 7' TERM; sleep 100 & wait",
        ),
        (
            "stubborn",
            // A witness with a handler of its own shows when SIGTERM has
            // reached the container's processes.
            // The stubborn part says "alive" after every nap.
            "(trap 'echo witness-got-term; exit 0' TERM; while true; do sleep 0.1; done) & \
             trap '' TERM; while true; do sleep 0.1; echo alive; done",
        ),
    ] {
        env.rt.create(&env.spec(id, &image, script)).await?;
        inits.insert(id, env.rt.start(id).await?);
    }
    for (id, pid) in &inits {
        wait_for_descendant(*pid, "sleep", Duration::from_secs(10))
            .await
            .map_err(|e| anyhow::anyhow!("{id}: {e}; log {:?}", env.log(id)))?;
    }

    // SIGTERM reaches every process of the container, so the sleep ends
    // (the shell, as pid 1 of its namespace, has no handler and so ignores
    // it, then carries on). A lone `sleep` as pid 1 would ignore it too, as
    // under Docker: the kernel shields a namespace's init from signals it
    // does not handle.
    let t0 = Instant::now();
    env.rt.kill("sleeper", StopSignal::Term).await?;
    tokio::time::timeout(Duration::from_secs(10), env.rt.wait("sleeper"))
        .await
        .map_err(|_| anyhow::anyhow!("sleeper outlived SIGTERM"))??;
    assert!(t0.elapsed() < Duration::from_secs(10));
    assert!(env.log("sleeper").contains("woke"));

    env.rt.kill("handler", StopSignal::Term).await?;
    let exit = tokio::time::timeout(Duration::from_secs(10), env.rt.wait("handler"))
        .await
        .map_err(|_| anyhow::anyhow!("handler outlived SIGTERM"))??;
    assert_eq!(exit.exit_code, 7);
    assert!(env.log("handler").contains("got-term"));

    env.rt.kill("stubborn", StopSignal::Term).await?;
    // SIGTERM has reached the container's processes once the witness has
    // handled it; the stubborn part, which ignores it, goes on saying
    // "alive" after that, and the container still runs.
    let t0 = Instant::now();
    loop {
        let log = env.log("stubborn");
        let alive_after = log
            .split_once("witness-got-term")
            .map_or(0, |(_, after)| after.matches("alive").count());
        if alive_after >= 2 {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "no sign of life after SIGTERM reached the stubborn container: log {log:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let listed = env.rt.list().await?;
    assert!(
        listed.iter().any(|c| c.id == "stubborn" && c.is_running()),
        "a container ignoring SIGTERM survives it: {listed:?}"
    );
    assert!(
        std::path::Path::new(&format!("/proc/{}", inits["stubborn"])).exists(),
        "the stubborn container's init survives SIGTERM"
    );
    env.rt.kill("stubborn", StopSignal::Kill).await?;
    let exit = tokio::time::timeout(Duration::from_secs(10), env.rt.wait("stubborn")).await??;
    assert_eq!(exit.exit_code, 137);
    assert!(!exit.oom_killed);
    // Signalling an exited container is not an error.
    env.rt.kill("stubborn", StopSignal::Kill).await?;
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_load_archive_needs_no_registry() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("load", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let loaded = env.busybox().await?;
    assert_eq!(loaded.reference, "docker.io/library/orca-busybox:1");
    assert_eq!(loaded.digest, archive_manifest_digest(&env.archive)?);
    // Either spelling finds it, and neither pulls.
    for name in ["orca-busybox:1", "docker.io/library/orca-busybox:1"] {
        let info = env.rt.ensure_image(name, None).await?;
        assert_eq!(info.digest, loaded.digest);
        assert_eq!(env.rt.pull_count(name), 0);
    }
    // Loading again is harmless.
    env.busybox().await?;
    env.run(&env.spec("loaded", &loaded, "echo loaded-ok"))
        .await?;
    assert_eq!(env.rt.wait("loaded").await?.exit_code, 0);
    assert!(env.log("loaded").contains("loaded-ok"));
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_remove_leaves_nothing_behind() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("remove", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    env.run(&env.spec("doomed", &image, "sleep 100")).await?;
    let listed = env.rt.list().await?;
    assert_eq!(listed.len(), 1);
    assert!(
        listed[0].is_running(),
        "{listed:?} log {:?}",
        env.log("doomed")
    );
    assert_eq!(
        listed[0].labels.get("orca.test").map(String::as_str),
        Some("runtime")
    );
    assert!(env
        .rt
        .snapshot_keys()
        .await?
        .contains(&"doomed".to_string()));

    // Remove a running container: killed, then task, record and snapshot go.
    env.rt.remove("doomed").await?;
    assert!(env.rt.list().await?.is_empty(), "no container left");
    assert!(
        !env.rt
            .snapshot_keys()
            .await?
            .contains(&"doomed".to_string()),
        "no snapshot left"
    );
    assert!(matches!(
        env.rt.start("doomed").await,
        Err(RuntimeError::NotFound { .. })
    ));
    env.rt.remove("doomed").await?;
    // A created-but-never-started container too.
    env.rt.create(&env.spec("never", &image, "true")).await?;
    env.rt.remove("never").await?;
    assert!(env.rt.list().await?.is_empty());
    assert!(!env.rt.snapshot_keys().await?.contains(&"never".to_string()));
    env.purge().await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_output_survives_a_runtime_restart() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("restart", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    output_survives_a_runtime_restart(env).await
}

/// The same without a logging driver: the successor resumes draining the
/// FIFOs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_output_survives_a_runtime_restart_through_fifos() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::with_log_driver("restartfifo", RegistriesConfig::default(), None).await?
    else {
        return Ok(());
    };
    output_survives_a_runtime_restart(env).await
}

async fn output_survives_a_runtime_restart(env: Env) -> anyhow::Result<()> {
    // The agent's runtime: starts a container, then goes away (an agent
    // restart) while the container keeps writing.
    let first = ContainerdRuntime::connect(env.config.clone()).await?;
    let image = first.load_archive(&env.archive).await?.remove(0);
    let spec = env.spec("chatty", &image, "echo before; sleep 2; echo after; exit 4");
    first.create(&spec).await?;
    first.start("chatty").await?;
    // The first runtime goes once the container's first output reached the
    // log (and, without a logging driver, went through its drain).
    let t0 = Instant::now();
    while !env.log("chatty").contains("before") {
        anyhow::ensure!(
            t0.elapsed() < Duration::from_secs(10),
            "no output from the container in 10 s: log {:?}",
            env.log("chatty")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first);
    anyhow::ensure!(
        !env.log("chatty").contains("after"),
        "the container finished before its runtime went away: nothing was left to resume"
    );
    // Its successor, same state directory, finds the exit (and, without a
    // logging driver, resumes draining the output).
    let second = ContainerdRuntime::connect(env.config.clone()).await?;
    let exit = tokio::time::timeout(Duration::from_secs(20), second.wait("chatty")).await??;
    assert_eq!(exit.exit_code, 4);
    let log = env.log("chatty");
    assert!(
        log.contains("before") && log.contains("after"),
        "log: {log:?}"
    );
    second.remove("chatty").await?;
    drop(second);
    env.purge().await
}

/// With the logging driver, stdout and stderr both reach the log of a
/// container that exits at once, every time (containerd's own `file://`
/// logging loses the stderr line about once in thirty).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_log_driver_keeps_both_streams_of_short_containers() -> anyhow::Result<()> {
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("rounds", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    for i in 0..20 {
        let id = format!("round-{i}");
        env.run(&env.spec(&id, &image, "echo out; echo err >&2; exit 3"))
            .await?;
        let exit = env.rt.wait(&id).await?;
        assert_eq!(exit.exit_code, 3);
        let log = env.log(&id);
        assert!(
            log.contains("out\n") && log.contains("err\n"),
            "round {i}, log: {log:?}"
        );
        env.rt.remove(&id).await?;
    }
    env.purge().await
}

/// The requirement "a container never blocks on the agent": with no runtime
/// object alive (the agent is down), a container writing ~1 MiB (far over
/// the pipe buffers) finishes and exits on its own, with every byte in its
/// log; a reconnected runtime's `wait` then reports the exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_container_never_blocks_on_a_dropped_runtime() -> anyhow::Result<()> {
    const BYTES: usize = 1_000_000;
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("nonblock", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let first = ContainerdRuntime::connect(env.config.clone()).await?;
    let image = first.load_archive(&env.archive).await?.remove(0);
    let spec = env.spec(
        "flood",
        &image,
        &format!("sleep 0.2; head -c {BYTES} /dev/zero | tr '\\0' x; echo flood-done >&2; exit 5"),
    );
    first.create(&spec).await?;
    first.start("flood").await?;
    // The agent goes away before the container writes anything. (`env.rt`
    // connected before the container existed: it drains nothing.)
    drop(first);

    let t0 = Instant::now();
    let complete = |log: &str| {
        log.bytes().filter(|b| *b == b'x').count() == BYTES && log.contains("flood-done")
    };
    while !complete(&env.log("flood")) {
        let len = std::fs::metadata(env.log_path("flood")).map_or(0, |m| m.len());
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the container's output stalled at {len} bytes with no runtime alive"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let written_ms = t0.elapsed().as_millis();
    // And it exited on its own (listing only reads).
    loop {
        let listed = env.rt.list().await?;
        if listed.iter().any(|c| c.id == "flood" && !c.is_running()) {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "the container did not exit: {listed:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!("measured: {BYTES} bytes logged with no runtime alive in {written_ms} ms");

    let second = ContainerdRuntime::connect(env.config.clone()).await?;
    let exit = tokio::time::timeout(Duration::from_secs(20), second.wait("flood")).await??;
    assert_eq!(exit.exit_code, 5);
    let log = env.log("flood");
    assert_eq!(log.bytes().filter(|b| *b == b'x').count(), BYTES);
    // The x's never end in a newline: `log` shows them as one line.
    assert_eq!(
        log.len(),
        BYTES + "\nflood-done\n".len(),
        "nothing else, nothing twice"
    );
    second.remove("flood").await?;
    drop(second);
    env.purge().await
}

/// Waits until a process named `comm` runs among the descendants of `root`
/// (a container's init, by its host pid): the script before it has run.
async fn wait_for_descendant(root: u32, comm: &str, within: Duration) -> anyhow::Result<u32> {
    let t0 = Instant::now();
    loop {
        // (pid, parent, name) of every process.
        let procs: Vec<(u32, u32, String)> = std::fs::read_dir("/proc")?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                let (head, rest) = stat.rsplit_once(") ")?;
                let name = head.split_once(" (")?.1.to_string();
                let ppid = rest.split_whitespace().nth(1)?.parse().ok()?;
                Some((pid, ppid, name))
            })
            .collect();
        let mut tree = vec![root];
        let mut i = 0;
        while i < tree.len() {
            let parent = tree[i];
            tree.extend(procs.iter().filter(|p| p.1 == parent).map(|p| p.0));
            i += 1;
        }
        if let Some(p) = procs
            .iter()
            .find(|p| p.2 == comm && tree[1..].contains(&p.0))
        {
            return Ok(p.0);
        }
        anyhow::ensure!(
            t0.elapsed() < within,
            "no `{comm}` under pid {root} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The level the agent reconciles against: `list` gives each container's
/// process state; `reap` records an exit on the container before deleting
/// its task, so a new runtime (an agent restarted) still lists it; a second
/// start of a started container is `AlreadyStarted`; the root filesystem of
/// a container whose record went (a removal cut short) is collected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runtime_lists_process_states_and_records_exits() -> anyhow::Result<()> {
    use orca_runtime::ProcessState;
    let _heavy = HEAVY.lock().await;
    let Some(env) = Env::new("states", RegistriesConfig::default()).await? else {
        return Ok(());
    };
    let image = env.busybox().await?;
    let state = |id: &'static str| {
        let rt = env.rt.clone();
        async move {
            rt.list()
                .await
                .map(|l| l.into_iter().find(|c| c.id == id).map(|c| c.state))
        }
    };
    env.rt.create(&env.spec("idle", &image, "true")).await?;
    assert_eq!(state("idle").await?, Some(ProcessState::NotStarted));
    env.run(&env.spec("quick", &image, "exit 4")).await?;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match state("quick").await? {
            Some(ProcessState::Exited {
                exit,
                recorded: false,
            }) => {
                assert_eq!(exit.exit_code, 4);
                break;
            }
            other => anyhow::ensure!(Instant::now() < deadline, "quick: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(env.rt.reap("quick").await?.exit_code, 4);
    assert_eq!(env.rt.reap("quick").await?.exit_code, 4, "idempotent");
    // A runtime of a restarted agent knows nothing in memory: the exit is
    // on the container.
    let mut again = env.config.clone();
    again.state_dir = env.dir.path().join("state-again");
    let fresh = ContainerdRuntime::connect(again).await?;
    let listed = fresh.list().await?;
    let quick = listed.iter().find(|c| c.id == "quick").map(|c| &c.state);
    assert!(
        matches!(quick, Some(ProcessState::Exited { exit, recorded: true }) if exit.exit_code == 4),
        "{listed:?}"
    );
    assert_eq!(fresh.reap("quick").await?.exit_code, 4);
    env.run(&env.spec("long", &image, "sleep 100")).await?;
    assert!(matches!(
        state("long").await?,
        Some(ProcessState::Running { .. })
    ));
    assert!(matches!(
        fresh.start("long").await,
        Err(RuntimeError::AlreadyStarted { .. })
    ));
    assert!(matches!(
        env.rt.reap("long").await,
        Err(RuntimeError::Running { .. })
    ));
    // The record of "idle" goes, its root filesystem stays: collected.
    let ctrd =
        orca_runtime::containerd::client::Ctrd::connect(&env.config.socket, &env.config.namespace)
            .await?;
    ctrd.containers()
        .delete(
            ctrd.req(containerd_client::services::v1::DeleteContainerRequest { id: "idle".into() }),
        )
        .await?;
    assert!(env.rt.snapshot_keys().await?.contains(&"idle".to_string()));
    assert_eq!(env.rt.remove_stray_snapshots().await?, ["idle"]);
    let keys = env.rt.snapshot_keys().await?;
    assert!(!keys.contains(&"idle".to_string()), "{keys:?}");
    assert!(keys.contains(&"long".to_string()) && keys.contains(&"quick".to_string()));
    env.rt.remove("long").await?;
    env.rt.remove("quick").await?;
    env.purge().await
}

//! Services benchmark (not a test): orca's services side by side with
//! Docker Swarm in the same run, on the same machine and image.
//!
//! 1. create-service, 3 replicas → 3 RUNNING (orca also: → the service's
//!    steady-state event);
//! 2. a task's container SIGKILLed → its replacement RUNNING (Swarm with its
//!    default restart delay and with `--restart-delay 0s`);
//! 3. a rolling update of 10 replicas at 50/200 → deployment COMPLETED (orca
//!    with the default 40 s "healthy after RUNNING" rule and with it at
//!    1 ms, the smallest positive value the flag takes);
//! 4. a node silently cut off (iptables DROP in its network namespace) → its
//!    tasks RUNNING elsewhere, p50 and max over `--trials`; orca: three
//!    agents in three namespaces cut from the controller, default timers;
//!    Swarm: three managers in three namespaces, a follower cut from the
//!    other two, default timers;
//! 5. orca only: an agent SIGKILLed and restarted at once → no task
//!    replaced, every container still running with the same pid.
//!
//! orca: a real `orca-controller` and real `orca-agent`s on the machine's
//! containerd (see `orca.rs`); Swarm: dockerd's in network namespaces of
//! their own (see `swarm.rs`). The image (busybox from busybox-static) is
//! pushed to a registry on loopback that the benchmark starts, pulled into
//! every agent's containerd namespace and loaded into every dockerd before
//! any clock starts. Everything is removed at the end, on errors too.
//!
//! Run as root with containerd up (deploy/start-containerd.sh) and dockerd
//! installed (docker.io):
//! `cargo build --release -p orca-controller -p orca-agent -p orca-runtime -p orca-tests --bins &&
//!  ./target/release/bench-services [--trials 10] [--repeat 3]`

mod orca;
mod swarm;
mod util;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Context as _;
use orca_tests::containerd::containerd_socket;
use orca_tests::registry::{build_busybox_oci_archive, TestRegistry};

use crate::util::{help_default, median, output, percentile, secs};

/// What one side measured; `None`: not measured (failed or skipped).
#[derive(Default)]
struct Figures {
    create: Option<Duration>,
    steady: Option<Duration>,
    kill: Option<Duration>,
    kill_delay0: Option<Duration>,
    roll: Option<Duration>,
    roll_fast: Option<Duration>,
    cut: Vec<Duration>,
    restart: Option<orca::RestartCheck>,
    errors: Vec<String>,
}

struct Args {
    trials: usize,
    repeat: usize,
    orca: bool,
    swarm: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        trials: 10,
        repeat: 3,
        orca: true,
        swarm: true,
    };
    let usage = "usage: bench-services [--trials N] [--repeat N] [--only orca|swarm]";
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--trials" => a.trials = args.next().context(usage)?.parse()?,
            "--repeat" => a.repeat = args.next().context(usage)?.parse()?,
            "--only" => match args.next().as_deref() {
                Some("orca") => a.swarm = false,
                Some("swarm") => a.orca = false,
                _ => anyhow::bail!(usage),
            },
            other => anyhow::bail!("unknown argument {other}; {usage}"),
        }
    }
    anyhow::ensure!(
        a.trials > 0 && a.repeat > 0,
        "--trials and --repeat must be at least 1"
    );
    Ok(a)
}

/// Runs `f`, recording its error (with `what`) instead of returning it.
fn record<T>(errors: &mut Vec<String>, what: &str, r: anyhow::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            eprintln!("{what} failed: {e:#}");
            errors.push(format!("{what}: {e:#}"));
            None
        }
    }
}

struct OrcaTimers {
    heartbeat_timeout: f64,
    loss_grace: f64,
    healthy_after: f64,
    tick: f64,
    throttle_base: f64,
}

async fn run_orca(
    orca: &mut orca::Orca,
    args: &Args,
    timers: &OrcaTimers,
    f: &mut Figures,
) -> anyhow::Result<()> {
    let mut e = Vec::new();
    // 1. create → RUNNING (the steady-state event on the first run only:
    // with the default timers it comes 40 s after RUNNING).
    let mut creates = Vec::new();
    for r in 0..args.repeat {
        let name = format!("create-{r}");
        if let Some((running, steady)) = record(
            &mut e,
            "orca create",
            orca.create_to_running(&name, r == 0).await,
        ) {
            println!(
                "orca  1 create-service → 3 RUNNING: {:.3} s{}",
                secs(running),
                steady
                    .map(|s| format!(" (steady-state event {:.3} s)", secs(s)))
                    .unwrap_or_default()
            );
            creates.push(running);
            f.steady = f.steady.or(steady);
        }
        record(
            &mut e,
            "orca delete",
            orca.delete_service("default", &name).await,
        );
    }
    if !creates.is_empty() {
        f.create = Some(median(&mut creates));
    }
    // 2. killed container → replacement RUNNING; then 5. on the same service.
    if record(
        &mut e,
        "orca kill setup",
        orca.create_plain("kill", 3).await,
    )
    .is_some()
    {
        let mut kills = Vec::new();
        for _ in 0..args.repeat {
            if let Some(d) = record(&mut e, "orca kill", orca.kill_to_replacement("kill").await) {
                println!(
                    "orca  2 killed container → replacement RUNNING: {:.3} s",
                    secs(d)
                );
                kills.push(d);
            }
        }
        if !kills.is_empty() {
            f.kill = Some(median(&mut kills));
        }
        let settle = Duration::from_secs_f64(timers.heartbeat_timeout + timers.loss_grace + 4.0);
        f.restart = record(
            &mut e,
            "orca agent restart",
            orca.agent_restart("kill", settle).await,
        );
        record(
            &mut e,
            "orca delete",
            orca.delete_service("default", "kill").await,
        );
    }
    // 3. rolling update, default timers.
    if let Some(d) = record(
        &mut e,
        "orca rolling update",
        orca.rolling_update("roll-default").await,
    ) {
        println!(
            "orca  3 rolling update (default 40 s healthy rule) → COMPLETED: {:.3} s",
            secs(d)
        );
        f.roll = Some(d);
    }
    record(
        &mut e,
        "orca delete",
        orca.delete_service("default", "roll-default").await,
    );
    // 4. node cut off, default timers.
    if record(&mut e, "orca cut agents", orca.start_cut_agents().await).is_some() {
        for t in 0..args.trials {
            let k = t % 3 + 1;
            match record(
                &mut e,
                &format!("orca cut trial {}", t + 1),
                orca.node_cut_trial(t, k).await,
            ) {
                Some(d) => {
                    println!(
                        "orca  4 trial {:>2}: host {k} cut → its task RUNNING elsewhere: {:.3} s",
                        t + 1,
                        secs(d)
                    );
                    f.cut.push(d);
                }
                None => break,
            }
        }
    }
    // 3 again, with the "healthy after RUNNING" rule at its smallest.
    if record(
        &mut e,
        "orca controller restart",
        orca.restart_controller(&["--service-healthy-after-secs", "0.001"])
            .await,
    )
    .is_some()
    {
        if let Some(d) = record(
            &mut e,
            "orca rolling update (fast)",
            orca.rolling_update("roll-fast").await,
        ) {
            println!(
                "orca  3 rolling update (--service-healthy-after-secs 0.001) → COMPLETED: {:.3} s",
                secs(d)
            );
            f.roll_fast = Some(d);
        }
        record(
            &mut e,
            "orca delete",
            orca.delete_service("default", "roll-fast").await,
        );
    }
    f.errors.extend(e);
    Ok(())
}

fn run_swarm_single(s: &swarm::Swarm, args: &Args, images: &[String; 2], f: &mut Figures) {
    let mut e = Vec::new();
    let mut creates = Vec::new();
    for r in 0..args.repeat {
        let name = format!("create-{r}");
        if let Some(d) = record(
            &mut e,
            "swarm create",
            s.create_to_running(&name, &images[0]),
        ) {
            println!("swarm 1 service create → 3/3: {:.3} s", secs(d));
            creates.push(d);
        }
        record(&mut e, "swarm rm", s.remove(0, &name));
    }
    if !creates.is_empty() {
        f.create = Some(median(&mut creates));
    }
    for (name, extra, slot) in [
        ("kill", &[][..], &mut f.kill),
        ("kill0", &["--restart-delay", "0s"][..], &mut f.kill_delay0),
    ] {
        if record(
            &mut e,
            "swarm kill setup",
            s.create_plain(name, 3, extra, &images[0]),
        )
        .is_some()
        {
            let mut kills = Vec::new();
            for _ in 0..args.repeat {
                if let Some(d) = record(&mut e, "swarm kill", s.kill_to_replacement(name)) {
                    println!(
                        "swarm 2 docker kill → replacement Running ({}): {:.3} s",
                        if extra.is_empty() {
                            "default restart delay"
                        } else {
                            "--restart-delay 0s"
                        },
                        secs(d)
                    );
                    kills.push(d);
                }
            }
            if !kills.is_empty() {
                *slot = Some(median(&mut kills));
            }
        }
        record(&mut e, "swarm rm", s.remove(0, name));
    }
    if let Some(d) = record(
        &mut e,
        "swarm rolling update",
        s.rolling_update("roll", images),
    ) {
        println!("swarm 3 service update → completed: {:.3} s", secs(d));
        f.roll = Some(d);
    }
    record(&mut e, "swarm rm", s.remove(0, "roll"));
    f.errors.extend(e);
}

fn run_swarm_cut(s: &swarm::Swarm, args: &Args, image: &str, f: &mut Figures) {
    for t in 0..args.trials {
        match record(
            &mut f.errors,
            &format!("swarm cut trial {}", t + 1),
            s.node_cut_trial(t, image),
        ) {
            Some(d) => {
                println!(
                    "swarm 4 trial {:>2}: follower cut → its task Running elsewhere: {:.3} s",
                    t + 1,
                    secs(d)
                );
                f.cut.push(d);
            }
            None => break,
        }
    }
}

fn cell(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.3}", secs(d)))
        .unwrap_or_else(|| "-".into())
}

fn ratio(o: Option<Duration>, s: Option<Duration>) -> String {
    match (o, s) {
        (Some(o), Some(s)) if !s.is_zero() => format!("{:.2}x", secs(o) / secs(s)),
        _ => "-".into(),
    }
}

fn row(label: &str, o: Option<Duration>, s: Option<Duration>) {
    println!(
        "{label:<66} {:>9} {:>9} {:>8}",
        cell(o),
        cell(s),
        ratio(o, s)
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let socket = containerd_socket()?
        .context("containerd is needed (bash deploy/start-containerd.sh), and root")?;
    if args.swarm {
        anyhow::ensure!(
            Command::new("dockerd").arg("--version").output().is_ok_and(|o| o.status.success()),
            "dockerd is needed for the Swarm side: apt-get install -y --no-install-recommends docker.io"
        );
    }
    let help = Command::new(orca_tests::bin_path("orca-controller")?)
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout).into_owned();
    let timers = OrcaTimers {
        heartbeat_timeout: help_default(&help, "--agent-heartbeat-timeout-secs")?,
        loss_grace: help_default(&help, "--agent-loss-grace-secs")?,
        healthy_after: help_default(&help, "--service-healthy-after-secs")?,
        tick: help_default(&help, "--service-tick-secs")?,
        throttle_base: help_default(&help, "--service-throttle-base-secs")?,
    };
    let agent_defaults = orca_agent::AgentConfig::default();

    let work = tempfile::tempdir()?;
    let archive = build_busybox_oci_archive(work.path())?;
    let registry = TestRegistry::start()?;
    let images = [
        registry.push(&archive, "busybox:1")?,
        registry.push(&archive, "busybox:2")?,
    ];
    let docker_archive = work.path().join("busybox-docker.tar");

    let mut o = Figures::default();
    let mut s = Figures::default();
    let mut cleanup = Vec::new();

    if args.orca {
        match orca::Orca::start(work.path(), &socket, &registry.host(), images.clone()).await {
            Ok(mut side) => {
                if args.swarm {
                    // Swarm gets the very image orca pulled: exported from
                    // the main agent's containerd namespace.
                    let ns = side
                        .main
                        .as_ref()
                        .map(|m| m.namespace.clone())
                        .unwrap_or_default();
                    let mut cmd = Command::new("ctr");
                    cmd.args([
                        "--address",
                        &socket.to_string_lossy(),
                        "-n",
                        &ns,
                        "images",
                        "export",
                    ])
                    .arg(&docker_archive)
                    .args(&images);
                    record(&mut s.errors, "ctr images export", output(&mut cmd));
                }
                let r = run_orca(&mut side, &args, &timers, &mut o).await;
                record(&mut o.errors, "orca", r);
                cleanup.extend(side.clean().await);
            }
            Err(e) => {
                eprintln!("orca setup failed: {e:#}");
                o.errors.push(format!("setup: {e:#}"));
            }
        }
    }
    if args.swarm && !docker_archive.exists() {
        // --only swarm: pull into a containerd namespace of our own.
        record(
            &mut s.errors,
            "image for swarm",
            export_for_docker(
                &socket,
                &registry.host(),
                &images,
                &docker_archive,
                work.path(),
            )
            .await,
        );
    }
    if args.swarm && docker_archive.exists() {
        match swarm::Swarm::start(1, &docker_archive, &images) {
            Ok(single) => {
                run_swarm_single(&single, &args, &images, &mut s);
                cleanup.extend(single.stop());
            }
            Err(e) => {
                eprintln!("swarm (1 node) setup failed: {e:#}");
                s.errors.push(format!("swarm 1-node setup: {e:#}"));
            }
        }
        match swarm::Swarm::start(3, &docker_archive, &images) {
            Ok(triple) => {
                run_swarm_cut(&triple, &args, &images[0], &mut s);
                cleanup.extend(triple.stop());
            }
            Err(e) => {
                eprintln!("swarm (3 managers) setup failed: {e:#}");
                s.errors.push(format!("swarm 3-manager setup: {e:#}"));
            }
        }
    }
    drop(registry);

    println!();
    println!("timers");
    println!(
        "  orca controller (defaults from orca-controller --help): --agent-heartbeat-timeout-secs {} --agent-loss-grace-secs {} \
         --service-healthy-after-secs {} --service-tick-secs {} --service-throttle-base-secs {}",
        timers.heartbeat_timeout, timers.loss_grace, timers.healthy_after, timers.tick, timers.throttle_base
    );
    println!(
        "  orca agent (defaults): heartbeat_interval {} s, relist_interval {} s, report_batch_window {} ms; \
         containers: sh trapping SIGTERM, image present",
        agent_defaults.heartbeat_interval.as_secs_f64(),
        agent_defaults.relist_interval.as_secs_f64(),
        agent_defaults.report_batch_window.as_millis()
    );
    println!(
        "  swarm (dockerd {}): defaults (restart delay 5 s, dispatcher heartbeat 5 s, update monitor 5 s); \
         --stop-grace-period 0s --no-resolve-image; update: --update-parallelism 5 --update-delay 0s --update-order start-first",
        Command::new("dockerd").arg("--version").output().map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    );
    println!(
        "  setup: orca 1 controller + 1 agent (scenarios 1-3, 5) and 3 agents in 3 netns (4); swarm 1 node (1-3), 3 managers in 3 netns (4); \
         1 and 2: median of {} runs; 4: {} trials",
        args.repeat, args.trials
    );
    println!();
    println!(
        "{:<66} {:>9} {:>9} {:>8}",
        "seconds", "orca", "swarm", "orca/sw"
    );
    row(
        "1 create-service 3 replicas → 3/3 RUNNING",
        o.create,
        s.create,
    );
    row(
        "1 orca: → service steady-state event (default 40 s rule)",
        o.steady,
        None,
    );
    row(
        "2 killed container → replacement RUNNING (swarm default delay)",
        o.kill,
        s.kill,
    );
    row(
        "2 killed container → replacement RUNNING (swarm --restart-delay 0s)",
        o.kill,
        s.kill_delay0,
    );
    row(
        "3 rolling update 10 @50/200 → COMPLETED (orca default 40 s rule)",
        o.roll,
        s.roll,
    );
    row(
        "3 rolling update 10 @50/200 → COMPLETED (orca healthy-after 1 ms)",
        o.roll_fast,
        s.roll,
    );
    let stat = |v: &Vec<Duration>, p: f64| -> Option<Duration> {
        let mut v = v.clone();
        v.sort();
        (!v.is_empty()).then(|| {
            if p >= 100.0 {
                v[v.len() - 1]
            } else {
                percentile(&v, p)
            }
        })
    };
    row(
        &format!(
            "4 node cut off → tasks RUNNING elsewhere, p50 (n={}/{})",
            o.cut.len(),
            s.cut.len()
        ),
        stat(&o.cut, 50.0),
        stat(&s.cut, 50.0),
    );
    row(
        "4 node cut off → tasks RUNNING elsewhere, max",
        stat(&o.cut, 100.0),
        stat(&s.cut, 100.0),
    );
    match &o.restart {
        Some(r) => println!(
            "5 orca agent SIGKILL + immediate restart (respawned in {:.3} s, checked {:.0} s later): no task replaced: {} \
             ({}/{} tasks kept RUNNING, {} new); same container pids: {} ({}/{} containers); agent connected: {}; runningCount {}",
            secs(r.restarted),
            timers.heartbeat_timeout + timers.loss_grace + 4.0,
            if r.tasks_new == 0 && r.tasks_kept == r.tasks_before { "yes" } else { "no" },
            r.tasks_kept, r.tasks_before, r.tasks_new,
            if r.same_pid == r.containers_before && r.containers_before > 0 { "yes" } else { "no" },
            r.same_pid, r.containers_before,
            if r.connected { "yes" } else { "no" },
            r.running_count
        ),
        None => println!("5 orca agent SIGKILL + immediate restart: not measured"),
    }
    println!(
        "notes: orca figures are from API polls every 10-20 ms, swarm's from docker CLI polls (each ~20-60 ms). \
         Row 4: orca cuts an agent's namespace from the controller (tasks STOPPED after heartbeat timeout + grace, then replaced); \
         swarm cuts a follower manager from the other two managers. \
         Both rows 3 compare with the same Swarm run. Reference, recorded in /work/shared/environment.md, \
         not measured this run: Swarm 3 managers with a 1 s dispatcher heartbeat, 3.6 s for row 4."
    );
    let mut failed = false;
    for (side, f) in [("orca", &o), ("swarm", &s)] {
        for e in &f.errors {
            eprintln!("{side} error: {e}");
            failed = true;
        }
    }
    for c in &cleanup {
        eprintln!("cleanup: {c}");
        failed = true;
    }
    anyhow::ensure!(
        !failed,
        "some figures are missing or cleanup was incomplete (see above)"
    );
    Ok(())
}

/// Pulls the images into a containerd namespace of the benchmark's own and
/// exports them for `docker load`; the namespace is purged afterwards.
async fn export_for_docker(
    socket: &Path,
    registry_host: &str,
    images: &[String; 2],
    out: &Path,
    work: &Path,
) -> anyhow::Result<()> {
    use orca_runtime::containerd::{
        ContainerdConfig, ContainerdRuntime, RegistriesConfig, RegistryHostConfig,
    };
    use orca_runtime::ContainerRuntime;
    let ns = orca_tests::containerd::unique_namespace("svc-export");
    let mut registries = RegistriesConfig::default();
    registries.hosts.insert(
        registry_host.to_string(),
        RegistryHostConfig {
            insecure: true,
            ..Default::default()
        },
    );
    let rt = ContainerdRuntime::connect(ContainerdConfig {
        socket: socket.to_path_buf(),
        namespace: ns.clone(),
        registries,
        state_dir: work.join("export"),
        log_driver: None,
    })
    .await?;
    let result = async {
        for image in images {
            rt.ensure_image(image, None).await?;
        }
        let mut cmd = Command::new("ctr");
        cmd.args([
            "--address",
            &socket.to_string_lossy(),
            "-n",
            &ns,
            "images",
            "export",
        ])
        .arg(out)
        .args(images);
        output(&mut cmd)?;
        anyhow::Ok(())
    }
    .await;
    rt.purge_namespace().await?;
    result
}

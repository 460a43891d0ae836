//! Small helpers shared by both sides: statistics, running commands,
//! subnet leases for docker's bridges, and the iptables cut of one host from
//! the machine.

use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::Context as _;
use orca_tests::netns::TestNet;

/// The `p`th percentile of `sorted` (nearest rank).
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * (sorted.len() as f64 - 1.0)).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

/// The median of `samples` (sorted in place).
pub fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    percentile(samples, 50.0)
}

pub fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Runs `cmd` to completion; its stdout, or an error naming the command and
/// its stderr.
pub fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {cmd:?}"))?;
    anyhow::ensure!(
        out.status.success(),
        "{cmd:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The `[default: X]` clap prints under `flag` in `--help` output.
pub fn help_default(help: &str, flag: &str) -> anyhow::Result<f64> {
    let at = help
        .find(&format!("{flag} "))
        .with_context(|| format!("--help does not list {flag}"))?;
    let rest = &help[at..];
    let body = &rest[rest.find('\n').unwrap_or(rest.len())..];
    let end = body
        .match_indices('\n')
        .map(|(i, _)| i)
        .find(|&i| body[i + 1..].trim_start_matches(' ').starts_with('-'))
        .unwrap_or(body.len());
    let value = body[..end]
        .split("[default: ")
        .nth(1)
        .and_then(|v| v.split(']').next())
        .with_context(|| format!("no [default: ...] for {flag}"))?;
    value
        .trim()
        .parse()
        .with_context(|| format!("{flag} default {value:?}"))
}

/// Cuts host `i` of `net` off from the machine's bridge address (where the
/// controller listens), both ways, silently: DROP rules at the top of the
/// host's INPUT and OUTPUT chains.
pub fn cut_from_machine(net: &TestNet, i: usize) -> anyhow::Result<()> {
    let machine = format!("{}/32", net.host_addr());
    output(
        net.command(i, "iptables")
            .args(["-I", "INPUT", "-s", &machine, "-j", "DROP"]),
    )?;
    output(
        net.command(i, "iptables")
            .args(["-I", "OUTPUT", "-d", &machine, "-j", "DROP"]),
    )?;
    Ok(())
}

/// Removes the rules [`cut_from_machine`] added.
pub fn reconnect_to_machine(net: &TestNet, i: usize) -> anyhow::Result<()> {
    let machine = format!("{}/32", net.host_addr());
    output(
        net.command(i, "iptables")
            .args(["-D", "INPUT", "-s", &machine, "-j", "DROP"]),
    )?;
    output(
        net.command(i, "iptables")
            .args(["-D", "OUTPUT", "-d", &machine, "-j", "DROP"]),
    )?;
    Ok(())
}

/// Sends SIGKILL to `pid` (a container process the benchmark's own agent
/// started).
pub fn sigkill(pid: u32) -> anyhow::Result<()> {
    output(Command::new("kill").args(["-KILL", &pid.to_string()]))?;
    Ok(())
}

/// Sends SIGTERM to `pid` (a dockerd the benchmark started).
pub fn sigterm(pid: u32) -> anyhow::Result<()> {
    output(Command::new("kill").args(["-TERM", &pid.to_string()]))?;
    Ok(())
}

/// Whether a process with `pid` exists (and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit(')')
                .next()
                .and_then(|r| r.split_whitespace().next())
                .is_some_and(|state| state != "Z")
        })
        .unwrap_or(false)
}

/// Lazily unmounts every mount point under `dir` (deepest first): what a
/// dockerd killed mid-way may leave under its data root.
pub fn unmount_under(dir: &std::path::Path) {
    let root = dir.to_string_lossy().into_owned();
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(4))
        .filter(|p| p.starts_with(&root))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(p)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

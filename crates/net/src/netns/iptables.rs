//! The host's FORWARD rules for the bridge.
//!
//! With `net.bridge.bridge-nf-call-iptables=1` (common, and set on this
//! project's machines) frames bridged between two task namespaces traverse
//! the host's FORWARD chain; a host whose FORWARD policy is DROP (Docker sets
//! that) would silently cut tasks off from each other. Two ACCEPT rules, for
//! traffic entering and leaving the bridge, keep task traffic flowing. No
//! `ip_forward` is needed: tasks only talk within the bridge and to the host.

use std::process::Output;

use tokio::process::Command;

use crate::NetworkError;

use super::kernel_err;

/// `-w`: wait for the xtables lock rather than fail when another agent or
/// a test runs iptables at the same moment.
pub(crate) const WAIT: [&str; 2] = ["-w", "10"];

pub(crate) async fn iptables(args: &[&str]) -> Result<Output, NetworkError> {
    Command::new("iptables")
        .args(WAIT)
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| kernel_err(format!("running iptables {}", args.join(" ")), e))
}

fn rule<'a>(op: &'a str, dir: &'a str, bridge: &'a str) -> [&'a str; 6] {
    [op, "FORWARD", dir, bridge, "-j", "ACCEPT"]
}

/// Whether the rule is present: `-C` exits 1 when it is not.
async fn exists(dir: &str, bridge: &str) -> Result<bool, NetworkError> {
    let args = rule("-C", dir, bridge);
    let out = iptables(&args).await?;
    match out.status.code() {
        Some(0) => Ok(true),
        Some(1) => Ok(false),
        _ => Err(failed(&args, &out)),
    }
}

pub(crate) fn failed(args: &[&str], out: &Output) -> NetworkError {
    kernel_err(
        format!("iptables {}", args.join(" ")),
        format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    )
}

/// Inserts `-i BRIDGE -j ACCEPT` and `-o BRIDGE -j ACCEPT` at the top of
/// FORWARD unless present (so re-opening never duplicates them).
pub(crate) async fn ensure_forward_rules(bridge: &str) -> Result<(), NetworkError> {
    for dir in ["-i", "-o"] {
        if !exists(dir, bridge).await? {
            let args = rule("-I", dir, bridge);
            let out = iptables(&args).await?;
            if !out.status.success() {
                return Err(failed(&args, &out));
            }
        }
    }
    Ok(())
}

/// Deletes both rules, every copy of them; not an error if absent.
pub(crate) async fn remove_forward_rules(bridge: &str) -> Result<(), NetworkError> {
    for dir in ["-i", "-o"] {
        // Bounded: a rule that -C finds but -D cannot delete must not loop.
        for _ in 0..16 {
            if !exists(dir, bridge).await? {
                break;
            }
            let args = rule("-D", dir, bridge);
            let out = iptables(&args).await?;
            if !out.status.success() {
                return Err(failed(&args, &out));
            }
        }
    }
    Ok(())
}

//! Applies [`NodeRules`] to the kernel: our chains through one
//! `iptables-restore --noflush` transaction, the jumps from the built-in
//! chains added once (checked first, so re-applying never duplicates them),
//! and IPv4 forwarding switched on in the agent's namespace, without which
//! nothing leaves the bridge for another device. Removal undoes all of it
//! but the forwarding switch, which other software may rely on.

use std::process::Stdio;

use tokio::io::AsyncWriteExt as _;
use tokio::process::Command;
use tracing::info;

use super::iptables::{failed, iptables, WAIT};
use super::kernel_err;
use crate::rules::{chain_names, NodeRules};
use crate::{Ipv4Subnet, NetworkError};

const IP_FORWARD: &str = "/proc/sys/net/ipv4/ip_forward";

/// Makes the kernel hold exactly `rules` (chains emptied and jumps removed
/// when they ask for nothing).
pub async fn apply(rules: &NodeRules) -> Result<(), NetworkError> {
    if rules.is_empty() {
        return remove(&rules.bridge, rules.subnet).await;
    }
    ensure_ip_forward()?;
    restore(&rules.render()).await?;
    for jump in NodeRules::jumps(&rules.bridge, rules.subnet) {
        let mut check = vec!["-t", "nat", "-C", jump.chain];
        check.extend(jump.args.iter().map(String::as_str));
        let out = iptables(&check).await?;
        match out.status.code() {
            Some(0) => continue,
            Some(1) => {}
            _ => return Err(failed(&check, &out)),
        }
        let mut insert = vec!["-t", "nat", "-I", jump.chain, "1"];
        insert.extend(jump.args.iter().map(String::as_str));
        let out = iptables(&insert).await?;
        if !out.status.success() {
            return Err(failed(&insert, &out));
        }
    }
    Ok(())
}

/// Removes the jumps and our chains; not an error if they are gone.
pub async fn remove(bridge: &str, subnet: Ipv4Subnet) -> Result<(), NetworkError> {
    for jump in NodeRules::jumps(bridge, subnet) {
        let mut delete = vec!["-t", "nat", "-D", jump.chain];
        delete.extend(jump.args.iter().map(String::as_str));
        // Bounded: every copy goes, and a rule that cannot be deleted must
        // not loop. Exit status 1 (or 2 with a missing chain) means gone.
        for _ in 0..16 {
            if !iptables(&delete).await?.status.success() {
                break;
            }
        }
    }
    let (egress, dnat) = chain_names(bridge);
    for chain in [egress, dnat] {
        for op in ["-F", "-X"] {
            let args = ["-t", "nat", op, chain.as_str()];
            let out = iptables(&args).await?;
            let stderr = String::from_utf8_lossy(&out.stderr);
            let gone = stderr.contains("No chain") || stderr.contains("does not exist");
            if !out.status.success() && !gone {
                return Err(failed(&args, &out));
            }
        }
    }
    Ok(())
}

/// Our chains' rules as the kernel holds them (`iptables -S`), empty when
/// the chains do not exist: for tests and for telling what to repair.
pub async fn listed(bridge: &str) -> Result<Vec<String>, NetworkError> {
    let (egress, dnat) = chain_names(bridge);
    let mut rules = Vec::new();
    for chain in [egress, dnat] {
        let out = iptables(&["-t", "nat", "-S", chain.as_str()]).await?;
        if out.status.success() {
            rules.extend(
                String::from_utf8_lossy(&out.stdout)
                    .lines()
                    .filter(|l| l.starts_with("-A "))
                    .map(str::to_string),
            );
        }
    }
    Ok(rules)
}

async fn restore(text: &str) -> Result<(), NetworkError> {
    let mut child = Command::new("iptables-restore")
        .args(WAIT)
        .arg("--noflush")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| kernel_err("running iptables-restore", e))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .await
            .map_err(|e| kernel_err("writing to iptables-restore", e))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| kernel_err("running iptables-restore", e))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(kernel_err(
            "iptables-restore --noflush",
            format!(
                "{}: {}\n{text}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        ))
    }
}

/// IPv4 forwarding on in the calling thread's network namespace.
pub fn ensure_ip_forward() -> Result<(), NetworkError> {
    let now = std::fs::read_to_string(IP_FORWARD)
        .map_err(|e| kernel_err(format!("reading {IP_FORWARD}"), e))?;
    if now.trim() != "1" {
        std::fs::write(IP_FORWARD, "1")
            .map_err(|e| kernel_err(format!("writing {IP_FORWARD}"), e))?;
        info!("IPv4 forwarding switched on for task egress and published ports");
    }
    Ok(())
}

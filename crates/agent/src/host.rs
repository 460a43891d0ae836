//! What this machine offers: registered CPU (1024 units a core), memory
//! (MiB less the reserve), hostname and the built-in attributes.

use orca_core::task_definition::Attribute;

use crate::config::AgentConfig;

/// The agent's version, registered with the instance.
pub const AGENT_VERSION: &str = env!("CARGO_PKG_VERSION");

/// The machine's total memory in MiB, from /proc/meminfo.
fn total_memory_mib() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

pub fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string())
}

/// CPU units to register: the override, or 1024 per online core.
pub fn cpu_units(config: &AgentConfig) -> u64 {
    config.cpu_units.unwrap_or_else(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        1024 * cores as u64
    })
}

/// MiB to register: the override, or the machine's memory less the reserve.
pub fn memory_mib(config: &AgentConfig) -> u64 {
    config.memory_mib.unwrap_or_else(|| {
        total_memory_mib()
            .unwrap_or(0)
            .saturating_sub(config.reserved_memory_mib)
    })
}

fn cpu_architecture() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "x86_64",
        "aarch64" => "arm64",
        other => other,
    }
}

fn attribute(name: &str, value: &str) -> Attribute {
    Attribute {
        name: name.to_string(),
        value: Some(value.to_string()),
        target_type: None,
        target_id: None,
    }
}

/// The capabilities ECS's `requiresAttributes` names that this agent really
/// provides, so a definition copied from ECS places here and one needing
/// more (EFS, FireLens, IAM task roles, until orca has them)
/// fails placement with ATTRIBUTE instead of
/// starting without them.
const CAPABILITIES: &[&str] = &[
    // The container features of Docker remote API 1.17 to 1.25 that ECS
    // keys on (memory reservation among them), done through containerd.
    "com.amazonaws.ecs.capability.docker-remote-api.1.17",
    "com.amazonaws.ecs.capability.docker-remote-api.1.18",
    "com.amazonaws.ecs.capability.docker-remote-api.1.19",
    "com.amazonaws.ecs.capability.docker-remote-api.1.20",
    "com.amazonaws.ecs.capability.docker-remote-api.1.21",
    // Each task's own network namespace and address: the awsvpc analogue.
    "ecs.capability.task-eni",
    // dependsOn, startTimeout and stopTimeout.
    "ecs.capability.container-ordering",
    // healthCheck: CMD and CMD-SHELL exec'd in the container by the agent.
    "ecs.capability.container-health-check",
    // restartPolicy: exited containers started again in place.
    "ecs.capability.container-restart-policy",
    // secrets[] from orca's Secrets Manager and Parameter Store analogue,
    // as environment variables (or files: orca.secrets.files). Not
    // logConfiguration.secretOptions nor repositoryCredentials (yet).
    "ecs.capability.secrets.asm.environment-variables",
    "ecs.capability.secrets.ssm.environment-variables",
    // ECS Exec: commands in running containers through the node API.
    "ecs.capability.execute-command",
    // Container output goes to per-container files on the node whatever the
    // driver asks; awslogs is the one ECS definitions name most.
    "com.amazonaws.ecs.capability.logging-driver.awslogs",
    "com.amazonaws.ecs.capability.logging-driver.json-file",
    "com.amazonaws.ecs.capability.logging-driver.none",
];

/// The built-in attributes (orca's and the ECS names placement constraints
/// written for ECS use), the capabilities, then the configured ones.
pub fn attributes(config: &AgentConfig) -> Vec<Attribute> {
    let capabilities = CAPABILITIES.iter().map(|name| Attribute {
        name: name.to_string(),
        value: None,
        target_type: None,
        target_id: None,
    });
    let mut out = vec![
        attribute("orca.os-type", std::env::consts::OS),
        attribute("orca.cpu-architecture", cpu_architecture()),
        attribute("orca.agent-version", AGENT_VERSION),
        attribute("ecs.os-type", std::env::consts::OS),
        attribute("ecs.cpu-architecture", cpu_architecture()),
        attribute("ecs.os-family", "LINUX"),
    ];
    if let Some(zone) = &config.availability_zone {
        out.push(attribute("ecs.availability-zone", zone));
    }
    out.push(attribute(
        "ecs.instance-type",
        config.instance_type.as_deref().unwrap_or("on-premises"),
    ));
    out.extend(capabilities);
    for (name, value) in &config.attributes {
        out.push(attribute(name, value));
    }
    out
}

/// The address this machine would send from towards `endpoint`
/// (`host:port`): the node address other nodes reach it at, unless
/// configured. A UDP socket's connect only picks a route; nothing is sent.
/// None when the endpoint does not resolve or the route is loopback (a
/// single machine needs no routes between nodes).
pub fn source_address_towards(endpoint: &str) -> Option<std::net::Ipv4Addr> {
    use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
    let target = endpoint.to_socket_addrs().ok()?.find(SocketAddr::is_ipv4)?;
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect(target).ok()?;
    match socket.local_addr().ok()?.ip() {
        std::net::IpAddr::V4(a) if !a.is_loopback() && !a.is_unspecified() => Some(a),
        _ => None,
    }
}

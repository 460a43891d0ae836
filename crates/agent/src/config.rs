//! The agent's configuration: a TOML file (`--config`), overridden by flags.
//! Validated once at start; every field says why it exists.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("reading {path}: {message}")]
    Read { path: String, message: String },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid {field}: {message}")]
    Invalid { field: String, message: String },
}

/// Registries as containerd's hosts.toml describes them: per host named in
/// image references, mirrors tried first, plain HTTP only when insecure,
/// credentials.
pub type RegistriesConfig = orca_runtime::containerd::RegistriesConfig;

/// How tasks get their network.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkKind {
    /// A namespace, veth and address per task on the node bridge (awsvpc).
    Netns,
    /// Addresses from the same IPAM without touching the kernel: for tests
    /// of the layers above with the fake runtime.
    Fake,
}

/// The agent's configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AgentConfig {
    /// Controller endpoints (host:port); any member will do, the agent
    /// finds the leader.
    pub endpoints: Vec<String>,
    /// The cluster this instance joins.
    pub cluster: String,
    /// containerd's socket.
    pub containerd_socket: PathBuf,
    /// The containerd namespace of this agent's images and containers: one
    /// per agent, so several agents can share one containerd.
    pub containerd_namespace: String,
    /// Where the agent keeps its identity, IPAM and task logs.
    pub data_dir: PathBuf,
    /// The node bridge tasks attach to.
    pub bridge: String,
    /// The node's task subnet; None asks the controller for one.
    pub task_subnet: Option<String>,
    pub network: NetworkKind,
    pub registries: RegistriesConfig,
    /// Custom attributes registered with the instance.
    pub attributes: BTreeMap<String, String>,
    /// The instance's availability zone (rack, room, site), registered as
    /// ECS's `ecs.availability-zone`: services and `spread` placement use it.
    pub availability_zone: Option<String>,
    /// The machine's type, registered as `ecs.instance-type`.
    pub instance_type: Option<String>,
    /// CPU units to register instead of 1024 per core.
    pub cpu_units: Option<u64>,
    /// MiB to register instead of the machine's memory less the reserve.
    pub memory_mib: Option<u64>,
    /// MiB kept back for the agent, containerd and the system.
    pub reserved_memory_mib: u64,
    /// Host ports no task may publish (registered as ECS's PORTS
    /// resource); by default sshd's, as ECS's agent reserves it.
    pub reserved_ports: Vec<u16>,
    /// How often the agent tells the leader it is alive.
    #[serde(with = "secs")]
    pub heartbeat_interval: Duration,
    /// How long state changes are gathered before they are sent.
    #[serde(with = "millis")]
    pub report_batch_window: Duration,
    /// SIGTERM → SIGKILL grace when a container defines no stopTimeout
    /// (ECS_CONTAINER_STOP_TIMEOUT, 30 s in ECS).
    #[serde(with = "secs")]
    pub default_stop_timeout: Duration,
    /// containerd is listed at least this often (and whenever its events
    /// hint at a change, and after it was unreachable): the level the agent
    /// reconciles against.
    #[serde(with = "secs")]
    pub relist_interval: Duration,
    /// SIGKILL is sent again this often to a container that outlives it.
    #[serde(with = "secs")]
    pub kill_resend_interval: Duration,
    /// The garbage collection pass (old logs, stray root filesystems,
    /// unused images) runs this often.
    #[serde(with = "secs")]
    pub gc_interval: Duration,
    /// Logs of a task that is gone are kept this long (ECS's
    /// ECS_ENGINE_TASK_CLEANUP_WAIT_DURATION, 3 h).
    #[serde(with = "secs")]
    pub task_log_retention: Duration,
    /// Image garbage collection starts when the disk holding the images is
    /// fuller than this (percent, 0 to 100; the kubelet's 85)...
    pub image_gc_high_threshold_percent: u8,
    /// ... and removes the least recently used images until it expects to
    /// be under this (the kubelet's 80).
    pub image_gc_low_threshold_percent: u8,
    /// An image no task used for less than this is kept.
    #[serde(with = "secs")]
    pub image_gc_min_unused: Duration,
    /// The file system whose fullness drives image collection: containerd's
    /// root.
    pub image_gc_disk_path: PathBuf,
    /// The `orca-log-driver` binary containerd's shim runs per container to
    /// write its stdout and stderr to the log file, so containers never
    /// depend on the agent being up. Unset: `orca-log-driver` next to the
    /// running executable ([`AgentConfig::log_driver_path`]). An empty path
    /// turns it off: the agent drains the output itself, and a chatty
    /// container blocks while the agent is down.
    pub log_driver: Option<PathBuf>,
    /// Node directories a task's `host.sourcePath` volume may bind (each
    /// path or below it). Empty by default: a task definition is anyone's
    /// who may register one, and a bind of the node's files is the node's
    /// owner's choice.
    pub host_volume_paths: Vec<PathBuf>,
    /// The nameservers a container's /etc/resolv.conf names when its
    /// definition names none (awsvpc always): an explicit override. Unset:
    /// the agent's DNS responder when one runs on port 53 (so tasks
    /// resolve the cluster's service names), else those of the node's own
    /// /etc/resolv.conf, loopback ones left out (they would answer inside
    /// the task's namespace, where nothing listens).
    pub dns_servers: Option<Vec<std::net::Ipv4Addr>>,
    /// Where the agent's DNS responder listens (UDP and TCP): it answers
    /// the cluster's service-discovery names from the leader's zone and
    /// relays every other name to `dns_upstreams`. Unset: the bridge
    /// gateway's port 53 with the `netns` network, no responder with the
    /// `fake` one.
    pub dns_listen: Option<std::net::SocketAddr>,
    /// Where the responder sends names outside the discovery namespace.
    /// Unset: the nameservers of the node's /etc/resolv.conf on port 53,
    /// loopback ones included (the relay runs in the agent's own
    /// namespace, where a local resolver such as 127.0.0.53 answers). An
    /// empty list: none; such names are REFUSED.
    pub dns_upstreams: Option<Vec<std::net::SocketAddr>>,
    /// Tasks reach addresses outside the node through it, masqueraded to
    /// the node's address (on by default, as ECS tasks reach the outside
    /// through their VPC's routing). Switches IPv4 forwarding on in the
    /// agent's namespace; the rules exist while a task does.
    pub egress: bool,
    /// This node's address on the network between nodes, where other nodes
    /// send traffic for its tasks. Unset: the address the kernel would use
    /// as the source towards the first controller endpoint (none when that
    /// is loopback: a single machine needs no routes).
    pub node_address: Option<std::net::Ipv4Addr>,
    /// How other nodes' tasks are reached: `vxlan` (the default: any
    /// routed network between nodes), `host_gw` (plain routes, used
    /// between two nodes that both ask for it and share a link), or `off`
    /// (nothing programmed and no address registered: a single node, or
    /// several agents sharing one namespace).
    pub overlay: OverlayChoice,
    /// The VXLAN device's name, VNI and UDP port (the same on every node).
    pub vxlan_device: String,
    pub vxlan_vni: u32,
    pub vxlan_port: u16,
    /// The VXLAN device's MTU. Unset: the MTU of the link holding the node
    /// address, less VXLAN's 50 bytes.
    pub vxlan_mtu: Option<u32>,
    /// Routes, VXLAN entries and NAT rules are rewritten from the leader's
    /// map this often even when it did not change, repairing what someone
    /// removed by hand.
    #[serde(with = "secs")]
    pub overlay_resync_interval: Duration,
    /// The longest restartAttemptPeriod honoured, in seconds: a container
    /// with a restartPolicy is restarted after a run at least this long
    /// even if its definition asks for a longer one. Unset: ECS's rule
    /// (the definition's 60–1800 s, 300 s by default). Tests set it short.
    #[serde(default, with = "opt_secs")]
    pub max_restart_attempt_period: Option<Duration>,
    /// A container's log file is rotated once it holds this many bytes
    /// (0: never), keeping `log_max_files` files in all; a container's
    /// json-file `max-size` / `max-file` options override both.
    pub log_max_size: u64,
    pub log_max_files: u32,
    /// The most processes and threads one container may hold (its cgroup's
    /// pids.max), so a fork bomb stops there instead of exhausting the
    /// node's pids; 0: no limit.
    pub pids_limit: u64,
    /// Where the node API listens (`orca.v1.Node`: controllers read task
    /// logs through it). Registered with the instance as this address, or,
    /// when it is 0.0.0.0, as the node address (else 127.0.0.1) with the
    /// bound port; port 0 picks a free one (tests).
    pub api_listen: std::net::SocketAddr,
}

/// The node API's port unless `api_listen` says otherwise: clear of the
/// controllers' 7470 (7471-7473 in deploy/local-cluster.sh) and of the
/// ECS JSON endpoint's 7480.
pub const DEFAULT_API_PORT: u16 = 7490;

/// How other nodes' tasks are reached (see [`AgentConfig::overlay`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OverlayChoice {
    #[default]
    Vxlan,
    HostGw,
    Off,
}

mod secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_secs_f64(f64::deserialize(d)?.max(0.0)))
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.map(|s| Duration::from_secs_f64(s.max(0.0))))
    }
}

mod millis {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        Ok(Duration::from_millis(u64::deserialize(d)?))
    }
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            endpoints: vec!["127.0.0.1:7470".to_string()],
            cluster: "default".to_string(),
            containerd_socket: PathBuf::from("/run/containerd/containerd.sock"),
            containerd_namespace: "orca".to_string(),
            data_dir: PathBuf::from("/var/lib/orca-agent"),
            bridge: "orca0".to_string(),
            task_subnet: None,
            network: NetworkKind::Netns,
            registries: RegistriesConfig::default(),
            attributes: BTreeMap::new(),
            availability_zone: None,
            instance_type: None,
            cpu_units: None,
            memory_mib: None,
            reserved_memory_mib: 256,
            reserved_ports: vec![22],
            // The controllers disconnect an agent silent for 3 s by default.
            heartbeat_interval: Duration::from_secs(1),
            report_batch_window: Duration::from_millis(20),
            default_stop_timeout: Duration::from_secs(30),
            relist_interval: Duration::from_secs(5),
            kill_resend_interval: Duration::from_secs(10),
            gc_interval: Duration::from_secs(60),
            task_log_retention: Duration::from_secs(3 * 3600),
            image_gc_high_threshold_percent: 85,
            image_gc_low_threshold_percent: 80,
            image_gc_min_unused: Duration::from_secs(30 * 60),
            image_gc_disk_path: PathBuf::from("/var/lib/containerd"),
            log_driver: None,
            host_volume_paths: Vec::new(),
            dns_servers: None,
            dns_listen: None,
            dns_upstreams: None,
            egress: true,
            node_address: None,
            overlay: OverlayChoice::Vxlan,
            vxlan_device: "orcavx0".to_string(),
            vxlan_vni: 1,
            vxlan_port: 4789,
            vxlan_mtu: None,
            overlay_resync_interval: Duration::from_secs(60),
            max_restart_attempt_period: None,
            log_max_size: 10 << 20,
            log_max_files: 5,
            pids_limit: 4096,
            api_listen: std::net::SocketAddr::from(([0, 0, 0, 0], DEFAULT_API_PORT)),
        }
    }
}

impl AgentConfig {
    /// Reads a TOML file; unknown keys are errors.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.display().to_string(),
            message: e.to_string(),
        })
    }

    /// The logging driver to run containers with: `log_driver` if set (an
    /// empty path: none), else `orca-log-driver` next to the running
    /// executable if there is one. `None` means the agent drains container
    /// output itself; that is logged as a warning.
    pub fn log_driver_path(&self) -> Option<PathBuf> {
        let found = match &self.log_driver {
            Some(p) if p.as_os_str().is_empty() => None,
            Some(p) => return Some(p.clone()),
            None => std::env::current_exe()
                .ok()
                .map(|exe| exe.with_file_name("orca-log-driver"))
                .filter(|p| p.is_file()),
        };
        if found.is_none() {
            tracing::warn!(
                "no log driver (orca-log-driver): container output goes through the agent, \
                 and a chatty container blocks while the agent is down"
            );
        }
        found
    }

    /// The checks that need no I/O.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field: &str, message: &str| ConfigError::Invalid {
            field: field.to_string(),
            message: message.to_string(),
        };
        if self.endpoints.is_empty() {
            return Err(invalid("endpoints", "name at least one controller"));
        }
        if self.bridge.is_empty() || self.bridge.len() > 15 {
            return Err(invalid("bridge", "a device name of 1 to 15 bytes"));
        }
        if self.containerd_namespace.is_empty()
            || !self
                .containerd_namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(invalid(
                "containerd_namespace",
                "letters, digits, '-', '_' and '.' only",
            ));
        }
        if let Some(s) = &self.task_subnet {
            s.parse::<orca_core::cidr::Ipv4Cidr>()
                .map_err(|e| invalid("task_subnet", &e))?;
        }
        if self.heartbeat_interval.is_zero() {
            return Err(invalid("heartbeat_interval", "must be more than 0"));
        }
        if self.vxlan_device.is_empty() || self.vxlan_device.len() > 15 {
            return Err(invalid("vxlan_device", "a device name of 1 to 15 bytes"));
        }
        if self.vxlan_device == self.bridge {
            return Err(invalid("vxlan_device", "must differ from bridge"));
        }
        if !(1..(1 << 24)).contains(&self.vxlan_vni) {
            return Err(invalid(
                "vxlan_vni",
                "a VXLAN network identifier, 1 to 16777215",
            ));
        }
        if self.vxlan_port == 0 {
            return Err(invalid("vxlan_port", "a UDP port, 1 to 65535"));
        }
        if self.vxlan_mtu.is_some_and(|m| !(576..=65_535).contains(&m)) {
            return Err(invalid("vxlan_mtu", "576 to 65535"));
        }
        if let Some(a) = self.node_address {
            if !orca_core::agent_protocol::reachable_from_other_nodes(a) {
                return Err(invalid(
                    "node_address",
                    "an address other nodes can reach (not loopback, unspecified, multicast or broadcast)",
                ));
            }
        }
        for (field, d) in [
            ("overlay_resync_interval", self.overlay_resync_interval),
            ("relist_interval", self.relist_interval),
            ("kill_resend_interval", self.kill_resend_interval),
            ("gc_interval", self.gc_interval),
        ] {
            if d.is_zero() {
                return Err(invalid(field, "must be more than 0"));
            }
        }
        if self.log_max_files == 0 {
            return Err(invalid("log_max_files", "must be at least 1"));
        }
        if self.image_gc_high_threshold_percent > 100
            || self.image_gc_low_threshold_percent > self.image_gc_high_threshold_percent
        {
            return Err(invalid(
                "image_gc_low_threshold_percent",
                "thresholds are percentages, the low one at most the high one",
            ));
        }
        for p in &self.host_volume_paths {
            if !p.is_absolute() || p == Path::new("/") {
                return Err(invalid(
                    "host_volume_paths",
                    &format!("{} must be an absolute path other than /", p.display()),
                ));
            }
        }
        if let Some(listen) = self.dns_listen {
            if listen.port() == 0 {
                return Err(invalid(
                    "dns_listen",
                    "an address and a port, 1 to 65535 (tasks must know where it is)",
                ));
            }
        }
        for upstream in self.dns_upstreams.iter().flatten() {
            if upstream.port() == 0 || upstream.ip().is_unspecified() {
                return Err(invalid(
                    "dns_upstreams",
                    &format!("{upstream} must be a resolver's address and port"),
                ));
            }
            if Some(*upstream) == self.dns_listen {
                return Err(invalid(
                    "dns_upstreams",
                    &format!("{upstream} is the responder itself (dns_listen)"),
                ));
            }
        }
        for name in self.attributes.keys() {
            if name.is_empty() || name.len() > 128 {
                return Err(invalid("attributes", "names are 1 to 128 characters"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_validates() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/examples/agent.toml");
        let c = AgentConfig::from_file(&path).unwrap_or_else(|e| panic!("{e}"));
        c.validate().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(c.endpoints.len(), 3);
        assert_eq!(c.report_batch_window, Duration::from_millis(20));
        let ecr = &c.registries.hosts["123456789012.dkr.ecr.us-east-1.amazonaws.com"];
        assert_eq!(ecr.mirrors, vec!["registry.internal:5000".to_string()]);
        assert_eq!(c.attributes.get("rack").map(String::as_str), Some("r12"));
        assert_eq!(
            c.dns_upstreams,
            Some(vec![std::net::SocketAddr::from(([10, 0, 0, 2], 53))])
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused_with_their_name() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "brige = \"orca0\"\n").unwrap_or_else(|e| panic!("{e}"));
        let e = AgentConfig::from_file(&path)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("brige"), "{e}");
        let c = AgentConfig {
            bridge: "a-bridge-name-too-long".into(),
            ..AgentConfig::default()
        };
        assert!(c
            .validate()
            .is_err_and(|e| e.to_string().contains("bridge")));
        let c = AgentConfig {
            task_subnet: Some("198.19.0.1/24".into()),
            ..AgentConfig::default()
        };
        assert!(c
            .validate()
            .is_err_and(|e| e.to_string().contains("task_subnet")));
        let c = AgentConfig {
            dns_listen: Some("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"))),
            ..AgentConfig::default()
        };
        assert!(c
            .validate()
            .is_err_and(|e| e.to_string().contains("dns_listen")));
        let c = AgentConfig {
            dns_upstreams: Some(vec!["0.0.0.0:53".parse().unwrap_or_else(|e| panic!("{e}"))]),
            ..AgentConfig::default()
        };
        assert!(c
            .validate()
            .is_err_and(|e| e.to_string().contains("dns_upstreams")));
    }
}

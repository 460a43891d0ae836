//! The controller's configuration, validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use orca_core::arn::ArnContext;

use crate::raft::RaftTuning;

#[derive(Debug, Clone)]
pub struct Config {
    /// This controller's Raft node id; unique in the controller cluster;
    /// 0: not given (see `node_id::resolve`).
    pub node_id: u64,
    /// Where the Raft log, vote and snapshots live (a sled database).
    pub data_dir: PathBuf,
    /// The address the gRPC API listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// The address other controllers reach this one at; None: `listen`.
    pub advertise: Option<String>,
    /// Members of an existing cluster to join through. Empty: a node with no
    /// Raft state bootstraps a new single-node cluster.
    pub join: Vec<String>,
    /// Region and account of the ARNs this controller cluster mints.
    pub arn: ArnContext,
    pub raft: RaftTuning,
    /// How long a DELETE_IN_PROGRESS task definition stays describable
    /// before the leader purges it.
    pub purge_deleted_after: Duration,
    /// How long a STOPPED task stays describable (and listed with
    /// desiredStatus STOPPED) before the leader forgets it, counted from
    /// its stoppedAt. ECS keeps about an hour; orca keeps a day by default
    /// (`DEFAULT_STOPPED_TASK_RETENTION`) so post-mortems find the task.
    pub purge_stopped_tasks_after: Duration,
    /// An agent silent for this long is marked disconnected (no new
    /// placements; its tasks keep running) and its session ends.
    pub agent_heartbeat_timeout: Duration,
    /// An agent silent for `agent_heartbeat_timeout` plus this long is lost:
    /// its tasks are recorded STOPPED (InfrastructureHealth) and their
    /// resources freed, so services replace them elsewhere.
    pub agent_loss_grace: Duration,
    /// The block each container instance's task subnet is carved from.
    pub task_cidr: orca_core::cidr::Ipv4Cidr,
    /// The service reconciler's timers (ECS's 40 s rule, the throttle).
    pub services: crate::services_loop::ServiceLoopConfig,
    /// Where ECS's own wire protocol (AWS JSON 1.1 over HTTP, for boto3
    /// and the aws CLI) is served; None: not served.
    pub ecs_api_listen: Option<SocketAddr>,
    /// The DNS namespace discoverable services are named in
    /// (`<service>.<namespace>`), the same for every cluster.
    pub discovery_namespace: String,
    /// The file holding the cluster's secrets key (the same on every
    /// controller, never stored with the data); None: no secrets.
    pub secrets_key_file: Option<PathBuf>,
    /// How long resolvers may keep a discovery answer (the records' TTL;
    /// whole seconds, at least 1).
    pub discovery_ttl: Duration,
    /// Added to the TTL to give a discoverable task's DEACTIVATING wait:
    /// time for the leader's last zone to reach every agent.
    pub discovery_deregistration_margin: Duration,
}

/// How long STOPPED tasks stay by default: 24 hours.
pub const DEFAULT_STOPPED_TASK_RETENTION: Duration = Duration::from_secs(24 * 60 * 60);

impl Config {
    /// A single-node controller keeping its data in `data_dir`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Config {
            node_id: 1,
            data_dir,
            listen,
            advertise: None,
            join: Vec::new(),
            arn: ArnContext::default(),
            raft: RaftTuning::default(),
            purge_deleted_after: Duration::from_secs(600),
            // With the agent's 1 s heartbeat: a silent node's tasks are
            // declared lost 6 s after its last heartbeat (replacements run
            // within Swarm's 16.9 s halved), while an agent restarted by
            // systemd is back well inside the 3 s and loses nothing.
            agent_heartbeat_timeout: Duration::from_secs(3),
            agent_loss_grace: Duration::from_secs(3),
            purge_stopped_tasks_after: DEFAULT_STOPPED_TASK_RETENTION,
            task_cidr: crate::state::DEFAULT_TASK_CIDR,
            services: crate::services_loop::ServiceLoopConfig::default(),
            ecs_api_listen: None,
            discovery_namespace: orca_core::discovery::DEFAULT_NAMESPACE.to_string(),
            secrets_key_file: None,
            discovery_ttl: Duration::from_secs(10),
            discovery_deregistration_margin: Duration::from_secs(1),
        }
    }

    /// The discovery settings sessions and the zone publisher use; refuses
    /// a namespace that is not a DNS name or a TTL under a second.
    pub fn discovery(&self) -> Result<crate::agents::discovery::DiscoverySettings, String> {
        let namespace = self
            .discovery_namespace
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let valid = !namespace.is_empty()
            && namespace.len() <= 253
            && namespace
                .split('.')
                .all(crate::state::discovery::is_dns_label);
        if !valid {
            return Err(format!(
                "discovery namespace {:?} must be a DNS name: dot-separated labels of 1-63 letters, digits and '-'",
                self.discovery_namespace
            ));
        }
        if self.discovery_ttl < Duration::from_secs(1) {
            return Err(format!(
                "discovery TTL must be at least 1 s, not {:?}",
                self.discovery_ttl
            ));
        }
        Ok(crate::agents::discovery::DiscoverySettings {
            namespace,
            ttl: Duration::from_secs(self.discovery_ttl.as_secs()),
            deregistration_margin: self.discovery_deregistration_margin,
        })
    }

    /// The address this controller is known by in the cluster membership.
    pub fn advertised_address(&self) -> String {
        self.advertise
            .clone()
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stopped_tasks_are_kept_a_day_by_default() {
        let config = Config::new(
            PathBuf::from("/tmp/x"),
            "127.0.0.1:0".parse().expect("addr"),
        );
        assert_eq!(
            config.purge_stopped_tasks_after,
            Duration::from_secs(86_400)
        );
    }

    #[test]
    fn the_discovery_namespace_must_be_a_dns_name_and_the_ttl_a_second_or_more() {
        let mut config = Config::new(
            PathBuf::from("/tmp/x"),
            "127.0.0.1:0".parse().expect("addr"),
        );
        let settings = config.discovery().expect("the defaults are valid");
        assert_eq!(settings.namespace, "orca.local");
        assert_eq!(settings.deregistration_delay(), Duration::from_secs(11));
        config.discovery_namespace = "Corp.Internal.".into();
        assert_eq!(
            config.discovery().expect("valid").namespace,
            "corp.internal"
        );
        for bad in ["", "a..b", "-a.b", "a_b.c"] {
            config.discovery_namespace = bad.into();
            assert!(config.discovery().is_err(), "{bad:?}");
        }
        config.discovery_namespace = "orca.local".into();
        config.discovery_ttl = Duration::from_millis(500);
        assert!(config.discovery().is_err());
    }
}

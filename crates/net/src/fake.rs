//! A [`NetworkConfigurator`] that allocates and persists addresses exactly
//! like the real one but makes no kernel calls, for tests without root.
//!
//! Its namespace paths point under `<state_dir>/fake-netns/` and are never
//! created: nothing can join them, which is the point of a fake.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use crate::bridge::{bridge_network, forwards_of, tasks_of};
use crate::ipam::Ipam;
use crate::names::{
    belongs_to, check_task_id, endpoint_id, format_mac, host_veth_name, mac_for, netns_name,
};
use crate::overlay::{OverlayConfig, OverlayOp, Peer};
use crate::rules::PortForward;
use crate::{
    Endpoint, NetworkConfigurator, NetworkError, NodeNetworkConfig, NodePolicy, PublishedPort,
    TaskNetwork,
};

/// A network configurator with real IPAM and no kernel state.
#[derive(Debug)]
pub struct FakeNetwork {
    /// Names are derived from it exactly as the real configurator does.
    config: NodeNetworkConfig,
    /// The same persisted allocator the real configurator uses.
    ipam: Mutex<Ipam>,
    /// How long a setup takes (tokio time), to test what happens meanwhile.
    setup_delay: Mutex<std::time::Duration>,
    /// The last policy and peers it was given, for tests to read.
    fabric: Mutex<FakeFabric>,
}

/// What a [`FakeNetwork`] was asked of the node's fabric.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FakeFabric {
    pub policy: Option<NodePolicy>,
    pub overlay: Option<OverlayConfig>,
    pub peers: Vec<Peer>,
    /// How many times peers were synced.
    pub peer_syncs: u64,
    /// Bridge-mode tasks' published ports, by task id.
    pub published: std::collections::BTreeMap<String, Vec<PortForward>>,
}

impl FakeFabric {
    /// One line per fact, sorted: `egress <bool>`, `keep <subnet>`,
    /// `peer <subnet> <address> <mode>`, `forward <proto> <host port>
    /// <address>:<port>`, `syncs <n>`.
    pub fn render(&self) -> String {
        let mut lines = Vec::new();
        if let Some(p) = &self.policy {
            lines.push(format!("egress {}", p.egress));
            lines.extend(p.keep_source.iter().map(|s| format!("keep {s}")));
        }
        lines.extend(
            self.peers
                .iter()
                .map(|p| format!("peer {} {} {:?}", p.subnet, p.address, p.mode)),
        );
        let mut forwards: Vec<&PortForward> = self.published.values().flatten().collect();
        forwards.sort();
        lines.extend(forwards.iter().map(|f| {
            format!(
                "forward {} {} {}:{}",
                f.protocol.as_str(),
                f.host_port,
                f.to,
                f.to_port
            )
        }));
        lines.push(format!("syncs {}", self.peer_syncs));
        lines.join("\n") + "\n"
    }
}

impl FakeNetwork {
    /// Loads the IPAM state from `config.state_dir`.
    pub fn open(config: NodeNetworkConfig) -> Result<FakeNetwork, NetworkError> {
        let ipam = Ipam::open(config.subnet, &config.state_dir)?;
        Ok(FakeNetwork {
            config,
            ipam: Mutex::new(ipam),
            setup_delay: Mutex::default(),
            fabric: Mutex::default(),
        })
    }

    /// What it was last asked of the node's fabric.
    pub fn fabric(&self) -> FakeFabric {
        self.fabric
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Where [`FakeFabric::render`] of the latest request is written, so a
    /// test can read it from outside the agent (process or task).
    pub fn fabric_file(state_dir: &std::path::Path) -> PathBuf {
        state_dir.join("fake-fabric.txt")
    }

    fn record(&self, change: impl FnOnce(&mut FakeFabric)) -> Result<(), NetworkError> {
        let mut fabric = self.fabric.lock().unwrap_or_else(|e| e.into_inner());
        change(&mut fabric);
        let path = Self::fabric_file(&self.config.state_dir);
        std::fs::write(&path, fabric.render()).map_err(|e| NetworkError::Kernel {
            op: format!("writing {}", path.display()),
            message: e.to_string(),
        })
    }

    /// Makes every setup take this long (tokio time).
    pub fn set_setup_delay(&self, delay: std::time::Duration) {
        *self.setup_delay.lock().unwrap_or_else(|e| e.into_inner()) = delay;
    }

    fn ipam(&self) -> MutexGuard<'_, Ipam> {
        // The allocator's state is consistent after every call, so a panic
        // elsewhere while the lock was held leaves nothing half-done.
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait::async_trait]
impl NetworkConfigurator for FakeNetwork {
    async fn setup(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let delay = *self.setup_delay.lock().unwrap_or_else(|e| e.into_inner());
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        let mut ipam = self.ipam();
        let ip = ipam.allocate(task_id)?;
        let name = netns_name(&self.config.netns_prefix, task_id);
        Ok(TaskNetwork {
            task_id: task_id.to_string(),
            netns_path: PathBuf::from(&self.config.state_dir)
                .join("fake-netns")
                .join(&name),
            ip,
            prefix_len: self.config.subnet.prefix_len,
            gateway: ipam.gateway(),
            mac_address: format_mac(mac_for(ip)),
            host_veth: host_veth_name(&name),
            loopback_only: false,
            endpoints: Vec::new(),
        })
    }

    async fn setup_bridge(
        &self,
        task_id: &str,
        containers: &[String],
        published: &[PublishedPort],
    ) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let mut endpoints = Vec::with_capacity(containers.len());
        for (index, container) in containers.iter().enumerate() {
            let own = self.setup(&endpoint_id(task_id, index)).await?;
            endpoints.push(Endpoint::of(container, own));
        }
        let network = bridge_network(task_id, &self.config, endpoints)?;
        let forwards = forwards_of(&network, published)?;
        self.record(|f| {
            f.published.insert(task_id.to_string(), forwards);
        })?;
        Ok(network)
    }

    async fn setup_loopback(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let name = netns_name(&self.config.netns_prefix, task_id);
        Ok(TaskNetwork {
            task_id: task_id.to_string(),
            netns_path: PathBuf::from(&self.config.state_dir)
                .join("fake-netns")
                .join(&name),
            ip: std::net::Ipv4Addr::UNSPECIFIED,
            prefix_len: 0,
            gateway: std::net::Ipv4Addr::UNSPECIFIED,
            mac_address: String::new(),
            host_veth: String::new(),
            loopback_only: true,
            endpoints: Vec::new(),
        })
    }

    async fn teardown(&self, task_id: &str) -> Result<(), NetworkError> {
        check_task_id(task_id)?;
        let had_ports = self.fabric().published.contains_key(task_id);
        if had_ports {
            self.record(|f| {
                f.published.remove(task_id);
            })?;
        }
        let mut ipam = self.ipam();
        let keys: Vec<String> = ipam
            .allocated()
            .into_iter()
            .filter(|key| belongs_to(key, task_id))
            .collect();
        for key in keys {
            ipam.release(&key)?;
        }
        Ok(())
    }

    fn subnet(&self) -> crate::Ipv4Subnet {
        self.config.subnet
    }

    fn allocated(&self) -> Vec<String> {
        tasks_of(self.ipam().allocated())
    }

    async fn held(&self) -> Result<std::collections::BTreeSet<String>, NetworkError> {
        Ok(tasks_of(self.ipam().allocated()).into_iter().collect())
    }

    async fn set_policy(&self, policy: NodePolicy) -> Result<(), NetworkError> {
        self.record(|f| f.policy = Some(policy))
    }

    async fn sync_peers(
        &self,
        overlay: &OverlayConfig,
        peers: &[Peer],
    ) -> Result<Vec<OverlayOp>, NetworkError> {
        self.record(|f| {
            f.overlay = Some(overlay.clone());
            f.peers = peers.to_vec();
            f.peer_syncs += 1;
        })?;
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(dir: &std::path::Path) -> NodeNetworkConfig {
        NodeNetworkConfig {
            bridge: "orca0".into(),
            subnet: "198.19.3.0/24".parse().expect("subnet"),
            netns_prefix: "orca-n1".into(),
            state_dir: dir.to_path_buf(),
            mtu: None,
        }
    }

    #[tokio::test]
    async fn behaves_like_the_real_configurator_without_the_kernel() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = FakeNetwork::open(config(dir.path())).expect("opens");
        let a = net.setup("a").await.expect("a");
        let b = net.setup("b").await.expect("b");
        assert_eq!(a.ip.to_string(), "198.19.3.2");
        assert_eq!(b.ip.to_string(), "198.19.3.3");
        assert_eq!(a.gateway.to_string(), "198.19.3.1");
        assert_eq!(a.prefix_len, 24);
        assert_eq!(a.mac_address, "0a:58:c6:13:03:02");
        assert!(a.netns_path.ends_with("fake-netns/orca-n1-a"));
        assert_ne!(a.host_veth, b.host_veth);
        assert_eq!(net.setup("a").await.expect("a again"), a);
        assert_eq!(net.allocated(), ["a", "b"]);

        // A restarted agent keeps its tasks' addresses.
        drop(net);
        let net = FakeNetwork::open(config(dir.path())).expect("reopens");
        assert_eq!(net.setup("a").await.expect("a after restart"), a);
        net.teardown("a").await.expect("teardown");
        net.teardown("a").await.expect("teardown is idempotent");
        assert_eq!(net.allocated(), ["b"]);
        assert!(matches!(
            net.setup("../x").await,
            Err(NetworkError::InvalidTaskId(_))
        ));
    }

    #[tokio::test]
    async fn bridge_mode_gives_each_container_an_address_and_publishes_its_ports() {
        let dir = tempfile::tempdir().expect("tempdir");
        let net = FakeNetwork::open(config(dir.path())).expect("opens");
        let containers = ["web".to_string(), "db".to_string()];
        let published = [PublishedPort {
            container: "db".into(),
            protocol: crate::rules::PortProtocol::Tcp,
            host_port: 32768,
            container_port: 5432,
        }];
        let n = net
            .setup_bridge("t1", &containers, &published)
            .await
            .expect("bridge");
        let ips: Vec<String> = n.endpoints.iter().map(|e| e.ip.to_string()).collect();
        assert_eq!(ips, ["198.19.3.2", "198.19.3.3"]);
        assert_eq!(
            n.ip_of("db").map(|ip| ip.to_string()).as_deref(),
            Some("198.19.3.3")
        );
        assert!(n.netns_of("db").ends_with("fake-netns/orca-n1-t1.1"));
        assert!(n.netns_of("web").ends_with("fake-netns/orca-n1-t1.0"));
        assert_eq!(net.allocated(), ["t1"]);
        let fabric = std::fs::read_to_string(FakeNetwork::fabric_file(dir.path())).expect("fabric");
        assert!(
            fabric.contains("forward tcp 32768 198.19.3.3:5432\n"),
            "{fabric}"
        );
        assert_eq!(
            net.setup_bridge("t1", &containers, &published)
                .await
                .expect("again"),
            n
        );
        let wrong = [PublishedPort {
            container: "cache".into(),
            ..published[0].clone()
        }];
        assert!(matches!(
            net.setup_bridge("t2", &containers, &wrong).await,
            Err(NetworkError::Config(m)) if m.contains("cache")
        ));
        net.teardown("t1").await.expect("teardown");
        net.teardown("t2").await.expect("teardown t2");
        assert!(net.allocated().is_empty());
        assert!(net.fabric().published.is_empty());
    }
}

//! orca-net: task networking, the awsvpc analogue.
//!
//! Each task gets its own network namespace with one veth onto the node's
//! bridge and its own IPv4 address from the node's task subnet. The agent
//! talks to [`NetworkConfigurator`]; [`netns::NetnsNetwork`] is the real one
//! (rtnetlink), [`fake::FakeNetwork`] allocates addresses from the same
//! persisted IPAM without touching the kernel (for tests without root).
//!
//! [`Ipv4Subnet`] parses from and serialises as `a.b.c.d/n` (see `subnet.rs`);
//! [`names`] derives a task's namespace, host veth and MAC from its id and
//! address, identically in both configurators. `examples/setup_bench.rs`
//! times setup and teardown against the same steps done with `ip` commands.

pub mod bridge;
pub mod error;
pub mod fake;
pub mod ipam;
pub mod names;
pub mod netns;
pub mod overlay;
pub mod published;
pub mod rules;
mod subnet;

use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::path::PathBuf;

pub use error::NetworkError;
pub use subnet::MAX_TASK_PREFIX_LEN;

/// An IPv4 subnet such as 198.19.3.0/24.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ipv4Subnet {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

/// What the node's bridge looks like.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeNetworkConfig {
    /// Bridge device name (`orca0` by default); at most 15 bytes.
    pub bridge: String,
    /// The node's task subnet; the bridge holds its first host address (the
    /// tasks' gateway), tasks get the others.
    pub subnet: Ipv4Subnet,
    /// Prefix of the names of this agent's namespaces under /run/netns, so
    /// several agents on one machine never collide (e.g. `orca-<agent>`).
    pub netns_prefix: String,
    /// Where the IPAM's allocations persist (a directory the agent owns).
    pub state_dir: PathBuf,
    /// The MTU of new tasks' interfaces (both veth ends; the bridge follows
    /// its ports): the VXLAN device's when traffic crosses nodes over it,
    /// so tasks never send what the overlay would have to refuse. None:
    /// the kernel's default (1500).
    pub mtu: Option<u32>,
}

/// A task's network, as set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskNetwork {
    pub task_id: String,
    /// `/run/netns/<name>`: what containers join.
    pub netns_path: PathBuf,
    pub ip: Ipv4Addr,
    pub prefix_len: u8,
    pub gateway: Ipv4Addr,
    /// The task-side interface's MAC address (ECS shows it as macAddress).
    pub mac_address: String,
    /// The host-side veth on the bridge.
    pub host_veth: String,
    /// `none` mode: a namespace with loopback only (no address, no veth;
    /// `ip`, `gateway` and `mac_address` mean nothing).
    pub loopback_only: bool,
    /// `bridge` mode: each container's own namespace and address, in the
    /// task definition's order (the fields above then describe the first
    /// container's). Empty in the other modes, where every container joins
    /// the task's one namespace.
    pub endpoints: Vec<Endpoint>,
}

impl TaskNetwork {
    /// The namespace `container` joins: its own in bridge mode, else the
    /// task's.
    pub fn netns_of(&self, container: &str) -> &std::path::Path {
        self.endpoint(container)
            .map_or(self.netns_path.as_path(), |e| e.netns_path.as_path())
    }

    /// The address `container` has: its own in bridge mode, else the
    /// task's (None in `none` mode).
    pub fn ip_of(&self, container: &str) -> Option<Ipv4Addr> {
        if self.loopback_only {
            return None;
        }
        Some(self.endpoint(container).map_or(self.ip, |e| e.ip))
    }

    fn endpoint(&self, container: &str) -> Option<&Endpoint> {
        self.endpoints.iter().find(|e| e.container == container)
    }
}

/// One container's own namespace and address on the node's bridge
/// (`bridge` mode, as Docker gives each container).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The container's name in its task definition.
    pub container: String,
    pub netns_path: PathBuf,
    pub ip: Ipv4Addr,
    pub mac_address: String,
    pub host_veth: String,
}

impl Endpoint {
    /// `container`'s endpoint from the network set up under its key.
    pub fn of(container: &str, own: TaskNetwork) -> Endpoint {
        Endpoint {
            container: container.to_string(),
            netns_path: own.netns_path,
            ip: own.ip,
            mac_address: own.mac_address,
            host_veth: own.host_veth,
        }
    }
}

/// A port a bridge-mode container publishes on the node's addresses
/// (`hostPort` → `containerPort`, forwarded by DNAT).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PublishedPort {
    pub container: String,
    pub protocol: rules::PortProtocol,
    pub host_port: u16,
    pub container_port: u16,
}

/// What the node's packet filter does for its tasks (rendered by
/// [`rules::NodeRules`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodePolicy {
    /// Masquerade tasks' traffic that leaves the node.
    pub egress: bool,
    /// Destinations that keep a task's own source address: the cluster's
    /// task subnets, from the controller's node map.
    pub keep_source: Vec<Ipv4Subnet>,
}

/// Sets up and tears down task networks on one node.
#[async_trait::async_trait]
pub trait NetworkConfigurator: Send + Sync + 'static {
    /// Creates the task's namespace, veth and address; if it already exists
    /// (an agent restart), returns the existing one.
    async fn setup(&self, task_id: &str) -> Result<TaskNetwork, NetworkError>;

    /// `none` mode: the task's namespace with loopback up and nothing
    /// else; if it already exists (an agent restart), returns it.
    async fn setup_loopback(&self, task_id: &str) -> Result<TaskNetwork, NetworkError>;

    /// `bridge` mode: a namespace, veth and address for each of
    /// `containers` (in order), and `published` forwarded from the node's
    /// addresses to the containers' (held with the node's rules: in force
    /// before this returns, kept across an agent restart, removed by the
    /// task's teardown). Idempotent like `setup`.
    async fn setup_bridge(
        &self,
        task_id: &str,
        containers: &[String],
        published: &[PublishedPort],
    ) -> Result<TaskNetwork, NetworkError>;

    /// Deletes the task's namespaces (their veths go with them), frees
    /// their addresses and unpublishes its ports; not an error if already
    /// gone.
    async fn teardown(&self, task_id: &str) -> Result<(), NetworkError>;

    /// The node's task subnet.
    fn subnet(&self) -> Ipv4Subnet;

    /// Task ids holding an address, for garbage collection after a restart.
    fn allocated(&self) -> Vec<String>;

    /// Task ids holding anything on this node (a namespace, an address):
    /// what the agent compares with the tasks it should hold, tearing down
    /// the others.
    async fn held(&self) -> Result<BTreeSet<String>, NetworkError>;

    /// The node-level NAT rules the tasks need. Held while any task holds
    /// a network: applied now if one does (every call applies them again,
    /// repairing what someone removed), applied by the first setup
    /// otherwise (before it returns, so no task runs without them), and
    /// removed by the teardown of the last task.
    async fn set_policy(&self, policy: NodePolicy) -> Result<(), NetworkError>;

    /// Makes the routes (or VXLAN entries) to the other nodes' task
    /// subnets match `peers`; returns the steps taken. An `overlay.mtu` of 0
    /// is derived from the underlay (the MTU of the link holding
    /// `overlay.local`, less VXLAN's 50 bytes).
    async fn sync_peers(
        &self,
        overlay: &overlay::OverlayConfig,
        peers: &[overlay::Peer],
    ) -> Result<Vec<overlay::OverlayOp>, NetworkError>;
}

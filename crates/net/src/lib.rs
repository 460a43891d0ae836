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

pub mod error;
pub mod fake;
pub mod ipam;
pub mod names;
pub mod netns;
pub mod overlay;
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
}

/// Sets up and tears down task networks on one node.
#[async_trait::async_trait]
pub trait NetworkConfigurator: Send + Sync + 'static {
    /// Creates the task's namespace, veth and address; if it already exists
    /// (an agent restart), returns the existing one.
    async fn setup(&self, task_id: &str) -> Result<TaskNetwork, NetworkError>;

    /// Deletes the namespace (its veth goes with it) and frees the address;
    /// not an error if already gone.
    async fn teardown(&self, task_id: &str) -> Result<(), NetworkError>;

    /// Task ids holding an address, for garbage collection after a restart.
    fn allocated(&self) -> Vec<String>;

    /// Task ids holding anything on this node (a namespace, an address):
    /// what the agent compares with the tasks it should hold, tearing down
    /// the others.
    async fn held(&self) -> Result<BTreeSet<String>, NetworkError>;
}

//! The real [`NetworkConfigurator`]: one network namespace per task, joined
//! to the node's bridge by a veth pair, configured over rtnetlink.
//!
//! Per task (`setup`), in this order:
//! 1. allocate (and persist) the task's address, overlapped with step 2;
//! 2. create the namespace `/run/netns/{prefix}-{task}` on a dedicated thread
//!    (`namespace.rs`) with a netlink socket bound inside it;
//! 3. create the veth pair from the host with the peer placed directly in the
//!    namespace as `eth0` (moving a link between namespaces costs ~18 ms);
//! 4. inside: address, `lo` up, default route via the bridge's address;
//! 5. attach the host end to the bridge and set it up.
//!
//! The last step doubles as the completion marker: after an agent restart,
//! a task whose namespace exists and whose host veth is on the bridge is
//! returned as it is; anything less is deleted and set up again. A failed
//! setup deletes the namespace (the veth dies with it) and releases an
//! address it allocated. `teardown` deletes the namespace and releases the
//! address; the kernel removes the veth pair asynchronously (~ms).

pub mod fabric;
mod iptables;
mod link;
mod namespace;
pub mod node_rules;
pub mod overlay;

use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use tracing::{debug, info, warn, Instrument};

use crate::bridge::{bridge_network, forwards_of, tasks_of};
use crate::ipam::Ipam;
use crate::names::{
    belongs_to, check_task_id, endpoint_id, format_mac, host_veth_name, mac_for, netns_name,
    MAX_IFNAME_LEN,
};
use crate::{NetworkConfigurator, NetworkError, NodeNetworkConfig, PublishedPort, TaskNetwork};

pub use namespace::{delete_namespace, in_namespace, list_namespaces, netns_path};

/// A kernel-side failure of `op`.
pub(crate) fn kernel_err(op: impl Into<String>, e: impl std::fmt::Display) -> NetworkError {
    NetworkError::Kernel {
        op: op.into(),
        message: e.to_string(),
    }
}

/// Task networks in network namespaces on one bridge.
pub struct NetnsNetwork {
    /// Bridge, subnet, namespace prefix and state directory.
    config: NodeNetworkConfig,
    /// The persisted allocations; a std mutex, never held across an await
    /// (each change is one small fsynced write, made on a blocking thread).
    ipam: Arc<Mutex<Ipam>>,
    /// rtnetlink in the agent's own namespace: the bridge and host veths.
    host: rtnetlink::Handle,
    /// The bridge's interface index, which host veths are attached to.
    bridge_index: u32,
    /// The node's NAT rules as this process last wrote them.
    rules: tokio::sync::Mutex<fabric::RulesState>,
    /// One peer sync at a time.
    peers_lock: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for NetnsNetwork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetnsNetwork")
            .field("config", &self.config)
            .field("bridge_index", &self.bridge_index)
            .finish_non_exhaustive()
    }
}

impl NetnsNetwork {
    /// Prepares the node: `/run/netns` as a shared mount point, the bridge
    /// (created if absent, with the gateway address, up), the FORWARD
    /// accept rules, and the IPAM state from `state_dir`. Idempotent, so an
    /// agent restart simply opens again. Must run inside a tokio runtime
    /// (the netlink connections are tasks on it). Needs CAP_NET_ADMIN and
    /// CAP_SYS_ADMIN (mounts).
    pub async fn open(config: NodeNetworkConfig) -> Result<NetnsNetwork, NetworkError> {
        check_config(&config)?;
        let ipam = Ipam::open(config.subnet, &config.state_dir)?;
        namespace::ensure_run_dir()?;
        let (connection, host, _) =
            rtnetlink::new_connection().map_err(|e| kernel_err("opening rtnetlink", e))?;
        // Ends by itself once the last handle (ours) is dropped.
        tokio::spawn(connection);
        let bridge_index = link::ensure_bridge(&host, &config.bridge, config.subnet).await?;
        iptables::ensure_forward_rules(&config.bridge).await?;
        info!(
            bridge = %config.bridge,
            subnet = %config.subnet,
            tasks = ipam.allocated().len(),
            "task network ready"
        );
        let rules = tokio::sync::Mutex::new(fabric::RulesState::new(
            crate::published::PublishedPorts::open(&config.state_dir),
        ));
        Ok(NetnsNetwork {
            config,
            ipam: Arc::new(Mutex::new(ipam)),
            host,
            bridge_index,
            rules,
            peers_lock: Default::default(),
        })
    }

    /// The configuration it was opened with.
    pub fn config(&self) -> &NodeNetworkConfig {
        &self.config
    }

    /// Deletes the bridge and its FORWARD rules (task namespaces are left
    /// alone: tear them down first). For tests and node decommissioning.
    pub async fn remove_bridge(&self) -> Result<(), NetworkError> {
        iptables::remove_forward_rules(&self.config.bridge).await?;
        link::delete_link(&self.host, &self.config.bridge).await
    }

    fn ipam(&self) -> MutexGuard<'_, Ipam> {
        lock(&self.ipam)
    }

    /// What `setup` reports for the task; everything is derived from the
    /// task id and its address, so it is the same after a restart.
    fn network(&self, task_id: &str, name: &str, ip: Ipv4Addr) -> TaskNetwork {
        TaskNetwork {
            task_id: task_id.to_string(),
            netns_path: netns_path(name),
            ip,
            prefix_len: self.config.subnet.prefix_len,
            gateway: self.config.subnet.gateway(),
            mac_address: format_mac(mac_for(ip)),
            host_veth: host_veth_name(name),
            loopback_only: false,
            endpoints: Vec::new(),
        }
    }

    /// `none` mode's namespace: created with loopback up, or found.
    async fn setup_loopback_task(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let name = netns_name(&self.config.netns_prefix, task_id);
        let path = netns_path(&name);
        let network = TaskNetwork {
            loopback_only: true,
            ..self.network(task_id, &name, Ipv4Addr::UNSPECIFIED)
        };
        if namespace::is_netns(&path) {
            return Ok(network);
        }
        if path.exists() {
            namespace::delete(&path)?;
        }
        let created = namespace::create(&path).await?;
        let up = rtnetlink::LinkUnspec::new_with_name("lo").up().build();
        if let Err(e) = created.netlink.link().set(up).execute().await {
            let _ = namespace::delete(&path);
            return Err(link::nl_err("setting lo up")(e));
        }
        Ok(network)
    }

    async fn setup_task(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let started = Instant::now();
        let name = netns_name(&self.config.netns_prefix, task_id);
        let path = netns_path(&name);
        let veth = host_veth_name(&name);
        let held = self.ipam().get(task_id);
        if path.exists() {
            // Complete only if the address it was given is still on record.
            if let Some(ip) = held {
                if self.is_complete(&path, &veth).await? {
                    debug!(%ip, "task network already set up");
                    return Ok(self.network(task_id, &name, ip));
                }
            }
            // A setup cut short by a crash, or state lost: start over.
            warn!(path = %path.display(), "replacing an incomplete task namespace");
            namespace::delete(&path)?;
        }
        // Persisting the allocation (two fsyncs) and creating the namespace
        // take similar time and do not depend on each other: overlap them.
        let (allocated, created) =
            tokio::join!(allocate(&self.ipam, task_id), namespace::create(&path));
        let undo = |fresh: bool| {
            if let Err(e) = namespace::delete(&path) {
                warn!(error = %e, "could not delete the namespace");
            }
            if fresh {
                if let Err(e) = self.ipam().release(task_id) {
                    warn!(error = %e, "could not release the address");
                }
            }
        };
        let fresh = held.is_none();
        let (ip, created) = match (allocated, created) {
            (Ok(ip), Ok(created)) => (ip, created),
            (Err(e), _) => {
                undo(false);
                return Err(e);
            }
            (Ok(_), Err(e)) => {
                undo(fresh);
                return Err(e);
            }
        };
        let network = self.network(task_id, &name, ip);
        match self.configure(&network, created).await {
            Ok(()) => {
                debug!(%ip, micros = started.elapsed().as_micros() as u64, "task network set up");
                Ok(network)
            }
            Err(e) => {
                warn!(error = %e, "task network setup failed; undoing it");
                undo(fresh);
                Err(e)
            }
        }
    }

    /// Every network key (task id or bridge endpoint) holding an address
    /// or a namespace.
    fn held_keys(&self) -> Result<std::collections::BTreeSet<String>, NetworkError> {
        let mut held: std::collections::BTreeSet<String> =
            self.ipam().allocated().into_iter().collect();
        let prefix = format!("{}-", self.config.netns_prefix);
        for name in list_namespaces(&self.config.netns_prefix)? {
            // Task ids (minted by the controllers) hold no '-': a longer
            // name is another agent's whose prefix extends this one
            // (`orca-a` and `orca-a-b`), never a leftover of this agent.
            if let Some(key) = name.strip_prefix(&prefix).filter(|t| !t.contains('-')) {
                held.insert(key.to_string());
            }
        }
        Ok(held)
    }

    /// The network keys of one task: its own and its bridge endpoints'.
    fn keys_of(&self, task_id: &str) -> Result<Vec<String>, NetworkError> {
        let mut keys: Vec<String> = self
            .held_keys()?
            .into_iter()
            .filter(|key| belongs_to(key, task_id))
            .collect();
        if keys.is_empty() {
            keys.push(task_id.to_string());
        }
        Ok(keys)
    }

    /// Whether the task's namespace is bound and its host veth is on our
    /// bridge (attaching is the last step of a setup).
    async fn is_complete(&self, path: &Path, veth: &str) -> Result<bool, NetworkError> {
        if !namespace::is_netns(path) {
            return Ok(false);
        }
        let veth = link::find_link(&self.host, veth).await?;
        Ok(veth.is_some_and(|l| l.controller == Some(self.bridge_index)))
    }

    /// Steps 3 to 5 of a setup, in the namespace just `created`.
    async fn configure(
        &self,
        network: &TaskNetwork,
        created: namespace::Created,
    ) -> Result<(), NetworkError> {
        let veth = &network.host_veth;
        match link::add_veth(
            &self.host,
            veth,
            created.file.as_fd(),
            network.ip,
            self.config.mtu,
        )
        .await
        {
            Ok(()) => {}
            // The veth of a namespace torn down moments ago: the kernel
            // frees it asynchronously. Delete it now and try once more.
            Err(e) if link::errno(&e) == Some(link::libc_errno::EEXIST) => {
                warn!(%veth, "deleting a stale host veth");
                link::delete_link(&self.host, veth).await?;
                link::add_veth(
                    &self.host,
                    veth,
                    created.file.as_fd(),
                    network.ip,
                    self.config.mtu,
                )
                .await
                .map_err(link::nl_err(format!("creating veth {veth}")))?;
            }
            Err(e) => return Err(link::nl_err(format!("creating veth {veth}"))(e)),
        }
        drop(created.file);
        link::configure_task_side(
            &created.netlink,
            network.ip,
            network.prefix_len,
            network.gateway,
        )
        .await?;
        drop(created.netlink);
        link::attach(&self.host, veth, self.bridge_index).await
    }
}

/// Allocates (and persists) the task's address on a blocking thread: the
/// write ends in two fsyncs.
async fn allocate(ipam: &Arc<Mutex<Ipam>>, task_id: &str) -> Result<Ipv4Addr, NetworkError> {
    let ipam = Arc::clone(ipam);
    let task_id = task_id.to_string();
    tokio::task::spawn_blocking(move || lock(&ipam).allocate(&task_id))
        .await
        .map_err(|e| kernel_err("allocating an address", e))?
}

/// Unbinds the namespace and releases the address (a blocking unmount and
/// fsynced write), on a blocking thread.
async fn teardown_task(
    ipam: Arc<Mutex<Ipam>>,
    netns_prefix: String,
    task_id: String,
) -> Result<(), NetworkError> {
    check_task_id(&task_id)?;
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        namespace::delete(&netns_path(&netns_name(&netns_prefix, &task_id)))?;
        let released = lock(&ipam).release(&task_id)?;
        debug!(
            ?released,
            micros = started.elapsed().as_micros() as u64,
            "task network torn down"
        );
        Ok(())
    })
    .await
    .map_err(|e| kernel_err("tearing down a task network", e))?
}

fn lock(ipam: &Mutex<Ipam>) -> MutexGuard<'_, Ipam> {
    // Ipam is consistent after every call; a poisoned lock holds no
    // half-made change.
    ipam.lock().unwrap_or_else(|e| e.into_inner())
}

#[async_trait::async_trait]
impl NetworkConfigurator for NetnsNetwork {
    async fn setup(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        let span = tracing::info_span!("net_setup", task_id = %task_id);
        let network = self.setup_task(task_id).instrument(span).await?;
        self.converge_rules(fabric::RulesChange::None).await?;
        Ok(network)
    }

    async fn setup_bridge(
        &self,
        task_id: &str,
        containers: &[String],
        published: &[PublishedPort],
    ) -> Result<TaskNetwork, NetworkError> {
        check_task_id(task_id)?;
        let span = tracing::info_span!("net_setup", task_id = %task_id, mode = "bridge");
        let mut endpoints = Vec::with_capacity(containers.len());
        for (index, container) in containers.iter().enumerate() {
            // A failure leaves the endpoints made so far: the task's
            // teardown (which the agent runs for a task that failed to
            // start) removes them all.
            let own = self
                .setup_task(&endpoint_id(task_id, index))
                .instrument(span.clone())
                .await?;
            endpoints.push(crate::Endpoint::of(container, own));
        }
        let network = bridge_network(task_id, &self.config, endpoints)?;
        let forwards = forwards_of(&network, published)?;
        self.converge_rules(fabric::RulesChange::Publish(task_id, forwards))
            .instrument(span)
            .await?;
        Ok(network)
    }

    async fn setup_loopback(&self, task_id: &str) -> Result<TaskNetwork, NetworkError> {
        let span = tracing::info_span!("net_setup", task_id = %task_id, mode = "none");
        self.setup_loopback_task(task_id).instrument(span).await
    }

    /// The task's containers must be gone first: a process still inside the
    /// namespace keeps it, and its veth on the bridge, alive while its
    /// address is already free for reuse.
    async fn teardown(&self, task_id: &str) -> Result<(), NetworkError> {
        check_task_id(task_id)?;
        let span = tracing::info_span!("net_teardown", task_id = %task_id);
        // Unpublished first: no DNAT towards an address about to be freed.
        self.converge_rules(fabric::RulesChange::Publish(task_id, Vec::new()))
            .instrument(span.clone())
            .await?;
        for key in self.keys_of(task_id)? {
            teardown_task(
                Arc::clone(&self.ipam),
                self.config.netns_prefix.clone(),
                key,
            )
            .instrument(span.clone())
            .await?;
        }
        self.converge_rules(fabric::RulesChange::None).await
    }

    fn subnet(&self) -> crate::Ipv4Subnet {
        self.config.subnet
    }

    fn allocated(&self) -> Vec<String> {
        tasks_of(self.ipam().allocated())
    }

    /// A task with published ports but no namespace or address any more
    /// (its record lost) is held too, so the agent's GC tears it down and
    /// its DNAT goes.
    async fn held(&self) -> Result<std::collections::BTreeSet<String>, NetworkError> {
        let mut held: std::collections::BTreeSet<String> =
            tasks_of(self.held_keys()?).into_iter().collect();
        held.extend(self.rules.lock().await.published_tasks());
        Ok(held)
    }

    async fn set_policy(&self, policy: crate::NodePolicy) -> Result<(), NetworkError> {
        self.converge_rules(fabric::RulesChange::Policy(policy))
            .await
    }

    async fn sync_peers(
        &self,
        overlay: &crate::overlay::OverlayConfig,
        peers: &[crate::overlay::Peer],
    ) -> Result<Vec<crate::overlay::OverlayOp>, NetworkError> {
        self.sync_peers_here(overlay, peers).await
    }
}

/// Rejects names the kernel or the file system would refuse later, with a
/// message naming the field.
fn check_config(config: &NodeNetworkConfig) -> Result<(), NetworkError> {
    let bridge = &config.bridge;
    if bridge.is_empty()
        || bridge.len() > MAX_IFNAME_LEN
        || bridge.contains(['/', ':'])
        || bridge.chars().any(char::is_whitespace)
    {
        return Err(NetworkError::Config(format!(
            "bridge name {bridge:?} must be 1 to {MAX_IFNAME_LEN} bytes without '/', ':' or spaces"
        )));
    }
    config.subnet.validate()?;
    // The prefix must itself be a valid task-id-like file name component.
    check_task_id(&config.netns_prefix).map_err(|_| {
        NetworkError::Config(format!(
            "netns prefix {:?} must be letters, digits, '-', '_' or '.'",
            config.netns_prefix
        ))
    })?;
    if config.mtu.is_some_and(|m| !(576..=65_535).contains(&m)) {
        return Err(NetworkError::Config(format!(
            "mtu {:?} must be 576 to 65535",
            config.mtu
        )));
    }
    if config.state_dir.as_os_str().is_empty() {
        return Err(NetworkError::Config("state_dir is empty".into()));
    }
    Ok(())
}

/// Deletes a bridge and its FORWARD rules without an open [`NetnsNetwork`]
/// (cleanup after a failed open, or of a crashed test's bridge). Not an
/// error if they are gone.
pub async fn remove_bridge(bridge: &str) -> Result<(), NetworkError> {
    let (connection, host, _) =
        rtnetlink::new_connection().map_err(|e| kernel_err("opening rtnetlink", e))?;
    tokio::spawn(connection);
    iptables::remove_forward_rules(bridge).await?;
    link::delete_link(&host, bridge).await
}

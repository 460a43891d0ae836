//! Applying container-instance commands: registration (with the node's task
//! subnet, configured or carved from the cluster's task CIDR) and the
//! leader's view of whether the agent is connected.

use std::collections::{BTreeMap, BTreeSet};

use orca_core::agent_protocol::{OverlayMode, Registration};
use orca_core::cidr::Ipv4Cidr;
use orca_core::container_instance::{ContainerInstance, Resource, VersionInfo};
use orca_core::task::{HostPortBinding, Resources};
use orca_core::task_definition::{Attribute, Timestamp, TransportProtocol};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};

use super::host_ports::{PortKey, TakenPorts};
use super::placement_index::{IndexMismatch, PlacementIndex};
use super::task_addresses::address_capacity;
use super::{ClusterState, Outcome};

/// Each node's task subnet carved from the task CIDR is this long (254
/// task addresses, the bridge's included).
pub const NODE_SUBNET_PREFIX: u8 = 24;

/// A container instance as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub id: String,
    pub cluster: String,
    pub arn: String,
    pub hostname: String,
    pub registered: Resources,
    /// Registered less what placed, not yet stopped tasks reserve.
    pub remaining: Resources,
    pub attributes: Vec<Attribute>,
    pub agent_version: String,
    pub runtime_version: String,
    pub task_subnet: Ipv4Cidr,
    pub agent_connected: bool,
    pub registered_at: Timestamp,
    pub version: u64,
    /// Tasks placed here that have not reported STOPPED.
    pub task_ids: BTreeSet<String>,
    /// ACTIVE, DRAINING (no new placements) or INACTIVE (deregistered).
    #[serde(default)]
    pub status: InstanceStatus,
    /// Attributes set with PutAttributes (at most 10), kept apart from the
    /// agent's, which a re-registration replaces.
    #[serde(default)]
    pub custom_attributes: Vec<Attribute>,
    /// When it was deregistered (INACTIVE).
    #[serde(default)]
    pub deregistered_at: Option<Timestamp>,
    /// How many of `task_ids` belong to each task group: the scheduler's
    /// index for distinctInstance, spread and `task:group`, so placing never
    /// walks the tasks. Derived from `task_ids`; rebuilt on restore, since
    /// snapshots written before it existed lack it.
    #[serde(default)]
    pub group_counts: BTreeMap<String, u32>,
    /// Moves whenever what the agent should hold changes (a task placed,
    /// released, or told to stop), so its session resends assignments
    /// without comparing them.
    #[serde(default)]
    pub assignments_version: u64,
    /// Host ports no task may take (ECS's registered `PORTS` resource),
    /// over TCP and UDP alike. Empty until agents register them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reserved_ports: Vec<u16>,
    /// The host ports `task_ids` hold, with the task holding each: the
    /// scheduler's RESOURCE:PORTS filter. Derived from the tasks like
    /// `group_counts`; rebuilt on restore.
    #[serde(default, skip_serializing_if = "TakenPorts::is_empty")]
    pub host_ports: TakenPorts,
    /// Task addresses `task_ids` hold in `task_subnet` (one per awsvpc
    /// task, one per container of a bridge task): the scheduler's
    /// RESOURCE:ENI filter. Derived from the tasks like `host_ports`, kept
    /// by `reserve`/`release`, rebuilt on restore.
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub addresses_in_use: u32,
    /// Where the search for the next dynamic host port starts (0: the
    /// start of ECS's ephemeral range): round-robin, so a port just freed
    /// is not handed out again at once (stale conntrack entries).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub next_dynamic_port: u16,
    /// Where other nodes reach this node's tasks (None: the agent
    /// registered none, and is in no other node's routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_address: Option<std::net::Ipv4Addr>,
    /// Where the agent's node API answers (controllers relay task logs
    /// from it); None for agents that registered none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node_api_address: Option<std::net::SocketAddr>,
    /// How the agent wants its tasks reached.
    #[serde(default)]
    pub overlay: OverlayMode,
}

fn is_zero(n: &u16) -> bool {
    *n == 0
}

fn is_zero_u32(n: &u32) -> bool {
    *n == 0
}

/// The node API address of a registration (`ip:port`).
fn parse_node_api_address(text: Option<&str>) -> Result<Option<std::net::SocketAddr>, ApiError> {
    let Some(text) = text else {
        return Ok(None);
    };
    match text.parse::<std::net::SocketAddr>() {
        Ok(a) if a.port() != 0 && !a.ip().is_unspecified() => Ok(Some(a)),
        _ => Err(ApiError::field(
            Exception::InvalidParameterException,
            "nodeApiAddress",
            format!("'{text}' is not an address and port controllers can dial"),
        )),
    }
}

/// ECS's container-instance status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InstanceStatus {
    #[default]
    Active,
    Draining,
    Inactive,
}

impl InstanceStatus {
    pub fn name(self) -> &'static str {
        match self {
            InstanceStatus::Active => "ACTIVE",
            InstanceStatus::Draining => "DRAINING",
            InstanceStatus::Inactive => "INACTIVE",
        }
    }
}

/// An instance as the cluster query language sees it (ListContainerInstances'
/// filter); the scheduler has its own view that adds a plan's placements.
pub struct RecordFacts<'a>(pub &'a InstanceRecord);

impl orca_core::placement::expr::InstanceFacts for RecordFacts<'_> {
    fn instance_id(&self) -> &str {
        &self.0.id
    }
    fn agent_connected(&self) -> bool {
        self.0.agent_connected
    }
    fn agent_version(&self) -> &str {
        &self.0.agent_version
    }
    fn attribute(&self, name: &str) -> Option<&str> {
        self.0
            .attribute(name)
            .map(|a| a.value.as_deref().unwrap_or(""))
    }
    fn registered_at_ms(&self) -> i64 {
        self.0.registered_at.0
    }
    fn running_tasks_count(&self) -> u32 {
        u32::try_from(self.0.task_ids.len()).unwrap_or(u32::MAX)
    }
    fn has_task_group(&self, group: &str) -> bool {
        self.0.group_count(group) > 0
    }
    fn task_groups(&self) -> Vec<&str> {
        self.0.group_counts.keys().map(String::as_str).collect()
    }
}

impl InstanceRecord {
    /// The agent's attributes, then the custom ones (a custom attribute of
    /// the same name wins in [`Self::attribute`]).
    pub fn all_attributes(&self) -> impl Iterator<Item = &Attribute> {
        self.attributes.iter().chain(self.custom_attributes.iter())
    }

    /// The attribute named `name`: custom first, then the agent's.
    pub fn attribute(&self, name: &str) -> Option<&Attribute> {
        self.custom_attributes
            .iter()
            .find(|a| a.name == name)
            .or_else(|| self.attributes.iter().find(|a| a.name == name))
    }

    /// Whether a task may take host port `key` here: not reserved, not held.
    pub fn port_free(&self, key: PortKey) -> bool {
        !self.reserved_ports.contains(&key.1) && !self.host_ports.holds(key)
    }

    /// Task addresses the agent can still hand out here. Every instance
    /// has a task subnet (configured or carved at registration), so there
    /// is no "unlimited" case; a re-registration with a smaller subnet
    /// than its tasks hold leaves none free rather than a negative count.
    pub fn free_addresses(&self) -> u32 {
        address_capacity(&self.task_subnet).saturating_sub(self.addresses_in_use)
    }

    /// Tasks of `group` placed here and not stopped.
    pub fn group_count(&self, group: &str) -> u32 {
        self.group_counts.get(group).copied().unwrap_or(0)
    }
}

impl ClusterState {
    pub(super) fn register_container_instance(
        &mut self,
        new_id: String,
        registration: Registration,
        at: Timestamp,
    ) -> Result<Outcome, ApiError> {
        let cluster = registration.cluster.clone();
        self.active_cluster(&cluster)?;
        let configured = match registration.task_subnet.as_deref() {
            Some(s) => Some(s.parse::<Ipv4Cidr>().map_err(|rule| {
                ApiError::field(Exception::InvalidParameterException, "taskSubnet", rule)
            })?),
            None => None,
        };
        let existing = registration
            .container_instance_arn
            .as_deref()
            .and_then(|arn| {
                // A deregistered instance's agent comes back as a new one.
                self.instances
                    .values()
                    .find(|i| i.arn == arn && i.status != InstanceStatus::Inactive)
            })
            .map(|i| i.id.clone());
        let id = existing.unwrap_or(new_id);
        if let Some(gone) = self
            .instances
            .get(&id)
            .filter(|i| i.status == InstanceStatus::Inactive)
        {
            // An agent's own id of an instance deregistered since: it must
            // choose a new one (and save it first) to come back as a new
            // instance.
            return Err(ApiError::field(
                Exception::ClientException,
                "instanceId",
                format!(
                    "container instance {} was deregistered: register with a new instance id",
                    gone.arn
                ),
            ));
        }
        let subnet = match (configured, self.instances.get(&id)) {
            (Some(s), _) => s,
            (None, Some(current)) => current.task_subnet,
            (None, None) => self.free_node_subnet()?,
        };
        if let Some(other) = self
            .instances
            .values()
            .find(|i| i.id != id && i.task_subnet.overlaps(&subnet))
        {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "taskSubnet",
                format!(
                    "{subnet} overlaps the task subnet {} of container instance {}",
                    other.task_subnet, other.arn
                ),
            ));
        }
        let node_address =
            super::net_map::parse_node_address(registration.node_address.as_deref())?;
        let node_api_address = parse_node_api_address(registration.node_api_address.as_deref())?;
        let net_before = self
            .instances
            .get(&id)
            .map(|r| (r.task_subnet, r.node_address, r.overlay));
        let registered = Resources {
            cpu: registration.cpu,
            memory: registration.memory,
        };
        let arn = self.arn.container_instance(&cluster, &id);
        let attributes = with_network_attributes(registration.attributes, subnet, node_address);
        let record = match self.instances.get_mut(&id) {
            Some(r) => {
                let reserved = r.registered.saturating_sub(r.remaining);
                r.registered = registered;
                r.remaining = registered.saturating_sub(reserved);
                r.hostname = registration.hostname;
                r.attributes = attributes;
                r.agent_version = registration.agent_version;
                r.runtime_version = registration.runtime_version;
                r.task_subnet = subnet;
                // Tasks already holding a newly reserved port keep it; no
                // new task gets it.
                r.reserved_ports = registration.reserved_ports;
                r.node_address = node_address;
                r.node_api_address = node_api_address;
                r.overlay = registration.overlay;
                r.version += 1;
                r.clone()
            }
            None => {
                let r = InstanceRecord {
                    id: id.clone(),
                    cluster,
                    arn,
                    hostname: registration.hostname,
                    registered,
                    remaining: registered,
                    attributes,
                    agent_version: registration.agent_version,
                    runtime_version: registration.runtime_version,
                    task_subnet: subnet,
                    agent_connected: false,
                    registered_at: at,
                    version: 1,
                    task_ids: BTreeSet::new(),
                    status: InstanceStatus::Active,
                    custom_attributes: Vec::new(),
                    deregistered_at: None,
                    group_counts: BTreeMap::new(),
                    assignments_version: 0,
                    reserved_ports: registration.reserved_ports,
                    host_ports: TakenPorts::default(),
                    addresses_in_use: 0,
                    next_dynamic_port: 0,
                    node_address,
                    node_api_address,
                    overlay: registration.overlay,
                };
                self.instances.insert(id, r.clone());
                r
            }
        };
        self.placement_index.upsert(&record);
        if net_before != Some((record.task_subnet, record.node_address, record.overlay)) {
            self.touch_net_map(&record.cluster);
        }
        Ok(Outcome::ContainerInstance(Box::new(record)))
    }

    /// The lowest node-sized block of the task CIDR that no instance uses.
    fn free_node_subnet(&self) -> Result<Ipv4Cidr, ApiError> {
        let cidr = self.task_cidr;
        let count = 1u64 << u32::from(NODE_SUBNET_PREFIX.saturating_sub(cidr.prefix_len)).min(32);
        (0..count)
            .filter_map(|i| cidr.subnet(NODE_SUBNET_PREFIX, u32::try_from(i).ok()?))
            .find(|s| !self.instances.values().any(|i| i.task_subnet.overlaps(s)))
            .ok_or_else(|| {
                ApiError::new(
                    Exception::LimitExceededException,
                    format!("the task CIDR {cidr} has no free /{NODE_SUBNET_PREFIX} left for another container instance"),
                )
            })
    }

    pub(super) fn set_agent_connected(
        &mut self,
        instance_id: &str,
        connected: bool,
    ) -> Result<Outcome, ApiError> {
        let record = self
            .instances
            .get_mut(instance_id)
            .ok_or_else(|| instance_not_found(instance_id))?;
        if record.agent_connected != connected {
            record.agent_connected = connected;
            record.version += 1;
            self.placement_index.sync_dense(record);
        }
        Ok(Outcome::ContainerInstance(Box::new(record.clone())))
    }

    /// Recomputes the derived per-instance indexes and the task index from
    /// the records (after a snapshot is restored; `apply` keeps them current
    /// otherwise).
    pub fn rebuild_indexes(&mut self) {
        let mut counts: BTreeMap<String, (BTreeMap<String, u32>, TakenPorts, u32)> =
            BTreeMap::new();
        for instance in self.instances.values() {
            let (groups, ports, addresses) = counts.entry(instance.id.clone()).or_default();
            for task in instance.task_ids.iter().filter_map(|t| self.tasks.get(t)) {
                *groups.entry(task.group().to_string()).or_default() += 1;
                ports.take(&task.id, &task.host_ports);
                *addresses = addresses.saturating_add(self.task_addresses(task));
            }
        }
        for (id, (groups, ports, addresses)) in counts {
            if let Some(instance) = self.instances.get_mut(&id) {
                instance.group_counts = groups;
                instance.host_ports = ports;
                instance.addresses_in_use = addresses;
            }
        }
        self.placement_index = PlacementIndex::build(&self.instances);
        self.task_index = super::task_index::TaskIndex::build(&self.tasks);
    }

    /// Whether the placement index `apply` kept holds what one built from
    /// the records does (tests; a debugging aid on a live state).
    pub fn check_placement_index(&self) -> Result<(), IndexMismatch> {
        self.placement_index.check_consistency()?;
        for instance in self.instances.values() {
            let mut built = TakenPorts::default();
            let mut addresses = 0u32;
            for task in instance.task_ids.iter().filter_map(|t| self.tasks.get(t)) {
                built.take(&task.id, &task.host_ports);
                addresses = addresses.saturating_add(self.task_addresses(task));
            }
            if built != instance.host_ports {
                return Err(IndexMismatch(format!(
                    "instance {}: host ports kept {:?}, built from its tasks {:?}",
                    instance.id, instance.host_ports, built
                )));
            }
            if addresses != instance.addresses_in_use {
                return Err(IndexMismatch(format!(
                    "instance {}: task addresses kept {}, built from its tasks {addresses}",
                    instance.id, instance.addresses_in_use
                )));
            }
        }
        let kept = self.placement_index.canonical();
        let built = PlacementIndex::build(&self.instances).canonical();
        if kept == built {
            return Ok(());
        }
        let clusters: std::collections::BTreeSet<&String> =
            kept.keys().chain(built.keys()).collect();
        let differing = clusters
            .into_iter()
            .find(|c| kept.get(*c) != built.get(*c))
            .map_or_else(String::new, |c| {
                format!(
                    "cluster {c}: kept {:?}, built {:?}",
                    kept.get(c),
                    built.get(c)
                )
            });
        Err(IndexMismatch(differing))
    }

    /// Reserves `need` and `addresses` (see
    /// [`ClusterState::task_addresses`]) on the instance for a newly
    /// placed task of `group`.
    pub(super) fn reserve(
        &mut self,
        instance_id: &str,
        task_id: &str,
        group: &str,
        (need, addresses): (orca_core::task::Resources, u32),
        ports: (&[HostPortBinding], Option<u16>),
    ) -> Result<(), ApiError> {
        let instance = self
            .instances
            .get_mut(instance_id)
            .ok_or_else(|| instance_not_found(instance_id))?;
        instance.remaining = instance.remaining.saturating_sub(need);
        instance.addresses_in_use = instance.addresses_in_use.saturating_add(addresses);
        instance.host_ports.take(task_id, ports.0);
        if let Some(cursor) = ports.1 {
            instance.next_dynamic_port = cursor;
        }
        instance.task_ids.insert(task_id.to_string());
        *instance.group_counts.entry(group.to_string()).or_default() += 1;
        instance.version += 1;
        instance.assignments_version += 1;
        self.placement_index.sync_task(instance, group);
        self.changed_assignments.0.insert(instance_id.to_string());
        Ok(())
    }

    /// Gives a task's reservation back to its instance. Exactly once: the
    /// task leaves the instance's set here, and a second call finds nothing.
    pub(super) fn release(&mut self, task_id: &str) {
        let Some(task) = self.tasks.get(task_id) else {
            return;
        };
        let (reserved, group, instance_id, host_ports) = (
            task.reserved,
            task.group().to_string(),
            task.instance_id.clone(),
            task.host_ports.clone(),
        );
        let addresses = self.task_addresses(task);
        let Some(instance) = self.instances.get_mut(&instance_id) else {
            return;
        };
        if instance.task_ids.remove(task_id) {
            instance.host_ports.free(task_id, &host_ports);
            instance.addresses_in_use = instance.addresses_in_use.saturating_sub(addresses);
            instance.remaining = instance
                .remaining
                .plus(reserved)
                .min_each(instance.registered);
            if let Some(n) = instance.group_counts.get_mut(&group) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    instance.group_counts.remove(&group);
                }
            }
            self.placement_index.sync_task(instance, &group);
            instance.version += 1;
            instance.assignments_version += 1;
            self.changed_assignments.0.insert(instance_id);
        }
    }

    /// The instance's agent must be told again what it holds.
    pub(super) fn touch_assignments(&mut self, instance_id: &str) {
        if let Some(instance) = self.instances.get_mut(instance_id) {
            instance.assignments_version += 1;
            self.changed_assignments.0.insert(instance_id.to_string());
        }
    }

    /// ECS's describe shape of an instance.
    pub fn container_instance_view(&self, record: &InstanceRecord) -> ContainerInstance {
        let (mut running, mut pending) = (0u32, 0u32);
        for task in record.task_ids.iter().filter_map(|t| self.tasks.get(t)) {
            if task.last_status.is_pending() {
                pending += 1;
            } else if task.last_status == orca_core::task::TaskStatus::Running {
                running += 1;
            }
        }
        let attributes: Vec<Attribute> = record.all_attributes().cloned().collect();
        ContainerInstance {
            container_instance_arn: record.arn.clone(),
            ec2_instance_id: record.hostname.clone(),
            version: record.version,
            version_info: VersionInfo {
                agent_version: record.agent_version.clone(),
                docker_version: record.runtime_version.clone(),
            },
            remaining_resources: {
                let mut list = Resource::list(record.remaining);
                let reserved = record.reserved_ports.iter().copied();
                list.push(Resource::ports(
                    "PORTS",
                    reserved
                        .clone()
                        .chain(record.host_ports.ports(TransportProtocol::Tcp)),
                ));
                list.push(Resource::ports(
                    "PORTS_UDP",
                    reserved.chain(record.host_ports.ports(TransportProtocol::Udp)),
                ));
                list
            },
            registered_resources: {
                let mut list = Resource::list(record.registered);
                list.push(Resource::ports(
                    "PORTS",
                    record.reserved_ports.iter().copied(),
                ));
                list.push(Resource::ports(
                    "PORTS_UDP",
                    record.reserved_ports.iter().copied(),
                ));
                list
            },
            status: record.status.name().to_string(),
            agent_connected: record.agent_connected,
            running_tasks_count: running,
            pending_tasks_count: pending,
            attributes,
            registered_at: record.registered_at,
            tags: Vec::new(),
        }
    }
}

pub fn instance_not_found(id: &str) -> ApiError {
    ApiError::new(
        Exception::InvalidParameterException,
        format!("container instance '{id}' not found"),
    )
}

/// The attribute naming an instance's task subnet.
pub const TASK_SUBNET_ATTRIBUTE: &str = "orca.task-subnet";
/// The attribute naming an instance's node address.
pub const NODE_ADDRESS_ATTRIBUTE: &str = "orca.node-address";

/// The agent's attributes with the instance's network facts as attributes
/// of their own (what the agent sent under those names is replaced): shown
/// by describe and usable in placement constraints like any other, e.g.
/// `attribute:orca.node-address == '198.18.0.11'`.
fn with_network_attributes(
    mut attributes: Vec<Attribute>,
    subnet: Ipv4Cidr,
    node_address: Option<std::net::Ipv4Addr>,
) -> Vec<Attribute> {
    attributes.retain(|a| a.name != TASK_SUBNET_ATTRIBUTE && a.name != NODE_ADDRESS_ATTRIBUTE);
    let attribute = |name: &str, value: String| Attribute {
        name: name.to_string(),
        value: Some(value),
        target_type: None,
        target_id: None,
    };
    attributes.push(attribute(TASK_SUBNET_ATTRIBUTE, subnet.to_string()));
    if let Some(address) = node_address {
        attributes.push(attribute(NODE_ADDRESS_ATTRIBUTE, address.to_string()));
    }
    attributes
}

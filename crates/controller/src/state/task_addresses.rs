//! Task addresses as a placement resource: how many a node's task subnet
//! holds and how many a task takes, so the scheduler never places a task
//! the agent cannot give an address (ECS's RESOURCE:ENI).
//!
//! The rule mirrors the agent's IPAM (`orca_net::ipam`, over
//! `orca_net::Ipv4Subnet::hosts`): every host address of the subnet
//! (network and broadcast excluded; none in a /31 or /32) except the first,
//! which the bridge holds as the tasks' gateway. A /24 holds 253.

use orca_core::cidr::Ipv4Cidr;
use orca_core::task_definition::NetworkMode;

use super::task_record::TaskRecord;
use super::ClusterState;

/// How many task addresses the agent can hand out from `subnet`.
pub fn address_capacity(subnet: &Ipv4Cidr) -> u32 {
    if subnet.prefix_len >= 31 {
        return 0;
    }
    let hosts = (1u64 << (32 - u32::from(subnet.prefix_len))) - 2;
    // Less the gateway (even a /0's fits in a u32).
    u32::try_from(hosts - 1).unwrap_or(u32::MAX)
}

/// How many addresses a task of `containers` containers takes in `mode`:
/// awsvpc one for the task's namespace, bridge one per container (each
/// container has its own interface on the bridge), host and none none.
pub fn addresses_per_task(mode: NetworkMode, containers: usize) -> u32 {
    match mode {
        NetworkMode::Awsvpc => 1,
        NetworkMode::Bridge => u32::try_from(containers).unwrap_or(u32::MAX),
        NetworkMode::Host | NetworkMode::None => 0,
    }
}

impl ClusterState {
    /// The addresses `task` holds on its instance, from its task
    /// definition. The same answer at `reserve`, `release` and restore: a
    /// revision's network mode and containers never change, and a revision
    /// is purged only once no unstopped task runs it
    /// (`purgeable_task_definitions`), so every task an instance holds
    /// finds its definition. Were one missing, awsvpc (the default mode) is
    /// assumed, the same at release and on restore; `check_placement_index`
    /// would show the difference.
    pub fn task_addresses(&self, task: &TaskRecord) -> u32 {
        match self
            .families
            .get(&task.family)
            .and_then(|f| f.revisions.get(&task.revision))
        {
            Some(stored) => {
                let spec = &stored.task_definition.spec;
                addresses_per_task(
                    spec.effective_network_mode(),
                    spec.container_definitions.len(),
                )
            }
            None => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(s: &str) -> Ipv4Cidr {
        s.parse().expect("valid cidr")
    }

    #[test]
    fn capacity_is_the_host_addresses_less_the_gateway() {
        assert_eq!(address_capacity(&cidr("198.19.3.0/24")), 253);
        assert_eq!(address_capacity(&cidr("198.19.1.0/25")), 125);
        // .0 network, .1 gateway, .2-.6 tasks, .7 broadcast.
        assert_eq!(address_capacity(&cidr("10.0.0.0/29")), 5);
        assert_eq!(address_capacity(&cidr("10.0.0.4/30")), 1);
        assert_eq!(address_capacity(&cidr("10.0.0.4/31")), 0);
        assert_eq!(address_capacity(&cidr("10.0.0.4/32")), 0);
        assert_eq!(address_capacity(&cidr("10.0.0.0/8")), 16_777_213);
        assert_eq!(address_capacity(&cidr("0.0.0.0/0")), u32::MAX - 2);
    }

    #[test]
    fn a_task_takes_one_address_in_awsvpc_one_per_container_in_bridge() {
        assert_eq!(addresses_per_task(NetworkMode::Awsvpc, 3), 1);
        assert_eq!(addresses_per_task(NetworkMode::Bridge, 3), 3);
        assert_eq!(addresses_per_task(NetworkMode::Host, 3), 0);
        assert_eq!(addresses_per_task(NetworkMode::None, 3), 0);
    }
}

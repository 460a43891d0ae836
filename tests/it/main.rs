//! orca's single integration-test binary (matklad's "one binary" layout).

mod agent_failover;
mod agent_loss;
mod agent_random;
mod agent_recovery;
mod cli;
mod cli_failover;
mod cli_tasks;
mod clusters;
mod controller_cluster;
mod durability;
mod health;
mod identity;
mod instances;
mod netns_harness;
mod placement;
mod recovery_rig;
mod runtime;
mod services_failover;
mod services_fake;
mod support;
mod task_definitions;
mod task_network;
mod tasks_containerd;
mod tasks_fake;

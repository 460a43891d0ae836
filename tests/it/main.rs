//! orca's single integration-test binary (matklad's "one binary" layout).

mod cli;
mod clusters;
mod durability;
mod support;
mod task_definitions;

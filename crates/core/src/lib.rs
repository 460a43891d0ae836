//! orca-core: the domain model shared by the controller, the agent and the CLI.
//!
//! It holds the one model of a task definition (serialized to and from ECS's
//! JSON), its validation with ECS's rules, task placement (constraints,
//! strategies and the cluster query language), cluster names, ARNs and
//! ECS's exception vocabulary. It does no I/O and knows nothing of protobuf.

pub mod account_settings;
pub mod agent_protocol;
pub mod arn;
pub mod cidr;
pub mod cluster;
pub mod command_line;
pub mod container_instance;
pub mod discovery;
pub mod error;
pub mod instance_calls;
pub mod json_input;
pub mod names;
pub mod placement;
pub mod secrets;
pub mod service;
pub mod task;
pub mod task_definition;

pub use error::{ApiError, Exception};

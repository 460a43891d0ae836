//! The gRPC API: thin tonic handlers (validate, convert, propose or read,
//! map the error) and the conversions between state and wire types.
//! `ecs_service` is the ECS API for clients; `raft_service` carries Raft
//! between controllers; `admin_service` is membership for operators;
//! `logs_service` relays task logs from the agents' node APIs.

pub mod admin_service;
pub mod agent_service;
mod convert;
pub mod ecs_service;
pub mod exec_service;
mod instance_api;
pub mod logs_service;
pub mod raft_service;
mod resource_api;
mod secrets_api;
pub mod secrets_service;
mod service_api;
mod task_api;

//! orca-api: the gRPC contract of orca (generated from `proto/`), the way ECS
//! exceptions ride on gRPC statuses, and client helpers.
//!
//! This is the only crate that sees protobuf types; the CLI depends on it and
//! on nothing of the controller.

pub mod client;
pub mod ecs_json;
pub mod error;
pub mod read;

/// Generated code for `proto/orca/v1`.
pub mod v1 {
    tonic::include_proto!("orca.v1");
}

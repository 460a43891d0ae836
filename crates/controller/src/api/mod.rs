//! The gRPC API: thin tonic handlers (validate, convert, propose or read,
//! map the error) and the conversions between state and wire types.

mod convert;
pub mod ecs_service;

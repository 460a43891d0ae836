//! Errors that stop a controller from starting or serving. Errors a client
//! sees are `orca_core::ApiError`s, mapped to gRPC statuses once, in
//! `orca_api::error::to_status`.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the data directory {path}: {source}")]
    DataDir { path: PathBuf, source: sled::Error },
    #[error("raft storage failed: {0}")]
    Storage(#[from] openraft::StorageError<u64>),
    #[error("invalid raft configuration: {0}")]
    RaftConfig(#[from] openraft::ConfigError),
    #[error("raft failed: {0}")]
    Raft(String),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("the gRPC server failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error("refusing to serve: {0}; start every controller with the same --region, --account and --task-cidr")]
    IdentityMismatch(String),
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("cannot join the controller cluster: {0}")]
    JoinRefused(String),
    #[error("refusing to serve: {0}")]
    Secrets(#[from] crate::secrets::KeyError),
}

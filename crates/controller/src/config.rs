//! The controller's configuration, validated before anything starts.

use std::net::SocketAddr;
use std::path::PathBuf;

use orca_core::arn::ArnContext;

use crate::raft::RaftTuning;

#[derive(Debug, Clone)]
pub struct Config {
    /// This controller's Raft node id; unique in the controller cluster.
    pub node_id: u64,
    /// Where the Raft log, vote and snapshots live (a sled database).
    pub data_dir: PathBuf,
    /// The address the gRPC API listens on; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Region and account of the ARNs this controller cluster mints.
    pub arn: ArnContext,
    pub raft: RaftTuning,
}

impl Config {
    /// A single-node controller keeping its data in `data_dir`.
    pub fn new(data_dir: PathBuf, listen: SocketAddr) -> Self {
        Config {
            node_id: 1,
            data_dir,
            listen,
            arn: ArnContext::default(),
            raft: RaftTuning::default(),
        }
    }
}

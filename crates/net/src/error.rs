//! The network layer's errors.

/// Why setting up or tearing down a task network failed.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    /// The node's task subnet has no free address.
    #[error("no free address in {subnet}")]
    Exhausted { subnet: String },
    /// A netlink or namespace operation failed.
    #[error("{op}: {message}")]
    Kernel { op: String, message: String },
    /// The IPAM state could not be read or written.
    #[error("ipam state {path}: {message}")]
    State { path: String, message: String },
    /// A task id that cannot name a namespace (empty, `/`, leading `.`).
    #[error("task id {0:?} is not usable as a namespace name")]
    InvalidTaskId(String),
    /// The configuration is unusable (bad bridge name, subnet too small).
    #[error("invalid network config: {0}")]
    Config(String),
}

//! The runtime's errors.

/// Why a runtime operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The image could not be pulled (the agent reports CannotPullContainerError).
    #[error("{reference}: {message}")]
    Pull { reference: String, message: String },
    /// The container could not be created (CannotCreateContainerError).
    #[error("create {id}: {message}")]
    Create { id: String, message: String },
    /// The container could not be started (CannotStartContainerError).
    #[error("start {id}: {message}")]
    Start { id: String, message: String },
    /// No such container.
    #[error("no container {id}")]
    NotFound { id: String },
    /// Talking to containerd failed.
    #[error("containerd: {0}")]
    Containerd(String),
}

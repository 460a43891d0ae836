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
    /// The container was started already (by an earlier agent process whose
    /// start went through after it died): not a failure, the caller should
    /// look again.
    #[error("{id} was started already")]
    AlreadyStarted { id: String },
    /// containerd is in the middle of another request for this container
    /// (an earlier agent process's start, still under way after it died):
    /// try again shortly.
    #[error("{id}: another request is under way: {message}")]
    Busy { id: String, message: String },
    /// A process could not be run inside the container (exec).
    #[error("exec in {id}: {message}")]
    Exec { id: String, message: String },
    /// The container's process still runs (it cannot be reaped yet).
    #[error("{id} is still running")]
    Running { id: String },
    /// containerd cannot be reached (down, restarting): nothing is known
    /// about the operation's target, so the caller retries later rather
    /// than concluding anything.
    #[error("containerd unavailable: {0}")]
    Unavailable(String),
    /// Talking to containerd failed.
    #[error("containerd: {0}")]
    Containerd(String),
}

impl RuntimeError {
    /// containerd could not be reached: retry later, conclude nothing.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, RuntimeError::Unavailable(_))
    }
}

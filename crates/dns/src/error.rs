//! The responder's errors.

use hickory_server::net::NetError;

#[derive(Debug, thiserror::Error)]
pub enum DnsError {
    /// A socket the responder serves on failed for good (not one query).
    #[error("dns responder stopped: {0}")]
    Serve(#[from] NetError),
}

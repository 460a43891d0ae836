//! orca-tls: the cluster's own certificate authority and mutual TLS.
//!
//! Every controller, agent and operator client proves who it is with a
//! certificate the cluster CA signed ([`ca`]); the identity is a URI in the
//! certificate's subject alternative names ([`identity`]:
//! `spiffe://orca/controller/<node id>`, `spiffe://orca/agent/<instance
//! id>`, `spiffe://orca/client/<name>`), decided by the CA when it signs a
//! request, never taken from the request. [`config`] builds rustls server
//! and client configurations that trust only the cluster CA and read their
//! own certificate from a [`store::CertStore`], so a leaf certificate is
//! replaced without restarting anything: new handshakes use the new one,
//! open connections (agent streams, Raft) stay up.

pub mod ca;
pub mod config;
pub mod identity;
pub mod store;

pub use ca::{ClusterCa, IssuedCertificate, Validity};
pub use config::{client_config, peer_identity, server_config, ClientAuth};
pub use identity::Identity;
pub use store::CertStore;

/// What can go wrong with certificates and keys.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot generate or sign a certificate: {0}")]
    Generate(String),
    #[error("the certificate signing request is not valid: {0}")]
    Request(String),
    #[error("{what} is not valid PEM: {reason}")]
    Pem { what: &'static str, reason: String },
    #[error("the certificate is not valid: {0}")]
    Certificate(String),
    #[error("the certificate names no orca identity (a spiffe://orca/... URI)")]
    NoIdentity,
    #[error("cannot build the TLS configuration: {0}")]
    Config(String),
}

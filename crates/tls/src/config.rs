//! rustls configurations for orca's connections: servers present the
//! [`CertStore`]'s certificate and verify clients against the cluster CA
//! (required between controllers and from agents; optional on the API,
//! whose clients may use a token instead); clients trust the cluster CA
//! only (never the system's roots) and present their own certificate.

use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::identity::Identity;
use crate::store::CertStore;
use crate::TlsError;

/// Whether a server demands a client certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// Every client presents a certificate the cluster CA signed.
    Required,
    /// A client without a certificate is let through (it authenticates
    /// otherwise, with a token); one with a certificate must present a
    /// valid one.
    Optional,
}

fn provider() -> Arc<CryptoProvider> {
    CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()))
}

fn roots(ca_pem: &str) -> Result<Arc<RootCertStore>, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        let cert = cert.map_err(|e| TlsError::Pem {
            what: "the CA certificate",
            reason: e.to_string(),
        })?;
        roots
            .add(cert)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(TlsError::Pem {
            what: "the CA certificate",
            reason: "no certificate in it".into(),
        });
    }
    Ok(Arc::new(roots))
}

fn config_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Config(e.to_string())
}

/// A server that presents `store`'s certificate (ALPN h2, for gRPC).
pub fn server_config(
    ca_pem: &str,
    store: Arc<CertStore>,
    auth: ClientAuth,
) -> Result<ServerConfig, TlsError> {
    let provider = provider();
    let builder = WebPkiClientVerifier::builder_with_provider(roots(ca_pem)?, provider.clone());
    let verifier = match auth {
        ClientAuth::Required => builder.build(),
        ClientAuth::Optional => builder.allow_unauthenticated().build(),
    }
    .map_err(config_err)?;
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_client_cert_verifier(verifier)
        .with_cert_resolver(store);
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A client that trusts the cluster CA only and presents `store`'s
/// certificate, if any.
pub fn client_config(
    ca_pem: &str,
    store: Option<Arc<CertStore>>,
) -> Result<ClientConfig, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(config_err)?
        .with_root_certificates(roots(ca_pem)?);
    let mut config = match store {
        Some(store) => builder.with_client_cert_resolver(store),
        None => builder.with_no_client_auth(),
    };
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// The identity of the peer of an established connection, if it presented
/// a certificate (already verified against the cluster CA by the handshake).
pub fn peer_identity(peer_certificates: Option<&[CertificateDer<'_>]>) -> Option<Identity> {
    let leaf = peer_certificates?.first()?;
    Identity::of_certificate(leaf).ok()
}

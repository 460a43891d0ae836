//! The certificate a process presents, replaceable while it runs: servers
//! and clients resolve it at each handshake, so a rotated leaf is used by
//! every new connection and open ones are left alone.

use std::sync::{Arc, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::SignatureScheme;

use crate::identity::Identity;
use crate::TlsError;

/// The current certificate and key.
#[derive(Debug)]
pub struct CertStore {
    current: RwLock<Arc<CertifiedKey>>,
    identity: RwLock<Identity>,
}

fn certified(cert_pem: &str, key_pem: &str) -> Result<(CertifiedKey, Identity), TlsError> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| TlsError::Pem {
            what: "the certificate",
            reason: e.to_string(),
        })?;
    let leaf = chain.first().ok_or(TlsError::Pem {
        what: "the certificate",
        reason: "no certificate in it".into(),
    })?;
    let identity = Identity::of_certificate(leaf)?;
    let key = PrivateKeyDer::from_pem_slice(key_pem.as_bytes()).map_err(|e| TlsError::Pem {
        what: "the private key",
        reason: e.to_string(),
    })?;
    let provider = CryptoProvider::get_default()
        .cloned()
        .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
    let signing = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| TlsError::Certificate(e.to_string()))?;
    let certified = CertifiedKey::new(chain, signing);
    certified
        .keys_match()
        .map_err(|e| TlsError::Certificate(format!("the key is not the certificate's: {e}")))?;
    Ok((certified, identity))
}

impl CertStore {
    pub fn new(cert_pem: &str, key_pem: &str) -> Result<Arc<CertStore>, TlsError> {
        let (key, identity) = certified(cert_pem, key_pem)?;
        Ok(Arc::new(CertStore {
            current: RwLock::new(Arc::new(key)),
            identity: RwLock::new(identity),
        }))
    }

    /// Presents `cert_pem` from the next handshake on. A certificate for
    /// another identity is refused: rotation never changes who this is.
    pub fn replace(&self, cert_pem: &str, key_pem: &str) -> Result<(), TlsError> {
        let (key, identity) = certified(cert_pem, key_pem)?;
        let current = self.identity();
        if identity != current {
            return Err(TlsError::Certificate(format!(
                "the new certificate is for {identity}, this process is {current}"
            )));
        }
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(key);
        Ok(())
    }

    pub fn identity(&self) -> Identity {
        self.identity
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The certificate presented now.
    pub fn current(&self) -> Arc<CertifiedKey> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }
}

impl ResolvesClientCert for CertStore {
    fn resolve(
        &self,
        _root_hint_subjects: &[&[u8]],
        _sigschemes: &[SignatureScheme],
    ) -> Option<Arc<CertifiedKey>> {
        Some(self.current())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

//! The cluster CA: made by the first controller (or brought by the
//! operator), it signs every controller's, agent's and client's leaf
//! certificate. A request (CSR) proves the requester holds its key; what
//! the certificate says (identity, names, validity, usages) is decided
//! here, whatever the request asked for.

use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use time::OffsetDateTime;

use crate::identity::Identity;
use crate::TlsError;

/// How long the CA itself is valid.
const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A certificate is valid from a little before it is signed, so a peer
/// whose clock is slightly behind accepts it.
const BACKDATE: Duration = Duration::from_secs(5 * 60);

/// When a leaf certificate is valid.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    pub not_before: SystemTime,
    pub not_after: SystemTime,
}

impl Validity {
    /// From `now` (less a small backdate) for `lifetime`.
    pub fn starting(now: SystemTime, lifetime: Duration) -> Validity {
        Validity {
            not_before: now.checked_sub(BACKDATE).unwrap_or(now),
            not_after: now + lifetime,
        }
    }
}

/// A signed leaf certificate, PEM.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedCertificate {
    pub cert_pem: String,
    /// The private key, when the CA made it ([`ClusterCa::issue`]); None
    /// for a signed request (the key never left its holder).
    pub key_pem: Option<String>,
}

impl std::fmt::Debug for IssuedCertificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCertificate")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &self.key_pem.as_ref().map(|_| "***"))
            .finish()
    }
}

/// The CA's certificate and key.
pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
    issuer: Issuer<'static, KeyPair>,
}

fn gen_err(e: impl std::fmt::Display) -> TlsError {
    TlsError::Generate(e.to_string())
}

fn offset(t: SystemTime) -> Result<OffsetDateTime, TlsError> {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_err(gen_err)?
        .as_secs();
    OffsetDateTime::from_unix_timestamp(i64::try_from(secs).map_err(gen_err)?).map_err(gen_err)
}

fn random_serial() -> Result<SerialNumber, TlsError> {
    // A fresh key's public half is random enough for a 16-byte serial
    // without another source of randomness.
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut bytes: Vec<u8> = key
        .public_key_raw()
        .iter()
        .rev()
        .take(16)
        .copied()
        .collect();
    // Positive as DER integers must be.
    if let Some(b) = bytes.first_mut() {
        *b &= 0x7f;
    }
    Ok(SerialNumber::from_slice(&bytes))
}

impl ClusterCa {
    /// A new CA named after the cluster.
    pub fn generate(cluster: &str, now: SystemTime) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("orca cluster CA ({cluster})"));
        dn.push(DnType::OrganizationName, "orca");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let validity = Validity::starting(now, CA_VALIDITY);
        params.not_before = offset(validity.not_before)?;
        params.not_after = offset(validity.not_after)?;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(gen_err)?;
        let cert_pem = cert.pem();
        let key_pem = key.serialize_pem();
        Ok(ClusterCa {
            cert_pem,
            key_pem,
            issuer: Issuer::new(params, key),
        })
    }

    /// The CA an operator brought, or one stored earlier.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, TlsError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| TlsError::Pem {
            what: "the CA key",
            reason: e.to_string(),
        })?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key).map_err(|e| TlsError::Pem {
            what: "the CA certificate",
            reason: e.to_string(),
        })?;
        Ok(ClusterCa {
            cert_pem: cert_pem.to_string(),
            key_pem: key_pem.to_string(),
            issuer,
        })
    }

    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA's private key (to store it, with the care a CA key needs).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The leaf parameters the CA decides for `identity`.
    fn leaf_params(
        identity: &Identity,
        names: &[String],
        validity: Validity,
    ) -> Result<CertificateParams, TlsError> {
        identity.validate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, identity.to_string());
        params.distinguished_name = dn;
        let uri = identity.uri().try_into().map_err(gen_err)?;
        params.subject_alt_names = vec![SanType::URI(uri)];
        for name in names {
            let san = match name.parse::<IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into().map_err(|e| {
                    TlsError::Request(format!("'{name}' is not a DNS name or an address: {e}"))
                })?),
            };
            params.subject_alt_names.push(san);
        }
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        // Controllers and agents both serve (API, node API) and dial
        // (Raft, sessions); clients only dial.
        params.extended_key_usages = match identity {
            Identity::Client { .. } => vec![ExtendedKeyUsagePurpose::ClientAuth],
            _ => vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        };
        params.not_before = offset(validity.not_before)?;
        params.not_after = offset(validity.not_after)?;
        params.serial_number = Some(random_serial()?);
        params.use_authority_key_identifier_extension = true;
        Ok(params)
    }

    /// Signs a holder's request: the key is the request's (its signature
    /// checked), everything else the CA's choice.
    pub fn sign_request(
        &self,
        csr_pem: &str,
        identity: &Identity,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedCertificate, TlsError> {
        let mut request = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| TlsError::Request(e.to_string()))?;
        request.params = Self::leaf_params(identity, names, validity)?;
        let cert = request.signed_by(&self.issuer).map_err(gen_err)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: None,
        })
    }

    /// A key and a certificate for `identity`, both made here (the first
    /// controller's own, tests, `orca` client bundles).
    pub fn issue(
        &self,
        identity: &Identity,
        names: &[String],
        validity: Validity,
    ) -> Result<IssuedCertificate, TlsError> {
        let key = KeyPair::generate().map_err(gen_err)?;
        let params = Self::leaf_params(identity, names, validity)?;
        let cert = params.signed_by(&key, &self.issuer).map_err(gen_err)?;
        Ok(IssuedCertificate {
            cert_pem: cert.pem(),
            key_pem: Some(key.serialize_pem()),
        })
    }
}

/// A new key and a request for it, as a joining agent or controller
/// sends it (the identity it asks for is only a hint: the CA decides).
pub fn new_request(common_name: &str) -> Result<(String, String), TlsError> {
    let key = KeyPair::generate().map_err(gen_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    params.distinguished_name = dn;
    let csr = params.serialize_request(&key).map_err(gen_err)?;
    Ok((key.serialize_pem(), csr.pem().map_err(gen_err)?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    fn der(pem: &str) -> Vec<u8> {
        CertificateDer::from_pem_slice(pem.as_bytes())
            .map(|c| c.to_vec())
            .unwrap_or_default()
    }

    #[test]
    fn the_ca_decides_the_identity_whatever_the_request_asks() {
        let now = SystemTime::now();
        let ca = ClusterCa::generate("prod", now).unwrap_or_else(|e| panic!("{e}"));
        // A request naming a controller, signed for an agent.
        let (_key, csr) =
            new_request("spiffe://orca/controller/1").unwrap_or_else(|e| panic!("{e}"));
        let agent = Identity::Agent {
            instance_id: "i-1".into(),
        };
        let issued = ca
            .sign_request(
                &csr,
                &agent,
                &["198.18.0.5".into()],
                Validity::starting(now, Duration::from_secs(3600)),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(issued.key_pem.is_none());
        assert_eq!(
            Identity::of_certificate(&der(&issued.cert_pem)).ok(),
            Some(agent)
        );
        // A tampered request (its signature no longer matches) is refused.
        let tampered = csr.replacen('A', "B", 1);
        assert!(ca
            .sign_request(
                &tampered,
                &Identity::Client { name: "x".into() },
                &[],
                Validity::starting(now, Duration::from_secs(60))
            )
            .is_err());
        // The stored CA signs as the original.
        let again =
            ClusterCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap_or_else(|e| panic!("{e}"));
        let c = again
            .issue(
                &Identity::Controller { node_id: 2 },
                &["127.0.0.1".into(), "ctl-2.example".into()],
                Validity::starting(now, Duration::from_secs(60)),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            Identity::of_certificate(&der(&c.cert_pem)).ok(),
            Some(Identity::Controller { node_id: 2 })
        );
        assert!(ca
            .issue(
                &Identity::Agent {
                    instance_id: "../x".into()
                },
                &[],
                Validity::starting(now, Duration::from_secs(60))
            )
            .is_err());
    }
}

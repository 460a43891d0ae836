//! Who a certificate speaks for. The identity is one URI subject
//! alternative name; authorization (which calls an identity may make, on
//! which instance's behalf) is decided from it by the services.

use std::fmt;

use x509_parser::extensions::GeneralName;

use crate::TlsError;

const PREFIX: &str = "spiffe://orca/";

/// A certificate's holder.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Identity {
    /// A member of the controller cluster (Raft, membership).
    Controller { node_id: u64 },
    /// The agent of one container instance: it acts for that instance only.
    Agent { instance_id: String },
    /// An operator or program using the API (its role comes from its
    /// token or the name's grant).
    Client { name: String },
}

/// Names inside an identity: letters, digits, `-`, `_` and `.`, so a URI
/// never needs escaping and a name never reaches a path with `/`.
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s != "."
        && s != ".."
}

impl Identity {
    /// The URI the certificate carries.
    pub fn uri(&self) -> String {
        match self {
            Identity::Controller { node_id } => format!("{PREFIX}controller/{node_id}"),
            Identity::Agent { instance_id } => format!("{PREFIX}agent/{instance_id}"),
            Identity::Client { name } => format!("{PREFIX}client/{name}"),
        }
    }

    /// Checks the identity's names (the CA refuses to sign an invalid one).
    pub fn validate(&self) -> Result<(), TlsError> {
        let ok = match self {
            Identity::Controller { node_id } => *node_id > 0,
            Identity::Agent { instance_id } => valid_name(instance_id),
            Identity::Client { name } => valid_name(name),
        };
        if ok {
            Ok(())
        } else {
            Err(TlsError::Request(format!(
                "{self} is not a valid identity (node ids are positive; names are letters, \
                 digits, '-', '_' and '.')"
            )))
        }
    }

    pub fn from_uri(uri: &str) -> Option<Identity> {
        let rest = uri.strip_prefix(PREFIX)?;
        let (kind, name) = rest.split_once('/')?;
        let identity = match kind {
            "controller" => Identity::Controller {
                node_id: name.parse().ok()?,
            },
            "agent" => Identity::Agent {
                instance_id: name.to_string(),
            },
            "client" => Identity::Client {
                name: name.to_string(),
            },
            _ => return None,
        };
        identity.validate().ok().map(|()| identity)
    }

    /// The identity of a DER certificate: its one orca URI name.
    pub fn of_certificate(der: &[u8]) -> Result<Identity, TlsError> {
        let (_, cert) = x509_parser::parse_x509_certificate(der)
            .map_err(|e| TlsError::Certificate(e.to_string()))?;
        let san = cert
            .subject_alternative_name()
            .map_err(|e| TlsError::Certificate(e.to_string()))?
            .ok_or(TlsError::NoIdentity)?;
        let mut found = san.value.general_names.iter().filter_map(|n| match n {
            GeneralName::URI(u) => Identity::from_uri(u),
            _ => None,
        });
        match (found.next(), found.next()) {
            (Some(identity), None) => Ok(identity),
            // Two identities in one certificate: trust neither.
            _ => Err(TlsError::NoIdentity),
        }
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Identity::Controller { node_id } => write!(f, "controller {node_id}"),
            Identity::Agent { instance_id } => write!(f, "agent of instance {instance_id}"),
            Identity::Client { name } => write!(f, "client {name}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_round_trip_through_their_uri_and_bad_names_are_refused() {
        for id in [
            Identity::Controller { node_id: 3 },
            Identity::Agent {
                instance_id: "86d145dfdcae43f79c190e506b618871".into(),
            },
            Identity::Client {
                name: "ops.alice".into(),
            },
        ] {
            assert_eq!(Identity::from_uri(&id.uri()), Some(id));
        }
        for bad in [
            "spiffe://orca/controller/0",
            "spiffe://orca/agent/../x",
            "spiffe://orca/agent/a/b",
            "spiffe://orca/root/x",
            "spiffe://other/agent/x",
            "spiffe://orca/client/",
        ] {
            assert_eq!(Identity::from_uri(bad), None, "{bad}");
        }
    }
}

//! A controller serves only with the cluster's secrets key: at start (on
//! the state it restored) and, for a controller that joins or was started
//! before the first secret, as soon as its applied state holds sealed
//! values, it checks its key opens them; otherwise it refuses to serve.

use super::key::{parameter_context, secret_context};
use super::{KeyError, SecretsKey};
use crate::state::ClusterState;

/// Whether `key` is the key of the secrets `state` holds.
pub fn check(state: &ClusterState, key: Option<&SecretsKey>) -> Result<(), KeyError> {
    let Some(cluster_key) = &state.secrets_key_id else {
        return Ok(());
    };
    let Some(key) = key else {
        return Err(KeyError::Mismatch(format!(
            "the cluster's secrets are sealed with key {cluster_key}, and this controller was \
             started without --secrets-key-file: start it with the cluster's key file"
        )));
    };
    if key.id() != cluster_key {
        return Err(KeyError::Mismatch(format!(
            "this controller's --secrets-key-file holds key {}, but the cluster's secrets are \
             sealed with key {cluster_key}: start it with the cluster's key file",
            key.id()
        )));
    }
    // The fingerprint matches; make sure a value really opens.
    let sample = state
        .parameters
        .values()
        .map(|p| (&p.sealed, parameter_context(&p.name)))
        .chain(state.secrets.values().flat_map(|s| {
            s.versions
                .iter()
                .map(|v| (&v.sealed, secret_context(&s.name, &v.version_id)))
        }))
        .next();
    if let Some((sealed, context)) = sample {
        key.open(sealed, &context)?;
    }
    Ok(())
}

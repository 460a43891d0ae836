//! Who this agent is, kept in `<data dir>/instance.json` across restarts.
//!
//! The instance id is chosen by the agent and saved (durably) *before* the
//! first registration, and every registration carries it. A crash after
//! the controllers registered the instance but before the reply was saved
//! therefore registers the same instance again on restart: a ghost
//! instance (registered, never heard from, holding a task subnet) cannot
//! arise, and the node keeps its subnet, so its IPAM still matches.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Why the identity cannot be read or saved.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("identity file {path}: {message}")]
    File { path: String, message: String },
}

/// The saved identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identity {
    pub cluster: String,
    /// The id the agent registers with (32 lowercase hex digits).
    #[serde(default)]
    pub instance_id: String,
    /// The ARN the controllers answered with; None until the first
    /// registration's reply was saved.
    #[serde(default)]
    pub container_instance_arn: Option<String>,
}

fn path(data_dir: &Path) -> PathBuf {
    data_dir.join("instance.json")
}

fn file_error(path: &Path, e: impl std::fmt::Display) -> IdentityError {
    IdentityError::File {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// A fresh instance id, in the controllers' own format.
pub fn new_instance_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// The instance id inside an ARN (its last segment).
pub fn instance_id_of(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

impl Identity {
    /// The identity saved for `cluster`, or a new one, saved before it is
    /// returned. A file of another cluster (or an unreadable one) is
    /// replaced: the agent then joins `cluster` as a new instance.
    pub fn load_or_create(data_dir: &Path, cluster: &str) -> Result<Identity, IdentityError> {
        let file = path(data_dir);
        let saved = std::fs::read(&file)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Identity>(&bytes).ok())
            .filter(|id| id.cluster == cluster);
        if let Some(mut identity) = saved {
            if identity.instance_id.is_empty() {
                // Saved by an agent that let the controller choose the id.
                identity.instance_id = identity
                    .container_instance_arn
                    .as_deref()
                    .map(instance_id_of)
                    .unwrap_or_default()
                    .to_string();
            }
            if !identity.instance_id.is_empty() {
                return Ok(identity);
            }
        }
        let identity = Identity {
            cluster: cluster.to_string(),
            instance_id: new_instance_id(),
            container_instance_arn: None,
        };
        identity.save(data_dir)?;
        Ok(identity)
    }

    /// Writes the identity durably (orca_fs::write_atomic).
    pub fn save(&self, data_dir: &Path) -> Result<(), IdentityError> {
        let file = path(data_dir);
        let json = serde_json::to_vec_pretty(self).map_err(|e| file_error(&file, e))?;
        orca_fs::write_atomic(&file, &json).map_err(|e| file_error(&file, e))
    }

    /// A new instance id (the old instance was deregistered), saved before
    /// it is used.
    pub fn renew(&mut self, data_dir: &Path) -> Result<(), IdentityError> {
        self.instance_id = new_instance_id();
        self.container_instance_arn = None;
        self.save(data_dir)
    }

    /// Records the controllers' reply.
    pub fn confirm(&mut self, data_dir: &Path, arn: &str) -> Result<(), IdentityError> {
        self.instance_id = instance_id_of(arn).to_string();
        self.container_instance_arn = Some(arn.to_string());
        self.save(data_dir)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_is_saved_before_it_is_used_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let first = Identity::load_or_create(dir.path(), "default").expect("new");
        assert_eq!(first.instance_id.len(), 32);
        assert_eq!(first.container_instance_arn, None);
        // A crash before the reply was saved: the same id again.
        let again = Identity::load_or_create(dir.path(), "default").expect("again");
        assert_eq!(again, first);
        let mut confirmed = again;
        let arn = format!(
            "arn:orca:ecs:r:1:container-instance/default/{}",
            first.instance_id
        );
        confirmed.confirm(dir.path(), &arn).expect("confirm");
        let loaded = Identity::load_or_create(dir.path(), "default").expect("load");
        assert_eq!(loaded.container_instance_arn.as_deref(), Some(arn.as_str()));
        // Another cluster: a new instance.
        let other = Identity::load_or_create(dir.path(), "prod").expect("other");
        assert_ne!(other.instance_id, first.instance_id);
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .expect("ls")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(names, ["instance.json"], "no temporary file is left");
    }

    #[test]
    fn an_old_identity_without_an_id_takes_it_from_its_arn() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("instance.json"),
            r#"{"cluster":"default","containerInstanceArn":"arn:orca:ecs:r:1:container-instance/default/0123456789abcdef0123456789abcdef"}"#,
        )
        .expect("write");
        let id = Identity::load_or_create(dir.path(), "default").expect("load");
        assert_eq!(id.instance_id, "0123456789abcdef0123456789abcdef");
    }
}

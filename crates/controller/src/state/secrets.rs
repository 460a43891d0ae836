//! Secrets Manager secrets and Parameter Store parameters as stored: only
//! ciphertext ([`Sealed`]), sealed by the handler that took the value
//! (`crate::secrets::key`), so the Raft log and snapshots never hold a
//! plaintext. `apply` checks names, existence, versions and that every
//! value is sealed with the cluster's one key.

use orca_core::secrets::{SecretRef, ValueFrom};
use orca_core::task_definition::{Tag, Timestamp};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};

use super::{ClusterState, Outcome};

/// Stage of a secret's current version.
pub const CURRENT: &str = "AWSCURRENT";
/// Stage of the version current before it.
pub const PREVIOUS: &str = "AWSPREVIOUS";

/// Milliseconds in a day (deletion recovery windows are in days).
const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A value encrypted with the cluster's secrets key (XChaCha20-Poly1305).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sealed {
    /// Which key sealed it: a fingerprint, never the key.
    pub key_id: String,
    /// Base64 of the 24-byte nonce.
    pub nonce: String,
    /// Base64 of the ciphertext and its tag.
    pub ciphertext: String,
}

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Sealed(key {}, {} bytes)",
            self.key_id,
            self.ciphertext.len()
        )
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretVersion {
    pub version_id: String,
    pub sealed: Sealed,
    pub stages: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretRecord {
    pub name: String,
    pub arn: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
    pub created_at: Timestamp,
    pub last_changed_at: Timestamp,
    /// Versions with a stage, oldest first. A version losing its last stage
    /// is dropped (Secrets Manager keeps such versions for a while).
    pub versions: Vec<SecretVersion>,
    /// Set by DeleteSecret with a recovery window: the value is unreadable
    /// and the secret is gone once `deletion_date` passes.
    pub deleted_at: Option<Timestamp>,
    pub deletion_date: Option<Timestamp>,
}

impl SecretRecord {
    /// Gone for good: its recovery window has passed.
    pub fn expired(&self, now: Timestamp) -> bool {
        self.deletion_date.is_some_and(|d| d <= now)
    }

    /// The version a reader asked for: by id, else by stage, else current.
    pub fn version(&self, version_id: Option<&str>, stage: Option<&str>) -> Option<&SecretVersion> {
        match (version_id, stage) {
            (Some(id), _) => self.versions.iter().find(|v| v.version_id == id),
            (None, Some(stage)) => self
                .versions
                .iter()
                .find(|v| v.stages.iter().any(|s| s == stage)),
            (None, None) => self
                .versions
                .iter()
                .find(|v| v.stages.iter().any(|s| s == CURRENT)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ParameterType {
    String,
    StringList,
    SecureString,
}

impl ParameterType {
    pub fn parse(field: &str, s: &str) -> Result<ParameterType, ApiError> {
        match s {
            "String" => Ok(ParameterType::String),
            "StringList" => Ok(ParameterType::StringList),
            "SecureString" => Ok(ParameterType::SecureString),
            other => Err(ApiError::field(
                Exception::InvalidParameterException,
                field,
                format!("must be String, StringList or SecureString, not '{other}'"),
            )),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ParameterType::String => "String",
            ParameterType::StringList => "StringList",
            ParameterType::SecureString => "SecureString",
        }
    }
}

/// A parameter. Every type is sealed at rest, SecureString or not.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParameterRecord {
    pub name: String,
    pub arn: String,
    pub kind: ParameterType,
    pub description: Option<String>,
    pub version: u64,
    pub sealed: Sealed,
    pub last_modified: Timestamp,
}

/// A `valueFrom` resolved to its sealed value.
pub struct Resolved<'a> {
    pub sealed: &'a Sealed,
    /// What it was sealed for (`crate::secrets::key`).
    pub context: String,
    /// The top-level JSON key to take from the value.
    pub json_key: Option<String>,
}

/// What a secrets command changed, for the handler's reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SecretChange {
    pub arn: String,
    pub name: String,
    pub version_id: Option<String>,
    pub stages: Vec<String>,
    pub deletion_date: Option<Timestamp>,
    /// A parameter's version after PutParameter.
    pub parameter_version: Option<u64>,
}

/// The secrets and parameters commands (variants of `Command`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op")]
pub enum SecretsCommand {
    CreateSecret {
        name: String,
        arn: String,
        description: Option<String>,
        tags: Vec<Tag>,
        version_id: String,
        sealed: Sealed,
        at: Timestamp,
    },
    PutSecretValue {
        name: String,
        version_id: String,
        sealed: Sealed,
        at: Timestamp,
    },
    /// `recovery_days` None deletes at once (ForceDeleteWithoutRecovery).
    DeleteSecret {
        name: String,
        recovery_days: Option<u32>,
        at: Timestamp,
    },
    RestoreSecret {
        name: String,
        at: Timestamp,
    },
    PutParameter {
        name: String,
        arn: String,
        kind: ParameterType,
        description: Option<String>,
        sealed: Sealed,
        overwrite: bool,
        at: Timestamp,
    },
    DeleteParameter {
        name: String,
    },
}

pub fn secret_not_found(id: &str) -> ApiError {
    ApiError::new(
        Exception::ResourceNotFoundException,
        format!("Secrets Manager can't find the specified secret: {id}"),
    )
}

pub fn parameter_not_found(name: &str) -> ApiError {
    ApiError::new(
        Exception::ParameterNotFound,
        format!("Parameter {name} not found."),
    )
}

fn marked_for_deletion(name: &str) -> ApiError {
    ApiError::new(
        Exception::InvalidRequestException,
        format!(
            "You can't perform this operation on the secret {name} because it was marked for \
             deletion (restore-secret undoes that)."
        ),
    )
}

impl ClusterState {
    /// The secret `id` names (its name, full ARN, ARN without the random
    /// suffix, or name with the suffix), unless its recovery window passed.
    pub fn secret_by_id(&self, id: &str, now: Timestamp) -> Option<&SecretRecord> {
        let name = match id.strip_prefix("arn:") {
            Some(_) => id.split(':').nth(6).unwrap_or_default(),
            None => id,
        };
        let found = self.secrets.get(name).or_else(|| {
            // NAME-XXXXXX: the suffix of the secret's own ARN.
            let (base, _) = name.rsplit_once('-')?;
            self.secrets
                .get(base)
                .filter(|s| s.arn.rsplit(':').next() == Some(name))
        });
        found.filter(|s| !s.expired(now))
    }

    pub fn parameter(&self, name: &str) -> Option<&ParameterRecord> {
        self.parameters.get(name)
    }

    /// Where a `valueFrom` leads: the sealed value with the context it was
    /// sealed for and the JSON key to pick, or why it leads nowhere (a
    /// message naming it, never a value).
    pub fn resolve_value_from(
        &self,
        value_from: &ValueFrom,
        now: Timestamp,
    ) -> Result<Resolved<'_>, String> {
        let secret = |r: &SecretRef| -> Result<Resolved<'_>, String> {
            let s = self
                .secret_by_id(&r.name, now)
                .ok_or_else(|| format!("secret '{}' not found", r.name))?;
            if s.deleted_at.is_some() {
                return Err(format!("secret '{}' is marked for deletion", s.name));
            }
            let v = s
                .version(r.version_id.as_deref(), r.version_stage.as_deref())
                .ok_or_else(|| {
                    format!(
                        "secret '{}' has no version {}",
                        s.name,
                        r.version_id
                            .as_deref()
                            .or(r.version_stage.as_deref())
                            .unwrap_or(CURRENT)
                    )
                })?;
            Ok(Resolved {
                sealed: &v.sealed,
                context: crate::secrets::key::secret_context(&s.name, &v.version_id),
                json_key: r.json_key.clone(),
            })
        };
        fn parameter(p: &ParameterRecord) -> Resolved<'_> {
            Resolved {
                sealed: &p.sealed,
                context: crate::secrets::key::parameter_context(&p.name),
                json_key: None,
            }
        }
        match value_from {
            ValueFrom::Secret(r) => secret(r),
            ValueFrom::Parameter(r) => r
                .candidates
                .iter()
                .find_map(|n| self.parameters.get(n))
                .map(parameter)
                .ok_or_else(|| {
                    format!(
                        "parameter '{}' not found",
                        r.candidates.first().cloned().unwrap_or_default()
                    )
                }),
            ValueFrom::Name(n) => match self.parameters.get(n) {
                Some(p) => Ok(parameter(p)),
                None => secret(&SecretRef {
                    name: n.clone(),
                    json_key: None,
                    version_stage: None,
                    version_id: None,
                })
                .map_err(|e| {
                    if e.ends_with("not found") {
                        format!("no parameter or secret named '{n}'")
                    } else {
                        e
                    }
                }),
            },
        }
    }

    /// One key seals every value of the cluster: the first value fixes it.
    fn check_key(&mut self, sealed: &Sealed) -> Result<(), ApiError> {
        match &self.secrets_key_id {
            Some(id) if *id != sealed.key_id => Err(ApiError::new(
                Exception::InvalidRequestException,
                format!(
                    "this value was sealed with secrets key {} but the cluster's secrets are \
                     sealed with key {id}: every controller needs the same --secrets-key-file",
                    sealed.key_id
                ),
            )),
            Some(_) => Ok(()),
            None => {
                self.secrets_key_id = Some(sealed.key_id.clone());
                Ok(())
            }
        }
    }

    pub(super) fn apply_secrets(&mut self, command: SecretsCommand) -> Result<Outcome, ApiError> {
        match command {
            SecretsCommand::CreateSecret {
                name,
                arn,
                description,
                tags,
                version_id,
                sealed,
                at,
            } => {
                if let Some(existing) = self.secrets.get(&name).filter(|s| !s.expired(at)) {
                    return Err(if existing.deleted_at.is_some() {
                        ApiError::new(
                            Exception::InvalidRequestException,
                            format!(
                                "You can't create the secret {name} because a secret with this \
                                 name is scheduled for deletion."
                            ),
                        )
                    } else {
                        ApiError::new(
                            Exception::ResourceExistsException,
                            format!(
                                "The operation failed because the secret {name} already exists."
                            ),
                        )
                    });
                }
                self.check_key(&sealed)?;
                let record = SecretRecord {
                    name: name.clone(),
                    arn: arn.clone(),
                    description,
                    tags,
                    created_at: at,
                    last_changed_at: at,
                    versions: vec![SecretVersion {
                        version_id: version_id.clone(),
                        sealed,
                        stages: vec![CURRENT.to_string()],
                        created_at: at,
                    }],
                    deleted_at: None,
                    deletion_date: None,
                };
                self.secrets.insert(name.clone(), record);
                Ok(Outcome::Secret(SecretChange {
                    arn,
                    name,
                    version_id: Some(version_id),
                    stages: vec![CURRENT.to_string()],
                    deletion_date: None,
                    parameter_version: None,
                }))
            }
            SecretsCommand::PutSecretValue {
                name,
                version_id,
                sealed,
                at,
            } => {
                let Some(record) = self.secrets.get(&name).filter(|s| !s.expired(at)) else {
                    return Err(secret_not_found(&name));
                };
                if record.deleted_at.is_some() {
                    return Err(marked_for_deletion(&name));
                }
                if let Some(v) = record.versions.iter().find(|v| v.version_id == version_id) {
                    // The same ClientRequestToken again: the version stands.
                    return Ok(Outcome::Secret(SecretChange {
                        arn: record.arn.clone(),
                        name,
                        version_id: Some(version_id),
                        stages: v.stages.clone(),
                        deletion_date: None,
                        parameter_version: None,
                    }));
                }
                let mut record = record.clone();
                self.check_key(&sealed)?;
                for v in &mut record.versions {
                    let was_current = v.stages.iter().any(|s| s == CURRENT);
                    v.stages.retain(|s| s != CURRENT && s != PREVIOUS);
                    if was_current {
                        v.stages.push(PREVIOUS.to_string());
                    }
                }
                record.versions.retain(|v| !v.stages.is_empty());
                record.versions.push(SecretVersion {
                    version_id: version_id.clone(),
                    sealed,
                    stages: vec![CURRENT.to_string()],
                    created_at: at,
                });
                record.last_changed_at = at;
                let arn = record.arn.clone();
                self.secrets.insert(name.clone(), record);
                Ok(Outcome::Secret(SecretChange {
                    arn,
                    name,
                    version_id: Some(version_id),
                    stages: vec![CURRENT.to_string()],
                    deletion_date: None,
                    parameter_version: None,
                }))
            }
            SecretsCommand::DeleteSecret {
                name,
                recovery_days,
                at,
            } => {
                let Some(record) = self.secrets.get(&name).filter(|s| !s.expired(at)) else {
                    return Err(secret_not_found(&name));
                };
                let arn = record.arn.clone();
                let deletion_date = match recovery_days {
                    None => {
                        self.secrets.remove(&name);
                        at
                    }
                    Some(_) if record.deleted_at.is_some() => {
                        return Err(marked_for_deletion(&name));
                    }
                    Some(days) => {
                        let date = Timestamp(at.0.saturating_add(i64::from(days) * DAY_MS));
                        let mut record = record.clone();
                        record.deleted_at = Some(at);
                        record.deletion_date = Some(date);
                        self.secrets.insert(name.clone(), record);
                        date
                    }
                };
                Ok(Outcome::Secret(SecretChange {
                    arn,
                    name,
                    version_id: None,
                    stages: Vec::new(),
                    deletion_date: Some(deletion_date),
                    parameter_version: None,
                }))
            }
            SecretsCommand::RestoreSecret { name, at } => {
                let Some(record) = self.secrets.get(&name).filter(|s| !s.expired(at)) else {
                    return Err(secret_not_found(&name));
                };
                let mut record = record.clone();
                record.deleted_at = None;
                record.deletion_date = None;
                let arn = record.arn.clone();
                self.secrets.insert(name.clone(), record);
                Ok(Outcome::Secret(SecretChange {
                    arn,
                    name,
                    version_id: None,
                    stages: Vec::new(),
                    deletion_date: None,
                    parameter_version: None,
                }))
            }
            SecretsCommand::PutParameter {
                name,
                arn,
                kind,
                description,
                sealed,
                overwrite,
                at,
            } => {
                let existing = self.parameters.get(&name).cloned();
                if existing.is_some() && !overwrite {
                    return Err(ApiError::new(
                        Exception::ParameterAlreadyExists,
                        format!(
                            "The parameter {name} already exists. To overwrite this value, set \
                             the overwrite option in the request to true."
                        ),
                    ));
                }
                self.check_key(&sealed)?;
                let version = existing.as_ref().map_or(1, |p| p.version + 1);
                let description = description.or_else(|| existing.and_then(|p| p.description));
                self.parameters.insert(
                    name.clone(),
                    ParameterRecord {
                        name: name.clone(),
                        arn: arn.clone(),
                        kind,
                        description,
                        version,
                        sealed,
                        last_modified: at,
                    },
                );
                Ok(Outcome::Secret(SecretChange {
                    arn,
                    name,
                    version_id: None,
                    stages: Vec::new(),
                    deletion_date: None,
                    parameter_version: Some(version),
                }))
            }
            SecretsCommand::DeleteParameter { name } => match self.parameters.remove(&name) {
                Some(p) => Ok(Outcome::Secret(SecretChange {
                    arn: p.arn,
                    name,
                    version_id: None,
                    stages: Vec::new(),
                    deletion_date: None,
                    parameter_version: Some(p.version),
                })),
                None => Err(parameter_not_found(&name)),
            },
        }
    }
}

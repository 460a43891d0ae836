//! Secrets Manager and Parameter Store calls, in AWS's own JSON (PascalCase
//! members, as `aws secretsmanager` and `aws ssm` send them). A value is
//! sealed with the cluster key here, before it is proposed, so the Raft log
//! and snapshots hold only ciphertext; reads open it with this controller's
//! key. No value appears in an error or a log line.

use std::collections::BTreeMap;

use orca_core::json_input::parse_input;
use orca_core::secrets::{validate_parameter_name, validate_secret_name};
use orca_core::task_definition::{Tag, Timestamp};
use orca_core::{ApiError, Exception};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::ecs_service::EcsService;
use super::task_api::to_json;
use crate::secrets::key::{parameter_context, secret_context};
use crate::secrets::SecretsKey;
use crate::state::secrets::{
    parameter_not_found, secret_not_found, ParameterRecord, ParameterType, SecretChange,
    SecretRecord, SecretsCommand, CURRENT,
};
use crate::state::{Command, Outcome};

/// Secrets Manager's limit on a secret value.
const MAX_SECRET_BYTES: usize = 65_536;
/// Parameter Store's limit on a standard parameter's value.
const MAX_PARAMETER_BYTES: usize = 4_096;
const MAX_DESCRIPTION: usize = 2_048;
/// GetParameters takes at most this many names.
const MAX_NAMES: usize = 10;

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
struct AwsTag {
    key: String,
    value: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct CreateSecretInput {
    name: String,
    description: Option<String>,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    tags: Option<Vec<AwsTag>>,
    client_request_token: Option<String>,
    /// Accepted and ignored: the cluster key seals every value.
    #[allow(dead_code)]
    kms_key_id: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutSecretValueInput {
    secret_id: String,
    secret_string: Option<String>,
    secret_binary: Option<String>,
    client_request_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetSecretValueInput {
    secret_id: String,
    version_id: Option<String>,
    version_stage: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct SecretIdInput {
    secret_id: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DeleteSecretInput {
    secret_id: String,
    recovery_window_in_days: Option<i64>,
    force_delete_without_recovery: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListFilter {
    key: String,
    values: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListSecretsInput {
    max_results: Option<i64>,
    next_token: Option<String>,
    include_planned_deletion: Option<bool>,
    filters: Option<Vec<ListFilter>>,
    /// Accepted; secrets are listed by name.
    #[allow(dead_code)]
    sort_order: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct PutParameterInput {
    name: String,
    value: String,
    #[serde(rename = "Type")]
    kind: Option<String>,
    description: Option<String>,
    overwrite: Option<bool>,
    /// Accepted and ignored, as `KmsKeyId` above.
    #[serde(rename = "KeyId")]
    #[allow(dead_code)]
    key_id: Option<String>,
    /// Only Standard exists here; accepted for scripts that name it.
    tier: Option<String>,
    data_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParametersInput {
    names: Vec<String>,
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GetParameterInput {
    name: String,
    with_decryption: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ParameterNameInput {
    name: String,
}

/// Epoch seconds, as AWS's JSON 1.1 protocols send timestamps.
fn seconds(t: Timestamp) -> Value {
    json!(t.0 as f64 / 1000.0)
}

fn invalid(field: &str, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::InvalidParameterException, field, rule)
}

fn check_description(d: &Option<String>) -> Result<(), ApiError> {
    match d {
        Some(d) if d.chars().count() > MAX_DESCRIPTION => Err(invalid(
            "Description",
            format!("has at most {MAX_DESCRIPTION} characters"),
        )),
        _ => Ok(()),
    }
}

/// The secret's value: a SecretString (SecretBinary is not stored).
fn secret_string(s: Option<String>, binary: Option<String>) -> Result<String, ApiError> {
    if binary.is_some() {
        return Err(ApiError::new(
            Exception::UnsupportedFeatureException,
            "SecretBinary is not supported: store the value as SecretString (base64 it first)",
        ));
    }
    let s = s.ok_or_else(|| invalid("SecretString", "is required"))?;
    if s.len() > MAX_SECRET_BYTES {
        return Err(invalid(
            "SecretString",
            format!("is {} bytes; at most {MAX_SECRET_BYTES}", s.len()),
        ));
    }
    Ok(s)
}

/// The version id: the caller's ClientRequestToken (32–64 characters, as
/// Secrets Manager requires), else a new one.
fn version_id(token: Option<String>) -> Result<String, ApiError> {
    match token {
        Some(t) if (32..=64).contains(&t.len()) => Ok(t),
        Some(_) => Err(invalid("ClientRequestToken", "has 32 to 64 characters")),
        None => Ok(uuid::Uuid::new_v4().to_string()),
    }
}

fn unexpected(outcome: Outcome) -> ApiError {
    ApiError::server(format!(
        "unexpected outcome of a secrets command: {outcome:?}"
    ))
}

fn change(outcome: Outcome) -> Result<SecretChange, ApiError> {
    match outcome {
        Outcome::Secret(c) => Ok(c),
        other => Err(unexpected(other)),
    }
}

fn describe(s: &SecretRecord) -> Value {
    let stages: BTreeMap<&str, &Vec<String>> = s
        .versions
        .iter()
        .map(|v| (v.version_id.as_str(), &v.stages))
        .collect();
    let mut out = json!({
        "ARN": s.arn,
        "Name": s.name,
        "LastChangedDate": seconds(s.last_changed_at),
        "CreatedDate": seconds(s.created_at),
        "Tags": s.tags.iter().map(|t| AwsTag { key: t.key.clone(), value: t.value.clone() }).collect::<Vec<_>>(),
        "VersionIdsToStages": stages,
    });
    if let Some(d) = &s.description {
        out["Description"] = json!(d);
    }
    if let Some(d) = s.deleted_at {
        out["DeletedDate"] = seconds(d);
    }
    out
}

impl EcsService {
    fn key(&self) -> Result<&SecretsKey, ApiError> {
        self.node.secrets_key.as_deref().ok_or_else(|| {
            ApiError::new(
                Exception::InvalidRequestException,
                "this controller has no secrets key: start every controller with \
                 --secrets-key-file to store and read secrets and parameters",
            )
        })
    }

    async fn propose_secrets(&self, command: SecretsCommand) -> Result<SecretChange, ApiError> {
        change(self.node.propose(Command::Secrets(command)).await?)
    }

    /// The name of the live secret `id` names (name or ARN).
    fn secret_name(&self, field: &str, id: &str) -> Result<String, ApiError> {
        if id.is_empty() {
            return Err(invalid(field, "is required"));
        }
        let now = self.clock.now();
        self.read(|s| s.secret_by_id(id, now).map(|r| r.name.clone()))
            .ok_or_else(|| secret_not_found(id))
    }

    pub(crate) async fn create_secret_json(&self, json: &str) -> Result<String, ApiError> {
        let input: CreateSecretInput = parse_input(json, "CreateSecret")?;
        validate_secret_name("Name", &input.name)?;
        check_description(&input.description)?;
        let value = secret_string(input.secret_string, input.secret_binary)?;
        let version_id = version_id(input.client_request_token)?;
        let key = self.key()?;
        let suffix: String = uuid::Uuid::new_v4()
            .simple()
            .to_string()
            .chars()
            .take(6)
            .collect();
        let tags = input
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|t| Tag {
                key: t.key,
                value: t.value,
            })
            .collect();
        let sealed = key.seal(&value, &secret_context(&input.name, &version_id));
        drop(value);
        let c = self
            .propose_secrets(SecretsCommand::CreateSecret {
                arn: self.node.arn.secret(&input.name, &suffix),
                name: input.name,
                description: input.description,
                tags,
                version_id,
                sealed,
                at: self.clock.now(),
            })
            .await?;
        to_json(&json!({"ARN": c.arn, "Name": c.name, "VersionId": c.version_id}))
    }

    pub(crate) async fn put_secret_value_json(&self, json: &str) -> Result<String, ApiError> {
        let input: PutSecretValueInput = parse_input(json, "PutSecretValue")?;
        let name = self.secret_name("SecretId", &input.secret_id)?;
        let value = secret_string(input.secret_string, input.secret_binary)?;
        let version_id = version_id(input.client_request_token)?;
        let sealed = self
            .key()?
            .seal(&value, &secret_context(&name, &version_id));
        let c = self
            .propose_secrets(SecretsCommand::PutSecretValue {
                name,
                version_id,
                sealed,
                at: self.clock.now(),
            })
            .await?;
        to_json(&json!({
            "ARN": c.arn, "Name": c.name, "VersionId": c.version_id, "VersionStages": c.stages,
        }))
    }

    pub(crate) fn get_secret_value_json(&self, json: &str) -> Result<String, ApiError> {
        let input: GetSecretValueInput = parse_input(json, "GetSecretValue")?;
        let key = self.key()?;
        let now = self.clock.now();
        let view = self.node.view();
        let s = view
            .secret_by_id(&input.secret_id, now)
            .ok_or_else(|| secret_not_found(&input.secret_id))?;
        if s.deleted_at.is_some() {
            return Err(ApiError::new(
                Exception::InvalidRequestException,
                format!(
                    "You can't perform this operation on the secret {} because it was marked \
                     for deletion.",
                    s.name
                ),
            ));
        }
        let v = s
            .version(input.version_id.as_deref(), input.version_stage.as_deref())
            .ok_or_else(|| {
                ApiError::new(
                    Exception::ResourceNotFoundException,
                    format!(
                        "Secrets Manager can't find the specified secret value for {}: {}",
                        if input.version_id.is_some() {
                            "VersionId"
                        } else {
                            "staging label"
                        },
                        input
                            .version_id
                            .as_deref()
                            .or(input.version_stage.as_deref())
                            .unwrap_or(CURRENT)
                    ),
                )
            })?;
        let value = key
            .open(&v.sealed, &secret_context(&s.name, &v.version_id))
            .map_err(|e| ApiError::server(e.to_string()))?;
        to_json(&json!({
            "ARN": s.arn,
            "Name": s.name,
            "VersionId": v.version_id,
            "SecretString": value.expose(),
            "VersionStages": v.stages,
            "CreatedDate": seconds(v.created_at),
        }))
    }

    pub(crate) fn describe_secret_json(&self, json: &str) -> Result<String, ApiError> {
        let input: SecretIdInput = parse_input(json, "DescribeSecret")?;
        let now = self.clock.now();
        let view = self.node.view();
        let s = view
            .secret_by_id(&input.secret_id, now)
            .ok_or_else(|| secret_not_found(&input.secret_id))?;
        to_json(&describe(s))
    }

    pub(crate) fn list_secrets_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListSecretsInput = parse_input(json, "ListSecrets")?;
        let max = match input.max_results {
            None => 100,
            Some(n @ 1..=100) => n as usize,
            Some(_) => return Err(invalid("MaxResults", "must be from 1 to 100")),
        };
        let mut prefixes = Vec::new();
        for (i, f) in input.filters.iter().flatten().enumerate() {
            if f.key != "name" {
                return Err(invalid(
                    &format!("Filters[{i}].Key"),
                    format!("orca filters secrets by 'name' only, not '{}'", f.key),
                ));
            }
            prefixes.extend(f.values.iter().cloned());
        }
        let now = self.clock.now();
        let with_deleted = input.include_planned_deletion.unwrap_or(false);
        let view = self.node.view();
        let after = input.next_token.unwrap_or_default();
        let mut page: Vec<Value> = Vec::new();
        let mut next = None;
        for s in view
            .secrets
            .range::<_, String>((
                std::ops::Bound::Excluded(after.clone()),
                std::ops::Bound::Unbounded,
            ))
            .map(|(_, s)| s)
            .filter(|s| !s.expired(now))
            .filter(|s| with_deleted || s.deleted_at.is_none())
            .filter(|s| prefixes.is_empty() || prefixes.iter().any(|p| s.name.starts_with(p)))
        {
            if page.len() == max {
                next = page
                    .last()
                    .and_then(|v| v["Name"].as_str().map(str::to_string));
                break;
            }
            let mut entry = describe(s);
            if let Some(obj) = entry.as_object_mut() {
                if let Some(stages) = obj.remove("VersionIdsToStages") {
                    obj.insert("SecretVersionsToStages".into(), stages);
                }
            }
            page.push(entry);
        }
        let mut out = json!({"SecretList": page});
        if let Some(token) = next {
            out["NextToken"] = json!(token);
        }
        to_json(&out)
    }

    pub(crate) async fn delete_secret_json(&self, json: &str) -> Result<String, ApiError> {
        let input: DeleteSecretInput = parse_input(json, "DeleteSecret")?;
        let force = input.force_delete_without_recovery.unwrap_or(false);
        let recovery_days = match (force, input.recovery_window_in_days) {
            (true, Some(_)) => {
                return Err(invalid(
                    "RecoveryWindowInDays",
                    "cannot be given with ForceDeleteWithoutRecovery",
                ))
            }
            (true, None) => None,
            (false, None) => Some(30),
            (false, Some(d @ 7..=30)) => Some(d as u32),
            (false, Some(_)) => {
                return Err(invalid("RecoveryWindowInDays", "must be from 7 to 30"))
            }
        };
        let name = self.secret_name("SecretId", &input.secret_id)?;
        let c = self
            .propose_secrets(SecretsCommand::DeleteSecret {
                name,
                recovery_days,
                at: self.clock.now(),
            })
            .await?;
        to_json(&json!({
            "ARN": c.arn, "Name": c.name, "DeletionDate": c.deletion_date.map(seconds),
        }))
    }

    pub(crate) async fn restore_secret_json(&self, json: &str) -> Result<String, ApiError> {
        let input: SecretIdInput = parse_input(json, "RestoreSecret")?;
        let name = self.secret_name("SecretId", &input.secret_id)?;
        let c = self
            .propose_secrets(SecretsCommand::RestoreSecret {
                name,
                at: self.clock.now(),
            })
            .await?;
        to_json(&json!({"ARN": c.arn, "Name": c.name}))
    }

    pub(crate) async fn put_parameter_json(&self, json: &str) -> Result<String, ApiError> {
        let input: PutParameterInput = parse_input(json, "PutParameter")?;
        validate_parameter_name("Name", &input.name)?;
        check_description(&input.description)?;
        if input.value.is_empty() || input.value.len() > MAX_PARAMETER_BYTES {
            return Err(invalid(
                "Value",
                format!("has 1 to {MAX_PARAMETER_BYTES} bytes (a standard parameter)"),
            ));
        }
        if let Some(t) = input.tier.as_deref().filter(|t| *t != "Standard") {
            return Err(invalid(
                "Tier",
                format!("only Standard is served, not '{t}'"),
            ));
        }
        if let Some(d) = input.data_type.as_deref().filter(|d| *d != "text") {
            return Err(invalid(
                "DataType",
                format!("only text is served, not '{d}'"),
            ));
        }
        let existing = self.read(|s| s.parameter(&input.name).map(|p| p.kind));
        let kind = match (input.kind.as_deref(), existing) {
            (Some(t), _) => ParameterType::parse("Type", t)?,
            (None, Some(kind)) => kind,
            (None, None) => ParameterType::String,
        };
        let sealed = self
            .key()?
            .seal(&input.value, &parameter_context(&input.name));
        let c = self
            .propose_secrets(SecretsCommand::PutParameter {
                arn: self.node.arn.parameter(&input.name),
                name: input.name,
                kind,
                description: input.description,
                sealed,
                overwrite: input.overwrite.unwrap_or(false),
                at: self.clock.now(),
            })
            .await?;
        to_json(&json!({"Version": c.parameter_version, "Tier": "Standard"}))
    }

    fn render_parameter(&self, p: &ParameterRecord, decrypt: bool) -> Result<Value, ApiError> {
        let value = if p.kind == ParameterType::SecureString && !decrypt {
            // As Parameter Store: the ciphertext, not the value.
            p.sealed.ciphertext.clone()
        } else {
            self.key()?
                .open(&p.sealed, &parameter_context(&p.name))
                .map_err(|e| ApiError::server(e.to_string()))?
                .expose()
                .to_string()
        };
        Ok(json!({
            "Name": p.name,
            "Type": p.kind.name(),
            "Value": value,
            "Version": p.version,
            "LastModifiedDate": seconds(p.last_modified),
            "ARN": p.arn,
            "DataType": "text",
        }))
    }

    pub(crate) fn get_parameters_json(&self, json: &str) -> Result<String, ApiError> {
        let input: GetParametersInput = parse_input(json, "GetParameters")?;
        if input.names.is_empty() || input.names.len() > MAX_NAMES {
            return Err(invalid("Names", format!("lists 1 to {MAX_NAMES} names")));
        }
        let decrypt = input.with_decryption.unwrap_or(false);
        let view = self.node.view();
        let mut found = Vec::new();
        let mut missing = Vec::new();
        for name in &input.names {
            match view.parameter(name) {
                Some(p) => found.push(self.render_parameter(p, decrypt)?),
                None => missing.push(name.clone()),
            }
        }
        to_json(&json!({"Parameters": found, "InvalidParameters": missing}))
    }

    pub(crate) fn get_parameter_json(&self, json: &str) -> Result<String, ApiError> {
        let input: GetParameterInput = parse_input(json, "GetParameter")?;
        let view = self.node.view();
        let p = view
            .parameter(&input.name)
            .ok_or_else(|| parameter_not_found(&input.name))?;
        let rendered = self.render_parameter(p, input.with_decryption.unwrap_or(false))?;
        to_json(&json!({ "Parameter": rendered }))
    }

    pub(crate) async fn delete_parameter_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ParameterNameInput = parse_input(json, "DeleteParameter")?;
        self.propose_secrets(SecretsCommand::DeleteParameter { name: input.name })
            .await?;
        to_json(&json!({}))
    }
}

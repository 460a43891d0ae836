//! The Secrets Manager commands, named and flagged as `aws secretsmanager`
//! names them: create-secret, put-secret-value, get-secret-value,
//! describe-secret, list-secrets, delete-secret, restore-secret. A value
//! may be given as `file://path`, which keeps it out of shell history.

use serde_json::{json, Value};

use super::{shape, Ctx};
use crate::failover::Call;
use crate::input::read_param;

#[derive(clap::Args, Debug)]
pub struct CreateSecretArgs {
    /// The secret's name (letters, digits and /_+=.@-).
    #[arg(long)]
    pub name: String,
    /// The value, or file://path to read it from.
    #[arg(long)]
    pub secret_string: String,
    #[arg(long)]
    pub description: Option<String>,
    /// Tags as Key=k,Value=v (repeatable).
    #[arg(long, num_args = 1..)]
    pub tags: Vec<String>,
    /// The first version's id (32 to 64 characters); made up if absent.
    #[arg(long)]
    pub client_request_token: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct PutSecretValueArgs {
    /// The secret's name or ARN.
    #[arg(long)]
    pub secret_id: String,
    /// The new value, or file://path.
    #[arg(long)]
    pub secret_string: String,
    #[arg(long)]
    pub client_request_token: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct GetSecretValueArgs {
    /// The secret's name or ARN.
    #[arg(long)]
    pub secret_id: String,
    #[arg(long)]
    pub version_id: Option<String>,
    /// AWSCURRENT (the default) or AWSPREVIOUS.
    #[arg(long)]
    pub version_stage: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct SecretIdArgs {
    /// The secret's name or ARN.
    #[arg(long)]
    pub secret_id: String,
}

#[derive(clap::Args, Debug)]
pub struct ListSecretsArgs {
    #[arg(long)]
    pub max_results: Option<u32>,
    #[arg(long)]
    pub next_token: Option<String>,
    /// Also list secrets marked for deletion.
    #[arg(long)]
    pub include_planned_deletion: bool,
    /// Only secrets whose name starts with this (Secrets Manager's
    /// `--filters Key=name,Values=...`).
    #[arg(long)]
    pub name_prefix: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct DeleteSecretArgs {
    /// The secret's name or ARN.
    #[arg(long)]
    pub secret_id: String,
    /// Days (7 to 30, default 30) before the secret is gone for good;
    /// restore-secret undoes the deletion meanwhile.
    #[arg(long)]
    pub recovery_window_in_days: Option<u32>,
    /// Delete at once, with no recovery window.
    #[arg(long)]
    pub force_delete_without_recovery: bool,
}

fn tags(values: &[String]) -> anyhow::Result<Option<Value>> {
    if values.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for v in values {
        let mut key = None;
        let mut value = None;
        for part in v.split(',') {
            match part.split_once('=') {
                Some(("Key", k)) => key = Some(k.to_string()),
                Some(("Value", x)) => value = Some(x.to_string()),
                _ => anyhow::bail!("--tags: '{v}' is not Key=k,Value=v"),
            }
        }
        let key = key.ok_or_else(|| anyhow::anyhow!("--tags: '{v}' has no Key"))?;
        out.push(json!({"Key": key, "Value": value.unwrap_or_default()}));
    }
    Ok(Some(Value::Array(out)))
}

fn string(s: &Option<String>) -> Option<Value> {
    s.clone().map(Value::String)
}

pub async fn create_secret(a: &CreateSecretArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("Name", Some(json!(a.name))),
        (
            "SecretString",
            Some(json!(read_param("--secret-string", &a.secret_string)?)),
        ),
        ("Description", string(&a.description)),
        ("Tags", tags(&a.tags)?),
        ("ClientRequestToken", string(&a.client_request_token)),
    ]);
    let reply = ctx
        .secrets("CreateSecret", Call::Write, input, |mut c, r| async move {
            c.create_secret(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn put_secret_value(a: &PutSecretValueArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("SecretId", Some(json!(a.secret_id))),
        (
            "SecretString",
            Some(json!(read_param("--secret-string", &a.secret_string)?)),
        ),
        ("ClientRequestToken", string(&a.client_request_token)),
    ]);
    let reply = ctx
        .secrets(
            "PutSecretValue",
            Call::Write,
            input,
            |mut c, r| async move { c.put_secret_value(r).await },
        )
        .await?;
    shape::ecs_json(&reply)
}

pub async fn get_secret_value(a: &GetSecretValueArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("SecretId", Some(json!(a.secret_id))),
        ("VersionId", string(&a.version_id)),
        ("VersionStage", string(&a.version_stage)),
    ]);
    let reply = ctx
        .secrets("GetSecretValue", Call::Read, input, |mut c, r| async move {
            c.get_secret_value(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn describe_secret(a: &SecretIdArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([("SecretId", Some(json!(a.secret_id)))]);
    let reply = ctx
        .secrets("DescribeSecret", Call::Read, input, |mut c, r| async move {
            c.describe_secret(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn list_secrets(a: &ListSecretsArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("MaxResults", a.max_results.map(|n| json!(n))),
        ("NextToken", string(&a.next_token)),
        (
            "IncludePlannedDeletion",
            a.include_planned_deletion.then_some(json!(true)),
        ),
        (
            "Filters",
            a.name_prefix
                .as_ref()
                .map(|p| json!([{"Key": "name", "Values": [p]}])),
        ),
    ]);
    let reply = ctx
        .secrets("ListSecrets", Call::Read, input, |mut c, r| async move {
            c.list_secrets(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn delete_secret(a: &DeleteSecretArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([
        ("SecretId", Some(json!(a.secret_id))),
        (
            "RecoveryWindowInDays",
            a.recovery_window_in_days.map(|n| json!(n)),
        ),
        (
            "ForceDeleteWithoutRecovery",
            a.force_delete_without_recovery.then_some(json!(true)),
        ),
    ]);
    let reply = ctx
        .secrets("DeleteSecret", Call::Write, input, |mut c, r| async move {
            c.delete_secret(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

pub async fn restore_secret(a: &SecretIdArgs, ctx: &Ctx) -> anyhow::Result<Value> {
    let input = shape::input_object([("SecretId", Some(json!(a.secret_id)))]);
    let reply = ctx
        .secrets("RestoreSecret", Call::Write, input, |mut c, r| async move {
            c.restore_secret(r).await
        })
        .await?;
    shape::ecs_json(&reply)
}

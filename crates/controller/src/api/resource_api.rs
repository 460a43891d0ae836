//! ECS's calls about resources in general: tags (TagResource,
//! UntagResource, ListTagsForResource), account settings (ListAccountSettings,
//! PutAccountSetting, PutAccountSettingDefault), PutClusterCapacityProviders
//! (stored, as ECS stores them) and ListServicesByNamespace (orca has no
//! Service Connect namespaces yet: an empty list). JSON in, JSON out.

use orca_core::arn::{cluster_name, tagged_resource};
use orca_core::cluster::{CapacityProviderStrategyItem, ClusterCapacity};
use orca_core::json_input::parse_input;
use orca_core::task_definition::{validate_tags, Tag};
use orca_core::{ApiError, Exception};
use serde::Deserialize;
use serde_json::{json, Value};

use super::convert::{self, ClusterInclude};
use super::ecs_service::EcsService;
use super::task_api::{page, to_json};
use crate::state::account_settings::{AccountSetting, ACCOUNT_DEFAULT};
use crate::state::query::{paginate, SortOrder};
use crate::state::{Command, Outcome};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TagResourceInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UntagResourceInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListTagsInput {
    resource_arn: String,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutAccountSettingInput {
    name: String,
    value: String,
    #[serde(default)]
    principal_arn: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ListAccountSettingsInput {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    value: Option<String>,
    #[serde(default)]
    principal_arn: Option<String>,
    #[serde(default)]
    effective_settings: Option<bool>,
    #[serde(default)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PutCapacityProvidersInput {
    cluster: String,
    capacity_providers: Vec<String>,
    default_capacity_provider_strategy: Vec<CapacityProviderStrategyItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListByNamespaceInput {
    namespace: String,
    #[serde(default)]
    #[allow(dead_code)]
    next_token: Option<String>,
    #[serde(default)]
    max_results: Option<u32>,
}

/// ECS's `Setting`.
fn setting_json(s: &AccountSetting) -> Value {
    json!({
        "name": s.name,
        "value": s.value,
        "principalArn": s.principal,
        "type": if s.user_set { "user" } else { "aws_managed" },
    })
}

impl EcsService {
    fn root(&self) -> String {
        self.node.arn.default_principal()
    }

    pub(super) async fn tag_resource_json(&self, json: &str) -> Result<String, ApiError> {
        let input: TagResourceInput = parse_input(json, "TagResource")?;
        let resource = tagged_resource(&input.resource_arn, "resourceArn")?;
        validate_tags(&input.tags, "tags")?;
        let command = Command::TagResource {
            resource,
            tags: input.tags,
        };
        match self.node.propose(command).await? {
            Outcome::Tags(_) => Ok("{}".to_string()),
            other => Err(ApiError::server(format!(
                "unexpected outcome of TagResource: {other:?}"
            ))),
        }
    }

    pub(super) async fn untag_resource_json(&self, json: &str) -> Result<String, ApiError> {
        let input: UntagResourceInput = parse_input(json, "UntagResource")?;
        let resource = tagged_resource(&input.resource_arn, "resourceArn")?;
        let command = Command::UntagResource {
            resource,
            keys: input.tag_keys,
        };
        match self.node.propose(command).await? {
            Outcome::Tags(_) => Ok("{}".to_string()),
            other => Err(ApiError::server(format!(
                "unexpected outcome of UntagResource: {other:?}"
            ))),
        }
    }

    pub(super) fn list_tags_for_resource_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListTagsInput = parse_input(json, "ListTagsForResource")?;
        let resource = tagged_resource(&input.resource_arn, "resourceArn")?;
        let tags = self.read(|s| s.resource_tags(&resource))?;
        to_json(&json!({ "tags": tags }))
    }

    /// PutAccountSetting (`default`: false) or PutAccountSettingDefault.
    pub(super) async fn put_account_setting_json(
        &self,
        json: &str,
        default: bool,
    ) -> Result<String, ApiError> {
        let operation = if default {
            "PutAccountSettingDefault"
        } else {
            "PutAccountSetting"
        };
        let input: PutAccountSettingInput = parse_input(json, operation)?;
        orca_core::account_settings::validate(&input.name, &input.value)?;
        let root = self.root();
        let principal = match (default, input.principal_arn) {
            (true, _) => ACCOUNT_DEFAULT.to_string(),
            (false, Some(p)) if p == root => ACCOUNT_DEFAULT.to_string(),
            (false, Some(p)) => p,
            // The caller: orca has no identities yet, so the account's root.
            (false, None) => ACCOUNT_DEFAULT.to_string(),
        };
        let command = Command::PutAccountSetting {
            principal,
            name: input.name,
            value: input.value,
        };
        match self.node.propose(command).await? {
            Outcome::AccountSetting(mut s) => {
                if s.principal == ACCOUNT_DEFAULT {
                    s.principal = root;
                }
                to_json(&json!({ "setting": setting_json(&s) }))
            }
            other => Err(ApiError::server(format!(
                "unexpected outcome of {operation}: {other:?}"
            ))),
        }
    }

    pub(super) fn list_account_settings_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListAccountSettingsInput = parse_input(json, "ListAccountSettings")?;
        if let Some(name) = &input.name {
            if orca_core::account_settings::aws_default(name).is_none() {
                orca_core::account_settings::validate(name, "")?;
            }
        }
        let root = self.root();
        let principal = match input.principal_arn.as_deref() {
            None => ACCOUNT_DEFAULT.to_string(),
            Some(p) if p == root => ACCOUNT_DEFAULT.to_string(),
            Some(p) => p.to_string(),
        };
        let shown = |p: &str| {
            if p == ACCOUNT_DEFAULT {
                root.clone()
            } else {
                p.to_string()
            }
        };
        let settings: Vec<AccountSetting> = self.read(|s| {
            let names: Vec<&str> = match &input.name {
                Some(n) => vec![n.as_str()],
                None => orca_core::account_settings::SETTINGS
                    .iter()
                    .map(|(n, _, _)| *n)
                    .collect(),
            };
            if input.effective_settings.unwrap_or(false) {
                names
                    .iter()
                    .filter_map(|n| s.effective_account_setting(&principal, n, &root))
                    .collect()
            } else {
                s.stored_account_settings(&principal)
                    .into_iter()
                    .filter(|(n, _)| names.contains(&n.as_str()))
                    .map(|(name, value)| AccountSetting {
                        name,
                        value,
                        principal: shown(&principal),
                        user_set: true,
                    })
                    .collect()
            }
        });
        let settings: Vec<AccountSetting> = settings
            .into_iter()
            .filter(|s| input.value.as_ref().is_none_or(|v| *v == s.value))
            .collect();
        let by_name: std::collections::BTreeMap<String, AccountSetting> =
            settings.into_iter().map(|s| (s.name.clone(), s)).collect();
        let page = paginate(
            by_name.keys().cloned(),
            SortOrder::Asc,
            &page(input.next_token, Some(input.max_results.unwrap_or(10))),
        )?;
        let mut out = json!({
            "settings": page.items.iter().filter_map(|n| by_name.get(n)).map(setting_json).collect::<Vec<_>>(),
        });
        if let Some(token) = page.next_token {
            out["nextToken"] = Value::String(token);
        }
        to_json(&out)
    }

    pub(super) async fn put_cluster_capacity_providers_json(
        &self,
        json: &str,
    ) -> Result<String, ApiError> {
        let input: PutCapacityProvidersInput = parse_input(json, "PutClusterCapacityProviders")?;
        let name = cluster_name(&input.cluster)?;
        let capacity = ClusterCapacity {
            providers: input.capacity_providers,
            default_strategy: input.default_capacity_provider_strategy,
        };
        capacity.validate()?;
        let outcome = self
            .node
            .propose(Command::PutClusterCapacityProviders { name, capacity })
            .await?;
        match outcome {
            Outcome::Cluster(c) => {
                let usage = self.read(|s| s.cluster_usage(&c.name));
                let wire = convert::cluster_to_wire(&c, usage, ClusterInclude::ALL);
                to_json(&json!({ "cluster": orca_api::ecs_json::cluster(&wire) }))
            }
            other => Err(ApiError::server(format!(
                "unexpected outcome of PutClusterCapacityProviders: {other:?}"
            ))),
        }
    }

    pub(super) fn list_services_by_namespace_json(&self, json: &str) -> Result<String, ApiError> {
        let input: ListByNamespaceInput = parse_input(json, "ListServicesByNamespace")?;
        if input.namespace.is_empty() {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "namespace",
                "is required",
            ));
        }
        if input.max_results.is_some_and(|m| !(1..=100).contains(&m)) {
            return Err(ApiError::field(
                Exception::InvalidParameterException,
                "maxResults",
                "must be between 1 and 100",
            ));
        }
        // No Service Connect namespaces in orca yet: no service is in one.
        to_json(&json!({ "serviceArns": [] }))
    }
}

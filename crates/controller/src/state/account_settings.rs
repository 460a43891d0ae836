//! ECS's account settings as stored: per principal ARN, and the account's
//! default under [`ACCOUNT_DEFAULT`]. Validated by the handler
//! (`orca_core::account_settings`); `apply` only records.

use super::{ClusterState, Outcome};

/// The key of the account's defaults (PutAccountSettingDefault).
pub const ACCOUNT_DEFAULT: &str = "";

/// One setting as ListAccountSettings shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountSetting {
    pub name: String,
    pub value: String,
    /// The principal it is set for; the account's root for a default.
    pub principal: String,
    /// Set by someone (`user`) or AWS's own default (`aws_managed`).
    pub user_set: bool,
}

impl ClusterState {
    pub(super) fn put_account_setting(
        &mut self,
        principal: String,
        name: String,
        value: String,
    ) -> Outcome {
        self.account_settings
            .entry(principal.clone())
            .or_default()
            .insert(name.clone(), value.clone());
        Outcome::AccountSetting(AccountSetting {
            name,
            value,
            principal,
            user_set: true,
        })
    }

    /// The setting in force for `principal`: its own, else the account's
    /// default, else AWS's. `root` names the account's default.
    pub fn effective_account_setting(
        &self,
        principal: &str,
        name: &str,
        root: &str,
    ) -> Option<AccountSetting> {
        let set = |who: &str| self.account_settings.get(who).and_then(|m| m.get(name));
        if let Some(v) = set(principal) {
            let shown = if principal == ACCOUNT_DEFAULT {
                root
            } else {
                principal
            };
            return Some(AccountSetting {
                name: name.to_string(),
                value: v.clone(),
                principal: shown.to_string(),
                user_set: true,
            });
        }
        if let Some(v) = set(ACCOUNT_DEFAULT) {
            return Some(AccountSetting {
                name: name.to_string(),
                value: v.clone(),
                principal: root.to_string(),
                user_set: true,
            });
        }
        orca_core::account_settings::aws_default(name).map(|v| AccountSetting {
            name: name.to_string(),
            value: v.to_string(),
            principal: root.to_string(),
            user_set: false,
        })
    }

    /// The settings stored for `principal` (the account default: "").
    pub fn stored_account_settings(&self, principal: &str) -> Vec<(String, String)> {
        self.account_settings
            .get(principal)
            .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default()
    }
}

//! Per-registry settings (mirrors, plain HTTP, credentials), in the spirit of
//! containerd's `hosts.toml`, and the order of endpoints a pull tries.
//!
//! The agent's TOML config embeds [`RegistriesConfig`]:
//!
//! ```toml
//! [registries.hosts."123456789012.dkr.ecr.us-east-1.amazonaws.com"]
//! mirrors = ["127.0.0.1:5000"]
//! insecure = true
//! ```
//!
//! Rules, chosen so that credentials never leave the registry they belong to:
//! - endpoints are tried in order: each mirror, then the host itself;
//! - an endpoint may be spoken to over plain HTTP only when the host entry
//!   that lists it says `insecure = true`, or when the endpoint has its own
//!   entry that does; everything else is HTTPS;
//! - the host itself is authenticated with the per-call credentials (ECS's
//!   repositoryCredentials) when given, else with its configured `auth`; a
//!   mirror is authenticated only with the `auth` of its own entry, if any.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::RegistryAuth;

/// Settings for every registry host the agent pulls from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct RegistriesConfig {
    /// Keyed by `host[:port]` exactly as image references name it
    /// (`docker.io` for Docker Hub references).
    #[serde(default)]
    pub hosts: BTreeMap<String, RegistryHostConfig>,
}

/// Settings for one registry host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub struct RegistryHostConfig {
    /// Endpoints (`host[:port]`) tried in order before the host itself; the
    /// repository path and tag are used unchanged on each.
    #[serde(default)]
    pub mirrors: Vec<String>,
    /// Plain HTTP is allowed for this host and its mirrors.
    #[serde(default)]
    pub insecure: bool,
    /// Credentials for the host itself.
    #[serde(default, with = "auth_serde")]
    pub auth: Option<RegistryAuth>,
}

/// One place a pull may fetch from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `host[:port]`.
    pub host: String,
    /// Whether this is a mirror rather than the reference's own host.
    pub mirror: bool,
    /// Credentials to present here.
    pub auth: Option<RegistryAuth>,
}

impl RegistriesConfig {
    /// The endpoints to try for an image on `host`, best first.
    pub fn endpoints(&self, host: &str, call_auth: Option<&RegistryAuth>) -> Vec<Endpoint> {
        let entry = self.hosts.get(host);
        let mut out: Vec<Endpoint> = entry
            .map(|e| e.mirrors.as_slice())
            .unwrap_or_default()
            .iter()
            .filter(|m| m.as_str() != host)
            .map(|m| Endpoint {
                host: m.clone(),
                mirror: true,
                auth: self.hosts.get(m).and_then(|own| own.auth.clone()),
            })
            .collect();
        out.push(Endpoint {
            host: host.to_string(),
            mirror: false,
            auth: call_auth
                .cloned()
                .or_else(|| entry.and_then(|e| e.auth.clone())),
        });
        out
    }

    /// Every endpoint that may be spoken to over plain HTTP.
    pub fn plain_http_endpoints(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (host, entry) in &self.hosts {
            if entry.insecure {
                out.push(host.clone());
                out.extend(entry.mirrors.iter().cloned());
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

/// `auth = { username = "...", password = "..." }` in TOML.
mod auth_serde {
    use serde::{Deserialize, Deserializer};

    use crate::RegistryAuth;

    #[derive(Deserialize)]
    #[serde(rename_all = "snake_case", deny_unknown_fields)]
    struct Basic {
        username: String,
        password: String,
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<RegistryAuth>, D::Error> {
        Ok(Option::<Basic>::deserialize(d)?.map(|b| RegistryAuth {
            username: b.username,
            password: b.password,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> RegistriesConfig {
        toml::from_str(text).expect("valid registries config")
    }

    #[test]
    fn mirrors_come_first_and_credentials_stay_with_their_host() {
        let cfg = parse(
            r#"
            [hosts."123456789012.dkr.ecr.us-east-1.amazonaws.com"]
            mirrors = ["127.0.0.1:5000"]
            insecure = true
            auth = { username = "AWS", password = "secret" }
            "#,
        );
        let eps = cfg.endpoints("123456789012.dkr.ecr.us-east-1.amazonaws.com", None);
        assert_eq!(eps.len(), 2);
        assert_eq!(eps[0].host, "127.0.0.1:5000");
        assert!(eps[0].mirror);
        assert_eq!(
            eps[0].auth, None,
            "a mirror never gets the host's credentials"
        );
        assert_eq!(
            eps[1].auth.as_ref().map(|a| a.username.as_str()),
            Some("AWS")
        );
        assert_eq!(
            cfg.plain_http_endpoints(),
            vec![
                "123456789012.dkr.ecr.us-east-1.amazonaws.com".to_string(),
                "127.0.0.1:5000".to_string()
            ]
        );
    }

    #[test]
    fn per_call_credentials_win_over_configured_ones() {
        let cfg = parse(
            r#"
            [hosts."r.example"]
            auth = { username = "cfg", password = "p" }
            "#,
        );
        let call = RegistryAuth {
            username: "call".into(),
            password: "q".into(),
        };
        let eps = cfg.endpoints("r.example", Some(&call));
        assert_eq!(
            eps,
            vec![Endpoint {
                host: "r.example".into(),
                mirror: false,
                auth: Some(call)
            }]
        );
    }

    #[test]
    fn unknown_hosts_get_https_only_and_unknown_fields_are_rejected() {
        let cfg = RegistriesConfig::default();
        assert_eq!(cfg.endpoints("docker.io", None).len(), 1);
        assert!(cfg.plain_http_endpoints().is_empty());
        assert!(toml::from_str::<RegistriesConfig>("[hosts.a]\nmirror = []\n").is_err());
    }
}

//! What a container's `secrets[].valueFrom` refers to, in the forms ECS's
//! documentation and tutorials write:
//!
//! | valueFrom | refers to |
//! |---|---|
//! | `NAME` or `/path/NAME` | the parameter of that name, else the secret of that name (orca also takes secret names; ECS wants an ARN for those) |
//! | `arn:<p>:ssm:<region>:<account>:parameter/NAME` | parameter `NAME` or `/NAME` |
//! | `arn:<p>:secretsmanager:<region>:<account>:secret:NAME` | secret `NAME` (with or without the ARN's 6-character suffix) |
//! | `...:secret:NAME:KEY:STAGE:VERSION` | the JSON key `KEY` of the secret's value, of version stage `STAGE` or version id `VERSION` (each may be empty: `...:secret:NAME:password::`) |
//!
//! orca is one site: an ARN's partition, region and account are not
//! compared with the cluster's.

use crate::{ApiError, Exception};

/// A Secrets Manager reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretRef {
    /// The secret's name, possibly with its ARN's `-XXXXXX` suffix.
    pub name: String,
    /// The top-level key of a JSON secret value to inject instead of the
    /// whole value.
    pub json_key: Option<String>,
    pub version_stage: Option<String>,
    pub version_id: Option<String>,
}

/// A Parameter Store reference: the names it may mean, first match wins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterRef {
    pub candidates: Vec<String>,
}

/// A parsed `valueFrom`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueFrom {
    Secret(SecretRef),
    Parameter(ParameterRef),
    /// A bare name: a parameter of that name, else a secret.
    Name(String),
}

fn invalid(field: &str, rule: impl std::fmt::Display) -> ApiError {
    ApiError::field(Exception::ClientException, field, rule)
}

impl ValueFrom {
    /// Parses `value_from`; `field` is its path in the request (for
    /// example `containerDefinitions[0].secrets[1].valueFrom`).
    pub fn parse(field: &str, value_from: &str) -> Result<ValueFrom, ApiError> {
        if value_from.is_empty() {
            return Err(invalid(field, "must name a secret or parameter"));
        }
        if !value_from.starts_with("arn:") {
            if value_from.contains(':') {
                return Err(invalid(
                    field,
                    format!(
                        "'{value_from}' is neither a name nor an ARN (arn:...:ssm:...:parameter/NAME \
                         or arn:...:secretsmanager:...:secret:NAME)"
                    ),
                ));
            }
            return Ok(ValueFrom::Name(value_from.to_string()));
        }
        let parts: Vec<&str> = value_from.split(':').collect();
        let service = parts.get(2).copied().unwrap_or_default();
        let resource = parts.get(5).copied().unwrap_or_default();
        match service {
            "secretsmanager" if resource == "secret" && parts.len() >= 7 => {
                let name = parts[6];
                if name.is_empty() || parts.len() > 10 {
                    return Err(invalid(
                        field,
                        format!(
                            "'{value_from}': a secret ARN is ...:secret:NAME or \
                             ...:secret:NAME:JSON_KEY:VERSION_STAGE:VERSION_ID"
                        ),
                    ));
                }
                let part = |i: usize| {
                    parts
                        .get(i)
                        .filter(|p| !p.is_empty())
                        .map(|p| p.to_string())
                };
                Ok(ValueFrom::Secret(SecretRef {
                    name: name.to_string(),
                    json_key: part(7),
                    version_stage: part(8),
                    version_id: part(9),
                }))
            }
            "ssm" if parts.len() == 6 => match resource.strip_prefix("parameter/") {
                Some(name) if !name.is_empty() => {
                    let bare = name.trim_start_matches('/');
                    // `parameter/prod/db` is `/prod/db`; `parameter/db` is
                    // `db` (or `/db`).
                    let candidates = if bare.contains('/') {
                        vec![format!("/{bare}"), bare.to_string()]
                    } else {
                        vec![bare.to_string(), format!("/{bare}")]
                    };
                    Ok(ValueFrom::Parameter(ParameterRef { candidates }))
                }
                _ => Err(invalid(
                    field,
                    format!("'{value_from}': a parameter ARN ends in parameter/NAME"),
                )),
            },
            _ => Err(invalid(
                field,
                format!(
                    "'{value_from}' is not a Secrets Manager secret ARN \
                     (arn:...:secretsmanager:...:secret:NAME) nor a Parameter Store ARN \
                     (arn:...:ssm:...:parameter/NAME)"
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: &str) -> Result<ValueFrom, String> {
        ValueFrom::parse("secrets[0].valueFrom", v).map_err(|e| e.message)
    }

    #[test]
    fn the_forms_ecs_tutorials_write() {
        assert_eq!(
            parse("db_password"),
            Ok(ValueFrom::Name("db_password".into()))
        );
        assert_eq!(parse("/prod/db"), Ok(ValueFrom::Name("/prod/db".into())));
        assert_eq!(
            parse("arn:aws:ssm:us-east-1:123456789012:parameter/prod/db"),
            Ok(ValueFrom::Parameter(ParameterRef {
                candidates: vec!["/prod/db".into(), "prod/db".into()]
            }))
        );
        assert_eq!(
            parse("arn:aws:ssm:us-east-1:123456789012:parameter/db"),
            Ok(ValueFrom::Parameter(ParameterRef {
                candidates: vec!["db".into(), "/db".into()]
            }))
        );
        assert_eq!(
            parse("arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/db-AbCdEf"),
            Ok(ValueFrom::Secret(SecretRef {
                name: "prod/db-AbCdEf".into(),
                json_key: None,
                version_stage: None,
                version_id: None,
            }))
        );
        assert_eq!(
            parse("arn:aws:secretsmanager:us-east-1:1:secret:db:password::"),
            Ok(ValueFrom::Secret(SecretRef {
                name: "db".into(),
                json_key: Some("password".into()),
                version_stage: None,
                version_id: None,
            }))
        );
        assert_eq!(
            parse("arn:orca:secretsmanager:local:0:secret:db:user:AWSPREVIOUS:"),
            Ok(ValueFrom::Secret(SecretRef {
                name: "db".into(),
                json_key: Some("user".into()),
                version_stage: Some("AWSPREVIOUS".into()),
                version_id: None,
            }))
        );
    }

    #[test]
    fn anything_else_is_refused_naming_the_field() {
        for bad in [
            "",
            "a:b",
            "arn:aws:s3:::bucket",
            "arn:aws:ssm:r:a:document/x",
            "arn:aws:secretsmanager:r:a:secret:",
            "arn:aws:secretsmanager:r:a:secret:a:b:c:d:e",
        ] {
            let e = parse(bad).err().unwrap_or_default();
            assert!(e.starts_with("secrets[0].valueFrom: "), "{bad}: {e}");
        }
    }
}

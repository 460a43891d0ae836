//! The naming rules of Secrets Manager secrets and Parameter Store
//! parameters, as AWS states them.

use crate::{ApiError, Exception};

/// Secrets Manager: 1–512 characters of letters, digits and `/_+=.@-`.
pub fn validate_secret_name(field: &str, name: &str) -> Result<(), ApiError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c);
    if name.is_empty() || name.len() > 512 {
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            field,
            "a secret name has 1 to 512 characters",
        ));
    }
    if let Some(c) = name.chars().find(|c| !ok_char(*c)) {
        return Err(ApiError::field(
            Exception::InvalidParameterException,
            field,
            format!("'{c}' is not allowed in a secret name (letters, digits and /_+=.@- only)"),
        ));
    }
    Ok(())
}

/// Parameter Store: 1–2048 characters of letters, digits and `_.-/`; a
/// name with a `/` is a path and starts with one; at most 15 levels; no
/// name starts with `aws` or `ssm` (reserved).
pub fn validate_parameter_name(field: &str, name: &str) -> Result<(), ApiError> {
    let err = |rule: String| {
        Err(ApiError::field(
            Exception::InvalidParameterException,
            field,
            rule,
        ))
    };
    if name.is_empty() || name.len() > 2048 {
        return err("a parameter name has 1 to 2048 characters".into());
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "_.-/".contains(*c)))
    {
        return err(format!(
            "'{c}' is not allowed in a parameter name (letters, digits and _.-/ only)"
        ));
    }
    if name.contains('/') && !name.starts_with('/') {
        return err("a parameter name with a '/' is a path and must start with '/'".into());
    }
    if name.contains("//") || (name.len() > 1 && name.ends_with('/')) || name == "/" {
        return err("a parameter path has no empty level".into());
    }
    if name.matches('/').count() > 15 {
        return err("a parameter path has at most 15 levels".into());
    }
    let first = name.trim_start_matches('/').to_ascii_lowercase();
    if first.starts_with("aws") || first.starts_with("ssm") {
        return err("parameter names starting with 'aws' or 'ssm' are reserved".into());
    }
    Ok(())
}

/// The resource part of a parameter's ARN: `parameter/NAME`, a path's
/// leading slash dropped (`/prod/db` → `parameter/prod/db`), as AWS does.
pub fn parameter_arn_name(name: &str) -> String {
    format!("parameter/{}", name.trim_start_matches('/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_names_follow_secrets_managers_rules() {
        assert!(validate_secret_name("Name", "prod/db-password_1+=.@").is_ok());
        let e = validate_secret_name("Name", "a b").err().map(|e| e.message);
        assert_eq!(
            e.as_deref(),
            Some("Name: ' ' is not allowed in a secret name (letters, digits and /_+=.@- only)")
        );
        assert!(validate_secret_name("Name", "").is_err());
        assert!(validate_secret_name("Name", &"x".repeat(513)).is_err());
    }

    #[test]
    fn parameter_names_follow_parameter_stores_rules() {
        for ok in ["db", "/prod/db", "/a/b.c-d_e"] {
            assert!(validate_parameter_name("Name", ok).is_ok(), "{ok}");
        }
        for bad in ["prod/db", "/a//b", "/a/", "a b", "/aws/x", "ssm-x", "/"] {
            assert!(validate_parameter_name("Name", bad).is_err(), "{bad}");
        }
        let deep = "/a".repeat(16);
        assert!(validate_parameter_name("Name", &deep).is_err());
        assert_eq!(parameter_arn_name("/prod/db"), "parameter/prod/db");
        assert_eq!(parameter_arn_name("db"), "parameter/db");
    }
}

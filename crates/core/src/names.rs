//! The names the agent joins into paths (task ids, container names),
//! checked in one place. Architecture invariant: the agent never joins a
//! name into a path before it passed these checks, so a name such as
//! `../../etc` from a faulty or hostile controller cannot reach outside the
//! agent's directories (the agent runs as root).

/// Why a name cannot be used in a path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{what} {name:?} is not valid: {rule}")]
pub struct NameError {
    pub what: &'static str,
    pub name: String,
    pub rule: &'static str,
}

fn check(what: &'static str, name: &str, max: usize, rule: &'static str) -> Result<(), NameError> {
    let ok_chars = name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if name.is_empty() || name.len() > max || !ok_chars {
        return Err(NameError {
            what,
            name: name.to_string(),
            rule,
        });
    }
    Ok(())
}

/// ECS's rule for container names: 1 to 255 letters, digits, hyphens and
/// underscores.
pub fn check_container_name(name: &str) -> Result<(), NameError> {
    check(
        "container name",
        name,
        255,
        "1 to 255 letters, digits, hyphens and underscores",
    )
}

/// Task ids as the controller makes them (hex), with room for letters,
/// hyphens and underscores; never a separator or a dot.
pub fn check_task_id(id: &str) -> Result<(), NameError> {
    check(
        "task id",
        id,
        128,
        "1 to 128 letters, digits, hyphens and underscores",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_names_pass() {
        assert!(check_container_name("web_1-a").is_ok());
        assert!(check_task_id("0123456789abcdef0123456789abcdef").is_ok());
        for bad in ["", "..", "../x", "a/b", "a b", "é", "a.log", "x\0"] {
            assert!(check_container_name(bad).is_err(), "{bad:?}");
            assert!(check_task_id(bad).is_err(), "{bad:?}");
        }
        assert!(check_container_name(&"x".repeat(255)).is_ok());
        assert!(check_container_name(&"x".repeat(256)).is_err());
        let e = check_container_name("../etc").unwrap_err();
        assert_eq!(
            e.to_string(),
            "container name \"../etc\" is not valid: 1 to 255 letters, digits, hyphens and underscores"
        );
    }
}

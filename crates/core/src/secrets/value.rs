//! A secret's plaintext as it travels to a container: it serializes (the
//! leader sends it to the agent) but never prints.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A plaintext secret value. `Debug` and `Display` print `***`, so a value
/// inside any logged structure (an assignment, a container spec, an error)
/// stays out of logs and traces; read it with [`SecretValue::expose`] only
/// where it is handed to a container.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: impl Into<String>) -> Self {
        SecretValue(value.into())
    }

    /// The plaintext. Call sites are the few places a value is handed on:
    /// the container's environment or file, the API reply that asked for
    /// it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_never_prints_but_travels() {
        let v = SecretValue::new("hunter2");
        assert_eq!(format!("{v:?} {v} {:?}", Some(&v)), "*** *** Some(***)");
        let json = serde_json::to_string(&v).unwrap_or_default();
        assert_eq!(json, "\"hunter2\"");
        let back: SecretValue = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.expose(), "hunter2");
    }
}

//! The controller's side of secrets: the cluster key that seals values
//! (`key.rs`), the startup check that this controller's key is the
//! cluster's (`guard.rs`), and the resolution of a task's `secrets[]` for
//! its agent (`resolve.rs`). Records and their rules are in
//! `state/secrets.rs`; the API in `api/secrets_api.rs`.

pub mod guard;
pub mod key;
pub mod resolve;

pub use key::{KeyError, SecretsKey};

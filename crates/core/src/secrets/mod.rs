//! Secrets, the Secrets Manager and Parameter Store analogue: names and
//! their rules, what a task definition's `secrets[].valueFrom` refers to,
//! the value type that never prints, and orca's one extension for secrets
//! (files on a tmpfs instead of environment variables).
//!
//! Values are encrypted by the controller before they are proposed (the
//! Raft log and snapshots hold only ciphertext) and decrypted by the leader
//! for the agent that runs a task needing them; neither happens here.

pub mod files;
pub mod names;
pub mod reference;
pub mod value;

pub use files::{secret_files_dir, SECRET_FILES_LABEL};
pub use names::{parameter_arn_name, validate_parameter_name, validate_secret_name};
pub use reference::{ParameterRef, SecretRef, ValueFrom};
pub use value::SecretValue;

//! orca's one extension for secrets: a container whose docker label
//! `orca.secrets.files` names an absolute directory gets each of its
//! `secrets[]` as a file `<dir>/<name>` on a tmpfs mounted read-only
//! there, instead of an environment variable, so the value stays out of
//! containerd's metadata store (which keeps each container's environment).
//!
//! The extension rides on `dockerLabels` because ECS's schema has no field
//! for it and the aws CLI and boto3 refuse unknown members: a definition
//! with the label registers unchanged through either, and a plain ECS
//! definition (no label) is read exactly as before. ARCHITECTURE.md lists
//! where orca's extensions live.

use crate::task_definition::ContainerDefinition;
use crate::{ApiError, Exception};

/// The docker label that turns a container's secrets into files.
pub const SECRET_FILES_LABEL: &str = "orca.secrets.files";

/// The directory a container's secrets are written to, when it asks for
/// files; `field` is the container's path in the request.
pub fn secret_files_dir(
    field: &str,
    container: &ContainerDefinition,
) -> Result<Option<String>, ApiError> {
    let Some(dir) = container
        .docker_labels
        .as_ref()
        .and_then(|l| l.get(SECRET_FILES_LABEL))
    else {
        return Ok(None);
    };
    let at = format!("{field}.dockerLabels.{SECRET_FILES_LABEL}");
    let bad = |rule: &str| Err(ApiError::field(Exception::ClientException, &at, rule));
    if !dir.starts_with('/') || dir == "/" {
        return bad("must be an absolute directory other than / (for example /run/secrets)");
    }
    if dir.split('/').any(|p| p == ".." || p == ".") {
        return bad("must not contain . or .. components");
    }
    if dir.chars().any(|c| c.is_control() || c == ',' || c == ':') {
        return bad("must not contain control characters, ',' or ':'");
    }
    Ok(Some(dir.trim_end_matches('/').to_string()))
}

/// A secret's name as a file name: ECS's `secrets[].name` is an
/// environment variable name, which is always a valid file name but for
/// `/`, refused here.
pub fn valid_file_name(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/') && !name.contains('\0')
}

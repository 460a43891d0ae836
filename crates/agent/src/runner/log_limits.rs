//! How much of a container's output the node keeps: the agent's default
//! (`log_max_size`, `log_max_files`), or the json-file driver's own
//! `max-size` / `max-file` options when the container's logConfiguration
//! names them, as Docker reads them (`10m`, `512k`, `1g`, plain bytes; a
//! count of files). An option that cannot be read keeps the default (the
//! definition was accepted by ECS's rules, which do not check driver
//! options).

use orca_core::task_definition::{ContainerDefinition, LogDriver};
use orca_runtime::log_rotation::LogRotation;

/// The rotation for `def`'s log file.
pub fn rotation(def: &ContainerDefinition, default: Option<LogRotation>) -> Option<LogRotation> {
    let options = def
        .log_configuration
        .as_ref()
        .filter(|c| c.log_driver == LogDriver::JsonFile)
        .and_then(|c| c.options.as_ref());
    let Some(options) = options else {
        return default;
    };
    let size = options.get("max-size").and_then(|s| docker_size(s));
    let files = options
        .get("max-file")
        .and_then(|f| f.trim().parse::<u32>().ok())
        .filter(|f| *f > 0);
    match (size, files, default) {
        (None, None, d) => d,
        (Some(max_bytes), files, _) => Some(LogRotation {
            max_bytes,
            // Docker keeps one file when only max-size is given.
            max_files: files.unwrap_or(1),
        }),
        (None, Some(max_files), Some(d)) => Some(LogRotation { max_files, ..d }),
        (None, Some(_), None) => None,
    }
}

/// Docker's size syntax (`units.RAMInBytes`): a number with an optional
/// `b`, `k`, `m`, `g` suffix (powers of 1024, case-insensitive).
pub fn docker_size(text: &str) -> Option<u64> {
    let t = text.trim().to_ascii_lowercase();
    let t = t.strip_suffix('b').filter(|s| !s.is_empty()).unwrap_or(&t);
    let (digits, scale) = match t.char_indices().last()? {
        (i, 'k') => (&t[..i], 1u64 << 10),
        (i, 'm') => (&t[..i], 1 << 20),
        (i, 'g') => (&t[..i], 1 << 30),
        _ => (t, 1),
    };
    let n: u64 = digits.trim().parse().ok()?;
    n.checked_mul(scale).filter(|b| *b > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(log: serde_json::Value) -> ContainerDefinition {
        serde_json::from_value(serde_json::json!({
            "name": "app", "image": "img", "logConfiguration": log
        }))
        .unwrap_or_else(|e| panic!("{e}"))
    }

    const DEFAULT: LogRotation = LogRotation {
        max_bytes: 10 << 20,
        max_files: 5,
    };

    #[test]
    fn docker_sizes_read_as_docker_reads_them() {
        assert_eq!(docker_size("10m"), Some(10 << 20));
        assert_eq!(docker_size("512k"), Some(512 << 10));
        assert_eq!(docker_size("1G"), Some(1 << 30));
        assert_eq!(docker_size("100"), Some(100));
        assert_eq!(docker_size("100b"), Some(100));
        assert_eq!(docker_size("2kb"), Some(2048));
        for bad in ["", "m", "ten", "0", "-1k", "1t"] {
            assert_eq!(docker_size(bad), None, "{bad}");
        }
    }

    #[test]
    fn json_file_options_override_the_agents_default() {
        let both = def(serde_json::json!({"logDriver": "json-file",
            "options": {"max-size": "64k", "max-file": "3"}}));
        assert_eq!(
            rotation(&both, Some(DEFAULT)),
            Some(LogRotation {
                max_bytes: 64 << 10,
                max_files: 3
            })
        );
        let size_only =
            def(serde_json::json!({"logDriver": "json-file", "options": {"max-size": "1m"}}));
        assert_eq!(
            rotation(&size_only, None),
            Some(LogRotation {
                max_bytes: 1 << 20,
                max_files: 1
            })
        );
        assert_eq!(
            rotation(&size_only, Some(DEFAULT)).map(|r| r.max_files),
            Some(1)
        );
        let unreadable =
            def(serde_json::json!({"logDriver": "json-file", "options": {"max-size": "lots"}}));
        assert_eq!(rotation(&unreadable, Some(DEFAULT)), Some(DEFAULT));
        let awslogs = def(serde_json::json!({"logDriver": "awslogs",
            "options": {"max-size": "1k", "awslogs-group": "g"}}));
        assert_eq!(rotation(&awslogs, Some(DEFAULT)), Some(DEFAULT));
        assert_eq!(rotation(&awslogs, None), None);
    }
}

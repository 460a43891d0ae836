//! Where to connect and how to print: from the flags, then the environment
//! (`ORCA_ENDPOINT`, `ORCA_OUTPUT`), then the config file (`$ORCA_CONFIG` or
//! `~/.orca/config.toml`), then the defaults (127.0.0.1:7470, json).

use crate::exit::CliError;
use crate::output::OutputFormat;
use clap::ValueEnum;
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const DEFAULT_ENDPOINT: &str = "127.0.0.1:7470";

/// The settings a command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Controllers to try in order; each call fails over along the list (see `failover`).
    pub endpoints: Vec<String>,
    pub output: OutputFormat,
}

/// Everything that can set a [`Settings`] field, highest precedence first.
#[derive(Debug, Default)]
pub struct Sources {
    pub flag_endpoint: Option<String>,
    pub flag_output: Option<OutputFormat>,
    pub env_endpoint: Option<String>,
    pub env_output: Option<String>,
    /// The config file to read; a missing file is the same as an empty one.
    pub config_path: Option<PathBuf>,
}

/// The config file's keys; unknown keys are ignored.
#[derive(Debug, Default, Deserialize)]
struct FileConfig {
    endpoint: Option<String>,
    endpoints: Option<Vec<String>>,
    output: Option<String>,
}

impl Sources {
    /// The flags plus this process's environment and home directory.
    pub fn from_env(flag_endpoint: Option<String>, flag_output: Option<OutputFormat>) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let config_path = var("ORCA_CONFIG")
            .map(PathBuf::from)
            .or_else(|| var("HOME").map(|h| Path::new(&h).join(".orca").join("config.toml")));
        Sources {
            flag_endpoint,
            flag_output,
            env_endpoint: var("ORCA_ENDPOINT"),
            env_output: var("ORCA_OUTPUT"),
            config_path,
        }
    }
}

/// Applies the precedence rules.
pub fn resolve(sources: Sources) -> Result<Settings, CliError> {
    let file = match &sources.config_path {
        Some(path) => read_file(path)?,
        None => FileConfig::default(),
    };
    let file_endpoints = match (file.endpoints, file.endpoint) {
        (Some(list), _) if !list.is_empty() => Some(list.join(",")),
        (_, one) => one,
    };
    let endpoint_list = sources
        .flag_endpoint
        .or(sources.env_endpoint)
        .or(file_endpoints)
        .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
    let endpoints: Vec<String> = endpoint_list
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_string)
        .collect();
    if endpoints.is_empty() {
        return Err(CliError::usage(
            "no endpoint given: use --endpoint HOST:PORT",
        ));
    }
    let output = match (sources.flag_output, sources.env_output, file.output) {
        (Some(o), _, _) => o,
        (None, Some(name), _) => parse_output(&name, "ORCA_OUTPUT")?,
        (None, None, Some(name)) => {
            let origin = sources
                .config_path
                .as_deref()
                .map(Path::display)
                .map(|p| p.to_string());
            parse_output(&name, origin.as_deref().unwrap_or("the config file"))?
        }
        (None, None, None) => OutputFormat::Json,
    };
    Ok(Settings { endpoints, output })
}

fn parse_output(name: &str, origin: &str) -> Result<OutputFormat, CliError> {
    OutputFormat::from_str(name.trim(), true).map_err(|_| {
        CliError::usage(format!(
            "invalid output '{name}' in {origin}: expected json, table or text"
        ))
    })
}

fn read_file(path: &Path) -> Result<FileConfig, CliError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => {
            return Err(CliError::usage(format!(
                "cannot read config file {}: {e}",
                path.display()
            )))
        }
    };
    toml::from_str(&text)
        .map_err(|e| CliError::usage(format!("invalid config file {}: {e}", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> anyhow::Result<tempfile::NamedTempFile> {
        let f = tempfile::NamedTempFile::new()?;
        std::fs::write(f.path(), text)?;
        Ok(f)
    }

    #[test]
    fn defaults_apply_without_any_source() -> anyhow::Result<()> {
        let s = resolve(Sources {
            config_path: Some("/nonexistent/orca.toml".into()),
            ..Sources::default()
        })?;
        assert_eq!(
            s,
            Settings {
                endpoints: vec![DEFAULT_ENDPOINT.into()],
                output: OutputFormat::Json
            }
        );
        Ok(())
    }

    #[test]
    fn flag_beats_env_beats_file() -> anyhow::Result<()> {
        let f = config("endpoint = \"file:1\"\noutput = \"text\"\n")?;
        let path = Some(f.path().to_path_buf());
        let s = resolve(Sources {
            config_path: path.clone(),
            ..Sources::default()
        })?;
        assert_eq!(
            s,
            Settings {
                endpoints: vec!["file:1".into()],
                output: OutputFormat::Text
            }
        );

        let s = resolve(Sources {
            env_endpoint: Some("env:1, env:2".into()),
            env_output: Some("table".into()),
            config_path: path.clone(),
            ..Sources::default()
        })?;
        assert_eq!(
            s,
            Settings {
                endpoints: vec!["env:1".into(), "env:2".into()],
                output: OutputFormat::Table
            }
        );

        let s = resolve(Sources {
            flag_endpoint: Some("flag:1".into()),
            flag_output: Some(OutputFormat::Json),
            env_endpoint: Some("env:1".into()),
            env_output: Some("table".into()),
            config_path: path,
        })?;
        assert_eq!(
            s,
            Settings {
                endpoints: vec!["flag:1".into()],
                output: OutputFormat::Json
            }
        );
        Ok(())
    }

    #[test]
    fn endpoint_lists_and_bad_files() -> anyhow::Result<()> {
        let f = config("endpoints = [\"a:1\", \"b:2\"]\nendpoint = \"ignored:3\"\n")?;
        let s = resolve(Sources {
            config_path: Some(f.path().to_path_buf()),
            ..Sources::default()
        })?;
        assert_eq!(s.endpoints, vec!["a:1", "b:2"]);

        let f = config("output = \"yaml\"\n")?;
        let e = resolve(Sources {
            config_path: Some(f.path().to_path_buf()),
            ..Sources::default()
        });
        assert!(matches!(e, Err(CliError::Usage(m)) if m.contains("yaml")));

        let f = config("endpoint = [\n")?;
        let e = resolve(Sources {
            config_path: Some(f.path().to_path_buf()),
            ..Sources::default()
        });
        assert!(
            matches!(e, Err(CliError::Usage(m)) if m.contains(&f.path().display().to_string()))
        );
        Ok(())
    }
}

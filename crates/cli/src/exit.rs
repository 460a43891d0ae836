//! The errors the CLI reports on its own terms, their one-line messages and
//! their exit codes (the AWS CLI's: 252 usage, 254 service, 255 connection,
//! including a write whose connection broke after it was sent).

use std::fmt;
use std::io::Write;

/// Bad flags, unreadable files, malformed JSON or shorthand.
pub const USAGE: u8 = 252;
/// The controller answered with an ECS exception.
pub const SERVICE: u8 = 254;
/// No controller could be reached, or anything else went wrong.
pub const CONNECTION: u8 = 255;

#[derive(Debug)]
pub enum CliError {
    /// The command line or a file it names is wrong; the message names the flag or path.
    Usage(String),
    /// The controller refused the call.
    Service {
        /// The ECS operation in PascalCase, e.g. `RegisterTaskDefinition`.
        operation: &'static str,
        /// The ECS exception name, e.g. `ClientException`.
        exception: String,
        message: String,
    },
    /// None of the endpoints could be reached.
    Connect { endpoints: Vec<String> },
    /// The connection failed after a write was sent: it may or may not have
    /// been applied, so it was not retried elsewhere.
    Interrupted {
        operation: &'static str,
        endpoint: String,
    },
}

impl CliError {
    pub fn usage(message: impl Into<String>) -> Self {
        CliError::Usage(message.into())
    }

    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Usage(_) => USAGE,
            CliError::Service { .. } => SERVICE,
            CliError::Connect { .. } | CliError::Interrupted { .. } => CONNECTION,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Usage(message) => f.write_str(message),
            CliError::Service {
                operation,
                exception,
                message,
            } => write!(
                f,
                "An error occurred ({exception}) when calling the {operation} operation: {message}"
            ),
            CliError::Connect { endpoints } => {
                let lines: Vec<String> = endpoints
                    .iter()
                    .map(|e| format!("Could not connect to the endpoint URL: \"{e}\""))
                    .collect();
                f.write_str(&lines.join("\n"))
            }
            CliError::Interrupted {
                operation,
                endpoint,
            } => write!(
                f,
                "Connection was closed before we received a valid response from endpoint URL: \"{endpoint}\". \
                 The {operation} request may or may not have been applied; check before retrying it."
            ),
        }
    }
}

impl std::error::Error for CliError {}

/// Prints `err` to stderr and returns the exit code it stands for.
pub fn report(err: &anyhow::Error) -> u8 {
    let (message, code) = match err.downcast_ref::<CliError>() {
        Some(e) => (e.to_string(), e.exit_code()),
        None => (format!("{err:#}"), CONNECTION),
    };
    // Nothing more can be done when stderr itself is gone.
    let _ = writeln!(std::io::stderr(), "{message}");
    code
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_and_codes_follow_the_aws_cli() {
        let e = CliError::Service {
            operation: "RegisterTaskDefinition",
            exception: "ClientException".into(),
            message: "family is required".into(),
        };
        assert_eq!(
            e.to_string(),
            "An error occurred (ClientException) when calling the RegisterTaskDefinition operation: family is required"
        );
        assert_eq!(e.exit_code(), 254);
        let e = CliError::Connect {
            endpoints: vec!["127.0.0.1:1".into()],
        };
        assert_eq!(
            e.to_string(),
            "Could not connect to the endpoint URL: \"127.0.0.1:1\""
        );
        assert_eq!(e.exit_code(), 255);
        let e = CliError::Interrupted {
            operation: "CreateCluster",
            endpoint: "127.0.0.1:1".into(),
        };
        assert_eq!(
            e.to_string(),
            "Connection was closed before we received a valid response from endpoint URL: \"127.0.0.1:1\". \
             The CreateCluster request may or may not have been applied; check before retrying it."
        );
        assert_eq!(e.exit_code(), 255);
        assert_eq!(CliError::usage("bad").exit_code(), 252);
        assert_eq!(report(&anyhow::Error::new(CliError::usage("x"))), 252);
        assert_eq!(report(&anyhow::anyhow!("other")), 255);
    }
}

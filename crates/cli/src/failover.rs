//! When a call to one controller fails, whether to try the next endpoint, and
//! what to report when no endpoint is left. Pure: [`commands::Ctx`] runs the
//! loop, this decides.
//!
//! A failed call is one of: a transport failure before the request was sent
//! (connect refused, timed out, no route), a transport failure after it may
//! have been sent (connection reset, closed mid-call), a controller answering
//! UNAVAILABLE without an ECS exception (down, starting, no leader yet), or a
//! service error carrying an exception. Reads go to the next endpoint on any
//! of the first three; writes only when the request was never sent, because a
//! write that may have reached a controller may also have been applied.
//!
//! [`commands::Ctx`]: crate::commands::Ctx

use crate::exit::CliError;
use tonic::{Code, Status};

/// Whether a call only reads (describe, list, members) or changes state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Read,
    Write,
}

/// Where a call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client could not reach the controller or lost it mid-call.
    Transport,
    /// The controller answered UNAVAILABLE without an ECS exception.
    Unavailable,
    /// The controller answered with an ECS exception or another final status.
    Service,
}

/// A failed call, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    pub kind: ErrorKind,
    /// False only when the connection failed before the request went out.
    pub request_sent: bool,
}

impl Failure {
    /// Opening the connection failed: nothing was sent.
    pub const CONNECT: Failure = Failure {
        kind: ErrorKind::Transport,
        request_sent: false,
    };
}

/// Whether the same call should go to the next endpoint.
pub fn try_next(kind: ErrorKind, call: Call, request_sent: bool) -> bool {
    match kind {
        ErrorKind::Service => false,
        ErrorKind::Transport | ErrorKind::Unavailable => !request_sent || call == Call::Read,
    }
}

/// Classifies the status a call on an open channel failed with. Statuses the
/// client made itself carry the transport error as their source; statuses a
/// controller sent have none. A `tonic::ConnectError` in the source chain
/// means the channel had to reconnect and could not, so nothing was sent.
pub fn classify(status: &Status) -> Failure {
    let sent = |kind| Failure {
        kind,
        request_sent: true,
    };
    if status
        .metadata()
        .get(orca_api::error::EXCEPTION_KEY)
        .is_some()
    {
        return sent(ErrorKind::Service);
    }
    if orca_api::error::never_sent(status) {
        return Failure::CONNECT;
    }
    if std::error::Error::source(status).is_some() {
        return sent(ErrorKind::Transport);
    }
    if status.code() == Code::Unavailable {
        sent(ErrorKind::Unavailable)
    } else {
        sent(ErrorKind::Service)
    }
}

/// The error to report once the call is given up: `failure` is the last one,
/// `status` its status (none when the connection could not be opened),
/// `endpoint` where it happened and `tried` every endpoint this call used.
pub fn give_up(
    operation: &'static str,
    call: Call,
    failure: Failure,
    status: Option<&Status>,
    endpoint: &str,
    tried: Vec<String>,
) -> CliError {
    match (failure.kind, status) {
        (ErrorKind::Service | ErrorKind::Unavailable, Some(status)) => {
            let error = orca_api::error::from_status(status);
            CliError::Service {
                operation,
                exception: error.exception.name().to_string(),
                message: error.message,
            }
        }
        (ErrorKind::Transport, _) if failure.request_sent && call == Call::Write => {
            CliError::Interrupted {
                operation,
                endpoint: endpoint.to_string(),
            }
        }
        _ => CliError::Connect { endpoints: tried },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    #[test]
    fn the_policy_table() {
        use Call::*;
        use ErrorKind::*;
        // (kind, call, request_sent) -> try the next endpoint?
        let table = [
            (Transport, Read, false, true),
            (Transport, Read, true, true),
            (Transport, Write, false, true),
            (Transport, Write, true, false),
            (Unavailable, Read, true, true),
            (Unavailable, Write, true, false),
            (Unavailable, Write, false, true),
            (Service, Read, true, false),
            (Service, Write, true, false),
            (Service, Read, false, false),
        ];
        for (kind, call, sent, expected) in table {
            assert_eq!(
                try_next(kind, call, sent),
                expected,
                "{kind:?} {call:?} sent={sent}"
            );
        }
    }

    fn refused() -> std::io::Error {
        std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")
    }

    #[test]
    fn statuses_are_classified_by_exception_source_and_code() {
        // A reconnect that failed: tonic wraps the connector's error.
        let status = Status::from_error(Box::new(tonic::ConnectError(Box::new(refused()))));
        assert_eq!(status.code(), Code::Unavailable);
        assert_eq!(classify(&status), Failure::CONNECT);

        // The connection broke after the request went out.
        let status = Status::from_error(Box::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        )));
        assert_eq!(
            classify(&status),
            Failure {
                kind: ErrorKind::Transport,
                request_sent: true
            }
        );

        // A controller that is up but cannot serve yet.
        assert_eq!(
            classify(&Status::unavailable("no leader elected yet")),
            Failure {
                kind: ErrorKind::Unavailable,
                request_sent: true
            }
        );

        // An exception wins over the code, and other codes are final.
        let mut status = Status::unavailable("cluster is busy");
        status.metadata_mut().insert(
            orca_api::error::EXCEPTION_KEY,
            MetadataValue::from_static("ServerException"),
        );
        assert_eq!(classify(&status).kind, ErrorKind::Service);
        assert_eq!(
            classify(&Status::not_found("no cluster")).kind,
            ErrorKind::Service
        );
    }

    #[test]
    fn giving_up_reports_the_last_failure() {
        let tried = || vec!["a:1".to_string(), "b:2".to_string()];
        let e = give_up(
            "ListClusters",
            Call::Read,
            Failure::CONNECT,
            None,
            "b:2",
            tried(),
        );
        assert!(matches!(&e, CliError::Connect { endpoints } if endpoints.len() == 2));

        let sent = Failure {
            kind: ErrorKind::Transport,
            request_sent: true,
        };
        let status = Status::from_error(Box::new(refused()));
        let e = give_up(
            "CreateCluster",
            Call::Write,
            sent,
            Some(&status),
            "a:1",
            tried(),
        );
        assert!(
            matches!(&e, CliError::Interrupted { operation: "CreateCluster", endpoint } if endpoint == "a:1"),
            "{e:?}"
        );
        assert_eq!(e.exit_code(), crate::exit::CONNECTION);
        let e = give_up(
            "ListClusters",
            Call::Read,
            sent,
            Some(&status),
            "a:1",
            tried(),
        );
        assert!(matches!(e, CliError::Connect { .. }), "{e:?}");

        let status = Status::unavailable("controller is starting");
        let e = give_up(
            "Members",
            Call::Read,
            classify(&status),
            Some(&status),
            "b:2",
            tried(),
        );
        assert!(
            matches!(&e, CliError::Service { exception, message, .. }
                if exception == "ServerException" && message == "controller is starting"),
            "{e:?}"
        );
    }
}

//! ECS exceptions on the wire: a gRPC status whose code fits the exception,
//! with the exception's name in `orca-exception` and the JSON path of the field
//! at fault in `orca-field`. Encoded once here and decoded once here.

use orca_core::{ApiError, Exception};
use tonic::metadata::MetadataValue;
use tonic::{Code, Status};

pub const EXCEPTION_KEY: &str = "orca-exception";
pub const FIELD_KEY: &str = "orca-field";

fn code_of(exception: Exception) -> Code {
    match exception {
        Exception::ClientException
        | Exception::InvalidParameterException
        | Exception::LimitExceededException
        | Exception::AttributeLimitExceededException => Code::InvalidArgument,
        Exception::ClusterNotFoundException
        | Exception::ResourceNotFoundException
        | Exception::ServiceNotFoundException
        | Exception::ParameterNotFound => Code::NotFound,
        Exception::UnsupportedFeatureException => Code::Unimplemented,
        Exception::ServiceNotActiveException
        | Exception::ClusterContainsContainerInstancesException
        | Exception::ClusterContainsServicesException
        | Exception::ClusterContainsTasksException => Code::FailedPrecondition,
        Exception::InvalidRequestException => Code::FailedPrecondition,
        Exception::ConflictException
        | Exception::ResourceExistsException
        | Exception::ParameterAlreadyExists => Code::AlreadyExists,
        Exception::AccessDeniedException => Code::PermissionDenied,
        Exception::ServerException => Code::Internal,
    }
}

/// The status a handler returns for `error`.
pub fn to_status(error: &ApiError) -> Status {
    let mut status = Status::new(code_of(error.exception), error.message.clone());
    let md = status.metadata_mut();
    md.insert(
        EXCEPTION_KEY,
        MetadataValue::from_static(error.exception.name()),
    );
    if let Some(field) = &error.field {
        // A path is ASCII unless a client sent a non-ASCII key; such a path
        // is still named in the message.
        if let Ok(v) = MetadataValue::try_from(field.as_str()) {
            md.insert(FIELD_KEY, v);
        }
    }
    status
}

/// The ECS exception a status carries; statuses from elsewhere (transport
/// errors, an older server) become ServerException or ClientException by code.
pub fn from_status(status: &Status) -> ApiError {
    let md = status.metadata();
    let exception = md
        .get(EXCEPTION_KEY)
        .and_then(|v| v.to_str().ok())
        .and_then(Exception::from_name)
        .unwrap_or(match status.code() {
            Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition => {
                Exception::ClientException
            }
            _ => Exception::ServerException,
        });
    let field = md
        .get(FIELD_KEY)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    ApiError {
        exception,
        field,
        message: status.message().to_string(),
    }
}

/// Whether a call failed because the channel could not (re)connect: the
/// request never left this process, so even a write is safe to send again.
/// Statuses a server sent carry no source; transport failures carry the
/// transport error, with a `tonic::ConnectError` in the chain when the
/// connection could not be opened.
pub fn never_sent(status: &Status) -> bool {
    let mut source = std::error::Error::source(status);
    while let Some(e) = source {
        if e.is::<tonic::ConnectError>() {
            return true;
        }
        source = e.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_exception_round_trips_with_its_field() {
        for exception in Exception::ALL {
            let e = ApiError::field(exception, "containerDefinitions[0].name", "is required");
            assert_eq!(from_status(&to_status(&e)), e);
        }
        let plain = Status::unavailable("connection refused");
        assert_eq!(from_status(&plain).exception, Exception::ServerException);
    }
}

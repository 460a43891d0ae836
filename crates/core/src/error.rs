//! ECS's exception vocabulary: every error a client can see carries one of these
//! names, the JSON path of the field at fault (when there is one) and the rule.

use std::fmt;

/// The exception names ECS returns, kept verbatim so that scripts written
/// against `aws ecs` can match on them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum Exception {
    /// The request is wrong in a way the caller must fix (ECS: 400).
    ClientException,
    /// A parameter is malformed or out of range.
    InvalidParameterException,
    /// orca itself failed; the request may be retried.
    ServerException,
    ClusterNotFoundException,
    ClusterContainsContainerInstancesException,
    ClusterContainsServicesException,
    ClusterContainsTasksException,
    /// A named resource does not exist (ECS: ResourceNotFoundException).
    ResourceNotFoundException,
    LimitExceededException,
    /// More custom attributes on a resource than ECS allows (10).
    AttributeLimitExceededException,
    ServiceNotFoundException,
    /// The service is DRAINING or INACTIVE.
    ServiceNotActiveException,
    /// ECS supports it; orca does not (yet).
    UnsupportedFeatureException,
    /// The request conflicts with an earlier one (a clientToken reused
    /// with other parameters).
    ConflictException,
    /// The caller may not do this.
    AccessDeniedException,
    /// Secrets Manager: a secret of that name exists already.
    ResourceExistsException,
    /// Secrets Manager: the secret is in a state that forbids the call
    /// (marked for deletion).
    InvalidRequestException,
    /// Parameter Store: no parameter of that name.
    ParameterNotFound,
    /// Parameter Store: the parameter exists and `Overwrite` was not set.
    ParameterAlreadyExists,
}

impl Exception {
    pub const ALL: [Exception; 19] = [
        Exception::ClientException,
        Exception::InvalidParameterException,
        Exception::ServerException,
        Exception::ClusterNotFoundException,
        Exception::ClusterContainsContainerInstancesException,
        Exception::ClusterContainsServicesException,
        Exception::ClusterContainsTasksException,
        Exception::ResourceNotFoundException,
        Exception::LimitExceededException,
        Exception::AttributeLimitExceededException,
        Exception::ServiceNotFoundException,
        Exception::ServiceNotActiveException,
        Exception::UnsupportedFeatureException,
        Exception::ConflictException,
        Exception::AccessDeniedException,
        Exception::ResourceExistsException,
        Exception::InvalidRequestException,
        Exception::ParameterNotFound,
        Exception::ParameterAlreadyExists,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Exception::ClientException => "ClientException",
            Exception::InvalidParameterException => "InvalidParameterException",
            Exception::ServerException => "ServerException",
            Exception::ClusterNotFoundException => "ClusterNotFoundException",
            Exception::ClusterContainsContainerInstancesException => {
                "ClusterContainsContainerInstancesException"
            }
            Exception::ClusterContainsServicesException => "ClusterContainsServicesException",
            Exception::ClusterContainsTasksException => "ClusterContainsTasksException",
            Exception::ResourceNotFoundException => "ResourceNotFoundException",
            Exception::LimitExceededException => "LimitExceededException",
            Exception::AttributeLimitExceededException => "AttributeLimitExceededException",
            Exception::ServiceNotFoundException => "ServiceNotFoundException",
            Exception::ServiceNotActiveException => "ServiceNotActiveException",
            Exception::UnsupportedFeatureException => "UnsupportedFeatureException",
            Exception::ConflictException => "ConflictException",
            Exception::AccessDeniedException => "AccessDeniedException",
            Exception::ResourceExistsException => "ResourceExistsException",
            Exception::InvalidRequestException => "InvalidRequestException",
            Exception::ParameterNotFound => "ParameterNotFound",
            Exception::ParameterAlreadyExists => "ParameterAlreadyExists",
        }
    }

    /// ECS's HTTP status for it: 500 for a server fault, 400 otherwise
    /// (ECS's model marks every other exception a client error).
    pub fn http_status(self) -> u16 {
        match self {
            Exception::ServerException => 500,
            _ => 400,
        }
    }

    pub fn from_name(name: &str) -> Option<Exception> {
        Exception::ALL.into_iter().find(|e| e.name() == name)
    }
}

impl fmt::Display for Exception {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An error a client sees: ECS's exception name, the JSON path of the field at
/// fault (for example `containerDefinitions[1].healthCheck.interval`) and a
/// message that states the rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, serde::Serialize, serde::Deserialize)]
#[error("{exception}: {message}")]
pub struct ApiError {
    pub exception: Exception,
    /// JSON path of the offending field, when the error is about one field.
    pub field: Option<String>,
    pub message: String,
}

impl ApiError {
    pub fn new(exception: Exception, message: impl Into<String>) -> Self {
        ApiError {
            exception,
            field: None,
            message: message.into(),
        }
    }

    /// An error about one field; the message is prefixed with its path so that
    /// a human reading only the message still sees where the problem is.
    pub fn field(exception: Exception, path: impl Into<String>, rule: impl fmt::Display) -> Self {
        let path = path.into();
        let message = format!("{path}: {rule}");
        ApiError {
            exception,
            field: Some(path),
            message,
        }
    }

    pub fn client(message: impl Into<String>) -> Self {
        ApiError::new(Exception::ClientException, message)
    }

    pub fn invalid_parameter(message: impl Into<String>) -> Self {
        ApiError::new(Exception::InvalidParameterException, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        ApiError::new(Exception::ServerException, message)
    }
}

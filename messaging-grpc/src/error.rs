//! The crate's one error type, and its single mapping to gRPC status codes.

use sea_orm::DbErr;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::crypto::CryptoError;

/// Errors of the domain, store and crypto layers.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input; `field` is the request field at fault.
    #[error("{field}: {reason}")]
    InvalidArgument { field: &'static str, reason: String },
    /// The thing does not exist for this caller (also when it is someone else's).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("{0}")]
    FailedPrecondition(String),
    /// A position outside what can be served (an event cursor past retention).
    #[error("{0}")]
    OutOfRange(String),
    /// The database could not be reached; retryable.
    #[error("storage unavailable")]
    Unavailable(#[source] DbErr),
    /// A database error that retrying will not fix.
    #[error("storage error")]
    Storage(#[source] DbErr),
    /// Stored data failed to decrypt or parse: corruption or tampering.
    #[error("stored data failed an integrity check")]
    Integrity(#[from] CryptoError),
    /// The media store could not be reached; retryable.
    #[error("media store unavailable")]
    MediaStore(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        match err {
            DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => Self::Unavailable(err),
            _ => Self::Storage(err),
        }
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        // The field also travels as a google.rpc.BadRequest detail, so clients (and the
        // gateway's JSON errors) can name it without parsing the message.
        if let Error::InvalidArgument { field, reason } = &err {
            return Status::with_error_details(
                Code::InvalidArgument,
                err.to_string(),
                ErrorDetails::with_bad_request_violation(*field, reason.clone()),
            );
        }
        // Internal causes (SQL, crypto detail) go to the log, never to the caller.
        let code = match &err {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::OutOfRange(_) => Code::OutOfRange,
            Error::Unavailable(cause) => {
                tracing::warn!(error = %cause, "storage unavailable");
                Code::Unavailable
            }
            Error::Storage(cause) => {
                tracing::error!(error = %cause, "storage error");
                Code::Internal
            }
            Error::Integrity(cause) => {
                tracing::error!(error = %cause, "integrity check failed");
                Code::DataLoss
            }
            Error::MediaStore(cause) => {
                tracing::warn!(error = %cause, "media store unavailable");
                Code::Unavailable
            }
            Error::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                Code::Internal
            }
        };
        Status::new(code, err.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_messages() {
        let s: Status = Error::invalid("to", "must be E.164").into();
        assert_eq!(
            (s.code(), s.message()),
            (Code::InvalidArgument, "to: must be E.164")
        );
        let details = s.get_error_details();
        let violation = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(
            (violation.field.as_str(), violation.description.as_str()),
            ("to", "must be E.164")
        );
        let s: Status = Error::from(DbErr::Custom("SELECT secret FROM x".into())).into();
        assert_eq!(s.code(), Code::Internal);
        assert!(
            !s.message().contains("SELECT"),
            "SQL leaked: {}",
            s.message()
        );
        let s: Status =
            Error::from(DbErr::Conn(sea_orm::RuntimeErr::Internal("down".into()))).into();
        assert_eq!(s.code(), Code::Unavailable);
        let s: Status = Error::from(CryptoError::Authentication).into();
        assert_eq!(s.code(), Code::DataLoss);
    }
}

//! The crate's one error type (and `CryptoError`, the crypto module's, which it wraps),
//! and its single mapping to gRPC status codes.

use sea_orm::DbErr;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

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
    Integrity(#[source] CryptoError),
    /// A data key is wrapped under a master key missing from MESSAGING_MASTER_KEYS: a
    /// configuration error, not data loss. Retryable once the key is configured again.
    #[error("encryption key unavailable")]
    KeyUnavailable(#[source] CryptoError),
    /// The media store could not be reached; retryable.
    #[error("media store unavailable")]
    MediaStore(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// Everything that can go wrong in `crate::crypto`. None of the variants carries key or
/// plaintext material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    #[error("ciphertext is malformed: {0}")]
    Malformed(&'static str),
    #[error("ciphertext failed authentication (tampered, moved to another row, or wrong key)")]
    Authentication,
    #[error("master key `{0}` is not configured")]
    UnknownMasterKey(String),
    #[error("operating system random generator failed")]
    Random,
    #[error("plaintext is too large to encrypt")]
    TooLarge,
}

impl Error {
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field,
            reason: reason.into(),
        }
    }
}

impl From<CryptoError> for Error {
    fn from(err: CryptoError) -> Self {
        match err {
            CryptoError::UnknownMasterKey(_) => Self::KeyUnavailable(err),
            _ => Self::Integrity(err),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_transient(&err) {
            Self::Unavailable(err)
        } else {
            Self::Storage(err)
        }
    }
}

/// Whether retrying the same request may succeed: the database is unreachable,
/// busy, or aborted the transaction for concurrency (SQLite busy/locked, PostgreSQL
/// serialization failures, deadlocks, connection loss or shutdown). Callers get
/// UNAVAILABLE for these, never INTERNAL.
fn is_transient(err: &DbErr) -> bool {
    use std::ops::Deref as _;

    use sea_orm::{RuntimeErr, sqlx};
    let runtime = match err {
        DbErr::ConnectionAcquire(_) => return true,
        DbErr::Conn(r) | DbErr::Exec(r) | DbErr::Query(r) => r,
        _ => return false,
    };
    let RuntimeErr::SqlxError(e) = runtime else {
        return matches!(err, DbErr::Conn(_));
    };
    match e.deref() {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| transient_code(&c)),
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => matches!(err, DbErr::Conn(_)),
    }
}

/// SQLite result codes (primary and extended) and PostgreSQL SQLSTATEs that mean
/// "try again".
fn transient_code(code: &str) -> bool {
    const SQLITE: [&str; 6] = ["5", "6", "261", "262", "517", "773"]; // BUSY, LOCKED, …_RECOVERY/_SNAPSHOT/_TIMEOUT
    const POSTGRES: [&str; 5] = ["40001", "40P01", "55P03", "57P01", "57P03"];
    SQLITE.contains(&code) || POSTGRES.contains(&code) || code.starts_with("08")
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
            Error::KeyUnavailable(cause) => {
                tracing::error!(error = %cause, "a master key needed to decrypt is not configured; add it back to MESSAGING_MASTER_KEYS");
                Code::Unavailable
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
        let s: Status = Error::from(CryptoError::UnknownMasterKey("old".into())).into();
        assert_eq!(
            s.code(),
            Code::Unavailable,
            "a missing master key is configuration, not data loss"
        );
    }

    #[test]
    fn contention_and_lost_connections_are_retryable() {
        for code in ["5", "517", "40001", "40P01", "08006", "57P01"] {
            assert!(transient_code(code), "{code}");
        }
        for code in ["19", "2067", "23505", "42P01", "22001"] {
            assert!(!transient_code(code), "{code}");
        }
    }
}

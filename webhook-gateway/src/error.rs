//! The gateway's one error type, and the one choice of an HTTP status for a core
//! status. Each face renders a refusal its own way — Twilio's as plain text
//! ([`crate::plain::refusal`]), the REST API's as JSON (`api/error.rs`) — but which
//! status a core answer becomes is decided here, once, for both.

use hyper::StatusCode;
use tonic::Code;
use tonic_types::StatusExt;

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A configuration variable is missing or malformed (at start-up).
    #[error("configuration: {var}: {reason}")]
    Config {
        /// The variable at fault.
        var: &'static str,
        /// Why, for the operator.
        reason: String,
    },
    /// The core refused or failed a call.
    #[error("core answered {code:?}: {message}")]
    Core {
        /// The gRPC status code; [`http_status`] turns it into an HTTP one.
        code: Code,
        /// The core's message (replaced before it reaches a caller when internal).
        message: String,
        /// The request field the core named as at fault (its proto name), if any.
        field: Option<String>,
    },
    /// A request the gateway itself refuses (limits, signature, form, path, method).
    #[error("{message}")]
    Refused {
        /// The HTTP status of the answer.
        status: StatusCode,
        /// What went wrong, for programs (the REST API's `code`).
        code: &'static str,
        /// What went wrong, for people.
        message: String,
        /// The request field at fault, by its JSON name, when there is one.
        field: Option<String>,
    },
}

impl GatewayError {
    /// A refusal of the gateway's own.
    pub(crate) fn refused(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> Self {
        Self::Refused {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }
}

/// The core's answer, with the field its `BadRequest` details name. gRPC metadata is
/// dropped: no caller is shown it.
impl From<tonic::Status> for GatewayError {
    fn from(s: tonic::Status) -> Self {
        let field = s
            .get_error_details()
            .bad_request()
            .and_then(|b| b.field_violations.first())
            .map(|v| v.field.clone());
        Self::Core {
            code: s.code(),
            message: s.message().to_owned(),
            field,
        }
    }
}

/// A conversion that cannot fail (a REST shape's `From` of the core's answer), so
/// `TryFrom` and `From` shapes are rendered alike (`api/call.rs`).
impl From<std::convert::Infallible> for GatewayError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// Who is answered: the same core status means something else to each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Face {
    /// Twilio's webhooks and media fetches, made with the gateway's own service token.
    /// Twilio reads a 4xx as "do not retry" and a 5xx as "retry, or call the fallback
    /// URL", so the statuses only say which of the two.
    Twilio,
    /// The REST API, made with the caller's own token: the full range of statuses.
    Rest,
}

/// The HTTP status a core status becomes for `face`, and the code's name (the REST
/// API's `code`). The one place this choice is made.
pub(crate) fn http_status(code: Code, face: Face) -> (StatusCode, &'static str) {
    use StatusCode as S;
    // (REST, name, Twilio). For Twilio: refused content is 400 (retrying cannot help);
    // anything a retry may cure — and a refusal of our own service token, which an
    // operator fixes — is 503; the rest is a fault of ours, 500.
    #[rustfmt::skip]
    let (rest, name, twilio) = match code {
        Code::InvalidArgument    => (S::BAD_REQUEST,           "invalid_argument",    S::BAD_REQUEST),
        Code::OutOfRange         => (S::BAD_REQUEST,           "out_of_range",        S::BAD_REQUEST),
        Code::FailedPrecondition => (S::CONFLICT,              "failed_precondition", S::BAD_REQUEST),
        Code::Unauthenticated    => (S::UNAUTHORIZED,          "unauthenticated",     S::SERVICE_UNAVAILABLE),
        Code::PermissionDenied   => (S::FORBIDDEN,             "permission_denied",   S::SERVICE_UNAVAILABLE),
        Code::NotFound           => (S::NOT_FOUND,             "not_found",           S::INTERNAL_SERVER_ERROR),
        Code::AlreadyExists      => (S::CONFLICT,              "already_exists",      S::INTERNAL_SERVER_ERROR),
        Code::Aborted            => (S::CONFLICT,              "aborted",             S::INTERNAL_SERVER_ERROR),
        Code::ResourceExhausted  => (S::TOO_MANY_REQUESTS,     "resource_exhausted",  S::SERVICE_UNAVAILABLE),
        Code::Unimplemented      => (S::NOT_IMPLEMENTED,       "unimplemented",       S::INTERNAL_SERVER_ERROR),
        Code::Unavailable
        | Code::Cancelled        => (S::SERVICE_UNAVAILABLE,   "unavailable",         S::SERVICE_UNAVAILABLE),
        Code::DeadlineExceeded   => (S::GATEWAY_TIMEOUT,       "deadline_exceeded",   S::SERVICE_UNAVAILABLE),
        // A connection that broke mid-call shows up as UNKNOWN.
        Code::Unknown            => (S::BAD_GATEWAY,           "unknown",             S::SERVICE_UNAVAILABLE),
        Code::Internal
        | Code::DataLoss
        | Code::Ok               => (S::INTERNAL_SERVER_ERROR, "internal",            S::INTERNAL_SERVER_ERROR),
    };
    match face {
        Face::Rest => (rest, name),
        Face::Twilio => (twilio, name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn twilio_gets_retry_or_give_up_and_rest_the_full_range() {
        let cases = [
            (Code::InvalidArgument, 400, 400),
            (Code::FailedPrecondition, 409, 400),
            (Code::Unauthenticated, 401, 503),
            (Code::ResourceExhausted, 429, 503),
            (Code::Unavailable, 503, 503),
            (Code::DeadlineExceeded, 504, 503),
            (Code::Unknown, 502, 503),
            (Code::NotFound, 404, 500),
            (Code::Internal, 500, 500),
        ];
        for (code, rest, twilio) in cases {
            assert_eq!(http_status(code, Face::Rest).0.as_u16(), rest, "{code:?}");
            assert_eq!(
                http_status(code, Face::Twilio).0.as_u16(),
                twilio,
                "{code:?}"
            );
        }
    }

    #[test]
    fn the_field_named_by_the_core_is_kept() {
        let s = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "media_urls: must be https",
            tonic_types::ErrorDetails::with_bad_request_violation("media_urls", "must be https"),
        );
        let GatewayError::Core { code, field, .. } = GatewayError::from(s) else {
            panic!("a core error")
        };
        assert_eq!(
            (code, field.as_deref()),
            (Code::InvalidArgument, Some("media_urls"))
        );
    }
}

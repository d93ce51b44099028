//! The REST API's one error type: every refusal is a JSON body `{error, code, field?}`,
//! and gRPC codes become HTTP statuses here and nowhere else.

use axum::{
    Json,
    response::{IntoResponse, Response},
};
use hyper::{
    StatusCode,
    header::{self, HeaderValue},
};
use serde::Serialize;
use tonic::Code;
use tonic_types::StatusExt;
use utoipa::ToSchema;

/// What every 4xx/5xx answer of the API carries.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ErrorBody {
    /// What went wrong, for people.
    #[schema(example = "to: must be an E.164 number such as +14155550100")]
    pub error: String,
    /// What went wrong, for programs: the gRPC code in snake case (`invalid_argument`,
    /// `not_found`, …) or, for refusals of the HTTP layer, `unsupported_media_type`,
    /// `payload_too_large`, `request_timeout`, `method_not_allowed`.
    #[schema(example = "invalid_argument")]
    pub code: String,
    /// The request field at fault, by its JSON name, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "to")]
    pub field: Option<String>,
}

/// A refusal of the API.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
        }
    }

    /// 400 naming the JSON field at fault.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self {
            message: format!("{field}: {reason}"),
            field: Some(field),
            ..Self::new(StatusCode::BAD_REQUEST, "invalid_argument", "")
        }
    }

    /// 400 about the request as a whole (unreadable JSON, say).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the body was not received in time",
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn rate_limited() -> Self {
        Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            "too many requests from this address; retry in a second",
        )
    }

    pub fn not_found_route() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
    }

    /// The core answered something this gateway does not understand (version skew).
    pub fn bad_core_answer(what: &str) -> Self {
        tracing::error!(what, "the core answered a value the REST API does not know");
        Self::new(
            StatusCode::BAD_GATEWAY,
            "unknown",
            "the messaging core gave an answer this gateway does not understand",
        )
    }

    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body of a refusal, for the HTTP layer's own answers (rate limit).
    pub fn into_body(self) -> ErrorBody {
        ErrorBody {
            error: self.message,
            code: self.code.to_owned(),
            field: self.field,
        }
    }
}

/// The core's refusal, in HTTP terms. Messages of INVALID_ARGUMENT, NOT_FOUND, … are
/// written by the core for callers; internal ones are replaced (the core logs them).
impl From<tonic::Status> for ApiError {
    fn from(s: tonic::Status) -> Self {
        let (status, code) = match s.code() {
            Code::InvalidArgument => (StatusCode::BAD_REQUEST, "invalid_argument"),
            Code::OutOfRange => (StatusCode::BAD_REQUEST, "out_of_range"),
            Code::Unauthenticated => (StatusCode::UNAUTHORIZED, "unauthenticated"),
            Code::PermissionDenied => (StatusCode::FORBIDDEN, "permission_denied"),
            Code::NotFound => (StatusCode::NOT_FOUND, "not_found"),
            Code::FailedPrecondition => (StatusCode::CONFLICT, "failed_precondition"),
            Code::AlreadyExists => (StatusCode::CONFLICT, "already_exists"),
            Code::Aborted => (StatusCode::CONFLICT, "aborted"),
            Code::ResourceExhausted => (StatusCode::TOO_MANY_REQUESTS, "resource_exhausted"),
            Code::Unimplemented => (StatusCode::NOT_IMPLEMENTED, "unimplemented"),
            Code::Unavailable | Code::Cancelled => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            Code::DeadlineExceeded => (StatusCode::GATEWAY_TIMEOUT, "deadline_exceeded"),
            // A connection that broke mid-call shows up as UNKNOWN.
            Code::Unknown => (StatusCode::BAD_GATEWAY, "unknown"),
            Code::Internal | Code::DataLoss | Code::Ok => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        };
        let message = match s.code() {
            Code::Internal | Code::DataLoss | Code::Ok => "internal error".to_owned(),
            Code::Unknown | Code::Unavailable | Code::Cancelled => {
                tracing::warn!(code = ?s.code(), reason = s.message(), "core unavailable for a REST call");
                "the messaging core is unavailable; retry shortly".to_owned()
            }
            // "media_ids: …", "message_id not found": the JSON names, as everywhere.
            _ => camelize_leading_field(s.message()),
        };
        let field = s
            .get_error_details()
            .bad_request()
            .and_then(|b| b.field_violations.first())
            .map(|v| json_field_name(&v.field));
        let message = match (&field, s.message().split_once(": ")) {
            // The core names its proto field; say the JSON one instead.
            (Some(json), Some((_, reason))) if s.code() == Code::InvalidArgument => {
                format!("{json}: {reason}")
            }
            _ => message,
        };
        Self {
            status,
            code,
            message,
            field,
        }
    }
}

/// Rewrites a message's leading proto field name (`up_to_message_id not found`) with
/// its JSON name.
fn camelize_leading_field(message: &str) -> String {
    let end = message
        .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
        .unwrap_or(message.len());
    let (head, rest) = message.split_at(end);
    if head.contains('_') && (rest.starts_with(':') || rest.starts_with(" not found")) {
        format!("{}{rest}", json_field_name(head))
    } else {
        message.to_owned()
    }
}

/// The JSON name of a proto field: `idempotency_key` → `idempotencyKey`; the upload's
/// frames are the request's `file`.
fn json_field_name(proto: &str) -> String {
    if matches!(proto, "chunk" | "metadata") {
        return "file".to_owned();
    }
    let mut out = String::with_capacity(proto.len());
    let mut upper = false;
    for c in proto.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        let mut resp = (status, Json(self.into_body())).into_response();
        let headers = resp.headers_mut();
        match status {
            StatusCode::UNAUTHORIZED => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        resp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic_types::ErrorDetails;

    #[test]
    fn proto_fields_become_json_names() {
        assert_eq!(json_field_name("idempotency_key"), "idempotencyKey");
        assert_eq!(json_field_name("up_to_message_id"), "upToMessageId");
        assert_eq!(json_field_name("to"), "to");
        assert_eq!(json_field_name("chunk"), "file");
        assert_eq!(
            camelize_leading_field("up_to_message_id not found"),
            "upToMessageId not found"
        );
        assert_eq!(
            camelize_leading_field("media_ids: m1 is not ready"),
            "mediaIds: m1 is not ready"
        );
        assert_eq!(camelize_leading_field("from: not yours"), "from: not yours");
        assert_eq!(camelize_leading_field("no_such thing"), "no_such thing");
    }

    #[test]
    fn invalid_argument_names_the_json_field() {
        let s = tonic::Status::with_error_details(
            Code::InvalidArgument,
            "media_urls: must be https",
            ErrorDetails::with_bad_request_violation("media_urls", "must be https"),
        );
        let e = ApiError::from(s);
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
        assert_eq!(e.field.as_deref(), Some("mediaUrls"));
        assert_eq!(e.message, "mediaUrls: must be https");
    }

    #[test]
    fn internal_details_are_not_repeated() {
        let e = ApiError::from(tonic::Status::internal("SELECT * FROM secrets"));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.message, "internal error");
    }

    #[test]
    fn every_code_has_its_status() {
        let cases = [
            (Code::InvalidArgument, 400),
            (Code::Unauthenticated, 401),
            (Code::PermissionDenied, 403),
            (Code::NotFound, 404),
            (Code::FailedPrecondition, 409),
            (Code::ResourceExhausted, 429),
            (Code::Unavailable, 503),
            (Code::DeadlineExceeded, 504),
            (Code::Internal, 500),
        ];
        for (code, http) in cases {
            assert_eq!(
                ApiError::from(tonic::Status::new(code, "x"))
                    .status
                    .as_u16(),
                http,
                "{code:?}"
            );
        }
    }
}

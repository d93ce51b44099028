//! The REST face of the gateway's one error type: every refusal is a JSON body
//! `{error, code, field?}`; the status comes from [`crate::error::http_status`].

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
use utoipa::ToSchema;

use crate::error::{Face, GatewayError, http_status};

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

/// The REST API's refusals (their wording is the API's; the Twilio face has its own).
impl GatewayError {
    /// 400 naming the JSON field at fault.
    pub fn invalid(field: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        let field = field.into();
        Self::Refused {
            status: StatusCode::BAD_REQUEST,
            code: "invalid_argument",
            message: format!("{field}: {reason}"),
            field: Some(field),
        }
    }

    /// 400 about the request as a whole (unreadable JSON, say).
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::refused(StatusCode::BAD_REQUEST, "invalid_argument", message)
    }

    pub fn unsupported_media_type(message: impl Into<String>) -> Self {
        Self::refused(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            message,
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::refused(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("the body is larger than the limit of {limit} bytes"),
        )
    }

    pub fn timeout() -> Self {
        Self::refused(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the body was not received in time",
        )
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::refused(StatusCode::UNAUTHORIZED, "unauthenticated", message)
    }

    pub fn rate_limited() -> Self {
        Self::refused(
            StatusCode::TOO_MANY_REQUESTS,
            "resource_exhausted",
            "too many requests from this address; retry in a second",
        )
    }

    pub fn not_found_route() -> Self {
        Self::refused(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
    }

    pub fn method_not_allowed() -> Self {
        Self::refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this endpoint does not take that method",
        )
    }

    /// The core answered something this gateway does not understand (version skew).
    pub fn bad_core_answer(what: &str) -> Self {
        tracing::error!(what, "the core answered a value the REST API does not know");
        Self::refused(
            StatusCode::BAD_GATEWAY,
            "unknown",
            "the messaging core gave an answer this gateway does not understand",
        )
    }

    /// The HTTP status the REST API answers with.
    #[cfg(test)]
    pub fn status(&self) -> StatusCode {
        self.rest_status()
    }

    fn rest_status(&self) -> StatusCode {
        match self {
            Self::Refused { status, .. } => *status,
            Self::Core { code, .. } => http_status(*code, Face::Rest).0,
            Self::Config { .. } => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The JSON body of the refusal.
    pub fn into_body(self) -> ErrorBody {
        match self {
            Self::Refused {
                code,
                message,
                field,
                ..
            } => ErrorBody {
                error: message,
                code: code.to_owned(),
                field,
            },
            Self::Core {
                code,
                message,
                field,
            } => core_body(code, &message, field.as_deref()),
            Self::Config { .. } => ErrorBody {
                error: "internal error".to_owned(),
                code: "internal".to_owned(),
                field: None,
            },
        }
    }
}

/// The core's refusal, for a REST caller. Messages of INVALID_ARGUMENT, NOT_FOUND, …
/// are written by the core for callers; internal ones are replaced (the core logs them).
fn core_body(code: Code, message: &str, proto_field: Option<&str>) -> ErrorBody {
    let (_, name) = http_status(code, Face::Rest);
    let field = proto_field.map(json_field_name);
    let error = match (code, &field, message.split_once(": ")) {
        (Code::Internal | Code::DataLoss | Code::Ok, _, _) => "internal error".to_owned(),
        (Code::Unknown | Code::Unavailable | Code::Cancelled, _, _) => {
            tracing::warn!(?code, reason = message, "core unavailable for a REST call");
            "the messaging core is unavailable; retry shortly".to_owned()
        }
        // The core names its proto field; say the JSON one instead.
        (Code::InvalidArgument, Some(json), Some((_, reason))) => format!("{json}: {reason}"),
        // "media_ids: …", "message_id not found": the JSON names, as everywhere.
        _ => camelize_leading_field(message),
    };
    ErrorBody {
        error,
        code: name.to_owned(),
        field,
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
    // The search query is the `q` parameter of `GET /api/messages/search`.
    if proto == "query" {
        return "q".to_owned();
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

/// The REST face's rendering: `{error, code, field?}` with the status of the one
/// mapping, `WWW-Authenticate` on 401 and `Retry-After` on 429 and 503.
impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let status = self.rest_status();
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
    use tonic_types::{ErrorDetails, StatusExt};

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
        let e = GatewayError::from(s);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        let body = e.into_body();
        assert_eq!(body.field.as_deref(), Some("mediaUrls"));
        assert_eq!(body.error, "mediaUrls: must be https");
    }

    #[test]
    fn internal_details_are_not_repeated() {
        let e = GatewayError::from(tonic::Status::internal("SELECT * FROM secrets"));
        assert_eq!(e.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(e.into_body().error, "internal error");
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
                GatewayError::from(tonic::Status::new(code, "x"))
                    .status()
                    .as_u16(),
                http,
                "{code:?}"
            );
        }
    }
}

//! Plain-text answers: what Twilio, load balancers and anyone off the REST API get.
//! Bodies are one line; a refusal's status comes from the one mapping
//! ([`http_status`] with [`Face::Twilio`]).

use axum::{body::Body, response::Response};
use hyper::{
    StatusCode,
    header::{self, HeaderValue},
};

use crate::error::{Face, GatewayError, http_status};

/// `line` and a newline, as `text/plain`.
pub(crate) fn text(status: StatusCode, line: &str) -> Response {
    let mut resp = Response::new(Body::from(format!("{line}\n")));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

/// 404 for any path the gateway does not serve, and for media it will not serve.
pub(crate) fn not_found() -> Response {
    text(StatusCode::NOT_FOUND, "not found")
}

/// 405 naming the one method the path takes.
pub(crate) fn not_allowed(allow: &'static str) -> Response {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed");
    resp.headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static(allow));
    resp
}

/// A refusal, in plain text. Of the core's own message only a refusal of the content
/// is repeated (it says what to fix); the rest says whether to retry.
pub(crate) fn refusal(err: GatewayError) -> Response {
    let (status, line) = match err {
        GatewayError::Refused {
            status, message, ..
        } => (status, message),
        GatewayError::Core { code, message, .. } => match http_status(code, Face::Twilio).0 {
            StatusCode::BAD_REQUEST => (StatusCode::BAD_REQUEST, message),
            StatusCode::SERVICE_UNAVAILABLE => (
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily unavailable".to_owned(),
            ),
            status => (status, "internal error".to_owned()),
        },
        GatewayError::Config { .. } => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error".to_owned(),
        ),
    };
    text(status, &line)
}

#[cfg(test)]
mod tests {
    use tonic::Code;

    use super::*;

    fn core(code: Code, message: &str) -> GatewayError {
        GatewayError::from(tonic::Status::new(code, message))
    }

    async fn body(resp: Response) -> (u16, String) {
        let status = resp.status().as_u16();
        let bytes = http_body_util::BodyExt::collect(resp.into_body())
            .await
            .unwrap()
            .to_bytes();
        (status, String::from_utf8(bytes.to_vec()).unwrap())
    }

    #[tokio::test]
    async fn only_refused_content_repeats_the_core_message() {
        let cases = [
            (core(Code::InvalidArgument, "bad to"), 400, "bad to\n"),
            (
                core(Code::Unavailable, "down"),
                503,
                "temporarily unavailable\n",
            ),
            (
                core(Code::Unauthenticated, "token"),
                503,
                "temporarily unavailable\n",
            ),
            (core(Code::Internal, "SELECT"), 500, "internal error\n"),
        ];
        for (err, status, line) in cases {
            assert_eq!(body(refusal(err)).await, (status, line.to_owned()));
        }
    }
}

//! Where a REST route becomes its gRPC call. Every unary handler has one shape: who
//! the caller is ([`CallerContext`], an extractor), the core's request built from the
//! path, query and body, the call, and the answer in its REST shape. The handlers
//! keep only what differs (the request and which call); [`core_call!`] is the rest,
//! so every route passes the caller's token and trace context and answers a core
//! error the same way (`?`: `From<tonic::Status>` in `src/error.rs`, which also
//! picks the HTTP status).
//!
//! A macro rather than a function: each call is a different method of the generated
//! client, and naming it is all a handler has to say about it (a function would take
//! a closure per handler to pick the method, which is the repetition again).
//!
//! The streaming routes are not unary and so do not use it: the event stream
//! (`events.rs`) and media upload and download (`media.rs`) open their calls by hand,
//! with the same caller context and the same error mapping.
//!
//! [`CallerContext`]: super::extract::CallerContext

/// Calls `MessagingService::$rpc` with `$request` as the caller `$ctx` (their own
/// `Authorization` header, the trace context) and evaluates to the handler's answer,
/// `Ok(Json(shape))`; a core error returns from the handler.
///
/// The shape is the handler's return type, made by its `TryFrom` (or `From`) of the
/// core's answer, in the module's `json.rs` (a 502 when the answer cannot be shown).
/// `|answer| shape` instead builds it in place, for the rare shape that needs more
/// than the answer (what the request named).
macro_rules! core_call {
    ($api:expr, $ctx:expr, $rpc:ident($request:expr)) => {
        $crate::api::call::core_call!($api, $ctx, $rpc($request), |answer| {
            ::core::convert::TryFrom::try_from(answer)?
        })
    };
    ($api:expr, $ctx:expr, $rpc:ident($request:expr), |$answer:ident| $shape:expr) => {{
        let (mut client, call) = $api
            .core
            .messaging($request, &$ctx.authorization, &$ctx.trace);
        let $answer = client.$rpc(call).await?.into_inner();
        Ok(::axum::Json($shape))
    }};
}

pub(crate) use core_call;

/// `#[utoipa::path]` for a paged listing, on the handler that follows: `params` first,
/// then `pageSize` (`page_size`: its default and largest) and `pageToken`, the two
/// [`extract::page`] reads, so every listing documents its page the same way.
///
/// [`extract::page`]: super::extract::page
macro_rules! paged_path {
    (
        $method:ident, path = $path:tt, operation_id = $op:tt, tag = $tag:tt,
        params($($param:tt),* $(,)?), page_size = $size:tt,
        responses($($response:tt),* $(,)?),
        $($handler:tt)*
    ) => {
        #[utoipa::path(
            $method,
            path = $path,
            operation_id = $op,
            tag = $tag,
            params(
                $($param,)*
                ("pageSize" = Option<u32>, Query, description = $size),
                ("pageToken" = Option<String>, Query, max_length = 512, pattern = "^[A-Za-z0-9_-]*$", description = "Opaque: the `nextPageToken` of the previous page of this same listing (anything else is a 400 naming `pageToken`); absent or empty: the first page"),
            ),
            responses($($response,)*),
        )]
        $($handler)*
    };
}

pub(crate) use paged_path;

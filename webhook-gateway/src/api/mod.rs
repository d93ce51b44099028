//! The REST API: the seed's JSON endpoints on :3003, each turned into the matching
//! `MessagingService` call with the caller's own bearer token, so the core stays the
//! one place every rule lives. Routes are registered with their OpenAPI description
//! (utoipa-axum), so `/api/openapi.json` cannot list a route the server lacks.

mod blocked;
mod call;
mod contacts;
mod conversations;
mod error;
mod events;
pub(crate) mod extract;
mod json;
mod mailbox;
mod media;
mod messages;
mod preflight;
mod search;
mod stream_slots;

use std::{sync::Arc, time::Duration};

use axum::{Router, response::IntoResponse, routing::get};
use hyper::{
    Method,
    body::Bytes,
    header::{self, HeaderName, HeaderValue},
};
use tokio_util::sync::CancellationToken;
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, Ref, RefOr, ResponseBuilder,
        content::ContentBuilder,
        path::Operation,
        security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
    },
};
use utoipa_axum::{router::OpenApiRouter, routes};

/// What the benchmarks measure: a send's JSON body in, a page of messages out.
#[doc(hidden)]
pub mod bench {
    use commpro_messaging_api::v1 as pb;
    use hyper::{HeaderMap, header};

    use super::{conversations::json::ConversationMessages, messages::json::SendSmsBody};

    /// Parses a `POST /api/messages/send` body as the handler does.
    pub fn parse_send(body: &[u8]) -> bool {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        super::extract::json::<SendSmsBody>(&headers, body, false).is_ok()
    }

    /// Renders a `GetConversation` answer as the handler does.
    pub fn render_page(page: pb::GetConversationResponse) -> Vec<u8> {
        ConversationMessages::try_from(page)
            .ok()
            .and_then(|json| serde_json::to_vec(&json).ok())
            .unwrap_or_default()
    }
}

/// What the fuzz targets and property tests drive (`fuzz/`, `tests/`): every JSON
/// request body the API takes, through the handlers' own extraction.
#[doc(hidden)]
pub mod fuzz {
    use hyper::{HeaderMap, StatusCode, header};

    use super::{
        blocked::json::BlockBody,
        contacts::json::ContactNameBody,
        conversations::json::MarkConversationReadBody,
        mailbox::json::MuteBody,
        messages::json::{SendMmsBody, SendSmsBody},
    };
    use crate::error::GatewayError;

    /// Parses `body` as each request body, as its handler does (optional ones too).
    /// Panics if a refusal is not a 4xx naming what is wrong: the API must answer
    /// bad input with a client error, never a crash or a 5xx.
    pub fn rest_json(body: &[u8]) {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/json"),
        );
        check(super::extract::json::<SendSmsBody>(&headers, body, false));
        check(super::extract::json::<SendMmsBody>(&headers, body, false));
        check(super::extract::json::<BlockBody>(&headers, body, false));
        check(super::extract::json::<ContactNameBody>(
            &headers, body, false,
        ));
        check(super::extract::json::<MarkConversationReadBody>(
            &headers, body, true,
        ));
        check(super::extract::json::<MuteBody>(&headers, body, true));
    }

    fn check<T>(parsed: Result<T, GatewayError>) {
        match parsed {
            Ok(_) => {}
            Err(GatewayError::Refused {
                status, message, ..
            }) => {
                assert!(
                    status.is_client_error() && status != StatusCode::NOT_FOUND,
                    "refused with {status}"
                );
                assert!(!message.is_empty(), "a refusal says why");
            }
            Err(other) => panic!("JSON extraction failed with a non-refusal: {other}"),
        }
    }
}

use crate::{config::CorsOrigins, core::Core, error::GatewayError};

/// The largest image the core stores (its own limit; refused here before any call).
pub const MAX_UPLOAD_BYTES: usize = 5 * 1024 * 1024;

/// What the handlers share.
pub struct Api {
    core: Core,
    /// Largest JSON body.
    json_limit: usize,
    /// Largest image.
    upload_limit: usize,
    /// How long a client may take sending a body (pauses, and all of it).
    body_time: extract::BodyTime,
    /// Open event streams per user.
    streams: Arc<stream_slots::StreamSlots>,
    /// Ends event streams when the gateway stops (clients reconnect elsewhere).
    shutdown: CancellationToken,
}

impl Api {
    pub fn new(core: Core, config: &crate::GatewayConfig, shutdown: CancellationToken) -> Self {
        Self {
            core,
            json_limit: config.max_body_bytes,
            upload_limit: MAX_UPLOAD_BYTES,
            body_time: extract::BodyTime {
                idle: config.read_timeout,
                whole: config.body_timeout,
            },
            streams: stream_slots::StreamSlots::new(config.max_event_streams_per_user),
            shutdown,
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "CommPro Messaging REST API",
        description = "The JSON API of CommPro Messaging, served by the webhook gateway over the gRPC core. \
Every call needs `Authorization: Bearer <JWT>`; a caller only ever sees their own numbers, contacts, messages and media. \
Errors are `{error, code, field?}`.",
    ),
    modifiers(&BearerAuth),
    // The `data` of every SSE event; named by `SseEnvelope` rather than referenced.
    components(schemas(events::json::Event)),
    tags(
        (name = "messages", description = "Sending (now or scheduled), canceling, searching, deleting, and marking one message read"),
        (name = "conversations", description = "Conversations: read state, archive, mute, delete"),
        (name = "blocked numbers", description = "Numbers whose messages are kept but not shown"),
        (name = "contacts", description = "Names of the other parties, encrypted at rest"),
        (name = "media", description = "MMS images, stored encrypted"),
        (name = "events", description = "Real-time changes (Server-Sent Events)"),
    ),
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        doc.security = Some(vec![openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}

/// The answers any endpoint can give, added to every operation of the document.
fn add_common_errors(doc: &mut openapi::OpenApi) {
    let error = |description: &str| {
        RefOr::T(
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build(),
        )
    };
    let common = [
        (
            "400",
            "The request is malformed (an id in the path that does not decode)",
        ),
        ("401", "Missing, expired or invalid bearer token"),
        ("429", "Too many requests from this address (Retry-After)"),
        ("500", "Internal error"),
        (
            "502",
            "The core gave an answer this gateway does not understand",
        ),
        ("503", "The core is unavailable; retry (Retry-After)"),
        (
            "504",
            "The core did not answer in time; retry (sends: with the same idempotency key)",
        ),
    ];
    for item in doc.paths.paths.values_mut() {
        let ops: [Option<&mut Operation>; 4] = [
            item.get.as_mut(),
            item.post.as_mut(),
            item.put.as_mut(),
            item.delete.as_mut(),
        ];
        for op in ops.into_iter().flatten() {
            if op.request_body.is_some() {
                op.responses
                    .responses
                    .entry("408".into())
                    .or_insert_with(|| error("The body was not received in time"));
            }
            for (status, description) in common {
                op.responses
                    .responses
                    .entry(status.into())
                    .or_insert_with(|| error(description));
            }
        }
    }
}

/// Every endpoint, registered with its OpenAPI description.
fn routes() -> OpenApiRouter<Arc<Api>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(messages::send))
        .routes(routes!(messages::send_mms))
        .routes(routes!(media::upload))
        .routes(routes!(media::get))
        .routes(routes!(conversations::list))
        .routes(routes!(conversations::get, mailbox::delete))
        .routes(routes!(messages::mark_read))
        .routes(routes!(conversations::mark_read))
        .routes(routes!(events::watch))
        .routes(routes!(messages::cancel))
        .routes(routes!(messages::delete))
        .routes(routes!(search::search))
        .routes(routes!(mailbox::archive, mailbox::unarchive))
        .routes(routes!(mailbox::mute, mailbox::unmute))
        .routes(routes!(blocked::list, blocked::block))
        .routes(routes!(blocked::unblock))
        .routes(routes!(contacts::set_name))
}

/// The routes and their finished OpenAPI document.
fn routes_and_document() -> (Router<Arc<Api>>, serde_json::Value) {
    let (router, mut doc) = routes().split_for_parts();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    // utoipa fills an empty license from Cargo.toml; say nothing instead.
    doc.info.license = None;
    add_common_errors(&mut doc);
    (router, with_cross_field_rules(doc))
}

/// Rules over several fields, which the derived schemas cannot say: an MMS carries at
/// least one media item, from `mediaIds` or `mediaUrls`.
fn with_cross_field_rules(doc: openapi::OpenApi) -> serde_json::Value {
    let mut value = serde_json::to_value(&doc).unwrap_or_default();
    let schemas = &mut value["components"]["schemas"];
    if let Some(mms) = schemas.get_mut("SendMmsBody") {
        let one_of = |field: &str| {
            serde_json::json!({
                "required": [field],
                "properties": {field: {"type": "array", "minItems": 1}},
            })
        };
        let object = mms.take();
        *mms = serde_json::json!({
            "allOf": [object, {"anyOf": [one_of("mediaIds"), one_of("mediaUrls")]}],
            "description": "An MMS to queue: 1 to 10 media (`mediaIds` and `mediaUrls` together), 5 MB in all.",
        });
    }
    // Blocking takes what inbound messages come from: E.164, a short code or an
    // alphanumeric sender id (1-11 letters, digits and spaces, at least one letter).
    let sender = serde_json::json!({
        "type": "string",
        "example": "+14155550100",
        "anyOf": [
            {"pattern": "^\\+[1-9][0-9]{6,14}$"},
            {"pattern": "^[0-9]{3,8}$"},
            {"pattern": "^[A-Za-z0-9 ]*[A-Za-z][A-Za-z0-9 ]*$", "minLength": 1, "maxLength": 11},
        ],
    });
    if let Some(number) =
        value["components"]["schemas"]["BlockBody"]["properties"].get_mut("number")
    {
        *number = sender.clone();
    }
    if let Some(params) =
        value["paths"]["/api/blocked-numbers/{number}"]["delete"]["parameters"].as_array_mut()
    {
        for p in params.iter_mut().filter(|p| p["name"] == "number") {
            p["schema"] = sender.clone();
        }
    }
    // A contact's name: no control character anywhere. Said as "no match of one" rather
    // than an anchored pattern, whose `$` Python's engine (Schemathesis) also lets match
    // before a trailing newline.
    if let Some(name) =
        value["components"]["schemas"]["ContactNameBody"]["properties"].get_mut("name")
        && let Some(name) = name.as_object_mut()
    {
        name.remove("pattern");
        name.insert(
            "not".into(),
            serde_json::json!({"type": "string", "pattern": "[\\u0000-\\u001f\\u007f-\\u009f]"}),
        );
    }
    // Page sizes are what the handlers parse, any u32 (larger than a listing's maximum is
    // served as its maximum), not the int32 utoipa derives for `u32`.
    if let Some(paths) = value["paths"].as_object_mut() {
        for op in paths
            .values_mut()
            .filter_map(|p| p.as_object_mut())
            .flat_map(|p| p.values_mut())
        {
            let params = op.get_mut("parameters").and_then(|p| p.as_array_mut());
            for p in params.into_iter().flatten() {
                if p["name"] == "pageSize" {
                    p["schema"] =
                        serde_json::json!({"type": "integer", "minimum": 0, "maximum": u32::MAX});
                }
            }
        }
    }
    value
}

/// `doc` with examples of times that must lie ahead (`sendAt`: 1 minute to 35 days;
/// a mute's `until`) set to tomorrow, so the document's own examples never go stale.
fn with_fresh_examples(doc: &serde_json::Value) -> serde_json::Value {
    let mut doc = doc.clone();
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1))
        .format("%Y-%m-%dT%H:00:00Z")
        .to_string();
    let schemas = &mut doc["components"]["schemas"];
    for (schema, field) in [("SendSmsBody", "sendAt"), ("MuteBody", "until")] {
        if let Some(p) = schemas[schema]["properties"].get_mut(field) {
            p["example"] = tomorrow.clone().into();
        }
    }
    if let Some(p) = schemas["SendMmsBody"]["allOf"][0]["properties"].get_mut("sendAt") {
        p["example"] = tomorrow.into();
    }
    doc
}

/// The API's router, with its OpenAPI document at `/api/openapi.json`.
pub fn router(api: Arc<Api>, cors: &CorsOrigins) -> Router {
    let (router, doc) = routes_and_document();
    let doc = Arc::new(doc);
    let router = router
        .route(
            "/api/openapi.json",
            get(move || {
                // Built per request (it is fetched rarely): its time examples are
                // relative to now.
                let document = Bytes::from(
                    serde_json::to_vec_pretty(&with_fresh_examples(&doc)).unwrap_or_default(),
                );
                async move {
                    (
                        [(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("application/json"),
                        )],
                        document,
                    )
                }
            }),
        )
        // Large bodies wait for the core's verdict on the token (innermost: the span is
        // named first).
        .route_layer(axum::middleware::from_fn_with_state(
            api.clone(),
            preflight::credentials_first,
        ))
        // Names the request's span after the matched route (`PUT /api/messages/{messageId}/read`),
        // and tells the metrics layer that route.
        .route_layer(axum::middleware::from_fn(name_span))
        .fallback(|| async { GatewayError::not_found_route().into_response() })
        .method_not_allowed_fallback(|| async {
            GatewayError::method_not_allowed().into_response()
        })
        .with_state(api);
    match cors_layer(cors) {
        Some(layer) => router.layer(layer),
        None => router,
    }
}

async fn name_span(
    path: axum::extract::MatchedPath,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    commpro_telemetry::rename(
        &tracing::Span::current(),
        format!("{} {}", req.method(), path.as_str()),
    );
    let mut resp = next.run(req).await;
    // The metrics layer outside labels the call with the route, not the path.
    resp.extensions_mut()
        .insert(crate::metrics::ApiRoute(path.as_str().to_owned()));
    resp
}

/// CORS for browser clients on the configured origins; none configured, no CORS
/// headers (browsers then keep other sites' pages away from the API).
fn cors_layer(origins: &CorsOrigins) -> Option<CorsLayer> {
    let allow = match origins {
        CorsOrigins::None => return None,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.iter().cloned()),
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("traceparent"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                header::LOCATION,
                header::RETRY_AFTER,
                header::WWW_AUTHENTICATE,
            ])
            .max_age(Duration::from_secs(600)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The document as served, without a server (the integration tests check it
    /// against a running one).
    pub(crate) fn document() -> serde_json::Value {
        routes_and_document().1
    }

    #[test]
    fn common_errors_are_documented_with_the_error_schema() {
        let doc = document();
        if std::env::var_os("PRINT_OPENAPI").is_some() {
            println!("{}", serde_json::to_string_pretty(&doc).unwrap());
        }
        let op = &doc["paths"]["/api/messages/send"]["post"];
        for status in ["400", "401", "408", "429", "503"] {
            assert_eq!(
                op["responses"][status]["content"]["application/json"]["schema"]["$ref"],
                "#/components/schemas/ErrorBody",
                "{status}"
            );
        }
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        assert_eq!(op["operationId"], "sendSms");
        assert!(doc["info"].get("license").is_none());
    }

    #[test]
    fn time_examples_lie_ahead() {
        let doc = with_fresh_examples(&document());
        let schemas = &doc["components"]["schemas"];
        let now = chrono::Utc::now();
        for example in [
            &schemas["SendSmsBody"]["properties"]["sendAt"]["example"],
            &schemas["SendMmsBody"]["allOf"][0]["properties"]["sendAt"]["example"],
            &schemas["MuteBody"]["properties"]["until"]["example"],
        ] {
            let at = chrono::DateTime::parse_from_rfc3339(example.as_str().unwrap()).unwrap();
            assert!(at > now + chrono::Duration::hours(22), "{example}");
            assert!(at < now + chrono::Duration::days(2), "{example}");
        }
    }

    #[test]
    fn the_document_says_what_the_server_accepts() {
        let doc = document();
        let schemas = &doc["components"]["schemas"];
        let mms = &schemas["SendMmsBody"];
        assert_eq!(
            mms["allOf"][1]["anyOf"][0]["properties"]["mediaIds"]["minItems"], 1,
            "{mms:#}"
        );
        assert_eq!(
            schemas["SendSmsBody"]["properties"]["to"]["pattern"],
            r"^\+[1-9][0-9]{6,14}$"
        );
        let list = &doc["paths"]["/api/messages/conversations"]["get"]["parameters"];
        let size = list
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "pageSize")
            .unwrap();
        assert_eq!(size["schema"]["maximum"], 4_294_967_295u64, "{size:#}");
        // Operations without parameters keep none (not a null list).
        assert!(
            doc["paths"]["/api/blocked-numbers"]["post"]
                .get("parameters")
                .is_none()
        );
    }
}

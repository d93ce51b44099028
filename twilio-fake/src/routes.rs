//! Request handling: auth, the three Messages endpoints, media, scripted failures.

use std::{sync::Arc, time::Instant};

use base64::{Engine, engine::general_purpose::STANDARD};
use chrono::Utc;
use http_body_util::{BodyExt, Full};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Bytes, Incoming},
    header,
};
use serde_json::{Value, json};

use crate::{FakeMessage, Recorded, Scripted, Shared, State, list, model::error_body};

type Resp = Response<Full<Bytes>>;

/// The connection is closed without an answer when this is returned.
#[derive(Debug)]
pub(crate) struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("scripted connection drop")
    }
}

impl std::error::Error for Dropped {}

pub(crate) async fn handle(req: Request<Incoming>, shared: Arc<Shared>) -> Result<Resp, Dropped> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let authorized = authorized(&req, &shared);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    shared.lock().requests.push(Recorded {
        method: method.to_string(),
        path: path.clone(),
        query: query.clone(),
        form: form.clone(),
        authorized,
        at: Instant::now(),
    });

    // The CDN a media URL redirects to: no auth, like Twilio's.
    if method == Method::GET
        && let Some(id) = path.strip_prefix("/cdn/")
    {
        let hosted = shared.lock().media.get(id).cloned();
        return Ok(match hosted {
            Some(m) => media_body(m).await,
            None => not_found(&path),
        });
    }
    // Inspection endpoint for local runs (not part of Twilio's API).
    if method == Method::GET && path == "/_fake/messages" {
        let messages: Vec<Value> = {
            let mut state = shared.lock();
            state.tick();
            state.messages.iter().map(FakeMessage::to_json).collect()
        };
        return Ok(json_resp(StatusCode::OK, json!({ "messages": messages })));
    }
    if !authorized {
        return Ok(json_resp(
            StatusCode::UNAUTHORIZED,
            error_body(401, 20003, "Authenticate"),
        ));
    }
    let prefix = format!("/2010-04-01/Accounts/{}/", shared.account_sid);
    let Some(rest) = path.strip_prefix(&prefix) else {
        return Ok(not_found(&path));
    };
    let outage = shared.lock().outage;
    if let Some(status) = outage
        && rest.starts_with("Messages")
    {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE);
        return Ok(json_resp(
            code,
            error_body(status, 20500, "Service unavailable"),
        ));
    }
    // Twilio's concurrency limit counts the account's every request in progress, not
    // only creates: a look-up while the creates fill it is refused the same way.
    if method == Method::GET
        && rest.starts_with("Messages")
        && !rest.contains("/Media/")
        && let Some(refused) = refused_busy(&mut shared.lock())
    {
        return Ok(refused);
    }
    match (method.clone(), rest) {
        (Method::POST, "Messages.json") => create(&shared, form).await,
        (Method::GET, "Messages.json") => list(&shared, &query).await,
        (Method::GET | Method::DELETE, media)
            if media.starts_with("Messages/") && media.contains("/Media/") =>
        {
            let id = media
                .rsplit('/')
                .next()
                .unwrap_or_default()
                .trim_end_matches(".json")
                .to_owned();
            let hosted = shared.lock().media.get(&id).cloned();
            Ok(match (hosted, method) {
                (None, _) => not_found(&path),
                (Some(_), Method::DELETE) => {
                    shared.lock().deleted_media.push(id);
                    Response::builder()
                        .status(StatusCode::NO_CONTENT)
                        .body(Full::new(Bytes::new()))
                        .unwrap_or_default()
                }
                (Some(m), _) => {
                    let target = m.redirect.unwrap_or_else(|| format!("/cdn/{id}"));
                    let mut resp = Response::new(Full::new(Bytes::new()));
                    *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
                    if let Ok(v) = header::HeaderValue::from_str(&target) {
                        resp.headers_mut().insert(header::LOCATION, v);
                    }
                    resp
                }
            })
        }
        (Method::GET, sid) if sid.starts_with("Messages/") && sid.ends_with(".json") => {
            let sid = &sid["Messages/".len()..sid.len() - ".json".len()];
            let found = {
                let mut state = shared.lock();
                state.tick();
                state
                    .messages
                    .iter()
                    .find(|m| m.sid == sid)
                    .map(FakeMessage::to_json)
            };
            Ok(match found {
                Some(m) => json_resp(StatusCode::OK, m),
                None => not_found(&path),
            })
        }
        _ => Ok(not_found(&path)),
    }
}

fn authorized(req: &Request<Incoming>, shared: &Shared) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some(decoded) = value
        .strip_prefix("Basic ")
        .and_then(|b| STANDARD.decode(b).ok())
    else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    let Some((user, pass)) = decoded.split_once(':') else {
        return false;
    };
    (user == shared.account_sid && pass == shared.auth_token)
        || shared.api_keys.iter().any(|(k, s)| k == user && s == pass)
}

/// The scripted answer for this request, if any; `None`: go on as usual.
async fn scripted(step: Option<Scripted>) -> Option<Result<Resp, Dropped>> {
    match step {
        Some(Scripted::TooManyRequests { retry_after }) => {
            let mut resp = json_resp(
                StatusCode::TOO_MANY_REQUESTS,
                error_body(429, 20429, "Too Many Requests"),
            );
            if let Some(secs) = retry_after {
                resp.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            return Some(Ok(resp));
        }
        Some(Scripted::ServerError(status)) => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return Some(Ok(json_resp(
                code,
                error_body(status, 20500, "Internal Server Error"),
            )));
        }
        Some(Scripted::Error {
            status,
            code,
            message,
        }) => {
            let s = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            return Some(Ok(json_resp(s, error_body(status, code, &message))));
        }
        Some(Scripted::Slow(delay)) => tokio::time::sleep(delay).await,
        Some(Scripted::Drop | Scripted::CreateThenDrop) => return Some(Err(Dropped)),
        None => {}
    }
    None
}

/// A create Twilio is working on: counted against the account's concurrency limit
/// until it completes (answered or not: a caller that hung up does not end it).
struct OpenCreate(Arc<Shared>);

impl Drop for OpenCreate {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.open_creates = state.open_creates.saturating_sub(1);
    }
}

/// Over the account's concurrency limit: refused at once, never processed (Twilio
/// sends no Retry-After with it). Takes the state, so that a create checks the limit
/// and takes its place under one lock (two creates at once cannot both slip under it).
fn refused_busy(state: &mut State) -> Option<Resp> {
    if state
        .max_open_creates
        .is_none_or(|max| state.open_creates < max)
    {
        return None;
    }
    state.refused_busy += 1;
    Some(json_resp(
        StatusCode::TOO_MANY_REQUESTS,
        error_body(429, 20429, "Too Many Requests"),
    ))
}

async fn create(shared: &Arc<Shared>, form: Vec<(String, String)>) -> Result<Resp, Dropped> {
    let (step, latency, refused) = {
        let mut state = shared.lock();
        if let Some(refused) = refused_busy(&mut state) {
            return Ok(refused);
        }
        let step = state.script.pop_front();
        // A scripted 429 is Twilio's: answered at once, never processed, no place taken.
        let refused = matches!(step, Some(Scripted::TooManyRequests { .. }));
        if !refused {
            state.open_creates += 1;
        }
        (step, state.create_latency, refused)
    };
    if refused {
        return scripted(step).await.unwrap_or(Err(Dropped));
    }
    let open = OpenCreate(shared.clone());
    let latency = match &step {
        Some(Scripted::Slow(delay)) => *delay,
        _ => latency.sample(),
    };
    // Each create's time runs on its own task, holding its place under the limit, so
    // a caller hanging up (which drops this handler) ends neither.
    if let Some(Scripted::CreateThenDrop) = step {
        let (validated, shared) = (validate(shared, &form), shared.clone());
        let _ = tokio::spawn(async move {
            if let Ok(m) = validated {
                tokio::time::sleep(latency).await;
                shared.lock().enqueue(m);
            }
            drop(open);
        })
        .await;
        return Err(Dropped);
    }
    if !matches!(step, None | Some(Scripted::Slow(_))) {
        let _ = tokio::spawn(async move {
            tokio::time::sleep(latency).await;
            drop(open);
        })
        .await;
        // Every step but these two answers by itself.
        return scripted(step).await.unwrap_or(Err(Dropped));
    }
    // Twilio does not abort a create when the caller hangs up: the create runs on its
    // own task, which finishes (and stores the message) whether or not this answer is
    // still awaited. `date_created` is the request's arrival.
    let validated = validate(shared, &form);
    let shared = shared.clone();
    let created = tokio::spawn(async move {
        tokio::time::sleep(latency).await;
        let m = validated?;
        let json = m.to_json();
        shared.lock().enqueue(m);
        drop(open);
        Ok::<_, (i64, String)>(json)
    });
    match created.await {
        // Twilio answers a create with the message as created: queued, not yet sent.
        Ok(Ok(json)) => Ok(json_resp(StatusCode::CREATED, json)),
        Ok(Err((code, message))) => Ok(json_resp(
            StatusCode::BAD_REQUEST,
            error_body(400, code, &message),
        )),
        Err(_) => Err(Dropped),
    }
}

/// Twilio's checks on a create request, and its test-credential magic numbers.
fn validate(shared: &Shared, form: &[(String, String)]) -> Result<FakeMessage, (i64, String)> {
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let to = get("To").ok_or((21604, "A 'To' phone number is required.".to_owned()))?;
    let from = get("From").ok_or((21603, "A 'From' phone number is required.".to_owned()))?;
    let body = get("Body").unwrap_or_default();
    let media_urls: Vec<String> = form
        .iter()
        .filter(|(k, _)| k == "MediaUrl")
        .map(|(_, v)| v.clone())
        .collect();
    if body.is_empty() && media_urls.is_empty() {
        return Err((21602, "Message body is required.".into()));
    }
    if body.chars().count() > 1600 {
        return Err((
            21617,
            "The concatenated message body exceeds the 1600 character limit.".into(),
        ));
    }
    let e164 = |n: &str| {
        n.strip_prefix('+')
            .is_some_and(|d| (7..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()))
    };
    if !e164(&to) {
        return Err((
            21211,
            format!("The 'To' number {to} is not a valid phone number."),
        ));
    }
    match to.as_str() {
        "+15005550001" => return Err((21211, format!("The 'To' number {to} is not a valid phone number."))),
        "+15005550002" => return Err((21612, "The 'To' phone number is not currently reachable via SMS.".into())),
        "+15005550003" => return Err((21408, "Permission to send an SMS has not been enabled for the region indicated by the 'To' number.".into())),
        "+15005550004" => return Err((21610, "Attempt to send to unsubscribed recipient".into())),
        "+15005550009" => return Err((21614, format!("'To' number {to} is not a valid mobile number"))),
        _ => {}
    }
    let now = Utc::now();
    Ok(FakeMessage {
        sid: format!("SM{:032x}", rand_u128()),
        account_sid: shared.account_sid.clone(),
        from,
        to,
        body,
        media_urls,
        status_callback: get("StatusCallback"),
        status: "queued".into(),
        created_at: now,
        date_sent: None,
        updated_at: now,
        release_at: None,
        listed_at: now,
    })
}

static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Unique enough for SIDs in tests, without a random crate.
fn rand_u128() -> u128 {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u128;
    (t << 64) | u128::from(n)
}

/// Spread enough for latency ranges (splitmix64 of a counter and the clock).
pub(crate) fn random_u64() -> u64 {
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let t = Utc::now().timestamp_nanos_opt().unwrap_or_default() as u64;
    let mut z = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ t;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

async fn list(shared: &Shared, query: &[(String, String)]) -> Result<Resp, Dropped> {
    let step = shared.lock().list_script.pop_front();
    if let Some(answer) = scripted(step).await {
        return answer;
    }
    let page = list::Query::parse(query).and_then(|q| {
        let mut state = shared.lock();
        state.tick();
        list::page(&state.messages, state.unsent_last, &shared.account_sid, &q)
    });
    Ok(match page {
        Ok(page) => json_resp(StatusCode::OK, page),
        Err(e) => json_resp(StatusCode::BAD_REQUEST, error_body(400, e.code, &e.message)),
    })
}

fn not_found(path: &str) -> Resp {
    json_resp(
        StatusCode::NOT_FOUND,
        error_body(
            404,
            20404,
            &format!("The requested resource {path} was not found"),
        ),
    )
}

fn json_resp(status: StatusCode, body: Value) -> Resp {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    resp
}

/// A hosted media body, all at once or as a slow drip.
async fn media_body(m: crate::HostedMedia) -> Resp {
    if let Some(drip) = m.drip {
        // Hold the answer back piece by piece (the client's deadline should give up).
        for _ in m.bytes.chunks(1024) {
            tokio::time::sleep(drip).await;
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from(m.bytes)));
    if let Ok(v) = header::HeaderValue::from_str(&m.content_type) {
        resp.headers_mut().insert(header::CONTENT_TYPE, v);
    }
    resp
}

//! The REST API on the gateway, end to end: real HTTP into the gateway, gRPC into a
//! real core on SQLite or PostgreSQL. Every answer any test here gets is checked
//! against the OpenAPI document the running gateway serves (status documented, body
//! valid against its schema), so the document cannot drift from the server.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use reqwest::{Method, header};
use serde_json::{Value, json};
use tokio::net::TcpListener;

use crate::{
    backend_tests,
    gateway::{Gateway, gateway_on},
    helpers::*,
};

/// CORS for configured origins, and the security headers on every answer.
mod cors;
/// Refusals: bad requests, credentials, preconditions, overload, a core that is down.
mod errors;
/// The event stream (SSE) and its resumption.
mod events;
/// The mailbox routes (scheduled sends, search, archive, mute, block, delete, names).
mod mailbox;
/// Sending, reading and paging messages and conversations, media, and another user's data.
mod messages;
/// The OpenAPI document against what the server answers.
mod openapi;

/// The seed's own numbers, from its README's curl.
const SEED_FROM: &str = "+33123456789";
const SEED_TO: &str = "+33987654321";
const OWN: &str = "+15005550006";
const BOB: &str = "+14155550100";
const CAROL: &str = "+14155550101";

/// A PNG (by its signature) of `len` bytes.
fn png(len: usize) -> Vec<u8> {
    let mut b = vec![
        0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, b'I', b'H', b'D', b'R',
    ];
    b.extend((0..len.saturating_sub(16)).map(|i| (i as u8).wrapping_mul(31)));
    b
}

fn jpeg(len: usize) -> Vec<u8> {
    let mut b = vec![0xFF, 0xD8, 0xFF, 0xE0, 0, 0x10, b'J', b'F', b'I', b'F', 0];
    b.extend((0..len.saturating_sub(11)).map(|i| (i % 251) as u8));
    b
}

/// One answer of the API.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: header::HeaderMap,
    bytes: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.bytes)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and returns the JSON body.
    #[track_caller]
    fn expect(&self, status: u16) -> Value {
        assert_eq!(
            self.status,
            status,
            "body: {}",
            String::from_utf8_lossy(&self.bytes)
        );
        self.json()
    }

    /// Asserts an error answer: status, code and (when given) the field named.
    #[track_caller]
    fn expect_error(&self, status: u16, code: &str, field: Option<&str>) -> Value {
        let body = self.expect(status);
        assert_eq!(body["code"], code, "{body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
        match field {
            Some(f) => assert_eq!(body["field"], f, "{body}"),
            None => assert!(body.get("field").is_none(), "{body}"),
        }
        body
    }
}

/// A REST client that checks every answer against the served OpenAPI document.
#[derive(Clone)]
struct Rest {
    base: String,
    http: reqwest::Client,
    doc: Arc<Value>,
    /// (method, documented path, status) of every answer checked.
    seen: Arc<Mutex<Vec<(String, String, u16)>>>,
}

enum Body {
    None,
    Json(Value),
    Raw(&'static str, Vec<u8>),
    Form(reqwest::multipart::Form),
}

impl Rest {
    async fn new(gw: &Gateway) -> Self {
        let base = format!("http://{}", gw.addr);
        let http = reqwest::Client::new();
        let resp = http
            .get(format!("{base}/api/openapi.json"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()[header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("application/json")
        );
        let doc: Value = resp.json().await.unwrap();
        Self {
            base,
            http,
            doc: Arc::new(doc),
            seen: Arc::default(),
        }
    }

    async fn call(&self, method: Method, path: &str, token: Option<&str>, body: Body) -> Answer {
        self.call_with(method, path, token, body, &[]).await
    }

    async fn call_with(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Body,
        headers: &[(&str, &str)],
    ) -> Answer {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req = match body {
            Body::None => req,
            Body::Json(v) => req.json(&v),
            Body::Raw(ct, bytes) => req.header(header::CONTENT_TYPE, ct).body(bytes),
            Body::Form(form) => req.multipart(form),
        };
        let resp = req.send().await.unwrap();
        let answer = Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            bytes: resp.bytes().await.unwrap().to_vec(),
        };
        self.check(&method, path, &answer);
        answer
    }

    async fn get(&self, path: &str, token: &str) -> Answer {
        self.call(Method::GET, path, Some(token), Body::None).await
    }

    async fn post(&self, path: &str, token: &str, body: Value) -> Answer {
        self.call(Method::POST, path, Some(token), Body::Json(body))
            .await
    }

    async fn put(&self, path: &str, token: &str, body: Body) -> Answer {
        self.call(Method::PUT, path, Some(token), body).await
    }

    /// The documented path a concrete one matches (`{x}` matches one segment).
    fn template(&self, path: &str) -> Option<String> {
        let path = path.split('?').next().unwrap_or_default();
        let segs: Vec<&str> = path.split('/').collect();
        let mut best: Option<(usize, String)> = None;
        for template in self.doc["paths"].as_object()?.keys() {
            let tsegs: Vec<&str> = template.split('/').collect();
            if tsegs.len() != segs.len() {
                continue;
            }
            let mut statics = 0;
            let fits = tsegs.iter().zip(&segs).all(|(t, s)| {
                if t.starts_with('{') {
                    !s.is_empty()
                } else {
                    statics += 1;
                    t == s
                }
            });
            if fits && best.as_ref().is_none_or(|(n, _)| statics > *n) {
                best = Some((statics, template.clone()));
            }
        }
        best.map(|(_, t)| t)
    }

    /// The contract: a documented operation answered a documented status, with a
    /// body of the documented type that validates against the documented schema.
    fn check(&self, method: &Method, path: &str, answer: &Answer) {
        if *method == Method::OPTIONS || path.starts_with("/api/openapi.json") {
            return;
        }
        let Some(template) = self.template(path) else {
            // Not an API endpoint: must be the JSON 404 of the API.
            assert_eq!(answer.status, 404, "{method} {path}");
            return;
        };
        let op = &self.doc["paths"][&template][method.as_str().to_lowercase()];
        if op.is_null() {
            assert_eq!(answer.status, 405, "{method} {path} is not documented");
            return;
        }
        let status = answer.status.to_string();
        let documented = &op["responses"][&status];
        assert!(
            !documented.is_null(),
            "{method} {template} answered {status}, which the document does not list: {}",
            String::from_utf8_lossy(&answer.bytes)
        );
        let ct = answer
            .header("content-type")
            .unwrap_or_default()
            .split(';')
            .next()
            .unwrap_or_default()
            .to_owned();
        let content = &documented["content"];
        if content.is_null() {
            assert!(answer.bytes.is_empty(), "{method} {template} {status}");
            return;
        }
        let media = &content[&ct];
        assert!(
            !media.is_null(),
            "{method} {template} {status}: content type {ct} is not documented"
        );
        if ct == "application/json" {
            self.validate(
                &media["schema"],
                &answer.json(),
                &format!("{method} {template} {status}"),
            );
        }
        self.seen
            .lock()
            .unwrap()
            .push((method.to_string(), template, answer.status));
    }

    fn validate(&self, schema: &Value, instance: &Value, what: &str) {
        // The schema resolved against the document's components ($ref #/components/…).
        let mut root = schema.as_object().cloned().unwrap_or_default();
        root.insert("components".into(), self.doc["components"].clone());
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("{what}: the document's schema does not compile: {e}"));
        let errors: Vec<String> = validator
            .iter_errors(instance)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the document:\n{}\n{instance:#}",
            errors.join("\n")
        );
    }
}

/// Core (on `backend`) + gateway, the core's public URL pointing at the gateway.
async fn stack(backend: &Backend, gateway_vars: &[(&str, &str)]) -> (TestServer, Gateway, Rest) {
    stack_with(backend, &[], gateway_vars).await
}

/// [`stack`] with settings for the core too.
async fn stack_with(
    backend: &Backend,
    core_vars: &[(&'static str, &str)],
    gateway_vars: &[(&str, &str)],
) -> (TestServer, Gateway, Rest) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gw_addr = listener.local_addr().unwrap();
    let mut vars = HashMap::from([("GATEWAY_PUBLIC_URL", format!("http://{gw_addr}"))]);
    vars.extend(core_vars.iter().map(|(k, v)| (*k, (*v).to_owned())));
    let server = TestServer::start_with(backend, vars).await;
    let gw = gateway_on(listener, &format!("http://{}", server.addr), gateway_vars).await;
    let rest = Rest::new(&gw).await;
    (server, gw, rest)
}

fn seed_send() -> Value {
    json!({"from": SEED_FROM, "to": SEED_TO, "body": "Hello from CommPro!"})
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A Server-Sent Events reader over a streaming response.
struct EventStream {
    resp: reqwest::Response,
    buf: String,
}

/// One SSE event: id, event name, JSON data.
#[derive(Debug)]
struct SseEvent {
    id: u64,
    event: String,
    data: Value,
}

impl EventStream {
    async fn open(rest: &Rest, token: &str, headers: &[(&str, &str)], query: &str) -> Self {
        let mut req = rest
            .http
            .get(format!("{}/api/events{query}", rest.base))
            .bearer_auth(token);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        let ct = resp.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        assert_eq!(ct, "text/event-stream");
        // The document says so too.
        assert!(
            !rest.doc["paths"]["/api/events"]["get"]["responses"]["200"]["content"]
                ["text/event-stream"]
                .is_null()
        );
        rest.seen
            .lock()
            .unwrap()
            .push(("GET".into(), "/api/events".into(), 200));
        Self {
            resp,
            buf: String::new(),
        }
    }

    /// The next event, within `secs` seconds.
    async fn next(&mut self, secs: u64) -> SseEvent {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut id, mut event, mut data) = (None, String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().parse().ok();
                    } else if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim());
                    }
                }
                if let Some(id) = id {
                    return SseEvent {
                        id,
                        event,
                        data: serde_json::from_str(&data).unwrap(),
                    };
                }
                continue; // a comment
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("an event in time")
                .unwrap()
                .expect("the stream is still open");
            self.buf.push_str(std::str::from_utf8(&chunk).unwrap());
        }
    }

    /// Events until one of `kind` arrives (returned with those before it).
    async fn until(&mut self, kind: &str) -> (SseEvent, Vec<SseEvent>) {
        let mut before = Vec::new();
        loop {
            let e = self.next(10).await;
            if e.event == kind {
                return (e, before);
            }
            before.push(e);
        }
    }
}

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

/// The mailbox routes (scheduled sends, search, archive, mute, block, delete, names).
mod mailbox;

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

backend_tests! {
    async fn the_seeds_curl_sends_and_the_message_reads_back(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(SEED_FROM, "alice").await;
        let alice = server.token("alice");

        // Exactly the seed's request: bearer token, JSON, three fields.
        let sent = rest.post("/api/messages/send", &alice, seed_send()).await.expect(200);
        let id = sent["messageId"].as_str().unwrap().to_owned();
        assert_eq!(sent["status"], "queued");
        assert_eq!(sent["segments"], 1);
        let m = &sent["message"];
        assert_eq!(m["id"], id.as_str());
        assert_eq!((m["from"].as_str(), m["to"].as_str()), (Some(SEED_FROM), Some(SEED_TO)));
        assert_eq!(m["body"], "Hello from CommPro!");
        assert_eq!(m["direction"], "outbound");
        chrono::DateTime::parse_from_rfc3339(m["createdAt"].as_str().unwrap()).unwrap();

        // The same message through gRPC: one implementation behind both.
        let contact = m["contactId"].as_str().unwrap().to_owned();
        let grpc = server.user("alice").await.message(&contact, &id).await;
        assert_eq!(grpc.body, "Hello from CommPro!");

        // It is listed, and its conversation holds it.
        let list = rest.get("/api/messages/conversations", &alice).await.expect(200);
        assert_eq!(list["conversations"][0]["contactId"], contact.as_str());
        assert_eq!(list["conversations"][0]["lastMessage"]["id"], id.as_str());
        assert_eq!(list["nextPageToken"], Value::Null);
        let conv = rest
            .get(&format!("/api/messages/conversations/{contact}"), &alice)
            .await
            .expect(200);
        assert_eq!(conv["contactNumber"], SEED_TO);
        assert_eq!(conv["messages"][0]["id"], id.as_str());

        // The console provider delivers it; the REST view follows.
        wait_until("delivered via REST", 10, || {
            let rest = rest.clone();
            let alice = alice.clone();
            let path = format!("/api/messages/conversations/{contact}");
            async move {
                let conv = rest.get(&path, &alice).await.json();
                conv["messages"][0]["status"] == "delivered"
                    && conv["messages"][0]["deliveredAt"].is_string()
            }
        })
        .await;
    }

    async fn retried_sends_with_one_key_send_once(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");
        let body = json!({"from": OWN, "to": BOB, "body": "once", "idempotencyKey": "k-1"});
        let first = rest.post("/api/messages/send", &alice, body.clone()).await.expect(200);
        let again = rest.post("/api/messages/send", &alice, body).await.expect(200);
        assert_eq!(first["messageId"], again["messageId"]);

        // The Idempotency-Key header works the same way.
        let by_header = || {
            rest.call_with(
                Method::POST,
                "/api/messages/send",
                Some(&alice),
                Body::Json(json!({"from": OWN, "to": BOB, "body": "twice?"})),
                &[("idempotency-key", "k-2")],
            )
        };
        let a = by_header().await.expect(200);
        let b = by_header().await.expect(200);
        assert_eq!(a["messageId"], b["messageId"]);
        assert_ne!(a["messageId"], first["messageId"]);

        // The same key for another message is refused, naming the field.
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "different", "idempotencyKey": "k-1"}),
        )
        .await
        .expect_error(400, "invalid_argument", Some("idempotencyKey"));
        let conv = rest
            .get(&format!("/api/messages/conversations/{}", first["message"]["contactId"].as_str().unwrap()), &alice)
            .await
            .expect(200);
        assert_eq!(conv["messages"].as_array().unwrap().len(), 2);
    }

    async fn images_upload_send_as_mms_and_download(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");

        // Raw body with the image's type.
        let image = png(70_000);
        let up = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Raw("image/png", image.clone()))
            .await;
        let media = up.expect(201);
        let id = media["id"].as_str().unwrap().to_owned();
        assert_eq!(media["contentType"], "image/png");
        assert_eq!(media["sizeBytes"], 70_000);
        assert_eq!(media["state"], "ready");
        assert_eq!(up.header("location"), Some(format!("/api/media/{id}").as_str()));

        // Multipart, as browsers send it; the type is sniffed, not believed.
        let photo = jpeg(20_000);
        let form = reqwest::multipart::Form::new()
            .text("caption", "ignored")
            .part(
                "file",
                reqwest::multipart::Part::bytes(photo.clone())
                    .file_name("cat.png")
                    .mime_str("image/png")
                    .unwrap(),
            );
        let second = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Form(form))
            .await
            .expect(201);
        assert_eq!(second["contentType"], "image/jpeg");

        // Both download byte for byte.
        for (mid, bytes, ct) in [
            (id.as_str(), &image, "image/png"),
            (second["id"].as_str().unwrap(), &photo, "image/jpeg"),
        ] {
            let got = rest.get(&format!("/api/media/{mid}"), &alice).await;
            assert_eq!(got.status, 200);
            assert_eq!(got.header("content-type"), Some(ct));
            assert_eq!(got.header("cache-control"), Some("no-store"));
            assert_eq!(&got.bytes, bytes);
        }

        let sent = rest
            .post(
                "/api/messages/send-mms",
                &alice,
                json!({"from": OWN, "to": BOB, "body": "look", "mediaIds": [id, second["id"]]}),
            )
            .await
            .expect(200);
        assert_eq!(sent["status"], "queued");
        let listed: Vec<&str> = sent["message"]["media"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap())
            .collect();
        assert_eq!(listed, [id.as_str(), second["id"].as_str().unwrap()]);
        assert_eq!(sent["message"]["media"][0]["url"], format!("/api/media/{id}"));

        // External media by URL only (Twilio fetches those itself).
        let by_url = rest
            .post(
                "/api/messages/send-mms",
                &alice,
                json!({"from": OWN, "to": BOB, "mediaUrls": ["https://example.com/cat.gif"]}),
            )
            .await
            .expect(200);
        assert_eq!(by_url["message"]["body"], "");
    }

    async fn read_state_through_the_api(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        let alice = server.token("alice");
        let first = server.inbound("SMr1", BOB, OWN, "one").await;
        let second = server.inbound("SMr2", BOB, OWN, "two").await;
        server.inbound("SMr3", BOB, OWN, "three").await;
        let contact = first.contact_id.clone();

        let unread = |rest: Rest, alice: String| async move {
            let list = rest.get("/api/messages/conversations", &alice).await.expect(200);
            list["conversations"][0]["unreadCount"].as_u64().unwrap()
        };
        assert_eq!(unread(rest.clone(), alice.clone()).await, 3);

        let read = rest
            .put(&format!("/api/messages/{}/read", first.id), &alice, Body::None)
            .await
            .expect(200);
        assert_eq!(read["id"], first.id.as_str());
        assert_eq!(read["direction"], "inbound");
        assert_eq!((read["from"].as_str(), read["to"].as_str()), (Some(BOB), Some(OWN)));
        let read_at = read["readAt"].as_str().unwrap().to_owned();
        // Idempotent: the first readAt stays.
        let again = rest
            .put(&format!("/api/messages/{}/read", first.id), &alice, Body::None)
            .await
            .expect(200);
        assert_eq!(again["readAt"], read_at.as_str());
        assert_eq!(unread(rest.clone(), alice.clone()).await, 2);

        let path = format!("/api/messages/conversations/{contact}/read");
        let left = rest
            .put(&path, &alice, Body::Json(json!({"upToMessageId": second.id})))
            .await
            .expect(200);
        assert_eq!(left, json!({"contactId": contact, "unreadCount": 1}));
        // No body at all: the whole conversation.
        let left = rest.put(&path, &alice, Body::None).await.expect(200);
        assert_eq!(left["unreadCount"], 0);
        assert_eq!(unread(rest.clone(), alice.clone()).await, 0);
    }

    async fn another_users_data_is_not_found(backend: Backend) {
        let (server, _gw, rest) = stack(&backend, &[]).await;
        server.assign(OWN, "alice").await;
        server.assign(CAROL, "bob").await;
        let (alice, bob) = (server.token("alice"), server.token("bob"));
        let sent = rest
            .post("/api/messages/send", &alice, json!({"from": OWN, "to": BOB, "body": "private"}))
            .await
            .expect(200);
        let contact = sent["message"]["contactId"].as_str().unwrap().to_owned();
        let inbound = server.inbound("SMiso", BOB, OWN, "for alice").await;
        let media = rest
            .call(Method::POST, "/api/media", Some(&alice), Body::Raw("image/png", png(1000)))
            .await
            .expect(201);
        let media_id = media["id"].as_str().unwrap().to_owned();

        let list = rest.get("/api/messages/conversations", &bob).await.expect(200);
        assert_eq!(list["conversations"], json!([]));
        rest.get(&format!("/api/messages/conversations/{contact}"), &bob)
            .await
            .expect_error(404, "not_found", None);
        rest.get(&format!("/api/media/{media_id}"), &bob)
            .await
            .expect_error(404, "not_found", None);
        rest.put(&format!("/api/messages/{}/read", inbound.id), &bob, Body::None)
            .await
            .expect_error(404, "not_found", None);
        rest.put(&format!("/api/messages/conversations/{contact}/read"), &bob, Body::None)
            .await
            .expect_error(404, "not_found", None);
        rest.post(
            "/api/messages/send-mms",
            &bob,
            json!({"from": CAROL, "to": BOB, "mediaIds": [media_id]}),
        )
        .await
        .expect_error(404, "not_found", None);
        rest.post("/api/messages/send", &bob, json!({"from": OWN, "to": BOB, "body": "spoof"}))
            .await
            .expect_error(403, "permission_denied", None);

        // Alice's data is untouched: still unread, still one message each way.
        let conv = rest
            .get(&format!("/api/messages/conversations/{contact}"), &alice)
            .await
            .expect(200);
        assert_eq!(conv["messages"].as_array().unwrap().len(), 2);
        assert!(conv["messages"].as_array().unwrap().iter().all(|m| m["readAt"].is_null()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_follow_next_page_token() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    for (i, to) in ["+14155550111", "+14155550112", "+14155550113"]
        .iter()
        .enumerate()
    {
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": to, "body": format!("m{i}")}),
        )
        .await
        .expect(200);
    }
    let first = rest
        .get("/api/messages/conversations?pageSize=2", &alice)
        .await
        .expect(200);
    assert_eq!(first["conversations"].as_array().unwrap().len(), 2);
    let token = first["nextPageToken"].as_str().unwrap();
    let second = rest
        .get(
            &format!(
                "/api/messages/conversations?pageSize=2&pageToken={}",
                urlencode(token)
            ),
            &alice,
        )
        .await
        .expect(200);
    assert_eq!(second["conversations"].as_array().unwrap().len(), 1);
    assert_eq!(second["nextPageToken"], Value::Null);
    // Newest first across the pages.
    assert_eq!(first["conversations"][0]["contactNumber"], "+14155550113");
    assert_eq!(second["conversations"][0]["contactNumber"], "+14155550111");

    // A conversation's messages page the same way.
    for i in 0..3 {
        rest.post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": format!("b{i}")}),
        )
        .await
        .expect(200);
    }
    let contact = rest
        .get("/api/messages/conversations?pageSize=1", &alice)
        .await
        .expect(200)["conversations"][0]["contactId"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut bodies = Vec::new();
    let mut token = String::new();
    loop {
        let page = rest
            .get(
                &format!(
                    "/api/messages/conversations/{contact}?pageSize=2&pageToken={}",
                    urlencode(&token)
                ),
                &alice,
            )
            .await
            .expect(200);
        bodies.extend(
            page["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["body"].as_str().unwrap().to_owned()),
        );
        match page["nextPageToken"].as_str() {
            Some(t) => token = t.to_owned(),
            None => break,
        }
    }
    assert_eq!(bodies, ["b2", "b1", "b0"]);

    rest.get("/api/messages/conversations?pageSize=ten", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("pageSize"));
    rest.get("/api/messages/conversations?pageToken=garbage", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("pageToken"));
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_refused_with_the_field_named() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let send = |body: Value| rest.post("/api/messages/send", &alice, body);

    send(json!({"from": OWN, "to": "12345", "body": "x"}))
        .await
        .expect_error(400, "invalid_argument", Some("to"));
    send(json!({"from": OWN, "to": BOB}))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    send(json!({"from": OWN, "to": BOB, "body": "x".repeat(1601)}))
        .await
        .expect_error(400, "invalid_argument", Some("body"));
    let e = send(json!({"from": OWN, "to": 5, "body": "x"}))
        .await
        .expect_error(400, "invalid_argument", Some("to"));
    assert!(
        e["error"].as_str().unwrap().contains("expected a string"),
        "{e}"
    );
    send(json!({"from": OWN, "to": BOB, "body": "x", "idempotency_key": "k"}))
        .await
        .expect_error(400, "invalid_argument", Some("idempotency_key"));
    rest.post(
        "/api/messages/send-mms",
        &alice,
        json!({"from": OWN, "to": BOB, "mediaUrls": ["http://insecure.example/a.png"]}),
    )
    .await
    .expect_error(400, "invalid_argument", Some("mediaUrls"));
    rest.call_with(
        Method::POST,
        "/api/messages/send",
        Some(&alice),
        Body::Json(json!({"from": OWN, "to": BOB, "body": "x", "idempotencyKey": "a"})),
        &[("idempotency-key", "b")],
    )
    .await
    .expect_error(400, "invalid_argument", Some("idempotencyKey"));

    // Not JSON, wrong type, too big, empty.
    let raw = |ct: &'static str, body: &[u8]| {
        rest.call(
            Method::POST,
            "/api/messages/send",
            Some(&alice),
            Body::Raw(ct, body.to_vec()),
        )
    };
    let e =
        raw("application/json", b"{\"from\": ")
            .await
            .expect_error(400, "invalid_argument", None);
    assert!(
        e["error"].as_str().unwrap().contains("not valid JSON"),
        "{e}"
    );
    raw("application/json", b"[1,2]")
        .await
        .expect_error(400, "invalid_argument", None);
    raw("application/json", b"")
        .await
        .expect_error(400, "invalid_argument", None);
    raw("text/plain", b"{}")
        .await
        .expect_error(415, "unsupported_media_type", None);
    raw("application/x-www-form-urlencoded", b"from=x")
        .await
        .expect_error(415, "unsupported_media_type", None);
    let huge =
        serde_json::to_vec(&json!({"from": OWN, "to": BOB, "body": "x".repeat(70_000)})).unwrap();
    raw("application/json", &huge)
        .await
        .expect_error(413, "payload_too_large", None);

    // Uploads: not an image, too big, neither multipart nor image, a form without a file.
    let upload = |ct: &'static str, body: Vec<u8>| {
        rest.call(
            Method::POST,
            "/api/media",
            Some(&alice),
            Body::Raw(ct, body),
        )
    };
    upload("image/png", b"plain text, not an image".to_vec())
        .await
        .expect_error(400, "invalid_argument", Some("file"));
    upload(
        "image/gif",
        b"GIF? no, text with an image's first letters".to_vec(),
    )
    .await
    .expect_error(400, "invalid_argument", Some("file"));
    upload("image/png", png(5 * 1024 * 1024 + 1))
        .await
        .expect_error(413, "payload_too_large", None);
    upload("image/png", Vec::new())
        .await
        .expect_error(400, "invalid_argument", Some("file"));
    upload("text/plain", b"hello".to_vec())
        .await
        .expect_error(415, "unsupported_media_type", None);
    let form = reqwest::multipart::Form::new().text("caption", "no file here");
    rest.call(Method::POST, "/api/media", Some(&alice), Body::Form(form))
        .await
        .expect_error(400, "invalid_argument", Some("file"));

    // Unknown things.
    rest.get(
        "/api/messages/conversations/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11",
        &alice,
    )
    .await
    .expect_error(404, "not_found", None);
    rest.put(
        "/api/messages/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11/read",
        &alice,
        Body::None,
    )
    .await
    .expect_error(404, "not_found", None);
    rest.get("/api/media/0193a0c4-7d1e-7f38-9b1a-5d2f0e4c8a11", &alice)
        .await
        .expect_error(404, "not_found", None);
    // An id that does not decode: the same JSON shape.
    rest.get("/api/messages/conversations/%FF%FE", &alice)
        .await
        .expect_error(400, "invalid_argument", None);
    rest.put("/api/messages/%FF/read", &alice, Body::None)
        .await
        .expect_error(400, "invalid_argument", None);
    rest.get("/api/nothing-here", &alice)
        .await
        .expect_error(404, "not_found", None);
    let wrong = rest
        .call(
            Method::DELETE,
            "/api/messages/send",
            Some(&alice),
            Body::None,
        )
        .await;
    wrong.expect_error(405, "method_not_allowed", None);
    assert_eq!(wrong.header("allow"), Some("POST"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_and_preconditions_map_to_their_statuses() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");

    // No token, a forged one, an expired one: 401 with a Bearer challenge.
    let forged = JwtIssuerFor::other_secret("alice");
    for token in [None, Some("not-a-jwt"), Some(forged.as_str())] {
        let a = rest
            .call(
                Method::POST,
                "/api/messages/send",
                token,
                Body::Json(seed_send()),
            )
            .await;
        a.expect_error(401, "unauthenticated", None);
        assert_eq!(a.header("www-authenticate"), Some("Bearer"));
    }
    rest.call(Method::GET, "/api/messages/conversations", None, Body::None)
        .await
        .expect_error(401, "unauthenticated", None);

    // A number that is not the caller's: 403.
    rest.post("/api/messages/send", &alice, seed_send())
        .await
        .expect_error(403, "permission_denied", None);

    // A recipient who replied STOP: 409 until they send START.
    server.inbound("SMstop", BOB, OWN, "STOP").await;
    let e = rest
        .post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "hi"}),
        )
        .await
        .expect_error(409, "failed_precondition", None);
    assert!(e["error"].as_str().unwrap().contains("opted out"), "{e}");
    assert!(
        !e["error"].as_str().unwrap().contains(BOB),
        "number not masked: {e}"
    );
}

/// Tokens the core must refuse.
struct JwtIssuerFor;

impl JwtIssuerFor {
    fn other_secret(user: &str) -> String {
        messaging_grpc::auth::JwtIssuer::hs256(
            b"another-secret-that-is-at-least-32-bytes",
            ISSUER,
            AUDIENCE,
        )
        .issue(user, &[], Duration::from_secs(600))
        .unwrap()
    }
}

/// The status of a listing made through a load balancer that appended `xff`.
async fn from(rest: &Rest, token: &str, xff: &str) -> u16 {
    rest.call_with(
        Method::GET,
        "/api/messages/conversations",
        Some(token),
        Body::None,
        &[("x-forwarded-for", xff)],
    )
    .await
    .status
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_and_a_down_core_are_retryable_answers() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[("GATEWAY_RATE_LIMIT_PER_SEC", "1")]).await;
    let alice = server.token("alice");
    // One per second, bursts of two: the third at once is refused.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let a = rest.get("/api/messages/conversations", &alice).await;
        if a.status == 429 {
            a.expect_error(429, "resource_exhausted", None);
            assert_eq!(a.header("retry-after"), Some("1"));
        }
        statuses.push(a.status);
    }
    assert!(statuses.contains(&429), "{statuses:?}");

    // Behind a trusted load balancer each client has its own bucket, whatever it
    // claims further left in X-Forwarded-For.
    let (server, _gw, rest) = stack(
        &Backend::Sqlite,
        &[
            ("GATEWAY_RATE_LIMIT_PER_SEC", "1"),
            ("GATEWAY_TRUSTED_PROXIES", "127.0.0.1, ::1"),
        ],
    )
    .await;
    let alice = server.token("alice");
    let mut first_client = Vec::new();
    for _ in 0..4 {
        first_client.push(from(&rest, &alice, "203.0.113.1").await);
    }
    assert!(first_client.contains(&429), "{first_client:?}");
    // Right after its bucket ran dry: a spoofed leftmost entry does not help it...
    assert_eq!(from(&rest, &alice, "9.9.9.9, 203.0.113.1").await, 429);
    // ...while other clients behind the same balancer are served.
    assert_eq!(from(&rest, &alice, "203.0.113.2").await, 200);
    assert_eq!(from(&rest, &alice, "203.0.113.1, 203.0.113.3").await, 200);

    // A gateway whose core is not there: 503 with Retry-After, in JSON.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let gw = gateway_on(TcpListener::bind("127.0.0.1:0").await.unwrap(), &dead, &[]).await;
    let rest = Rest::new(&gw).await;
    let a = rest.post("/api/messages/send", &alice, seed_send()).await;
    a.expect_error(503, "unavailable", None);
    assert_eq!(a.header("retry-after"), Some("1"));
}

async fn preflight(rest: &Rest, origin: &str) -> Answer {
    rest.call_with(
        Method::OPTIONS,
        "/api/messages/send",
        None,
        Body::None,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_for_configured_origins_and_security_headers_everywhere() {
    let (server, gw, rest) = stack(
        &Backend::Sqlite,
        &[(
            "GATEWAY_CORS_ALLOWED_ORIGINS",
            "https://app.commpro.example",
        )],
    )
    .await;
    let alice = server.token("alice");
    let ok = preflight(&rest, "https://app.commpro.example").await;
    assert!(ok.status < 300, "{}", ok.status);
    assert_eq!(
        ok.header("access-control-allow-origin"),
        Some("https://app.commpro.example")
    );
    let allowed = ok
        .header("access-control-allow-headers")
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed.contains("authorization") && allowed.contains("content-type"),
        "{allowed}"
    );
    assert!(
        ok.header("access-control-allow-methods")
            .unwrap()
            .contains("POST")
    );

    let evil = preflight(&rest, "https://evil.example").await;
    assert_eq!(evil.header("access-control-allow-origin"), None);

    let a = rest
        .call_with(
            Method::GET,
            "/api/messages/conversations",
            Some(&alice),
            Body::None,
            &[("origin", "https://app.commpro.example")],
        )
        .await;
    assert_eq!(a.status, 200);
    assert_eq!(
        a.header("access-control-allow-origin"),
        Some("https://app.commpro.example")
    );
    for (name, value) in [
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "no-referrer"),
        ("cache-control", "no-store"),
        ("cross-origin-opener-policy", "same-origin"),
    ] {
        assert_eq!(a.header(name), Some(value), "{name}");
    }
    assert!(
        a.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    assert!(a.header("strict-transport-security").is_some());

    // The Twilio side gets them too.
    let health = gw
        .http
        .get(format!("http://{}/healthz", gw.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(health.headers()["x-content-type-options"], "nosniff");

    // Without configured origins there are no CORS headers at all.
    let (_s2, _gw2, plain) = stack(&Backend::Sqlite, &[]).await;
    let none = plain
        .call_with(
            Method::GET,
            "/api/messages/conversations",
            Some(&alice),
            Body::None,
            &[("origin", "https://app.commpro.example")],
        )
        .await;
    assert_eq!(none.header("access-control-allow-origin"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_exactly_what_the_server_answers() {
    let (server, _gw, rest) = stack(&Backend::Sqlite, &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let doc = rest.doc.clone();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );

    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    documented.sort();
    let mut expected: Vec<(String, String)> = [
        ("POST", "/api/messages/send"),
        ("POST", "/api/messages/send-mms"),
        ("POST", "/api/media"),
        ("GET", "/api/media/{mediaId}"),
        ("GET", "/api/messages/conversations"),
        ("GET", "/api/messages/conversations/{contactId}"),
        ("PUT", "/api/messages/{messageId}/read"),
        ("PUT", "/api/messages/conversations/{contactId}/read"),
        ("GET", "/api/events"),
        ("POST", "/api/messages/{messageId}/cancel"),
        ("DELETE", "/api/messages/{messageId}"),
        ("GET", "/api/messages/search"),
        ("PUT", "/api/messages/conversations/{contactId}/archive"),
        ("DELETE", "/api/messages/conversations/{contactId}/archive"),
        ("PUT", "/api/messages/conversations/{contactId}/mute"),
        ("DELETE", "/api/messages/conversations/{contactId}/mute"),
        ("DELETE", "/api/messages/conversations/{contactId}"),
        ("GET", "/api/blocked-numbers"),
        ("POST", "/api/blocked-numbers"),
        ("DELETE", "/api/blocked-numbers/{number}"),
        ("PUT", "/api/contacts/{contactId}/name"),
    ]
    .iter()
    .map(|(m, p)| (m.to_string(), p.to_string()))
    .collect();
    expected.sort();
    assert_eq!(documented, expected);

    // A successful call of every documented operation, each checked against the
    // document by the client (status, content type, schema).
    let inbound = server.inbound("SMdoc", BOB, OWN, "hello").await;
    let media = rest
        .call(
            Method::POST,
            "/api/media",
            Some(&alice),
            Body::Raw("image/gif", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;".to_vec()),
        )
        .await
        .expect(201);
    let media_id = media["id"].as_str().unwrap();
    rest.get(&format!("/api/media/{media_id}"), &alice).await;
    rest.post(
        "/api/messages/send",
        &alice,
        json!({"from": OWN, "to": BOB, "body": "hi"}),
    )
    .await
    .expect(200);
    rest.post(
        "/api/messages/send-mms",
        &alice,
        json!({"from": OWN, "to": BOB, "mediaIds": [media_id]}),
    )
    .await
    .expect(200);
    rest.get("/api/messages/conversations", &alice)
        .await
        .expect(200);
    rest.get(
        &format!("/api/messages/conversations/{}", inbound.contact_id),
        &alice,
    )
    .await
    .expect(200);
    rest.put(
        &format!("/api/messages/{}/read", inbound.id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);
    rest.put(
        &format!("/api/messages/conversations/{}/read", inbound.contact_id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);

    // The mailbox operations.
    let at = (chrono::Utc::now() + chrono::Duration::hours(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let scheduled = rest
        .post(
            "/api/messages/send",
            &alice,
            json!({"from": OWN, "to": BOB, "body": "later", "sendAt": at}),
        )
        .await
        .expect(200);
    let scheduled_id = scheduled["messageId"].as_str().unwrap();
    rest.call(
        Method::POST,
        &format!("/api/messages/{scheduled_id}/cancel"),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);
    rest.get("/api/messages/search?q=hello", &alice)
        .await
        .expect(200);
    let conv = format!("/api/messages/conversations/{}", inbound.contact_id);
    for (method, path, body) in [
        (Method::PUT, format!("{conv}/archive"), Body::None),
        (Method::DELETE, format!("{conv}/archive"), Body::None),
        (Method::PUT, format!("{conv}/mute"), Body::None),
        (Method::DELETE, format!("{conv}/mute"), Body::None),
        (
            Method::PUT,
            format!("/api/contacts/{}/name", inbound.contact_id),
            Body::Json(json!({"name": "Bob"})),
        ),
        (Method::GET, "/api/blocked-numbers".to_owned(), Body::None),
        (
            Method::DELETE,
            format!("/api/messages/{scheduled_id}"),
            Body::None,
        ),
    ] {
        rest.call(method, &path, Some(&alice), body)
            .await
            .expect(200);
    }
    // Blocking Carol makes her contact; her (empty) conversation deletes at once, while
    // Bob's still has sends in flight.
    let blocked = rest
        .post("/api/blocked-numbers", &alice, json!({"number": CAROL}))
        .await
        .expect(200);
    rest.call(
        Method::DELETE,
        &format!(
            "/api/messages/conversations/{}",
            blocked["contactId"].as_str().unwrap()
        ),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);
    rest.call(
        Method::DELETE,
        &format!("/api/blocked-numbers/{CAROL}"),
        Some(&alice),
        Body::None,
    )
    .await
    .expect(200);

    let mut events = EventStream::open(&rest, &alice, &[], "").await;
    let hello = events.next(20).await;
    rest.validate(
        &json!({"$ref": "#/components/schemas/Event"}),
        &hello.data,
        "SSE data",
    );

    let seen = rest.seen.lock().unwrap().clone();
    for (method, path) in &expected {
        assert!(
            seen.iter()
                .any(|(m, p, s)| m == method && p == path && *s < 300),
            "{method} {path} was documented but never answered successfully"
        );
    }
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_stream_as_sse_and_resume_from_last_event_id() {
    let (server, _gw, rest) =
        stack_with(&Backend::Sqlite, &[("WATCH_KEEPALIVE_MS", "400")], &[]).await;
    server.assign(OWN, "alice").await;
    let alice = server.token("alice");
    let event_schema = json!({"$ref": "#/components/schemas/Event"});

    let mut stream = EventStream::open(&rest, &alice, &[], "").await;
    let hello = stream.next(5).await;
    assert_eq!(hello.event, "keepalive");
    assert_eq!(hello.data["cursor"], hello.id);
    let start = hello.id;

    let inbound = server.inbound("SMsse1", BOB, OWN, "hello over SSE").await;
    let (received, _) = stream.until("message_received").await;
    assert_eq!(received.id, start + 1);
    assert_eq!(received.data["messageId"], inbound.id.as_str());
    assert_eq!(received.data["contactId"], inbound.contact_id.as_str());
    assert_eq!(received.data["unreadCount"], 1);
    assert!(
        !received.data.to_string().contains("hello over SSE"),
        "events carry no bodies"
    );
    rest.validate(&event_schema, &received.data, "SSE data");

    // Past the gateway's 5 s call deadline the stream is still alive (it has none).
    let opened = tokio::time::Instant::now();
    while opened.elapsed() < Duration::from_millis(5_600) {
        let e = stream.next(3).await;
        rest.validate(&event_schema, &e.data, "SSE data");
    }
    drop(stream);

    // Changes while away are replayed, once, in order, after Last-Event-ID.
    rest.put(
        &format!("/api/messages/conversations/{}/read", inbound.contact_id),
        &alice,
        Body::None,
    )
    .await
    .expect(200);
    let last = received.id.to_string();
    let mut resumed = EventStream::open(&rest, &alice, &[("last-event-id", &last)], "").await;
    let (read, before) = resumed.until("messages_read").await;
    assert_eq!(read.id, start + 2);
    assert_eq!(read.data["unreadCount"], 0);
    assert!(
        before.iter().all(|e| e.event == "keepalive"),
        "nothing replayed twice: {before:?}"
    );

    // The same with sinceCursor; a cursor ahead of the log is out of range.
    let mut again = EventStream::open(&rest, &alice, &[], &format!("?sinceCursor={start}")).await;
    let (first, _) = again.until("message_received").await;
    assert_eq!(first.id, start + 1);
    rest.get("/api/events?sinceCursor=999999", &alice)
        .await
        .expect_error(400, "out_of_range", None);
    rest.get("/api/events?sinceCursor=soon", &alice)
        .await
        .expect_error(400, "invalid_argument", Some("sinceCursor"));
    rest.call(Method::GET, "/api/events", None, Body::None)
        .await
        .expect_error(401, "unauthenticated", None);
}

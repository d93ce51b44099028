//! The secrets scan: one full scenario against the real `messaging dev` process (core
//! and gateway, debug logs captured, traces exported to a fake OTLP collector, Twilio
//! faked on loopback) — a REST send, an MMS with an external URL, an inbound MMS with
//! its image copied, status callbacks, events — then every place data ends up is read:
//! the process's stdout and stderr, the database files, the media folder and the
//! exported spans. None may hold a body, a media URL, a token, a key or an unmasked
//! phone number (contact numbers anywhere; our own numbers outside the database).

use std::{
    collections::HashMap,
    process::{Command, Stdio},
    sync::{Arc, Mutex},
    time::Duration,
};

use commpro_messaging_api::v1 as pb;
use messaging_grpc::auth::{JwtIssuer, Role};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
    trace_service_server::{TraceService, TraceServiceServer},
};
use tokio::net::TcpListener;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;
use twilio_fake::FakeTwilio;
use webhook_gateway::signature;

use crate::helpers::*;

const OWN: &str = "+12025550180";
const BOB: &str = "+12025550143";
const CAROL: &str = "+13125550176";
/// Twilio refuses it (21211), naming it in its error text.
const REFUSED: &str = "+15005550001";
/// Writes to a number nobody owns (unroutable).
const DAVE: &str = "+13125550199";
/// The path of an inbound media URL whose download fails (reqwest's error names the URL).
const FAILING_PATH: &str = "SCAN-failing-path-3e1a";
/// Blocked and unblocked over REST: in the request path, so in the request log.
const ERIN: &str = "+13125550142";
const SMS_BODY: &str = "SCAN-sms-body-4f1d the vault code is 1234";
const MMS_BODY: &str = "SCAN-mms-body-8a2c look at this";
const INBOUND_BODY: &str = "SCAN-inbound-body-77e0 photo attached";
const EXTERNAL_URL: &str = "https://media.example.com/SCAN-private-path-5b9e/cat.png";
const MASTER_KEY_B64: &str = "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=";

/// Every span the fake collector received, printed with all its attributes.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<String>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            for scope in rs.scope_spans {
                seen.extend(scope.spans.iter().map(|s| format!("{s:?}")));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// POSTs a form to the gateway signed as Twilio signs it for `url`.
async fn twilio_post(http: &reqwest::Client, url: &str, form: &[(String, String)]) -> u16 {
    let sig = signature::compute(twilio_fake::AUTH_TOKEN.as_bytes(), url, form);
    http.post(url)
        .header("X-Twilio-Signature", sig)
        .form(form)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[track_caller]
fn assert_clean(place: &str, bytes: &[u8], secrets: &[(&str, String)]) {
    for (what, secret) in secrets {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{what} ({secret}) found in {place}"
        );
    }
}

/// Every file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_in_logs_database_media_or_spans_after_a_full_scenario() {
    let shutdown = CancellationToken::new();
    let collector = Collector::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let collector_addr = listener.local_addr().unwrap();
    let stop = shutdown.clone();
    let service = TraceServiceServer::new(collector.clone());
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                stop.cancelled(),
            )
            .await
    });
    let fake = FakeTwilio::start().await.unwrap();
    let image = crate::media::png(4096, 9);
    let inbound_media_url = fake.host_media(image.clone(), "image/png");

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let [grpc, http, core_metrics, gw_metrics] =
        [free_port(), free_port(), free_port(), free_port()];
    let gateway = format!("http://127.0.0.1:{http}");
    let env: HashMap<&str, String> = HashMap::from([
        ("MESSAGING_DATA_DIR", data.display().to_string()),
        ("MESSAGING_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
        ("GATEWAY_HTTP_ADDR", format!("127.0.0.1:{http}")),
        (
            "MESSAGING_METRICS_ADDR",
            format!("127.0.0.1:{core_metrics}"),
        ),
        ("GATEWAY_METRICS_ADDR", format!("127.0.0.1:{gw_metrics}")),
        ("GATEWAY_PUBLIC_URL", gateway.clone()),
        ("MESSAGING_MASTER_KEYS", format!("scan1:{MASTER_KEY_B64}")),
        ("JWT_HS256_SECRET", SECRET.into()),
        ("MEDIA_URL_SECRET", MEDIA_SECRET.into()),
        ("SMS_PROVIDER", "twilio".into()),
        ("TWILIO_ACCOUNT_SID", twilio_fake::ACCOUNT_SID.into()),
        ("TWILIO_AUTH_TOKEN", twilio_fake::AUTH_TOKEN.into()),
        ("TWILIO_API_BASE", fake.base_url()),
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{collector_addr}"),
        ),
        ("RUST_LOG", "debug".into()),
    ]);
    let stdout_path = dir.path().join("stdout.log");
    let stderr_path = dir.path().join("stderr.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_messaging"))
        .arg("dev")
        .env_remove("DATABASE_URL")
        .envs(&env)
        .stdout(std::fs::File::create(&stdout_path).unwrap())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let show_log = || std::fs::read_to_string(&stderr_path).unwrap_or_default();

    let issuer = JwtIssuer::hs256(SECRET.as_bytes(), ISSUER, AUDIENCE);
    let alice = issuer
        .issue("alice", &[], Duration::from_secs(600))
        .unwrap();
    let admin = issuer
        .issue("operator", &[Role::Admin], Duration::from_secs(600))
        .unwrap();
    let http_client = reqwest::Client::new();

    // The core answers once it has started (and sealed anything old).
    let channel = {
        let url = format!("http://127.0.0.1:{grpc}");
        let mut tries = 0;
        loop {
            match tonic::transport::Channel::from_shared(url.clone())
                .unwrap()
                .connect()
                .await
            {
                Ok(c) => break c,
                Err(_) if tries < 300 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("core never answered: {e}\n{}", show_log()),
            }
        }
    };
    let mut admin_client = pb::messaging_admin_client::MessagingAdminClient::new(channel.clone());
    admin_client
        .assign_number(authed(
            pb::AssignNumberRequest {
                number: OWN.into(),
                user_id: "alice".into(),
            },
            &admin,
        ))
        .await
        .unwrap_or_else(|e| panic!("{e:?}\n{}", show_log()));
    let mut svc = pb::messaging_service_client::MessagingServiceClient::new(channel);
    let mut events = svc
        .watch_events(authed(pb::WatchEventsRequest::default(), &alice))
        .await
        .unwrap()
        .into_inner();

    // A send over REST (waiting for the gateway to listen), an MMS over gRPC.
    let mut sent = None;
    for _ in 0..100 {
        if let Ok(resp) = http_client
            .post(format!("{gateway}/api/messages/send"))
            .bearer_auth(&alice)
            .json(&serde_json::json!({"from": OWN, "to": BOB, "body": SMS_BODY}))
            .send()
            .await
        {
            assert_eq!(resp.status(), 200);
            sent = Some(resp.json::<serde_json::Value>().await.unwrap());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sent = sent.expect("the gateway answered");
    let contact_id = sent["message"]["contactId"].as_str().unwrap().to_owned();
    svc.send_mms(authed(
        pb::SendMmsRequest {
            from: OWN.into(),
            to: BOB.into(),
            body: MMS_BODY.into(),
            media_urls: vec![EXTERNAL_URL.into()],
            ..Default::default()
        },
        &alice,
    ))
    .await
    .unwrap();
    wait_until("both sends reach Twilio", 20, || async {
        fake.messages().len() == 2
    })
    .await;
    // A send Twilio refuses with 21211, its text naming the number: the error column
    // and the logs get it masked.
    let refused = http_client
        .post(format!("{gateway}/api/messages/send"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"from": OWN, "to": REFUSED, "body": "to nowhere"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 200);
    let refused: serde_json::Value = refused.json().await.unwrap();
    let refused_contact = refused["message"]["contactId"].as_str().unwrap().to_owned();

    // Twilio reports them delivered, through the gateway's signed status webhook.
    for m in fake.messages() {
        let callback = m.status_callback.clone().expect("a StatusCallback URL");
        let form = pairs(&[
            ("MessageSid", &m.sid),
            ("AccountSid", twilio_fake::ACCOUNT_SID),
            ("MessageStatus", "delivered"),
            ("To", &m.to),
            ("From", &m.from),
        ]);
        assert_eq!(
            twilio_post(&http_client, &callback, &form).await,
            200,
            "{}",
            show_log()
        );
    }

    // A message to a number nobody owns, and an inbound MMS whose download fails.
    let form = pairs(&[
        ("MessageSid", "SM00000000000000000000000000005c02"),
        ("AccountSid", twilio_fake::ACCOUNT_SID),
        ("From", DAVE),
        ("To", "+12025550999"),
        ("Body", "anyone?"),
        ("NumMedia", "0"),
    ]);
    let url = format!("{gateway}/webhook/sms");
    assert_eq!(
        twilio_post(&http_client, &url, &form).await,
        200,
        "{}",
        show_log()
    );
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_port = closed.local_addr().unwrap().port();
    drop(closed);
    let failing_url = format!("http://127.0.0.1:{closed_port}/{FAILING_PATH}/x.png");
    let form = pairs(&[
        ("MessageSid", "SM00000000000000000000000000005c03"),
        ("AccountSid", twilio_fake::ACCOUNT_SID),
        ("From", CAROL),
        ("To", OWN),
        ("Body", "a photo that cannot be fetched"),
        ("NumMedia", "1"),
        ("MediaUrl0", &failing_url),
        ("MediaContentType0", "image/png"),
    ]);
    assert_eq!(
        twilio_post(&http_client, &url, &form).await,
        200,
        "{}",
        show_log()
    );

    // An inbound MMS whose image is copied from "Twilio".
    let form = pairs(&[
        ("MessageSid", "SM00000000000000000000000000005c01"),
        ("AccountSid", twilio_fake::ACCOUNT_SID),
        ("From", CAROL),
        ("To", OWN),
        ("Body", INBOUND_BODY),
        ("NumMedia", "1"),
        ("MediaUrl0", &inbound_media_url),
        ("MediaContentType0", "image/png"),
    ]);
    let url = format!("{gateway}/webhook/sms");
    assert_eq!(
        twilio_post(&http_client, &url, &form).await,
        200,
        "{}",
        show_log()
    );
    wait_until("the inbound image is copied", 20, || async {
        let list = http_client
            .get(format!("{gateway}/api/messages/conversations"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        list.contains(INBOUND_BODY) && list.contains("\"ready\"")
    })
    .await;
    wait_until("both sends delivered", 20, || async {
        let page = http_client
            .get(format!("{gateway}/api/messages/conversations/{contact_id}"))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.matches("\"delivered\"").count() >= 2
    })
    .await;
    wait_until("the refused send failed, its number masked", 20, || async {
        let page = http_client
            .get(format!(
                "{gateway}/api/messages/conversations/{refused_contact}"
            ))
            .bearer_auth(&alice)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        page.contains("\"failed\"") && page.contains("+*******0001")
    })
    .await;
    wait_until("the failing download was tried", 20, || async {
        std::fs::read_to_string(&stderr_path)
            .is_ok_and(|l| l.contains("inbound media download failed"))
    })
    .await;
    // A number in a request path (unblocking one): the request log masks it.
    let blocked = http_client
        .post(format!("{gateway}/api/blocked-numbers"))
        .bearer_auth(&alice)
        .json(&serde_json::json!({"number": ERIN}))
        .send()
        .await
        .unwrap();
    assert!(blocked.status().is_success(), "{blocked:?}");
    let unblocked = http_client
        .delete(format!(
            "{gateway}/api/blocked-numbers/%2B{}",
            ERIN.trim_start_matches('+')
        ))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert!(unblocked.status().is_success(), "{unblocked:?}");
    let mut seen = 0;
    while seen < 4 {
        tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("events arrive")
            .expect("stream open")
            .expect("an event");
        seen += 1;
    }
    wait_until("spans exported", 30, || async {
        collector.0.lock().unwrap().len() > 10
    })
    .await;

    // Stop (SIGTERM flushes the last spans), then read everything.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..400 {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(child.try_wait().unwrap().is_some(), "the process stopped");
    shutdown.cancel();

    let digits = |n: &str| n.trim_start_matches('+').to_owned();
    let mut everywhere: Vec<(&str, String)> = vec![
        ("an SMS body", SMS_BODY.into()),
        ("an MMS body", MMS_BODY.into()),
        ("an inbound body", INBOUND_BODY.into()),
        ("an external media URL", EXTERNAL_URL.into()),
        (
            "an external media URL's path",
            "SCAN-private-path-5b9e".into(),
        ),
        ("Twilio's media URL", inbound_media_url.clone()),
        ("a user's token", alice.clone()),
        ("an operator's token", admin.clone()),
        ("the master key", MASTER_KEY_B64.into()),
        ("the JWT secret", SECRET.into()),
        ("the media URL secret", MEDIA_SECRET.into()),
        ("the Twilio auth token", twilio_fake::AUTH_TOKEN.into()),
        ("a contact number", digits(BOB)),
        ("a contact number", digits(CAROL)),
        ("a number Twilio refused", digits(REFUSED)),
        ("an unroutable sender", digits(DAVE)),
        ("a failing media URL's path", FAILING_PATH.into()),
        ("a blocked number", digits(ERIN)),
    ];
    // Stored data holds our own number by design (routing); nothing else may show it.
    let stored = everywhere.clone();
    everywhere.push(("our own number", digits(OWN)));

    let stdout = std::fs::read(&stdout_path).unwrap();
    let stderr = std::fs::read(&stderr_path).unwrap();
    assert!(
        String::from_utf8_lossy(&stderr).contains("DEBUG"),
        "the logs were captured at debug level"
    );
    assert!(
        String::from_utf8_lossy(&stderr).contains("/api/blocked-numbers/%2B*******0142"),
        "the request log of the unblock was captured, masked"
    );
    assert_clean("stdout", &stdout, &everywhere);
    assert_clean("stderr (logs)", &stderr, &everywhere);
    let spans = collector.0.lock().unwrap().join("\n");
    assert!(
        spans.contains("SendSms"),
        "spans of the scenario were exported"
    );
    assert_clean("the exported spans", spans.as_bytes(), &everywhere);
    let mut scanned = 0;
    for file in files_under(&data) {
        // The dev secrets folder holds generated secrets on purpose (none used here).
        if file.components().any(|c| c.as_os_str() == "dev-secrets") {
            continue;
        }
        let bytes = std::fs::read(&file).unwrap();
        scanned += 1;
        assert_clean(&file.display().to_string(), &bytes, &stored);
        assert!(
            !bytes
                .windows(image.len().min(256))
                .any(|w| w == &image[..image.len().min(256)]),
            "the image is stored in clear in {}",
            file.display()
        );
    }
    assert!(
        scanned >= 2,
        "the database and the media object were scanned"
    );
}

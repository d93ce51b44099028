//! The `messaging` binary: `token` and `dev`, as the README uses them.

use std::{
    collections::HashMap,
    io::{BufRead, BufReader},
    process::{Command, Stdio},
    time::Duration,
};

use commpro_messaging_api::v1 as pb;
use messaging_grpc::Mode;

use crate::helpers::*;

const BIN: &str = env!("CARGO_BIN_EXE_messaging");

/// Distinct free ports (all held while choosing, so they differ).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<_> = (0..N)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

#[tokio::test]
async fn token_command_prints_a_token_the_dev_service_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .args(["token", "--user", "carol", "--role", "admin"])
        .env("MESSAGING_DATA_DIR", dir.path())
        .env_remove("JWT_HS256_SECRET")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.trim();
    assert_eq!(stdout.lines().count(), 1, "just the token on stdout");
    assert_eq!(token.split('.').count(), 3);

    // A dev server on the same data folder accepts it (admin role included).
    let vars = HashMap::from([(
        "MESSAGING_DATA_DIR".to_owned(),
        dir.path().display().to_string(),
    )]);
    let db = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("messaging.db").display()
    );
    let other = tempfile::tempdir().unwrap();
    let server = TestServer::start_from_vars(vars, db, other, None, Mode::Dev).await;
    let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(server.channel().await);
    admin
        .list_numbers(authed(pb::ListNumbersRequest::default(), token))
        .await
        .expect("token accepted");
    server.stop().await;
}

#[test]
fn dev_runs_the_stack_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let [grpc, http, core_metrics, gw_metrics] = free_ports();
    let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
    let mut child = Command::new(BIN)
        .arg("dev")
        .env("MESSAGING_DATA_DIR", dir.path())
        .env("MESSAGING_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("GATEWAY_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env(
            "MESSAGING_METRICS_ADDR",
            format!("127.0.0.1:{core_metrics}"),
        )
        .env("GATEWAY_METRICS_ADDR", format!("127.0.0.1:{gw_metrics}"))
        .env_remove("DATABASE_URL")
        .env_remove("MESSAGING_MASTER_KEYS")
        .env_remove("JWT_HS256_SECRET")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let mut banner = Vec::new();
    let token = lines
        .find_map(|l| {
            banner.push(l.clone());
            l.trim().strip_prefix("export TOKEN=").map(str::to_owned)
        })
        .expect("the banner prints a token");
    let banner = banner.join("\n");
    for port in [core_metrics, gw_metrics] {
        assert!(
            banner.contains(&format!("http://127.0.0.1:{port}/metrics")),
            "the banner prints both metrics URLs: {banner}"
        );
    }
    // Keep draining stdout, as a terminal would.
    std::thread::spawn(move || lines.for_each(drop));

    let rt = tokio::runtime::Runtime::new().unwrap();
    let log_path = dir.path().join("dev.log");
    let show_log = move || std::fs::read_to_string(&log_path).unwrap_or_default();
    rt.block_on(async {
        let url = format!("http://127.0.0.1:{grpc}");
        let channel = retry_connect(&url).await;
        let mut admin = pb::messaging_admin_client::MessagingAdminClient::new(channel.clone());
        admin
            .assign_number(authed(
                pb::AssignNumberRequest {
                    number: "+15005550006".into(),
                    user_id: "dev-user".into(),
                },
                &token,
            ))
            .await
            .unwrap_or_else(|e| panic!("{e:?}\n{}", show_log()));

        // The seed's REST call, after assigning its number with the CLI.
        let numbers = |args: &[&str]| {
            let out = Command::new(BIN)
                .arg("numbers")
                .args(args)
                .env("MESSAGING_DATA_DIR", dir.path())
                .env("MESSAGING_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
                .env_remove("JWT_HS256_SECRET")
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        let assigned = numbers(&["assign", "--number", "+33123456789", "--user", "dev-user"]);
        assert_eq!(assigned.trim(), "+33123456789 assigned to dev-user");
        assert!(numbers(&["list"]).contains("+33123456789\tdev-user"));
        let resp = reqwest::Client::new()
            .post(format!("http://localhost:{http}/api/messages/send"))
            .header("Authorization", format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .body(r#"{"from":"+33123456789","to":"+33987654321","body":"Hello from CommPro!"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let sent: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(sent["status"], "queued");
        assert_eq!(sent["message"]["body"], "Hello from CommPro!");

        let mut svc = pb::messaging_service_client::MessagingServiceClient::new(channel);
        let sent = svc
            .send_sms(authed(
                pb::SendSmsRequest {
                    from: "+15005550006".into(),
                    to: "+14155550100".into(),
                    body: "Hello from CommPro!".into(),
                    idempotency_key: String::new(),
                    send_at: None,
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let list = svc
            .list_conversations(authed(pb::ListConversationsRequest::default(), &token))
            .await
            .unwrap();
        assert_eq!(
            list.into_inner().conversations[0]
                .last_message
                .as_ref()
                .unwrap()
                .id,
            sent.id
        );

        // Each binary's metrics on its own admin address, never on the public ports.
        let scrape = |port: u16| async move {
            reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        };
        let core_text = scrape(core_metrics).await;
        assert!(
            core_text.contains("messaging_grpc_requests_total{method=\"commpro.messaging.v1.MessagingService/SendSms\",code=\"Ok\"}"),
            "{core_text}"
        );
        let gw_text = scrape(gw_metrics).await;
        assert!(gw_text.contains("gateway_http_requests_total"), "{gw_text}");
        let public = reqwest::get(format!("http://127.0.0.1:{http}/metrics"))
            .await
            .unwrap();
        assert_eq!(public.status(), 404, "no metrics on the public port");
    });

    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "dev exits 0 on SIGTERM, got {status}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "dev did not stop within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn retry_connect(url: &str) -> tonic::transport::Channel {
    for _ in 0..100 {
        if let Ok(ch) = tonic::transport::Channel::from_shared(url.to_owned())
            .unwrap()
            .connect()
            .await
        {
            return ch;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("dev server never accepted connections on {url}");
}

/// A `messaging dev` with its own addresses and data folder and no metrics address
/// set; returns the process and the metrics URLs its banner prints.
fn start_dev(dir: &std::path::Path, grpc: u16, http: u16) -> (std::process::Child, Vec<String>) {
    let log = std::fs::File::create(dir.join("dev.log")).unwrap();
    let mut child = Command::new(BIN)
        .arg("dev")
        .env("MESSAGING_DATA_DIR", dir)
        .env("MESSAGING_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
        .env("GATEWAY_HTTP_ADDR", format!("127.0.0.1:{http}"))
        .env_remove("MESSAGING_METRICS_ADDR")
        .env_remove("GATEWAY_METRICS_ADDR")
        .env_remove("DATABASE_URL")
        .env_remove("MESSAGING_MASTER_KEYS")
        .env_remove("JWT_HS256_SECRET")
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap())
        .lines()
        .map_while(Result::ok);
    let metrics = lines
        .find(|l| l.trim_start().starts_with("metrics"))
        .unwrap_or_else(|| {
            panic!(
                "no banner: {}",
                std::fs::read_to_string(dir.join("dev.log")).unwrap_or_default()
            )
        });
    std::thread::spawn(move || lines.for_each(drop));
    let urls = metrics
        .split_whitespace()
        .filter(|w| w.starts_with("http://"))
        .map(str::to_owned)
        .collect();
    (child, urls)
}

/// What the README promises: two dev stacks side by side with other
/// MESSAGING_GRPC_ADDR, GATEWAY_HTTP_ADDR and MESSAGING_DATA_DIR. Their admin (metrics)
/// ports are not set, so the second one (or both, when 9464/9465 are taken) picks free
/// ones and prints them; both serve.
#[test]
fn two_dev_stacks_run_side_by_side() {
    let (one, two) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let [grpc1, http1, grpc2, http2] = free_ports();
    let (mut first, urls1) = start_dev(one.path(), grpc1, http1);
    let (mut second, urls2) = start_dev(two.path(), grpc2, http2);
    assert_eq!((urls1.len(), urls2.len()), (2, 2), "{urls1:?} {urls2:?}");
    let all: std::collections::HashSet<_> = urls1.iter().chain(&urls2).collect();
    assert_eq!(
        all.len(),
        4,
        "four distinct metrics URLs: {urls1:?} {urls2:?}"
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        for (http, child_dir) in [(http1, one.path()), (http2, two.path())] {
            let mut ready = false;
            for _ in 0..100 {
                if let Ok(r) = reqwest::get(format!("http://127.0.0.1:{http}/healthz")).await {
                    ready = r.status() == 200;
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert!(
                ready,
                "the stack on :{http} serves: {}",
                std::fs::read_to_string(child_dir.join("dev.log")).unwrap_or_default()
            );
        }
        for url in &all {
            let r = reqwest::get(url.as_str()).await.unwrap();
            assert_eq!(r.status(), 200, "{url}");
        }
    });
    for child in [&mut first, &mut second] {
        assert!(child.try_wait().unwrap().is_none(), "both still running");
        let _ = child.kill();
        let _ = child.wait();
    }
}

//! `messaging dev` as a child process on ephemeral ports, with its own data folder.

use std::{
    net::{Ipv4Addr, SocketAddr, TcpListener},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_messaging");

/// Distinct free ports (all held while choosing, so they differ).
pub fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<_> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

/// A running `messaging dev`; stopped when dropped.
pub struct Dev {
    child: Child,
    /// `http://127.0.0.1:{port}`: the gateway, the REST API and the console.
    pub base: String,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Dev {
    /// Starts `messaging dev` listening on loopback.
    pub async fn start() -> Self {
        Self::start_on(Ipv4Addr::LOCALHOST.into()).await
    }

    /// Starts it with the gateway listening on `ip` (0.0.0.0 to be reached from
    /// another address of this machine).
    pub async fn start_on(ip: std::net::IpAddr) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let [grpc, http] = free_ports();
        let base = format!("http://127.0.0.1:{http}");
        let log = std::fs::File::create(dir.path().join("dev.log")).unwrap();
        let child = Command::new(BIN)
            .arg("dev")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("MESSAGING_DATA_DIR", dir.path())
            .env("MESSAGING_GRPC_ADDR", format!("127.0.0.1:{grpc}"))
            .env("GATEWAY_HTTP_ADDR", SocketAddr::new(ip, http).to_string())
            .env("GATEWAY_PUBLIC_URL", &base)
            .env("MESSAGING_METRICS_ADDR", "off")
            .env("GATEWAY_METRICS_ADDR", "off")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let dev = Self {
            child,
            base,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            _dir: dir,
        };
        for _ in 0..300 {
            let ready = dev.http.get(dev.url("/readyz")).send().await;
            if ready.is_ok_and(|r| r.status() == 200) {
                return dev;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("messaging dev did not become ready within 30 s");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `POST /dev/api/tokens`: `(token, the user's first number)`.
    pub async fn user(&self, user_id: &str) -> (String, String) {
        let minted: Value = self
            .http
            .post(self.url("/dev/api/tokens"))
            .json(&json!({"userId": user_id, "assignNumber": true}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        (
            minted["token"].as_str().unwrap().to_owned(),
            minted["numbers"][0].as_str().unwrap().to_owned(),
        )
    }

    /// `GET` a REST path with `token`; the JSON answer.
    pub async fn get(&self, token: &str, path: &str) -> Value {
        let resp = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// `GET /dev/api/phones/{number}/messages`.
    pub async fn phone(&self, number: &str) -> Value {
        let path = format!("/dev/api/phones/{}/messages", number.replace('+', "%2B"));
        let resp = self.http.get(self.url(&path)).send().await.unwrap();
        assert_eq!(resp.status(), 200, "GET {path}");
        resp.json().await.unwrap()
    }

    /// `POST` JSON to a console path; status and body.
    pub async fn post_dev(&self, path: &str, body: Value) -> (u16, String) {
        let resp = self
            .http
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.text().await.unwrap())
    }
}

/// Polls `check` every 100 ms until it gives a value, for at most 20 s.
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    for _ in 0..200 {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

//! Test harness: servers, clients, tokens, databases. Here: the backends (SQLite, a
//! fresh PostgreSQL database per test), `backend_tests!` and `wait_until`.

use std::{collections::HashMap, net::SocketAddr, time::Duration};

use base64::{Engine, engine::general_purpose::STANDARD};
use commpro_messaging_api::v1::{
    self as pb, messaging_admin_client::MessagingAdminClient,
    messaging_service_client::MessagingServiceClient,
};
use messaging_grpc::{
    App, Config, Mode,
    auth::{JwtIssuer, Role},
    ingest::{Inbound, InboundSms, Ingest},
    store::Store,
};
use sea_orm::{ConnectionTrait, Database};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::{Request, transport::Channel};

/// `UserClient` and `AdminClient`: tonic clients that send a token with each call.
mod clients;
/// `TestServer`: a core on an ephemeral port, its configuration, restarts.
mod server;

pub use clients::*;
pub use server::*;

pub const SECRET: &str = "test-secret-that-is-at-least-32-bytes-long";
pub const ISSUER: &str = "commpro-auth";
pub const AUDIENCE: &str = "commpro-messaging";
/// Signs media URLs; the test gateway gets the same.
pub const MEDIA_SECRET: &str = "test-media-url-secret-at-least-32-characters";

/// Runs each test body against SQLite and PostgreSQL.
#[macro_export]
macro_rules! backend_tests {
    ($(async fn $name:ident($backend:ident : Backend) $body:block)*) => {
        mod sqlite {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let $backend = $crate::helpers::Backend::Sqlite;
                $body
            })*
        }
        mod postgres {
            #[allow(unused_imports)]
            use super::*;
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let Some($backend) = $crate::helpers::Backend::postgres() else { return };
                $body
            })*
        }
    };
}

#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// The PostgreSQL server URL, or `None` (test skipped) when not configured.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_POSTGRES_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
                panic!(
                    "TEST_POSTGRES_URL must be set under CI: PostgreSQL tests may not be skipped"
                )
            }
            _ => {
                eprintln!("TEST_POSTGRES_URL unset: skipping PostgreSQL variant");
                None
            }
        }
    }
}

/// A fresh PostgreSQL database, dropped when this value is dropped.
pub struct PgDatabase {
    admin_url: String,
    name: String,
    pub url: String,
}

impl PgDatabase {
    pub async fn create(server_url: &str) -> Self {
        let name = format!("msg_test_{}", uuid::Uuid::new_v4().simple());
        let admin = Database::connect(server_url)
            .await
            .expect("connect to TEST_POSTGRES_URL");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
            .await
            .expect("create database");
        admin.close().await.ok();
        let base = server_url
            .rsplit_once('/')
            .map(|(b, _)| b)
            .unwrap_or(server_url);
        Self {
            admin_url: server_url.to_owned(),
            url: format!("{base}/{name}"),
            name,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs inside the test's runtime: use a thread with its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok(db) = Database::connect(&url).await {
                    let _ = db
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                        ))
                        .await;
                    db.close().await.ok();
                }
            });
        })
        .join();
    }
}

/// Polls `check` every 20 ms until it returns true; panics after `secs` seconds.
pub async fn wait_until<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

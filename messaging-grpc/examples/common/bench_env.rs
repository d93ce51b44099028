//! What the benchmark tools share: the core's settings (the same master key and JWT
//! secret, so a data set written by `dataset` is readable by the server `loadgen`
//! starts), and the shape of the "reader" users whose pages the read scenarios fetch.
//! Included by path (`#[path = "common/bench_env.rs"]`): examples are separate crates.

#![allow(dead_code)] // each example uses its own part of this file

use base64::Engine as _;

/// HS256 secret of the core under test (benchmarks only; never a deployment's).
pub const JWT_SECRET: &str = "loadgen-secret-that-is-at-least-32-bytes";
pub const ISSUER: &str = "commpro-auth";
pub const AUDIENCE: &str = "commpro-messaging";
/// Twilio account and webhook signing token of the gateway under test.
pub const ACCOUNT_SID: &str = "AC00000000000000000000000000000000";
pub const AUTH_TOKEN: &str = "loadgen-twilio-auth-token";

/// Users whose pages the read scenarios fetch: each has `READER_CONTACTS`
/// conversations (a full page of 50 and more), the first one holding
/// `BIG_CONVERSATION` messages (a full page of 50 messages and more).
pub const READERS: usize = 8;
pub const READER_CONTACTS: usize = 60;
pub const BIG_CONVERSATION: usize = 100;
/// Messages one reader holds: the big conversation plus one in each other one.
pub const READER_MESSAGES: usize = BIG_CONVERSATION + READER_CONTACTS - 1;

pub fn reader_user(r: usize) -> String {
    format!("bench-reader-{r}")
}

pub fn reader_number(r: usize) -> String {
    format!("+1500444{r:04}")
}

/// The `c`-th contact of reader `r` (contact 0 is the big conversation).
pub fn reader_contact(r: usize, c: usize) -> String {
    format!("+1415{r:03}{c:04}")
}

/// The master key ring of the core under test: fixed, so a data set survives restarts.
pub fn master_keys() -> String {
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    format!("bench1:{key}")
}

/// The core's environment for a benchmark: production mode settings with the
/// dispatcher off (the API path alone is measured; queued sends stay queued) and no
/// metrics listener.
pub fn core_vars(database_url: &str, data_dir: &str) -> Vec<(String, String)> {
    [
        ("DATABASE_URL", database_url),
        ("MESSAGING_DATA_DIR", data_dir),
        ("MESSAGING_MASTER_KEYS", &master_keys()),
        ("JWT_HS256_SECRET", JWT_SECRET),
        ("OUTBOX_DISPATCHER", "off"),
        ("MESSAGING_METRICS_ADDR", "off"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

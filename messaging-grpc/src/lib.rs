//! CommPro Messaging core: gRPC API, encrypted store, auth.
//!
//! `main.rs` is thin; [`server::serve`] takes a bound listener so tests run the real
//! server on an ephemeral port.

pub mod admin;
pub mod api;
pub mod auth;
pub mod cli;
pub mod config;
pub mod crypto;
pub mod dev_secrets;
pub mod dispatch;
pub mod domain;
pub mod error;
#[doc(hidden)]
pub mod fuzz_support;
pub mod ingest;
pub mod media;
pub mod messaging;
pub mod metrics;
pub mod phone;
pub mod probes;
pub mod provider;
pub mod realtime;
pub mod redact;
pub mod retention;
pub mod retry;
pub mod server;
pub mod sms;
pub mod store;
pub mod tasks;
pub mod telemetry;
pub mod twilio;

pub use config::{Config, Mode};
pub use error::Error;
pub use server::{App, serve};

#![allow(clippy::unwrap_used)]

//! Integration tests: the real gRPC server on an ephemeral port, over a real SQLite
//! file or a fresh PostgreSQL database, called with real tonic clients.
//!
//! Tests written with `backend_tests!` run once per backend. PostgreSQL variants need
//! TEST_POSTGRES_URL (`.ci/run` sets it); without it they are skipped locally and fail
//! under CI=true.

mod helpers;

mod at_rest;
mod auth;
mod cli;
mod contact_numbers;
mod conversations;
mod core_tls;
mod delivery;
mod deploy;
mod error_columns;
mod events;
mod export;
mod faults;
mod gateway;
mod hostile;
mod idempotency;
mod index_plans;
mod input;
mod isolation;
mod kept_aside;
mod keys;
mod label_bounds;
mod mailbox;
mod media;
mod media_fetch_guard;
mod media_serving;
mod message_batch;
mod pacing;
mod pagination;
mod pipeline;
mod public_key_auth;
mod reflection;
mod replicas;
mod rest;
mod retention;
mod s3;
mod schemathesis;
mod secrets_scan;
mod single_process;
mod singleton;
mod status_batch;
mod stream_caps;
mod takeover;
mod token_lifetime;
mod twilio_client;
mod unknown_outcomes;
mod unread;
mod unsent;

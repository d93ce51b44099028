//! gRPC handlers: take the caller from the request, call the service, convert (the
//! shape every handler shares is `call.rs`).

mod admin;
mod call;
mod convert;
mod ingest;
mod messaging;
mod token_expiry;

pub use admin::AdminApi;
pub use ingest::IngestApi;
pub use messaging::MessagingApi;

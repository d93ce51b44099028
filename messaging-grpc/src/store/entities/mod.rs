//! SeaORM entities, one per table (schema in the `migrations` crate).

pub mod audit_event;
pub mod contact;
pub mod conversation;
pub mod event;
pub mod media;
pub mod message;
pub mod message_media;
pub mod opt_out;
pub mod outbox;
pub mod parked_status;
pub mod phone_number;
pub mod search_pending;
pub mod search_term;
pub mod unroutable;
pub mod user_event_seq;
pub mod user_key;

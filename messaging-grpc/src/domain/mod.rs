//! The shared domain layer below every service type: message values, and the
//! [`Records`] every service uses to read stored messages decrypted, write a message
//! with its conversation and event, and move a message's status forward.
//!
//! The service types sit above it, one per job: `messaging::Messaging` (user
//! operations), `ingest::Ingest` (inbound messages and status callbacks),
//! `dispatch::Outbox` (the dispatcher's bookkeeping), `media::Media` (uploads and
//! copies) and `admin::Admin` (operators). None of them calls another's methods
//! except through what it was handed at start-up.

pub mod aad;
mod contact_numbers;
pub mod events;
mod names;
mod number_sealing;
mod paging;
pub mod provider_status;
mod search_terms;
mod status;
mod view;
pub mod words;
mod write;

use std::sync::Arc;

pub use contact_numbers::{SealedContact, lookup_of};
pub use events::StoredEvent;
pub use names::MAX_NAME_CHARS;
pub use number_sealing::{LegacySealed, SEAL_BATCH};
pub use paging::PageRequest;
pub use provider_status::{StatusOutcome, StatusReport};
pub use status::{Direction, MessageStatus, OUTCOME_UNKNOWN};
pub use view::{Body, MessageView};
pub use write::{MessageWrite, Written, new_row};

use sea_orm::DatabaseTransaction;

use crate::{
    crypto::UserKeys,
    error::Error,
    realtime::EventHub,
    store::{Store, TxnFuture},
};

/// Stored messages as every service type needs them: the store, the user keys that
/// seal and open bodies, and the hub that wakes event streams after a commit.
#[derive(Clone)]
pub struct Records {
    store: Store,
    keys: Arc<UserKeys>,
    events: EventHub,
}

impl Records {
    pub fn new(store: Store, keys: Arc<UserKeys>, events: EventHub) -> Self {
        Self {
            store,
            keys,
            events,
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn keys(&self) -> &Arc<UserKeys> {
        &self.keys
    }

    pub fn event_hub(&self) -> &EventHub {
        &self.events
    }

    /// Wakes this process's streams for a committed event.
    pub fn announce(&self, user_id: &str, cursor: i64) {
        self.events.publish(user_id, cursor);
    }

    /// Runs `write` on `user_id`'s writer and, once it committed, wakes the user's
    /// streams for the event it wrote (its cursor; `None` when nothing changed).
    pub async fn write_announced<F>(&self, user_id: &str, write: F) -> Result<(), Error>
    where
        F: for<'c> FnOnce(&'c DatabaseTransaction) -> TxnFuture<'c, Result<Option<i64>, Error>>
            + Send
            + 'static,
    {
        if let Some(cursor) = self.store.write_for(user_id, write).await? {
            self.announce(user_id, cursor);
        }
        Ok(())
    }
}

/// Refuses an empty required id field, naming it.
pub(crate) fn require<'a>(field: &'static str, value: &'a str) -> Result<&'a str, Error> {
    if value.is_empty() {
        Err(Error::invalid(field, "is required"))
    } else {
        Ok(value)
    }
}

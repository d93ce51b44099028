//! Domain operations behind the gRPC handlers. Each takes the caller's user id and
//! returns domain values; handlers only validate transport details and convert.

mod conversations;
mod delivery;
mod events;
mod inbound;
mod media;
mod numbers;
mod paging;
mod read;
mod send;
mod status;
mod status_update;
mod view;

use std::sync::Arc;

use tokio::sync::Notify;

pub use conversations::{ConversationPage, ConversationSummary, MessagePage};
pub use delivery::{DispatchItem, TWILIO_UNSUBSCRIBED};
pub use inbound::{Inbound, InboundSms};
pub use media::MediaCtx;
pub use numbers::NumberPage;
pub use paging::PageRequest;
pub use send::{SendMms, SendSms};
pub use status::{Direction, MessageStatus};
pub use status_update::{StatusOutcome, StatusReport};
pub use view::{Body, MessageView};

use crate::{crypto::UserKeys, realtime::EventHub, store::Store};

/// The messaging domain: store + per-user encryption.
#[derive(Clone)]
pub struct Messaging {
    store: Store,
    keys: Arc<UserKeys>,
    /// Wakes the dispatcher when a message is queued, instead of waiting for its poll.
    outbox_signal: Arc<Notify>,
    /// Wakes WatchEvents streams after a commit that appended events.
    events: EventHub,
    media: Option<Arc<MediaCtx>>,
}

/// Refuses an empty required id field, naming it.
pub(crate) fn require<'a>(
    field: &'static str,
    value: &'a str,
) -> Result<&'a str, crate::error::Error> {
    if value.is_empty() {
        Err(crate::error::Error::invalid(field, "is required"))
    } else {
        Ok(value)
    }
}

impl Messaging {
    pub fn new(store: Store, keys: Arc<UserKeys>, events: EventHub) -> Self {
        Self {
            store,
            keys,
            outbox_signal: Arc::new(Notify::new()),
            events,
            media: None,
        }
    }

    /// Enables media (upload, MMS, inbound copies).
    pub fn with_media(mut self, media: MediaCtx) -> Self {
        self.media = Some(Arc::new(media));
        self
    }

    /// Wakes the inbound media downloader, if media are enabled.
    pub fn media_signal(&self) -> Option<Arc<Notify>> {
        self.media.as_ref().map(|m| m.signal.clone())
    }

    pub fn event_hub(&self) -> &EventHub {
        &self.events
    }

    pub fn outbox_signal(&self) -> Arc<Notify> {
        self.outbox_signal.clone()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

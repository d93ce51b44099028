//! [`Messaging`]: what an end user does — send, list and read conversations, mark
//! read, watch events. Every operation takes the caller's user id.

mod conversations;
mod read;
mod send;
mod watch;

use std::sync::Arc;

use tokio::sync::Notify;

pub use conversations::{ConversationPage, ConversationSummary, MessagePage};
pub use send::{SendMms, SendSms};
pub use watch::{EventStream, WatchItem, WatchSettings};

use crate::{domain::Records, media::Media};

/// The user-facing operations; cheap to clone.
#[derive(Clone)]
pub struct Messaging {
    records: Records,
    media: Media,
    /// Wakes the dispatcher when a message is queued (the outbox owns it).
    outbox_waker: Arc<Notify>,
}

impl Messaging {
    pub fn new(records: Records, media: Media, outbox_waker: Arc<Notify>) -> Self {
        Self {
            records,
            media,
            outbox_waker,
        }
    }

    /// Uploads and reads of the user's media.
    pub fn media(&self) -> &Media {
        &self.media
    }
}

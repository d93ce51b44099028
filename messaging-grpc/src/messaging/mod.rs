//! [`Messaging`]: what an end user does — send (now or scheduled), list and read
//! conversations, mark read, watch events, and the mailbox: search, archive, mute,
//! block, delete, contact names. Every operation takes the caller's user id.

mod block;
mod contacts;
mod conversations;
mod delete;
mod mailbox;
mod read;
mod schedule;
mod search;
mod send;
mod watch;

use std::sync::Arc;

use tokio::sync::Notify;

pub use block::{Blocked, BlockedPage};
pub use contacts::ContactView;
pub use conversations::{ConversationPage, ConversationSummary, MessagePage};
pub use delete::DeletedMessage;
pub use schedule::ScheduleSettings;
pub use search::SearchPage;
pub use send::{SendMms, SendSms};
pub use watch::{EventStream, WatchItem, WatchSettings, WatchSlots};

use crate::{domain::Records, media::Media};

/// The user-facing operations; cheap to clone.
#[derive(Clone)]
pub struct Messaging {
    records: Records,
    media: Media,
    /// Wakes the dispatcher when a message is queued (the outbox owns it).
    outbox_waker: Arc<Notify>,
    schedule: ScheduleSettings,
}

impl Messaging {
    pub fn new(
        records: Records,
        media: Media,
        outbox_waker: Arc<Notify>,
        schedule: ScheduleSettings,
    ) -> Self {
        Self {
            records,
            media,
            outbox_waker,
            schedule,
        }
    }

    /// Uploads and reads of the user's media.
    pub fn media(&self) -> &Media {
        &self.media
    }
}

//! Domain operations behind the gRPC handlers. Each takes the caller's user id and
//! returns domain values; handlers only validate transport details and convert.

mod conversations;
mod inbound;
mod numbers;
mod paging;
mod read;
mod send;
mod status;
mod view;

use std::sync::Arc;

pub use conversations::{ConversationPage, ConversationSummary, MessagePage};
pub use inbound::{Inbound, InboundSms};
pub use numbers::NumberPage;
pub use paging::PageRequest;
pub use send::SendSms;
pub use status::{Direction, MessageStatus};
pub use view::{Body, MessageView};

use crate::{crypto::UserKeys, store::Store};

/// The messaging domain: store + per-user encryption.
#[derive(Clone)]
pub struct Messaging {
    store: Store,
    keys: Arc<UserKeys>,
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
    pub fn new(store: Store, keys: Arc<UserKeys>) -> Self {
        Self { store, keys }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

//! [`Ingest`]: what Twilio tells us through the gateway — inbound messages
//! (`inbound.rs`, where STOP/START change a contact's opt-out) and delivery-status
//! callbacks (`status.rs`, parked when they overtake our own send).

mod inbound;
mod status;

use std::sync::Arc;

use tokio::sync::Notify;

pub use inbound::{Inbound, InboundSms};
pub use status::UNROUTABLE_RETENTION;

use crate::domain::Records;

/// Records inbound messages and status callbacks; cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    records: Records,
    /// Wakes the inbound media copier.
    media_waker: Arc<Notify>,
}

impl Ingest {
    pub fn new(records: Records, media_waker: Arc<Notify>) -> Self {
        Self {
            records,
            media_waker,
        }
    }
}

//! [`Admin`]: operator operations (`MessagingAdmin`): numbers and the inbound
//! messages nobody could receive, data keys (rotation, shredding), and the audit log
//! every operator action is recorded in, and a user's data export.

mod audit;
mod export;
mod keys;
mod numbers;

pub use audit::{AuditPage, actions};
pub use export::{ExportItem, ExportStream};
pub use keys::Shredded;
pub use numbers::NumberPage;

use crate::{crypto::UserKeys, domain::Records, media::Media, store::Store};

/// Operator operations; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    records: Records,
    media: Media,
}

impl Admin {
    pub fn new(records: Records, media: Media) -> Self {
        Self { records, media }
    }

    fn store(&self) -> &Store {
        self.records.store()
    }

    fn keys(&self) -> &UserKeys {
        self.records.keys()
    }
}

//! [`Admin`]: operator operations (`MessagingAdmin`): numbers and the inbound
//! messages nobody could receive, data keys (rotation, shredding), and the audit log
//! every operator action is recorded in.

mod audit;
mod keys;
mod numbers;

use std::sync::Arc;

pub use audit::{AuditPage, actions};
pub use keys::Shredded;
pub use numbers::NumberPage;

use crate::{crypto::UserKeys, media::Media, store::Store};

/// Operator operations; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    store: Store,
    keys: Arc<UserKeys>,
    media: Option<Media>,
}

impl Admin {
    pub fn new(store: Store, keys: Arc<UserKeys>, media: Option<Media>) -> Self {
        Self { store, keys, media }
    }
}

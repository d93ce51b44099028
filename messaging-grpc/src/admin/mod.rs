//! [`Admin`]: operator operations (`MessagingAdmin`): numbers and the inbound
//! messages nobody could receive.

mod numbers;

pub use numbers::NumberPage;

use crate::store::Store;

/// Operator operations; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    store: Store,
}

impl Admin {
    pub fn new(store: Store) -> Self {
        Self { store }
    }
}

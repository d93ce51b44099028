//! Envelope encryption at rest.
//!
//! Master keys (KEKs) come from configuration and only ever wrap data keys. Each user has
//! versioned data keys (DEKs), stored wrapped in `user_keys`; message fields are sealed
//! with a DEK and carry a versioned header saying which key version and algorithm sealed
//! them. See DESIGN.md "Encryption".

mod aad;
mod algorithm;
mod blind_index;
mod cache;
mod envelope;
mod master;
mod rotation;
mod user_keys;
mod wrap;

pub use aad::Aad;
pub use algorithm::Algorithm;
pub use blind_index::{NumberKey, SearchKey, TERM_LEN};
pub use cache::KeyCache;
pub use envelope::{Header, open, seal};
pub use master::{MasterKey, MasterKeyRing};
pub use rotation::{KeyStatus, MasterKeyUse, Rotation};
pub use user_keys::{Cleartext, KeySet, UserKeys};
pub use wrap::{unwrap_dek, wrap_dek};

/// Defined with the crate's error (which wraps it), so that `error` needs nothing of `crypto`.
pub use crate::error::CryptoError;

use zeroize::{Zeroize, ZeroizeOnDrop};

/// A 256-bit data key. Zeroized when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct DataKey([u8; 32]);

impl DataKey {
    /// A fresh random key from the OS generator.
    pub fn generate() -> Result<Self, CryptoError> {
        let mut key = [0u8; 32];
        random_bytes(&mut key)?;
        Ok(Self(key))
    }

    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// Fills `buf` from the OS random generator.
pub(crate) fn random_bytes(buf: &mut [u8]) -> Result<(), CryptoError> {
    getrandom::fill(buf).map_err(|_| CryptoError::Random)
}

//! Keys of the blind index behind SearchMessages: a per-user search key derived from
//! each of the user's data keys, and the keyed hash of one word under it.
//!
//! A term is HMAC-SHA256(search key, word), cut to 128 bits, where the search key is
//! HMAC-SHA256(data key, fixed label). So the index holds no word in clear, equal
//! words of one user hash equally (which is what makes it searchable, and what it
//! reveals: which messages share a word), the same word of two users hashes
//! differently, and destroying a user's data keys (shredding) leaves hashes nobody
//! can ever compute again.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use zeroize::{Zeroize, ZeroizeOnDrop};

use super::DataKey;

type HmacSha256 = Hmac<Sha256>;

/// Domain separation: the search key is never the data key nor anything else
/// derived from it.
const LABEL: &[u8] = b"commpro.messaging.v1/search-index-key\0";

/// Bytes of a stored term: 128 bits make an accidental collision between two words of
/// one user negligible, at half the index size of a full digest.
pub const TERM_LEN: usize = 16;

/// A user's search key for one data-key version. Zeroized when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SearchKey([u8; 32]);

impl SearchKey {
    /// The search key of a data key.
    pub fn derive(dek: &DataKey) -> Self {
        let mut mac =
            HmacSha256::new_from_slice(dek.as_bytes()).expect("HMAC accepts keys of any length");
        mac.update(LABEL);
        Self(mac.finalize().into_bytes().into())
    }

    /// The stored form of an already normalised word.
    pub fn term(&self, word: &str) -> Vec<u8> {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(word.as_bytes());
        mac.finalize().into_bytes()[..TERM_LEN].to_vec()
    }
}

impl std::fmt::Debug for SearchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SearchKey(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_keyed_and_stable() {
        let a = SearchKey::derive(&DataKey::from_bytes([1; 32]));
        let b = SearchKey::derive(&DataKey::from_bytes([2; 32]));
        assert_eq!(
            a.term("pizza"),
            a.term("pizza"),
            "searchable: same word, same term"
        );
        assert_ne!(a.term("pizza"), a.term("pasta"));
        assert_ne!(
            a.term("pizza"),
            b.term("pizza"),
            "another user's key, another term"
        );
        assert_eq!(a.term("pizza").len(), TERM_LEN);
        assert!(!a.term("pizza").windows(5).any(|w| w == b"pizza"));
    }
}

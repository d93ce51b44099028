//! Keys of the blind indexes: behind SearchMessages, a per-user search key derived
//! from each of the user's data keys and the keyed hash of one word under it; behind
//! every lookup of a contact by number, a per-user number key derived the same way
//! (another label) and the keyed hash of one E.164 number under it.
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

/// Domain separation of the number key from the search key: a number typed as a
/// search word and the same number as a contact never hash alike.
const NUMBER_LABEL: &[u8] = b"commpro.messaging.v1/contact-number-index-key\0";

/// Bytes of a stored term: 128 bits make an accidental collision between two words of
/// one user negligible, at half the index size of a full digest.
pub const TERM_LEN: usize = 16;

/// A user's search key for one data-key version. Zeroized when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct SearchKey([u8; 32]);

impl SearchKey {
    /// The search key of a data key.
    pub fn derive(dek: &DataKey) -> Self {
        Self(derive(dek, LABEL))
    }

    /// The stored form of an already normalised word.
    pub fn term(&self, word: &str) -> Vec<u8> {
        keyed_hash(&self.0, word)
    }
}

/// A user's contact-number key for one data-key version. Phone numbers are few enough
/// to enumerate, so only a secret key keeps their index from being reversed; this one
/// dies with the user's data keys (shredding). Zeroized when dropped; never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct NumberKey([u8; 32]);

impl NumberKey {
    /// The number key of a data key.
    pub fn derive(dek: &DataKey) -> Self {
        Self(derive(dek, NUMBER_LABEL))
    }

    /// The stored index of an E.164 number (already validated and normalised).
    pub fn index(&self, e164: &str) -> Vec<u8> {
        keyed_hash(&self.0, e164)
    }
}

impl std::fmt::Debug for NumberKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NumberKey(..)")
    }
}

/// HMAC-SHA256(data key, label): a key for one purpose only.
fn derive(dek: &DataKey, label: &[u8]) -> [u8; 32] {
    let mut mac =
        HmacSha256::new_from_slice(dek.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(label);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA256(key, value) cut to [`TERM_LEN`] bytes.
fn keyed_hash(key: &[u8; 32], value: &str) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(value.as_bytes());
    mac.finalize().into_bytes()[..TERM_LEN].to_vec()
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

    #[test]
    fn number_index_is_keyed_and_apart_from_search_terms() {
        let dek = DataKey::from_bytes([1; 32]);
        let n = NumberKey::derive(&dek);
        let other = NumberKey::derive(&DataKey::from_bytes([2; 32]));
        assert_eq!(n.index("+14155550100"), n.index("+14155550100"));
        assert_ne!(n.index("+14155550100"), n.index("+14155550101"));
        assert_ne!(n.index("+14155550100"), other.index("+14155550100"));
        assert_ne!(
            n.index("+14155550100"),
            SearchKey::derive(&dek).term("+14155550100"),
            "number index and search terms use different keys"
        );
    }
}

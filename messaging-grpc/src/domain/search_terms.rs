//! The blind index of message bodies: the terms a body is indexed under when its
//! message is written, and the terms a query looks for. Terms are keyed hashes of
//! folded words (`crypto::SearchKey`); no word is ever stored or logged in clear.

use super::{Records, words::words};
use crate::error::Error;

/// Most words a body is indexed under (a 1600-character body has at most 800).
const MAX_TERMS: usize = 1000;

impl Records {
    /// The terms of a body, under the user's current search key.
    pub async fn index_terms(&self, user_id: &str, body: &str) -> Result<Vec<Vec<u8>>, Error> {
        let words = words(body);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.keys.search_key(user_id).await?;
        Ok(words.iter().take(MAX_TERMS).map(|w| key.term(w)).collect())
    }

    /// What a query looks for: per word, its term under each of the user's search
    /// keys (messages indexed under older key versions match too). `None` when the
    /// user has no key left (shredded): nothing can match.
    pub async fn query_terms(
        &self,
        user_id: &str,
        words: &[String],
    ) -> Result<Option<Vec<Vec<Vec<u8>>>>, Error> {
        let keys = self.keys.search_keys(user_id).await?;
        if keys.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            words
                .iter()
                .map(|w| keys.iter().map(|k| k.term(w)).collect())
                .collect(),
        ))
    }
}

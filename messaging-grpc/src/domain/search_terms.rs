//! The blind index of message bodies: the terms a body is indexed under when its
//! message is written (or, for messages older than the index, by the backfill), and
//! the terms a query looks for. Terms are keyed hashes of
//! folded words (`crypto::SearchKey`); no word is ever stored or logged in clear.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::{Body, Records, words::words};
use crate::{crypto::KeySet, error::Error, store};

/// Most words a body is indexed under (a 1600-character body has at most 800).
const MAX_TERMS: usize = 1000;

// The store splits a pending row's terms at its own length: the two must agree.
const _: () = assert!(crate::crypto::TERM_LEN == store::search::TERM_LEN);

/// Messages whose pending terms one indexer write moves: one write of the pipeline,
/// small enough not to hold the batch it shares for long (~4,000 sorted rows; 1,000
/// gave ~10 % more sends/s and a p99 ~20 ms longer, 250 the other way round).
const INDEX_BATCH: u64 = 500;

/// How often the indexer looks for pending terms when it found fewer than a batch.
pub const INDEX_PERIOD: Duration = Duration::from_millis(250);

impl Records {
    /// The terms of a body, under the user's current search key.
    pub fn index_terms(&self, keys: &KeySet, body: &str) -> Result<Vec<Vec<u8>>, Error> {
        let words = words(body);
        if words.is_empty() {
            return Ok(Vec::new());
        }
        let key = keys.search_key()?;
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
        let keys = self.keys.key_set(user_id, false).await?.search_keys();
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

impl Records {
    /// Moves new messages' terms from `search_pending` into the index every
    /// [`INDEX_PERIOD`] (at once again while a full batch was found) until `shutdown`.
    /// On PostgreSQL one replica at a time does it (the others skip the pass).
    pub async fn run_indexer(self, shutdown: CancellationToken) {
        let mut tick = tokio::time::interval(INDEX_PERIOD);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            loop {
                match self.index_pending(INDEX_BATCH).await {
                    Ok(n) if n as u64 == INDEX_BATCH && !shutdown.is_cancelled() => {}
                    Ok(_) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "search indexer pass failed; pending terms stay searchable");
                        break;
                    }
                }
            }
        }
    }

    /// One indexer pass of up to `limit` messages; how many it moved.
    pub async fn index_pending(&self, limit: u64) -> Result<usize, Error> {
        self.store
            .write(move |txn| {
                Box::pin(async move {
                    if !store::try_lock_job(txn, "search-indexer").await? {
                        return Ok::<_, Error>(0);
                    }
                    Ok(store::search::index_pending(txn, limit).await?)
                })
            })
            .await
    }
}

/// Messages indexed per backfill pass.
const BACKFILL_BATCH: u64 = 200;

impl Records {
    /// Indexes messages stored before the index existed, until none is left, then
    /// looks again every `period` (a replica still on the old version may write some)
    /// until `shutdown`. Several replicas may run it: terms insert idempotently.
    pub async fn run_index_backfill(self, period: Duration, shutdown: CancellationToken) {
        loop {
            loop {
                match self.backfill_index(BACKFILL_BATCH).await {
                    Ok(0) => break,
                    Ok(n) => tracing::info!(messages = n, "search index backfilled"),
                    Err(e) => {
                        tracing::warn!(error = %e, "search index backfill pass failed");
                        break;
                    }
                }
                if shutdown.is_cancelled() {
                    return;
                }
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
        }
    }

    /// Indexes up to `limit` unindexed messages; returns how many were handled. A
    /// message from a blocked number, or whose key was shredded, is marked without terms.
    pub async fn backfill_index(&self, limit: u64) -> Result<usize, Error> {
        let rows = store::search::unindexed_any(self.store.conn(), limit).await?;
        let n = rows.len();
        for row in rows {
            let user_id = row.user_id.clone();
            let id = row.id.clone();
            let blocked = row.blocked;
            let terms = match self.view(&user_id, row).await?.body {
                Body::Text(body) if !blocked => {
                    let keys = self.keys.key_set(&user_id, false).await?;
                    self.index_terms(&keys, &body)?
                }
                _ => Vec::new(),
            };
            let writer = user_id.clone();
            self.store
                .write_for(&writer, move |txn| {
                    Box::pin(async move {
                        store::search::insert(txn, &user_id, &id, terms).await?;
                        store::search::mark_indexed(txn, &user_id, &id).await?;
                        Ok::<_, Error>(())
                    })
                })
                .await?;
        }
        Ok(n)
    }
}

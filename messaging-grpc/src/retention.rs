//! Message retention (MESSAGE_RETENTION_DAYS): messages older than the retention are
//! deleted with their media links, outbox jobs, search terms, media nobody links any
//! more (objects included), and the events of that age, in bounded batches (scheduled
//! messages not yet sent are kept until they are); one replica at a time
//! (the singleton-job lock, per batch), so replicas never fight over the same rows.
//!
//! Conversations stay exact: each batch locks the conversation rows it touches first
//! (the same rule read marks follow), re-reads which deleted messages were unread
//! inbound ones under that lock, lowers the unread count by exactly those, and points
//! the conversation at its newest remaining message, or removes it when none remains.

use std::{collections::BTreeMap, time::Duration};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use crate::{
    domain::MessageStatus,
    error::Error,
    media::Media,
    store::{self, Store},
};

/// Retention tuning (README table).
#[derive(Clone, Debug)]
pub struct RetentionSettings {
    /// Messages older than this are deleted.
    pub max_age: Duration,
    /// How often a pass runs.
    pub interval: Duration,
    /// Messages per transaction.
    pub batch: u64,
}

/// What one pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Deleted {
    pub messages: u64,
    pub media: u64,
    pub events: u64,
}

/// Runs a pass every `interval` until `shutdown`.
pub async fn run(
    store: Store,
    media: Media,
    settings: RetentionSettings,
    shutdown: CancellationToken,
) {
    tracing::info!(
        days = settings.max_age.as_secs() / 86_400,
        "message retention on"
    );
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(settings.interval) => {}
        }
        let before = store::now()
            - chrono::Duration::from_std(settings.max_age).unwrap_or(chrono::Duration::MAX);
        match pass(&store, &media, before, settings.batch, &shutdown).await {
            Ok(d) if d == Deleted::default() => {}
            Ok(d) => tracing::info!(
                messages = d.messages,
                media = d.media,
                events = d.events,
                "retention deleted old data"
            ),
            Err(e) => tracing::warn!(error = %e, "retention pass failed; retried next period"),
        }
    }
}

/// Deletes everything older than `before`, `batch` messages per transaction.
pub async fn pass(
    store: &Store,
    media: &Media,
    before: DateTime<Utc>,
    batch: u64,
    shutdown: &CancellationToken,
) -> Result<Deleted, Error> {
    let mut total = Deleted::default();
    loop {
        let Some((messages, objects)) = message_batch(store, before, batch).await? else {
            return Ok(total); // another replica is at it
        };
        total.messages += messages;
        total.media += delete_objects(media, &objects).await;
        if messages < batch || shutdown.is_cancelled() {
            break;
        }
    }
    loop {
        let txn = store.begin_write().await?;
        let ids = store::retention::stale_uploads_any(&txn, before, batch).await?;
        let n = ids.len() as u64;
        let objects = store::retention::delete_media_any(&txn, ids).await?;
        txn.commit().await?;
        total.media += delete_objects(media, &objects).await.min(n);
        if n < batch || shutdown.is_cancelled() {
            break;
        }
    }
    total.events = crate::realtime::prune_events(store, before).await?;
    for (kind, n) in [
        ("messages", total.messages),
        ("media", total.media),
        ("events", total.events),
    ] {
        metrics::counter!("messaging_retention_deleted_total", "kind" => kind).increment(n);
    }
    Ok(total)
}

/// One batch in one transaction; `None` when another replica holds the lock. Returns
/// how many messages it deleted and the storage keys of media objects to delete.
async fn message_batch(
    store: &Store,
    before: DateTime<Utc>,
    batch: u64,
) -> Result<Option<(u64, Vec<String>)>, Error> {
    let txn = store.begin_write().await?;
    if !store::try_lock_job(&txn, "message-retention").await? {
        txn.rollback().await?;
        return Ok(None);
    }
    // Nothing not yet handed to the provider is deleted, however long ago it was
    // written: a scheduled message waits for its send time, and once due (QUEUED) or
    // being sent (SENDING) its outbox job must run — deleting it would drop an
    // acknowledged send.
    let keep = [
        MessageStatus::Scheduled.as_str(),
        MessageStatus::Queued.as_str(),
        MessageStatus::Sending.as_str(),
    ];
    let rows = store::retention::oldest_any(&txn, before, &keep, batch).await?;
    if rows.is_empty() {
        txn.commit().await?;
        return Ok(Some((0, Vec::new())));
    }
    // Per conversation, in a fixed order (no lock-order cycles between replicas).
    let mut by_conversation: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for r in &rows {
        by_conversation
            .entry((r.user_id.clone(), r.contact_id.clone()))
            .or_default()
            .push(r.id.clone());
    }
    let mut linked_media = Vec::new();
    for ((user_id, contact_id), ids) in &by_conversation {
        store::conversations::lock(&txn, user_id, contact_id).await?;
        // Read again under the lock: a read mark may have landed since the batch query.
        let current = store::messages::find_many(&txn, user_id, ids.clone()).await?;
        let unread = current
            .iter()
            .filter(|m| m.direction == store::messages::INBOUND && m.read_at.is_none())
            .count() as u64;
        linked_media.extend(store::retention::delete_messages_any(&txn, ids).await?);
        store::search::delete_for(&txn, user_id, ids.clone()).await?;
        store::conversations::subtract_unread(&txn, user_id, contact_id, unread).await?;
        store::retention::refresh_conversation(&txn, user_id, contact_id).await?;
    }
    linked_media.sort();
    linked_media.dedup();
    let objects = store::retention::delete_unlinked_media_any(&txn, linked_media).await?;
    txn.commit().await?;
    Ok(Some((rows.len() as u64, objects)))
}

async fn delete_objects(media: &Media, keys: &[String]) -> u64 {
    if keys.is_empty() {
        return 0;
    }
    media.delete_objects(keys).await
}

//! One WatchEvents stream: catch up from the table after the client's cursor, then
//! follow wake-ups, always reading the table so order and gap-freedom never depend on
//! the wake-ups. Subscribing before the first read means nothing committed at the
//! seam is missed; reading by cursor means nothing is sent twice.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use chrono::{DateTime, Utc};
use tokio::sync::{broadcast::error::RecvError, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use super::Messaging;
use crate::{domain::StoredEvent, error::Error, store};

/// Stream tuning.
#[derive(Clone, Copy, Debug)]
pub struct WatchSettings {
    /// A KEEPALIVE event (with the current cursor) goes out this often.
    pub keepalive: Duration,
    /// Events read from the table per query.
    pub batch: u64,
    /// Events buffered towards a slow client before the stream waits for it.
    pub buffer: usize,
    /// Streams one user may have open on this process at once
    /// (MESSAGING_MAX_WATCH_STREAMS_PER_USER): each holds a task, a buffer and a
    /// wake-up subscription, so one token must not be able to open them without end.
    pub max_per_user: usize,
}

impl Default for WatchSettings {
    fn default() -> Self {
        Self {
            keepalive: Duration::from_secs(15),
            batch: 500,
            buffer: 64,
            max_per_user: 32,
        }
    }
}

/// One item of a user's event stream; the API layer converts it for the wire.
#[derive(Clone, Debug)]
pub enum WatchItem {
    Event(StoredEvent),
    /// Nothing new: the stream is alive and at `cursor`.
    Keepalive {
        cursor: i64,
        at: DateTime<Utc>,
    },
}

pub type EventStream = ReceiverStream<Result<WatchItem, Error>>;

impl Messaging {
    /// Streams `user_id`'s events after `since` (None: from the current position)
    /// until the client leaves or `shutdown`.
    pub async fn watch_events(
        &self,
        user_id: String,
        since: Option<i64>,
        settings: WatchSettings,
        shutdown: CancellationToken,
    ) -> Result<EventStream, Error> {
        let records = self.records.clone();
        let mut wakeups = records.event_hub().subscribe_user(&user_id);
        let (last, pruned) = store::events::position(records.store().conn(), &user_id).await?;
        let start = match since {
            None => last,
            Some(c) if c < pruned => {
                return Err(Error::OutOfRange(format!(
                    "since_cursor: {c} is older than the event retention (events up to {pruned} were pruned); \
                 resync with ListConversations and watch without a cursor"
                )));
            }
            Some(c) if c > last => {
                return Err(Error::OutOfRange(format!(
                    "since_cursor: {c} is ahead of the latest event ({last}); resync and watch without a cursor"
                )));
            }
            Some(c) => c,
        };

        let (tx, rx) = mpsc::channel(settings.buffer.max(1));
        tokio::spawn(async move {
            // Counted open for as long as this task serves the stream.
            let _open = crate::metrics::watch_stream_opened();
            let mut cursor = start;
            let mut keepalive = tokio::time::interval(settings.keepalive);
            keepalive.tick().await; // the first tick is immediate: use it for the hello below
            // Hello: tells a client that started "from now" where it is.
            if tx.send(Ok(keepalive_event(cursor))).await.is_err() {
                return;
            }
            'stream: loop {
                // Catch up from the table.
                loop {
                    let db = records.store().conn();
                    let batch =
                        match store::events::after(db, &user_id, cursor, settings.batch).await {
                            Ok(b) => b,
                            Err(e) => {
                                let _ = tx.send(Err(e.into())).await;
                                return;
                            }
                        };
                    let full = batch.len() as u64 == settings.batch;
                    for e in batch {
                        cursor = e.cursor;
                        if tx.send(Ok(WatchItem::Event(e))).await.is_err() {
                            return; // the client went away
                        }
                    }
                    if !full {
                        break;
                    }
                }
                // Wait for news about this user.
                loop {
                    tokio::select! {
                        () = shutdown.cancelled() => break 'stream,
                        () = tx.closed() => return,
                        _ = keepalive.tick() => {
                            if tx.send(Ok(keepalive_event(cursor))).await.is_err() {
                                return;
                            }
                        }
                        notice = wakeups.recv() => match notice {
                            Ok(n) if n.user_id.as_deref().is_none_or(|u| u == user_id) && (n.user_id.is_none() || n.cursor > cursor) => break,
                            Ok(_) => {}
                            // Fell behind the wake-ups: the table has everything.
                            Err(RecvError::Lagged(_)) => break,
                            Err(RecvError::Closed) => break 'stream,
                        },
                    }
                }
            }
            tracing::debug!("event stream ended by shutdown");
        });
        Ok(ReceiverStream::new(rx))
    }
}

/// Open streams per user ([`WatchSettings::max_per_user`]).
pub struct WatchSlots {
    max: usize,
    open: Mutex<HashMap<String, usize>>,
}

/// One open stream of a user's, counted until dropped.
pub struct WatchSlot {
    slots: Arc<WatchSlots>,
    user_id: String,
}

impl WatchSlots {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max: max.max(1),
            open: Mutex::new(HashMap::new()),
        })
    }

    /// A place for one more stream of `user_id`'s; None when they have the most open.
    pub fn acquire(self: &Arc<Self>, user_id: &str) -> Option<WatchSlot> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(user_id.to_owned()).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(WatchSlot {
            slots: self.clone(),
            user_id: user_id.to_owned(),
        })
    }

    /// The most streams one user may have open.
    pub fn max(&self) -> usize {
        self.max
    }
}

impl Drop for WatchSlot {
    fn drop(&mut self) {
        let mut open = self.slots.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&self.user_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.user_id);
            }
        }
    }
}

fn keepalive_event(cursor: i64) -> WatchItem {
    WatchItem::Keepalive {
        cursor,
        at: Utc::now(),
    }
}

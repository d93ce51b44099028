//! Event retention: events older than the retention are deleted periodically, so the
//! table does not grow forever; a stream resuming from a pruned cursor is told to
//! resync (OUT_OF_RANGE) rather than silently miss events.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::{self, Store};

/// Deletes events older than `retention` every `interval`, until `shutdown`.
pub async fn run_pruner(
    store: Store,
    retention: Duration,
    interval: Duration,
    shutdown: CancellationToken,
) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let before = store::now()
            - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(7));
        match prune(&store, before).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(pruned = n, "old events pruned"),
            Err(e) => tracing::warn!(error = %e, "pruning events failed"),
        }
    }
}

/// Users per transaction: each batch locks only these users' event counters.
const USERS_PER_BATCH: u64 = 100;

/// Prunes in small transactions until nothing older than `before` is left, on one
/// replica at a time (another replica holding the job's lock means it is pruning).
/// Message retention calls it too, for the events as old as the messages it deletes.
pub async fn prune(
    store: &Store,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let mut deleted = 0;
    loop {
        let batch = store
            .write(move |txn| {
                Box::pin(async move {
                    if !store::try_lock_job(txn, "prune-events").await? {
                        return Ok(None);
                    }
                    store::events::prune_batch_any(txn, before, USERS_PER_BATCH)
                        .await
                        .map(Some)
                })
            })
            .await?;
        let Some((users, n)) = batch else {
            return Ok(deleted);
        };
        deleted += n;
        if users == 0 {
            return Ok(deleted);
        }
    }
}

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

async fn prune(
    store: &Store,
    before: chrono::DateTime<chrono::Utc>,
) -> Result<u64, sea_orm::DbErr> {
    let txn = store.begin_write().await?;
    let n = store::events::prune_any(&txn, before).await?;
    txn.commit().await?;
    Ok(n)
}

//! PostgreSQL LISTEN: wake-ups from other replicas' commits.

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::EventHub;
use crate::store::events::NOTIFY_CHANNEL;

/// Listens until `shutdown`, reconnecting after failures. After any gap in the
/// connection every stream is woken, since notifications sent meanwhile are lost.
pub async fn listen_postgres(url: String, hub: EventHub, shutdown: CancellationToken) {
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            c = connect(&url) => c,
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "LISTEN connection failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        hub.wake_all();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => {
                    let Some((cursor, user)) = n.payload().split_once(' ') else {
                        continue;
                    };
                    if let Ok(cursor) = cursor.parse() {
                        hub.publish(user, cursor);
                    }
                }
                // The connection dropped; try_recv reconnects on the next call.
                Ok(None) => hub.wake_all(),
                Err(e) => {
                    tracing::warn!(error = %e, "LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(NOTIFY_CHANNEL).await?;
    Ok(listener)
}

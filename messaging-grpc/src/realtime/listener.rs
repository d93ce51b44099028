//! PostgreSQL LISTEN: wake-ups from other replicas' commits.

use std::time::Duration;

use sea_orm::sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use super::EventHub;
use crate::store::events::NOTIFY_CHANNEL;

/// Listens until `shutdown`, reconnecting after failures. After any gap in the
/// connection every stream is woken, since notifications sent meanwhile are lost.
pub async fn listen_postgres(url: String, hub: EventHub, shutdown: CancellationToken) {
    let publish = |payload: &str| {
        let Some((cursor, user)) = payload.split_once(' ') else {
            return;
        };
        if let Ok(cursor) = cursor.parse() {
            hub.publish(user, cursor);
        }
    };
    listen(
        &url,
        NOTIFY_CHANNEL,
        "",
        &shutdown,
        || hub.wake_all(),
        publish,
    )
    .await;
}

/// LISTENs on `channel` until `shutdown`, reconnecting after failures (2 s apart), and
/// hands each notification's payload to `notified`. `resync` runs on every
/// (re)connection and whenever the connection drops, since notifications sent while
/// it was down are lost. `what` starts the log lines ("" or "key revocation ").
pub(super) async fn listen(
    url: &str,
    channel: &str,
    what: &str,
    shutdown: &CancellationToken,
    resync: impl Fn(),
    notified: impl Fn(&str),
) {
    loop {
        let connected = tokio::select! {
            () = shutdown.cancelled() => return,
            c = connect(url, channel) => c,
        };
        let mut listener = match connected {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(error = %e, "{what}LISTEN connection failed; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        resync();
        loop {
            let next = tokio::select! {
                () = shutdown.cancelled() => return,
                n = listener.try_recv() => n,
            };
            match next {
                Ok(Some(n)) => notified(n.payload()),
                // The connection dropped; try_recv reconnects on the next call.
                Ok(None) => resync(),
                Err(e) => {
                    tracing::warn!(error = %e, "{what}LISTEN connection lost");
                    break;
                }
            }
        }
    }
}

async fn connect(url: &str, channel: &str) -> Result<PgListener, sea_orm::sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(channel).await?;
    Ok(listener)
}

//! Reconciliation: finding a message whose hand-over outcome is unknown, and asking
//! the provider about messages whose final status never arrived (Twilio recommends
//! this because status callbacks can be lost).

use std::{sync::Arc, time::Duration};

use tokio_util::sync::CancellationToken;

use super::{DispatchItem, Inner};
use crate::{
    domain::{Body, StatusReport},
    provider::{ProviderMessage, SendError},
    store,
};

/// Clock skew tolerated between us and the provider when matching creation times.
const SKEW: chrono::Duration = chrono::Duration::minutes(5);

/// The provider's record of `item`, if it has one: same sender and recipient, created
/// no earlier than our message (minus skew), same body when the provider returns
/// bodies, and not already adopted by another of our messages. The earliest wins.
pub(super) async fn find_handed_over(
    inner: &Inner,
    item: &DispatchItem,
) -> Result<Option<ProviderMessage>, SendError> {
    let row = &item.row;
    // Destroyed (shredded): nothing to match the provider's records against.
    let Some(to) = item.to.as_deref() else {
        return Ok(None);
    };
    let mut candidates = inner
        .provider
        .find(&row.owner_e164, to, row.created_at)
        .await?;
    candidates.sort_by_key(|c| c.created_at);
    let body = match &item.body {
        Body::Text(b) => Some(b.as_str()),
        Body::Destroyed => None,
    };
    for c in candidates {
        if c.created_at.is_some_and(|t| t < row.created_at - SKEW) {
            continue;
        }
        if let (Some(ours), Some(theirs)) = (body, c.body.as_deref())
            && ours != theirs
        {
            continue;
        }
        match inner.outbox.records().sid_is_recorded(&c.sid).await {
            Ok(false) => return Ok(Some(c)),
            Ok(true) => continue,
            Err(e) => {
                return Err(SendError::Retryable {
                    reason: e.to_string(),
                    retry_after: None,
                });
            }
        }
    }
    Ok(None)
}

/// Every `reconcile_interval`, asks the provider about SENT messages that have had no
/// news for `reconcile_after`, and applies what it says.
pub(super) async fn run_periodic(inner: Arc<Inner>, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(inner.settings.reconcile_interval) => {}
        }
        match poll_stuck_once(&inner).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(checked = n, "reconciled message statuses with the provider"),
            Err(e) => tracing::warn!(error = %e, "status reconciliation failed"),
        }
    }
}

/// One reconciliation pass on one replica at a time (PostgreSQL: the others skip the
/// round while one asks the provider); returns how many messages were checked.
pub(crate) async fn poll_stuck_once(inner: &Inner) -> Result<usize, crate::error::Error> {
    let store = inner.outbox.records().store();
    let Some(lease) = store::singleton::try_job(store, "reconcile-statuses")
        .await
        .map_err(crate::error::Error::from)?
    else {
        return Ok(0);
    };
    let checked = poll_stuck(inner).await;
    lease.release().await.map_err(crate::error::Error::from)?;
    checked
}

/// One reconciliation pass; returns how many messages were checked.
pub(crate) async fn poll_stuck(inner: &Inner) -> Result<usize, crate::error::Error> {
    let now = store::now();
    let to_chrono = |d: Duration| chrono::Duration::from_std(d).unwrap_or_default();
    let stuck = inner
        .outbox
        .stuck(
            now - to_chrono(inner.settings.reconcile_after),
            now - to_chrono(inner.settings.reconcile_max_age),
            100,
        )
        .await?;
    let mut checked = 0;
    for row in stuck {
        let Some(sid) = row.provider_sid.as_deref() else {
            continue;
        };
        match inner.provider.fetch(sid).await {
            Ok(Some(found)) => {
                inner
                    .outbox
                    .records()
                    .apply_provider_status(StatusReport {
                        sid,
                        status: &found.status,
                        error_code: found.error_code,
                        error_message: found.error_message.as_deref(),
                    })
                    .await?;
            }
            Ok(None) => {
                tracing::warn!(message_id = %row.id, "provider does not know a message it accepted")
            }
            Err(e) => {
                tracing::warn!(error = %e, "provider unreachable during reconciliation");
                break;
            }
        }
        inner.outbox.touch(&row.user_id, &row.id).await?;
        checked += 1;
    }
    Ok(checked)
}

//! Delivery-status callbacks (`MessagingIngest.RecordStatus`), and status reports
//! from the console provider: applied monotonically, or parked when a callback
//! overtakes the transaction that records our send's SID.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::Ingest;
use crate::{
    domain::{StatusOutcome, StatusReport},
    error::Error,
    provider::{Receipt, StatusSink},
    store,
};

impl Ingest {
    /// A status callback from the provider: applied now, or parked when it overtook
    /// the transaction that records the SID, to be applied when the SID appears.
    /// `ours` is our message id from the StatusCallback URL: when the send's answer
    /// was lost (the message is SENDING without a SID), the callback adopts it, so the
    /// dispatcher never sends it again.
    pub async fn record_status_callback(
        &self,
        report: StatusReport<'_>,
        ours: Option<&str>,
    ) -> Result<StatusOutcome, Error> {
        let outcome = self.records.apply_provider_status(report.clone()).await?;
        if outcome == StatusOutcome::UnknownStatus {
            // A status Twilio added after this version: kept aside (parked, pruned with
            // the other parked rows) for an operator to see, never applied or dropped
            // silently.
            self.park(&report).await?;
            tracing::warn!(sid = %report.sid, status = %report.status, "status callback with a status value we do not know; kept aside in parked_statuses");
            return Ok(outcome);
        }
        if outcome != StatusOutcome::UnknownSid {
            return Ok(outcome);
        }
        if let Some(id) = ours
            && self.records.adopt_sid(id, report.sid).await?
        {
            tracing::info!(message_id = %id, sid = %report.sid, "lost send answer recovered from a status callback");
            self.records.apply_provider_status(report.clone()).await?;
            self.records.apply_parked(report.sid).await?;
            return Ok(StatusOutcome::Applied);
        }
        self.park(&report).await?;
        // Park, then look again: if the send transaction committed the SID meanwhile,
        // it may have drained the parked rows before ours landed. Both sides write then
        // read, so at least one of them sees the other.
        if self.records.sid_is_recorded(report.sid).await? {
            self.records.apply_parked(report.sid).await?;
            return Ok(StatusOutcome::Applied);
        }
        tracing::info!(sid = %report.sid, status = %report.status, "status callback parked until the SID is recorded");
        Ok(StatusOutcome::Parked)
    }
}

impl Ingest {
    /// Stores the callback in `parked_statuses`.
    async fn park(&self, report: &StatusReport<'_>) -> Result<(), Error> {
        let code = report.error_code.and_then(|c| i32::try_from(c).ok());
        let (sid, status) = (report.sid.to_owned(), report.status.to_owned());
        let error_message = report.error_message.map(str::to_owned);
        self.records
            .store()
            .write(move |txn| {
                Box::pin(async move {
                    let message = error_message.as_deref();
                    Ok::<_, Error>(
                        store::ingest::park_any(txn, &sid, &status, code, message).await?,
                    )
                })
            })
            .await
    }
}

/// How long a parked callback waits for its SID before it is dropped: a callback
/// for a message that is not ours (another service on the same account) never finds one.
const PARKED_RETENTION: chrono::Duration = chrono::Duration::days(2);
/// How long an unroutable inbound record (a message to a number nobody owns) is kept
/// for operators (`messaging` ListUnroutable) before it is dropped.
pub const UNROUTABLE_RETENTION: chrono::Duration = chrono::Duration::days(30);

impl Ingest {
    /// Drops parked callbacks past [`PARKED_RETENTION`] every `interval`, until `shutdown`.
    pub async fn run_parked_pruner(self, interval: Duration, shutdown: CancellationToken) {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            // One replica at a time (the others skip this round).
            let lease = match store::singleton::try_job(self.records.store(), "prune-parked").await
            {
                Ok(Some(lease)) => lease,
                Ok(None) => continue,
                Err(e) => {
                    tracing::warn!(error = %e, "pruning parked status callbacks failed");
                    continue;
                }
            };
            // Through the write pipeline like every other write (SQLite has one writer).
            let pruned = self
                .records
                .store()
                .write(|txn| {
                    Box::pin(async move {
                        let now = store::now();
                        let parked =
                            store::ingest::prune_parked_any(txn, now - PARKED_RETENTION).await?;
                        let unroutable =
                            store::ingest::prune_unroutable_any(txn, now - UNROUTABLE_RETENTION)
                                .await?;
                        Ok::<_, Error>(parked + unroutable)
                    })
                })
                .await;
            if let Err(e) = lease.release().await {
                tracing::warn!(error = %e, "releasing the parked-status pruning lock failed");
            }
            match pruned {
                Ok(0) => {}
                Ok(n) => tracing::info!(
                    dropped = n,
                    "old parked status callbacks and unroutable inbound records dropped"
                ),
                Err(e) => tracing::warn!(error = %e, "pruning parked status callbacks failed"),
            }
        }
    }
}

/// The console provider reports "delivered" (or a failure) a moment after each send:
/// applied as a status callback carrying our message id would be.
#[async_trait::async_trait]
impl StatusSink for Ingest {
    async fn report(&self, receipt: Receipt<'_>) {
        let report = StatusReport {
            sid: receipt.sid,
            status: receipt.status,
            error_code: receipt.error_code,
            error_message: None,
        };
        if let Err(e) = self
            .record_status_callback(report, Some(receipt.message_id))
            .await
        {
            tracing::warn!(error = %e, "could not apply a provider status report");
        }
    }
}

//! Provider status changes (callbacks, reconciliation), applied monotonically.

use super::{MessageStatus, Messaging};
use crate::{
    error::Error,
    store::{self, messages::StatusChange},
};

/// What a status report did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusOutcome {
    Applied,
    /// Older than, or equal to, what we have: nothing changed.
    Ignored,
    /// No message carries this SID (yet).
    UnknownSid,
    /// Kept until a message records this SID (a callback that overtook our send).
    Parked,
    /// Twilio sent a status value this service does not know.
    UnknownStatus,
}

/// A status report about a provider SID.
#[derive(Clone, Debug)]
pub struct StatusReport<'a> {
    pub sid: &'a str,
    pub status: &'a str,
    pub error_code: Option<i64>,
    pub error_message: Option<&'a str>,
}

impl Messaging {
    /// Applies a provider status if it moves the message forward. Reports may arrive
    /// late, twice or out of order; only a newer state changes anything.
    pub async fn apply_provider_status(
        &self,
        report: StatusReport<'_>,
    ) -> Result<StatusOutcome, Error> {
        let Some(next) = MessageStatus::from_twilio(report.status) else {
            return Ok(StatusOutcome::UnknownStatus);
        };
        let db = self.store.conn();
        // Retry on a concurrent change: re-read and decide again.
        for _ in 0..5 {
            let Some(row) = store::messages::find_by_provider_sid_any(db, report.sid).await? else {
                return Ok(StatusOutcome::UnknownSid);
            };
            let current = MessageStatus::parse(&row.status)?;
            if !current.may_become(next) {
                return Ok(StatusOutcome::Ignored);
            }
            let now = store::now();
            let change = StatusChange {
                status: Some(next.as_str().to_owned()),
                error_code: report.error_code.and_then(|c| i32::try_from(c).ok()),
                error_message: report.error_message.map(str::to_owned),
                sent_at: (next.rank() >= MessageStatus::Sent.rank() && row.sent_at.is_none())
                    .then_some(now),
                delivered_at: (next == MessageStatus::Delivered).then_some(now),
                ..Default::default()
            };
            let txn = self.store.begin_write().await?;
            let event = self
                .change_status_in(&txn, &row.user_id, &row.id, current, change)
                .await?;
            txn.commit().await?;
            if let Some(cursor) = event {
                self.announce(&row.user_id, cursor);
                tracing::info!(message_id = %row.id, from = current.as_str(), to = next.as_str(), "status applied");
                return Ok(StatusOutcome::Applied);
            }
        }
        Err(Error::Internal(anyhow::anyhow!(
            "status of {} kept changing under us",
            report.sid
        )))
    }
}

impl Messaging {
    /// A status callback from the provider: applied now, or parked when it overtook
    /// the transaction that records the SID, to be applied when the SID appears.
    pub async fn record_status_callback(
        &self,
        report: StatusReport<'_>,
    ) -> Result<StatusOutcome, Error> {
        let outcome = self.apply_provider_status(report.clone()).await?;
        if outcome != StatusOutcome::UnknownSid {
            return Ok(outcome);
        }
        let code = report.error_code.and_then(|c| i32::try_from(c).ok());
        store::ingest::park(
            self.store.conn(),
            report.sid,
            report.status,
            code,
            report.error_message,
        )
        .await?;
        // Park, then look again: if the send transaction committed the SID meanwhile,
        // it may have drained the parked rows before ours landed. Both sides write then
        // read, so at least one of them sees the other.
        if self.sid_is_recorded(report.sid).await? {
            self.apply_parked(report.sid).await?;
            return Ok(StatusOutcome::Applied);
        }
        tracing::info!(sid = %report.sid, status = %report.status, "status callback parked until the SID is recorded");
        Ok(StatusOutcome::Parked)
    }

    /// Applies and removes the statuses parked for `sid`.
    pub async fn apply_parked(&self, sid: &str) -> Result<(), Error> {
        let parked = store::ingest::parked_for(self.store.conn(), sid).await?;
        if parked.is_empty() {
            return Ok(());
        }
        for p in &parked {
            let report = StatusReport {
                sid,
                status: &p.status,
                error_code: p.error_code.map(i64::from),
                error_message: p.error_message.as_deref(),
            };
            self.apply_provider_status(report).await?;
        }
        store::ingest::unpark(self.store.conn(), sid).await?;
        Ok(())
    }
}

#[async_trait::async_trait]
impl crate::provider::StatusSink for Messaging {
    async fn report(&self, sid: &str, status: &str) {
        let report = StatusReport {
            sid,
            status,
            error_code: None,
            error_message: None,
        };
        if let Err(e) = self.apply_provider_status(report).await {
            tracing::warn!(error = %e, "could not apply a provider status report");
        }
    }
}

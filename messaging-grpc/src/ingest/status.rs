//! Delivery-status callbacks (`MessagingIngest.RecordStatus`), and status reports
//! from the console provider: applied monotonically, or parked when a callback
//! overtakes the transaction that records our send's SID.

use super::Ingest;
use crate::{
    domain::{StatusOutcome, StatusReport},
    error::Error,
    provider::StatusSink,
    store,
};

impl Ingest {
    /// A status callback from the provider: applied now, or parked when it overtook
    /// the transaction that records the SID, to be applied when the SID appears.
    pub async fn record_status_callback(
        &self,
        report: StatusReport<'_>,
    ) -> Result<StatusOutcome, Error> {
        let outcome = self.records.apply_provider_status(report.clone()).await?;
        if outcome != StatusOutcome::UnknownSid {
            return Ok(outcome);
        }
        let code = report.error_code.and_then(|c| i32::try_from(c).ok());
        let db = self.records.store().conn();
        store::ingest::park(db, report.sid, report.status, code, report.error_message).await?;
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

/// The console provider reports "delivered" a moment after each send.
#[async_trait::async_trait]
impl StatusSink for Ingest {
    async fn report(&self, sid: &str, status: &str) {
        let report = StatusReport {
            sid,
            status,
            error_code: None,
            error_message: None,
        };
        if let Err(e) = self.records.apply_provider_status(report).await {
            tracing::warn!(error = %e, "could not apply a provider status report");
        }
    }
}

//! A provider wrapper that counts what the dispatcher and the reconciliation job get
//! from the provider, and how long the hand-over takes. Labels are outcomes and
//! Twilio error codes, never numbers or content.

use std::{sync::Arc, time::Instant};

use chrono::{DateTime, Utc};

use super::{Outgoing, ProviderMessage, SendError, SmsProvider};

/// Wraps the configured provider.
pub struct Metered {
    inner: Arc<dyn SmsProvider>,
}

impl Metered {
    pub fn new(inner: Arc<dyn SmsProvider>) -> Self {
        Self { inner }
    }
}

/// `accepted`, or how the hand-over failed, with Twilio's code when it gave one.
fn outcome(r: &Result<ProviderMessage, SendError>) -> (&'static str, String) {
    match r {
        Ok(_) => ("accepted", String::new()),
        Err(SendError::Retryable { .. }) => ("retryable", String::new()),
        Err(SendError::Busy { .. }) => ("busy", String::new()),
        Err(SendError::Unknown { .. }) => ("unknown", String::new()),
        Err(SendError::Permanent { code, .. }) => {
            ("permanent", crate::metrics::error_code_label(*code))
        }
    }
}

fn reconciled<T>(kind: &'static str, r: &Result<T, SendError>, found: impl Fn(&T) -> bool) {
    let outcome = match r {
        Ok(v) if found(v) => "found",
        Ok(_) => "not_found",
        Err(_) => "error",
    };
    metrics::counter!("messaging_reconcile_total", "kind" => kind, "outcome" => outcome)
        .increment(1);
}

#[async_trait::async_trait]
impl SmsProvider for Metered {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let started = Instant::now();
        let r = self.inner.send(msg).await;
        let (outcome, code) = outcome(&r);
        metrics::histogram!("messaging_dispatch_seconds", "outcome" => outcome)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("messaging_dispatch_total", "outcome" => outcome, "error_code" => code)
            .increment(1);
        r
    }

    async fn fetch(&self, sid: &str) -> Result<Option<ProviderMessage>, SendError> {
        let r = self.inner.fetch(sid).await;
        reconciled("status", &r, Option::is_some);
        r
    }

    async fn find(
        &self,
        from: &str,
        to: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError> {
        let r = self.inner.find(from, to, since).await;
        reconciled("lookup", &r, |v| !v.is_empty());
        r
    }
}

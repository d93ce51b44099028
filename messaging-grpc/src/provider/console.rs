//! The console provider (dev): prints a masked line instead of sending, then reports
//! the message sent and, a moment later, delivered, so a local run shows the whole
//! lifecycle without a Twilio account.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{Outgoing, ProviderMessage, SendError, SmsProvider, StatusSink};
use crate::{phone::Masked, sms::count_segments};

pub struct ConsoleProvider {
    sink: Option<Arc<dyn StatusSink>>,
    delivery_delay: Duration,
}

impl ConsoleProvider {
    /// `sink` receives the simulated delivery receipt `delivery_delay` after each send.
    pub fn new(sink: Option<Arc<dyn StatusSink>>, delivery_delay: Duration) -> Self {
        Self {
            sink,
            delivery_delay,
        }
    }
}

#[async_trait::async_trait]
impl SmsProvider for ConsoleProvider {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let sid = format!("SM{}", uuid::Uuid::new_v4().simple());
        let segments = count_segments(msg.body).segments;
        // Never the body: only who, how long, and how many parts.
        println!(
            "[console sms] {} -> {}: {} characters, {segments} segment(s), {} media, sid {sid}",
            Masked(msg.from),
            Masked(msg.to),
            msg.body.chars().count(),
            msg.media_urls.len(),
        );
        if let Some(sink) = self.sink.clone() {
            let (sid, delay) = (sid.clone(), self.delivery_delay);
            tokio::spawn(async move {
                tokio::time::sleep(delay).await;
                sink.report(&sid, "delivered").await;
            });
        }
        Ok(ProviderMessage {
            sid,
            status: "sent".into(),
            error_code: None,
            error_message: None,
            segments: Some(segments),
            body: None,
            created_at: Some(Utc::now()),
        })
    }

    async fn fetch(&self, _sid: &str) -> Result<Option<ProviderMessage>, SendError> {
        Ok(None)
    }

    async fn find(
        &self,
        _from: &str,
        _to: &str,
        _since: DateTime<Utc>,
    ) -> Result<Vec<ProviderMessage>, SendError> {
        // The console keeps nothing: an unknown outcome is resent (harmless in dev).
        Ok(Vec::new())
    }
}

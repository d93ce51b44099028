//! The console provider (dev): prints a masked line instead of sending, hands the
//! message to the recipient's phone in the [`PhoneLog`] (what the dev console shows),
//! then reports it sent and, a moment later, delivered — or, when the phone was armed
//! with a failure, the failure Twilio would report — so a local run shows the whole
//! lifecycle without a Twilio account.
//!
//! An armed Twilio error code behaves as Twilio does with it: a delivery error
//! (30xxx: 30003 unreachable, 30007 filtered, …) is accepted, then reported
//! `undelivered` with the code; any other (21610 unsubscribed, 21211 invalid `To`, …)
//! is refused by the create call itself.

use std::{sync::Arc, time::Duration};

use chrono::{DateTime, Utc};

use super::{
    Delivered, Outgoing, PhoneLog, ProviderMessage, Receipt, SendError, SmsProvider, StatusSink,
};
use crate::{phone::Masked, sms::count_segments};

pub struct ConsoleProvider {
    sink: Option<Arc<dyn StatusSink>>,
    delivery_delay: Duration,
    phones: PhoneLog,
}

impl ConsoleProvider {
    /// `sink` receives the simulated delivery receipt `delivery_delay` after each send.
    pub fn new(sink: Option<Arc<dyn StatusSink>>, delivery_delay: Duration) -> Self {
        Self {
            sink,
            delivery_delay,
            phones: PhoneLog::default(),
        }
    }

    /// Delivers into `phones` (shared with the dev console) instead of a log of its own.
    pub fn with_phones(mut self, phones: PhoneLog) -> Self {
        self.phones = phones;
        self
    }
}

/// What Twilio says for the error codes the dev console offers.
fn twilio_error_text(code: u32) -> &'static str {
    match code {
        21211 => "Invalid 'To' Phone Number",
        21408 => "Permission to send an SMS has not been enabled for the region",
        21610 => "Attempt to send to unsubscribed recipient",
        21614 => "'To' number is not a valid mobile number",
        30003 => "Unreachable destination handset",
        30004 => "Message blocked",
        30005 => "Unknown destination handset",
        30006 => "Landline or unreachable carrier",
        30007 => "Message filtered",
        30008 => "Unknown error",
        _ => "Error reported by the carrier",
    }
}

/// Delivery errors are reported after the message was accepted; the rest refuse it.
fn is_delivery_error(code: u32) -> bool {
    (30_000..31_000).contains(&code)
}

#[async_trait::async_trait]
impl SmsProvider for ConsoleProvider {
    fn name(&self) -> &'static str {
        "console"
    }

    async fn send(&self, msg: &Outgoing<'_>) -> Result<ProviderMessage, SendError> {
        let failure = self.phones.take_failure(msg.to);
        if let Some(code) = failure.filter(|c| !is_delivery_error(*c)) {
            println!(
                "[console sms] {} -> {}: refused with Twilio error {code}",
                Masked(msg.from),
                Masked(msg.to),
            );
            return Err(SendError::Permanent {
                code: Some(i64::from(code)),
                message: twilio_error_text(code).to_owned(),
            });
        }
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
        self.phones.deliver(
            msg.to,
            Delivered {
                sid: sid.clone(),
                from: msg.from.to_owned(),
                body: msg.body.to_owned(),
                media_urls: msg.media_urls.to_vec(),
                status: "sent".into(),
                error_code: None,
                at: Utc::now(),
            },
        );
        let (status, error_code) = match failure {
            Some(code) => ("undelivered", Some(i64::from(code))),
            None => ("delivered", None),
        };
        let (phones, delay, sink) = (self.phones.clone(), self.delivery_delay, self.sink.clone());
        let (message_id, from, to) = (
            msg.message_id.to_owned(),
            msg.from.to_owned(),
            msg.to.to_owned(),
        );
        let receipt_sid = sid.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            phones.set_status(&to, &receipt_sid, status, error_code);
            if let Some(sink) = sink {
                let receipt = Receipt {
                    message_id: &message_id,
                    sid: &receipt_sid,
                    from: &from,
                    to: &to,
                    status,
                    error_code,
                };
                sink.report(receipt).await;
            }
        });
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
        // The console keeps no lookup by sender: an unknown outcome is resent (harmless in dev).
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Recorded(Mutex<Vec<(String, String, Option<i64>)>>);

    #[async_trait::async_trait]
    impl StatusSink for Recorded {
        async fn report(&self, r: Receipt<'_>) {
            let entry = (r.message_id.to_owned(), r.status.to_owned(), r.error_code);
            self.0.lock().unwrap().push(entry);
        }
    }

    fn outgoing<'a>(id: &'a str, body: &'a str) -> Outgoing<'a> {
        Outgoing {
            message_id: id,
            from: "+15005550006",
            to: "+14155550100",
            body,
            media_urls: &[],
            validity_left: None,
        }
    }

    #[tokio::test]
    async fn delivers_to_the_phone_then_reports_as_armed() {
        let sink = Arc::new(Recorded::default());
        let phones = PhoneLog::default();
        let provider = ConsoleProvider::new(Some(sink.clone()), Duration::from_millis(20))
            .with_phones(phones.clone());

        provider.send(&outgoing("m1", "hello")).await.unwrap();
        phones.fail_next("+14155550100", 30003);
        provider.send(&outgoing("m2", "again")).await.unwrap();
        phones.fail_next("+14155550100", 21610);
        let refused = provider.send(&outgoing("m3", "no")).await.unwrap_err();
        assert_eq!(
            refused,
            SendError::Permanent {
                code: Some(21610),
                message: "Attempt to send to unsubscribed recipient".into()
            }
        );
        let (messages, _) = phones.view("+14155550100");
        assert_eq!(messages.len(), 2, "a refused create reaches no phone");
        assert_eq!(messages[0].body, "hello");
        assert!(messages.iter().all(|m| m.status == "sent"));

        for _ in 0..500 {
            if sink.0.lock().unwrap().len() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut reports = sink.0.lock().unwrap().clone();
        reports.sort();
        assert_eq!(
            reports,
            [
                ("m1".into(), "delivered".into(), None),
                ("m2".into(), "undelivered".into(), Some(30003)),
            ]
        );
        let (messages, armed) = phones.view("+14155550100");
        assert_eq!(messages[0].status, "delivered");
        assert_eq!(
            (messages[1].status.as_str(), messages[1].error_code),
            ("undelivered", Some(30003))
        );
        assert_eq!(armed, None, "each failure is used once");
    }
}

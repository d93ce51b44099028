//! Twilio's webhook forms, parsed into what the core needs. Unknown parameters are
//! ignored (they were signed, which is all they need); a repeated parameter counts by
//! its first value; a missing required one is a clear error (400).

use commpro_messaging_api::v1 as pb;
use hyper::StatusCode;

use crate::error::GatewayError;

/// Twilio allows 10 media per message; never trust NumMedia beyond that.
const MAX_MEDIA: usize = 10;

/// `POST /webhook/sms`.
#[derive(Debug, PartialEq, Eq)]
pub struct InboundWebhook {
    pub message_sid: String,
    pub account_sid: String,
    pub from: String,
    pub to: String,
    pub body: String,
    /// `(MediaUrlN, MediaContentTypeN)`, in order.
    pub media: Vec<(String, String)>,
}

/// `POST /webhook/status`.
#[derive(Debug, PartialEq, Eq)]
pub struct StatusWebhook {
    pub message_sid: String,
    pub account_sid: String,
    /// As Twilio spells it (`delivered`, `undelivered`, …).
    pub status: String,
    /// 0 when Twilio sent none.
    pub error_code: i32,
    pub error_message: String,
    /// Our message id from the StatusCallback URL (`?mid=`), empty when absent.
    pub message_id: String,
}

fn first<'a>(form: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|n| form.iter().find(|(k, _)| k == n).map(|(_, v)| v.as_str()))
}

/// A form Twilio should never send: 400, naming the parameter.
fn required(form: &[(String, String)], names: &[&str]) -> Result<String, GatewayError> {
    first(form, names)
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| {
            GatewayError::refused(
                StatusCode::BAD_REQUEST,
                "invalid_argument",
                format!("missing parameter {}", names[0]),
            )
        })
}

impl InboundWebhook {
    /// Reads the form of `POST /webhook/sms`: NumMedia, MediaUrlN, MediaContentTypeN.
    pub fn parse(form: &[(String, String)]) -> Result<Self, GatewayError> {
        let num_media: usize = first(form, &["NumMedia"])
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0);
        let mut media = Vec::new();
        for i in 0..num_media.min(MAX_MEDIA) {
            let Some(url) = first(form, &[&format!("MediaUrl{i}")]) else {
                continue;
            };
            let content_type = first(form, &[&format!("MediaContentType{i}")])
                .unwrap_or("application/octet-stream");
            media.push((url.to_owned(), content_type.to_owned()));
        }
        Ok(Self {
            message_sid: required(form, &["MessageSid", "SmsMessageSid", "SmsSid"])?,
            account_sid: required(form, &["AccountSid"])?,
            from: required(form, &["From"])?,
            to: required(form, &["To"])?,
            body: first(form, &["Body"]).unwrap_or_default().to_owned(),
            media,
        })
    }
}

impl StatusWebhook {
    /// Reads the form of `POST /webhook/status`.
    pub fn parse(form: &[(String, String)]) -> Result<Self, GatewayError> {
        Ok(Self {
            message_sid: required(form, &["MessageSid", "SmsSid"])?,
            account_sid: required(form, &["AccountSid"])?,
            status: required(form, &["MessageStatus", "SmsStatus"])?,
            // Twilio sends digits; anything else is not a code we can keep.
            error_code: first(form, &["ErrorCode"])
                .and_then(|c| c.trim().parse().ok())
                .unwrap_or(0),
            error_message: first(form, &["ErrorMessage"])
                .unwrap_or_default()
                .to_owned(),
            message_id: String::new(),
        })
    }

    /// Takes our message id from the callback URL's query (`mid`), which the core put
    /// there and Twilio signed with the rest of the URL. Anything that is not an id
    /// is ignored: the callback still counts by its SID.
    pub fn with_message_id(mut self, query: Option<&str>) -> Self {
        let mid = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "mid")
            .map(|(_, v)| v.into_owned())
            .filter(|v| {
                (1..=64).contains(&v.len())
                    && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        self.message_id = mid.unwrap_or_default();
        self
    }
}

impl From<InboundWebhook> for pb::RecordInboundRequest {
    fn from(hook: InboundWebhook) -> Self {
        Self {
            message_sid: hook.message_sid,
            account_sid: hook.account_sid,
            from: hook.from,
            to: hook.to,
            body: hook.body,
            media: hook
                .media
                .into_iter()
                .map(|(url, content_type)| pb::InboundMedia { url, content_type })
                .collect(),
        }
    }
}

impl From<StatusWebhook> for pb::RecordStatusRequest {
    fn from(hook: StatusWebhook) -> Self {
        Self {
            message_sid: hook.message_sid,
            account_sid: hook.account_sid,
            status: hook.status,
            error_code: hook.error_code,
            error_message: hook.error_message,
            message_id: hook.message_id,
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn inbound_with_media() {
        let f = form(&[
            ("MessageSid", "SM1"),
            ("AccountSid", "AC1"),
            ("From", "+1415"),
            ("To", "+1500"),
            ("Body", "hi"),
            ("NumMedia", "2"),
            ("MediaUrl0", "https://m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl1", "https://m/1"),
            ("MediaContentType1", "image/png"),
            ("Unknown", "ignored"),
        ]);
        let w = InboundWebhook::parse(&f).unwrap();
        assert_eq!(
            w.media,
            vec![
                ("https://m/0".into(), "image/jpeg".into()),
                ("https://m/1".into(), "image/png".into())
            ]
        );
        assert_eq!((w.body.as_str(), w.message_sid.as_str()), ("hi", "SM1"));
    }

    #[test]
    fn missing_and_repeated_fields() {
        let err = InboundWebhook::parse(&form(&[
            ("AccountSid", "AC1"),
            ("From", "+1"),
            ("To", "+2"),
        ]))
        .unwrap_err();
        assert_eq!(err.to_string(), "missing parameter MessageSid");
        let w = InboundWebhook::parse(&form(&[
            ("SmsSid", "SM9"),
            ("AccountSid", "AC1"),
            ("From", "+1"),
            ("From", "+3"),
            ("To", "+2"),
            ("NumMedia", "999"),
            ("NumMedia", "x"),
        ]))
        .unwrap();
        assert_eq!(
            (w.message_sid.as_str(), w.from.as_str(), w.body.as_str()),
            ("SM9", "+1", "")
        );
        assert!(
            w.media.is_empty(),
            "NumMedia without MediaUrlN yields nothing"
        );
    }

    fn s_with(query: &str) -> StatusWebhook {
        let f = form(&[
            ("MessageSid", "SM1"),
            ("AccountSid", "AC1"),
            ("MessageStatus", "sent"),
        ]);
        StatusWebhook::parse(&f)
            .unwrap()
            .with_message_id(Some(query))
    }

    #[test]
    fn status_callback() {
        let s = StatusWebhook::parse(&form(&[
            ("MessageSid", "SM1"),
            ("AccountSid", "AC1"),
            ("MessageStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .unwrap();
        assert_eq!((s.status.as_str(), s.error_code), ("undelivered", 30003));
        let s = StatusWebhook::parse(&form(&[
            ("SmsSid", "SM1"),
            ("AccountSid", "AC1"),
            ("SmsStatus", "sent"),
            ("ErrorCode", "abc"),
        ]))
        .unwrap();
        assert_eq!((s.status.as_str(), s.error_code), ("sent", 0));
        let ours = |q: &str| s_with(q).message_id;
        assert_eq!(ours("mid=01a2-ff"), "01a2-ff");
        assert_eq!(ours("x=1&mid=abc"), "abc");
        assert_eq!(ours("mid=a%20b"), "", "not an id: ignored");
        assert_eq!(ours(""), "");
        assert!(
            StatusWebhook::parse(&form(&[("MessageSid", "SM1"), ("AccountSid", "AC1")])).is_err()
        );
    }

    proptest! {
        #[test]
        fn arbitrary_forms_never_panic(pairs in proptest::collection::vec(("[A-Za-z0-9]{0,12}", ".{0,20}"), 0..30)) {
            let f: Vec<(String, String)> = pairs;
            let _ = InboundWebhook::parse(&f);
            let _ = StatusWebhook::parse(&f);
        }
    }
}

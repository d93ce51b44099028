//! Twilio's webhook forms, parsed into what the core needs. Unknown parameters are
//! ignored (they were signed, which is all they need); what Twilio would never send —
//! a repeated parameter, a SID not in Twilio's format, a missing required one, media
//! parameters that do not match NumMedia — is a clear error (400) naming the
//! parameter ([`super::params`] says why that matters for signed forms).

use commpro_messaging_api::v1 as pb;

use super::params::{Params, bad};
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

impl InboundWebhook {
    /// Reads the form of `POST /webhook/sms`: NumMedia, then MediaUrlN and
    /// MediaContentTypeN for each N below it, and no media parameter beyond it.
    pub fn parse(form: &[(String, String)]) -> Result<Self, GatewayError> {
        let p = Params::new(form)?;
        let message_sid = p.message_sid()?.to_owned();
        let account_sid = p.account_sid()?.to_owned();
        let num_media = p
            .number("NumMedia", MAX_MEDIA as u64)?
            .ok_or_else(|| bad("NumMedia", "is missing; Twilio sends it with every message"))?
            as usize;
        let mut media = Vec::with_capacity(num_media);
        for i in 0..num_media {
            let url = p.required(&format!("MediaUrl{i}"))?;
            let content_type = p.required(&format!("MediaContentType{i}"))?;
            media.push((url.to_owned(), content_type.to_owned()));
        }
        if let Some(extra) = p
            .names()
            .find(|n| media_index(n).is_some_and(|i| i >= num_media))
        {
            return Err(bad(extra, format!("is beyond NumMedia ({num_media})")));
        }
        Ok(Self {
            message_sid,
            account_sid,
            from: p.required("From")?.to_owned(),
            to: p.required("To")?.to_owned(),
            body: p.get("Body").unwrap_or_default().to_owned(),
            media,
        })
    }
}

/// N of a `MediaUrlN` or `MediaContentTypeN` parameter.
fn media_index(name: &str) -> Option<usize> {
    let digits = name
        .strip_prefix("MediaUrl")
        .or_else(|| name.strip_prefix("MediaContentType"))?;
    (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
        .then(|| digits.parse().unwrap_or(usize::MAX))
}

impl StatusWebhook {
    /// Reads the form of `POST /webhook/status`.
    pub fn parse(form: &[(String, String)]) -> Result<Self, GatewayError> {
        let p = Params::new(form)?;
        // Twilio sends digits, or nothing (an empty value counts as nothing).
        let error_code = match p.get("ErrorCode") {
            Some("") => 0,
            _ => p.number("ErrorCode", i32::MAX as u64)?.unwrap_or(0) as i32,
        };
        Ok(Self {
            message_sid: p.message_sid()?.to_owned(),
            account_sid: p.account_sid()?.to_owned(),
            status: p.status()?.to_owned(),
            error_code,
            error_message: p.get("ErrorMessage").unwrap_or_default().to_owned(),
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

    const SM: &str = "SM0123456789abcdef0123456789abcdef";
    const AC: &str = "AC00000000000000000000000000000001";

    fn form(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn inbound(extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut f = form(&[
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("From", "+1415"),
            ("To", "+1500"),
            ("Body", "hi"),
        ]);
        f.extend(form(extra));
        f
    }

    /// The 400's message, which names the parameter.
    fn refusal(r: Result<impl std::fmt::Debug, GatewayError>) -> String {
        r.unwrap_err().to_string()
    }

    #[test]
    fn inbound_with_media() {
        let f = inbound(&[
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
        assert_eq!((w.body.as_str(), w.message_sid.as_str()), ("hi", SM));
    }

    #[test]
    fn missing_fields_are_named() {
        let err = refusal(InboundWebhook::parse(&form(&[
            ("AccountSid", AC),
            ("From", "+1"),
            ("To", "+2"),
            ("NumMedia", "0"),
        ])));
        assert_eq!(err, "missing parameter MessageSid");
        let err = refusal(InboundWebhook::parse(&inbound(&[])));
        assert!(err.starts_with("NumMedia:"), "{err}");
        let err = refusal(InboundWebhook::parse(&inbound(&[("NumMedia", "1")])));
        assert_eq!(err, "missing parameter MediaUrl0");
    }

    /// What Twilio never sends is refused by name, even when signed: each of these is
    /// a way to turn one signed request into a second, different message.
    #[test]
    fn what_twilio_never_sends_is_refused_by_name() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("NumMedia", "0"), ("From", "+3")], "From:"),
            (&[("NumMedia", "0"), ("NumMedia", "1")], "NumMedia:"),
            (&[("NumMedia", "11")], "NumMedia:"),
            (&[("NumMedia", "x")], "NumMedia:"),
            (
                &[("NumMedia", "0"), ("MediaUrl0", "https://m/0")],
                "MediaUrl0:",
            ),
            (
                &[
                    ("NumMedia", "1"),
                    ("MediaUrl0", "https://m/0"),
                    ("MediaContentType0", "image/png"),
                    ("MediaContentType7", "image/png"),
                ],
                "MediaContentType7:",
            ),
            (&[("NumMedia", "0"), ("SmsSid", "SM0")], "SmsSid:"),
            (
                &[
                    ("NumMedia", "0"),
                    ("SmsMessageSid", "SMffffffffffffffffffffffffffffffff"),
                ],
                "SmsMessageSid:",
            ),
        ];
        for (extra, field) in cases {
            let err = refusal(InboundWebhook::parse(&inbound(extra)));
            assert!(err.starts_with(field), "{extra:?}: {err}");
        }
        for (sid, field) in [
            ("SM1", "MessageSid:"),
            ("SM0123456789abcdef0123456789abcdefNumMedia0", "MessageSid:"),
            ("AC0123456789abcdef0123456789abcdef", "MessageSid:"),
        ] {
            let mut f = inbound(&[("NumMedia", "0")]);
            f[0].1 = sid.into();
            let err = refusal(InboundWebhook::parse(&f));
            assert!(err.starts_with(field), "{sid}: {err}");
        }
        let mut f = inbound(&[("NumMedia", "0")]);
        f[1].1 = "AC1".into();
        assert!(refusal(InboundWebhook::parse(&f)).starts_with("AccountSid:"));
        // Twilio's own older names, equal to MessageSid: fine.
        let f = inbound(&[("NumMedia", "0"), ("SmsSid", SM), ("SmsMessageSid", SM)]);
        assert!(InboundWebhook::parse(&f).is_ok());
    }

    fn s_with(query: &str) -> StatusWebhook {
        let f = form(&[
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("MessageStatus", "sent"),
        ]);
        StatusWebhook::parse(&f)
            .unwrap()
            .with_message_id(Some(query))
    }

    #[test]
    fn status_callback() {
        let s = StatusWebhook::parse(&form(&[
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("MessageStatus", "undelivered"),
            ("SmsStatus", "undelivered"),
            ("ErrorCode", "30003"),
        ]))
        .unwrap();
        assert_eq!((s.status.as_str(), s.error_code), ("undelivered", 30003));
        let s = StatusWebhook::parse(&form(&[
            ("SmsSid", SM),
            ("MessageSid", SM),
            ("AccountSid", AC),
            ("SmsStatus", "sent"),
            ("ErrorCode", ""),
        ]))
        .unwrap();
        assert_eq!((s.status.as_str(), s.error_code), ("sent", 0));
        let ours = |q: &str| s_with(q).message_id;
        assert_eq!(ours("mid=01a2-ff"), "01a2-ff");
        assert_eq!(ours("x=1&mid=abc"), "abc");
        assert_eq!(ours("mid=a%20b"), "", "not an id: ignored");
        assert_eq!(ours(""), "");
        assert!(StatusWebhook::parse(&form(&[("MessageSid", SM), ("AccountSid", AC)])).is_err());
    }

    #[test]
    fn status_callbacks_twilio_never_sends_are_refused_by_name() {
        let base = [("MessageSid", SM), ("AccountSid", AC)];
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("MessageStatus", "teleported")], "MessageStatus:"),
            (
                &[("MessageStatus", "delivered"), ("SmsStatus", "failed")],
                "SmsStatus:",
            ),
            (
                &[("MessageStatus", "delivered"), ("MessageStatus", "failed")],
                "MessageStatus:",
            ),
            (
                &[("MessageStatus", "failed"), ("ErrorCode", "3000x")],
                "ErrorCode:",
            ),
        ];
        for (extra, field) in cases {
            let mut f = form(&base);
            f.extend(form(extra));
            let err = refusal(StatusWebhook::parse(&f));
            assert!(err.starts_with(field), "{extra:?}: {err}");
        }
        // `MessageStatus` moved into the SID (the signature stays valid): refused.
        let f = form(&[
            (
                "MessageSid",
                "SM0123456789abcdef0123456789abcdefMessageStatusdelivered",
            ),
            ("AccountSid", AC),
            ("SmsStatus", "delivered"),
        ]);
        assert!(refusal(StatusWebhook::parse(&f)).starts_with("MessageSid:"));
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

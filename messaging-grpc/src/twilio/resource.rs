//! Twilio's JSON shapes: the message resource (`api.v2010.account.message`) and the
//! error body. Unknown fields are ignored; Twilio adds fields without notice.

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// A Message resource. Twilio sends counts as strings and dates as RFC 2822.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct MessageResource {
    pub sid: String,
    pub status: String,
    #[serde(default)]
    pub error_code: Option<i64>,
    #[serde(default)]
    pub error_message: Option<String>,
    #[serde(default)]
    pub num_segments: Option<String>,
    #[serde(default)]
    pub num_media: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub body: Option<String>,
    #[serde(default)]
    pub direction: Option<String>,
    #[serde(default)]
    pub date_created: Option<String>,
    #[serde(default)]
    pub date_sent: Option<String>,
    #[serde(default)]
    pub date_updated: Option<String>,
}

impl MessageResource {
    /// `num_segments` as a number, when Twilio gave a valid one.
    pub fn segments(&self) -> Option<u32> {
        self.num_segments.as_deref()?.trim().parse().ok()
    }

    pub fn media_count(&self) -> Option<u32> {
        self.num_media.as_deref()?.trim().parse().ok()
    }

    pub fn created_at(&self) -> Option<DateTime<Utc>> {
        parse_rfc2822(self.date_created.as_deref()?)
    }

    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        parse_rfc2822(self.date_sent.as_deref()?)
    }
}

/// `Thu, 30 Jul 2015 20:12:31 +0000` → UTC.
pub fn parse_rfc2822(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(s.trim())
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

/// One page of `GET …/Messages.json`.
#[derive(Clone, Debug, Deserialize)]
pub struct MessageList {
    #[serde(default)]
    pub messages: Vec<MessageResource>,
    #[serde(default)]
    pub next_page_uri: Option<String>,
}

/// Twilio's error body: `{"code": 21211, "message": "…", "more_info": "…", "status": 400}`.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct ApiErrorBody {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub more_info: Option<String>,
    #[serde(default)]
    pub status: Option<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_twilio_create_response() {
        // Shape of Twilio's documented 201 answer, plus a field we do not know.
        let json = r#"{
            "account_sid": "ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "api_version": "2010-04-01",
            "body": "Hi", "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
            "date_sent": null, "date_updated": "Thu, 24 Aug 2023 05:01:45 +0000",
            "direction": "outbound-api", "error_code": null, "error_message": null,
            "from": "+14155552345", "messaging_service_sid": null, "num_media": "0",
            "num_segments": "2", "price": null, "price_unit": "USD",
            "sid": "SMXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX", "status": "queued",
            "subresource_uris": {"media": "/2010-04-01/Accounts/AC/Messages/SM/Media.json"},
            "to": "+14155552345", "uri": "/2010-04-01/Accounts/AC/Messages/SM.json",
            "brand_new_field": {"x": 1}
        }"#;
        let m: MessageResource = serde_json::from_str(json).unwrap();
        assert_eq!(m.status, "queued");
        assert_eq!(m.segments(), Some(2));
        assert_eq!(m.media_count(), Some(0));
        assert_eq!(
            m.created_at().unwrap().to_rfc3339(),
            "2023-08-24T05:01:45+00:00"
        );
        assert_eq!(m.sent_at(), None);
    }

    #[test]
    fn parses_error_body() {
        let e: ApiErrorBody = serde_json::from_str(
            r#"{"code": 21211, "message": "The 'To' number +1 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400}"#,
        )
        .unwrap();
        assert_eq!((e.code, e.status), (Some(21211), Some(400)));
    }

    #[test]
    fn bad_counts_and_dates_are_none_not_errors() {
        let m: MessageResource = serde_json::from_str(
            r#"{"sid":"SM1","status":"sent","num_segments":"x","date_sent":"yesterday"}"#,
        )
        .unwrap();
        assert_eq!((m.segments(), m.sent_at()), (None, None));
    }
}

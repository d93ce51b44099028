//! Opaque keyset page tokens: `(timestamp, id)` of the last row of a page.
//!
//! Tokens are base64url of a small binary record tagged with what they page over, so a
//! conversation token handed to GetConversation is refused instead of misread. They are
//! not secret: every query they feed is already scoped to the caller.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};

const VERSION: u8 = 1;
const MAX_ID_LEN: usize = 256;

/// What a token pages over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PageKind {
    Conversations = 1,
    Messages = 2,
    Numbers = 3,
    Search = 4,
    BlockedNumbers = 5,
    // Operator listings count down from the top, clear of user listings added later.
    AuditEvents = 0xF0,
}

/// Position after which the next page starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    pub at: DateTime<Utc>,
    pub id: String,
}

pub fn encode(kind: PageKind, cursor: &Cursor) -> String {
    let mut raw = Vec::with_capacity(10 + cursor.id.len());
    raw.push(VERSION);
    raw.push(kind as u8);
    raw.extend_from_slice(&cursor.at.timestamp_micros().to_be_bytes());
    raw.extend_from_slice(cursor.id.as_bytes());
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a token; `Ok(None)` for the empty token (first page).
pub fn decode(kind: PageKind, token: &str) -> Result<Option<Cursor>, &'static str> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > 2 * MAX_ID_LEN {
        return Err("is too long");
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "is not a token this service issued")?;
    if raw.len() < 11 || raw[0] != VERSION {
        return Err("is not a token this service issued");
    }
    if raw[1] != kind as u8 {
        return Err("belongs to another listing");
    }
    let micros = i64::from_be_bytes(raw[2..10].try_into().map_err(|_| "is malformed")?);
    let at = DateTime::from_timestamp_micros(micros).ok_or("is malformed")?;
    let id = String::from_utf8(raw[10..].to_vec()).map_err(|_| "is malformed")?;
    Ok(Some(Cursor { at, id }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn round_trip_and_kind_check() {
        let c = Cursor {
            at: crate::store::now(),
            id: "0193-abc".into(),
        };
        let t = encode(PageKind::Messages, &c);
        assert_eq!(decode(PageKind::Messages, &t).unwrap(), Some(c));
        assert_eq!(
            decode(PageKind::Conversations, &t),
            Err("belongs to another listing")
        );
        assert_eq!(decode(PageKind::Messages, ""), Ok(None));
        assert!(decode(PageKind::Messages, "not*base64").is_err());
        assert!(decode(PageKind::Messages, "AAAA").is_err());
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,600}") {
            let _ = decode(PageKind::Numbers, &s);
        }

        #[test]
        fn any_cursor_round_trips(micros in -62_135_596_800_000_000i64..253_402_300_799_000_000i64,
                                  id in "[ -~]{1,64}") {
            let at = DateTime::from_timestamp_micros(micros).unwrap();
            let c = Cursor { at, id };
            prop_assert_eq!(decode(PageKind::Numbers, &encode(PageKind::Numbers, &c)).unwrap(), Some(c));
        }
    }
}

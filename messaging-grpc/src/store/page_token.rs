//! Opaque keyset page tokens: `(timestamp, id)` of the last row of a page, bound to the
//! listing that issued them.
//!
//! A token is base64url of a small binary record: a version, what it pages over, a tag,
//! and the position. The tag is the first 64 bits of SHA-256 over the token's *scope*
//! (its listing kind, the caller and every filter that shapes the listing: a
//! conversation's contact, a search query, the archive flag) and the position. So a
//! token handed to another listing, another conversation, another query or another
//! caller is refused with `page_token` named, and so is a token altered in transit.
//!
//! The tag is not a MAC and needs no key: tokens are not secret and forging one gains
//! nothing, because every query a token feeds is already scoped to the caller — a
//! forged position can only land inside the forger's own rows. What the tag buys is a
//! clear refusal instead of a silently misread page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

/// Version 2 added the scope tag; version 1 tokens (from before) are refused as foreign,
/// so a client paging across the upgrade starts its listing again.
const VERSION: u8 = 2;
const MAX_ID_LEN: usize = 256;
const TAG_LEN: usize = 8;
const HEADER_LEN: usize = 2 + TAG_LEN + 8;

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

/// The listing a token belongs to: its kind and the parts that make it this caller's
/// listing (user id, contact id, query, …), in a fixed order per kind.
#[derive(Clone)]
pub struct Scope {
    kind: PageKind,
    /// SHA-256 state over the kind and the length-prefixed parts, cloned per token.
    hasher: Sha256,
}

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The parts are user ids and queries: not printed.
        f.debug_struct("Scope").field("kind", &self.kind).finish()
    }
}

impl Scope {
    pub fn new(kind: PageKind, parts: &[&str]) -> Self {
        let mut hasher = Sha256::new();
        hasher.update(b"commpro.messaging/page-token\0");
        hasher.update([VERSION, kind as u8]);
        for part in parts {
            // Length-prefixed, so ("ab", "c") and ("a", "bc") differ.
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        Self { kind, hasher }
    }

    pub fn kind(&self) -> PageKind {
        self.kind
    }

    fn tag(&self, position: &[u8]) -> [u8; TAG_LEN] {
        let digest = self.hasher.clone().chain_update(position).finalize();
        let mut tag = [0; TAG_LEN];
        tag.copy_from_slice(&digest[..TAG_LEN]);
        tag
    }
}

pub fn encode(scope: &Scope, cursor: &Cursor) -> String {
    let mut position = Vec::with_capacity(8 + cursor.id.len());
    position.extend_from_slice(&cursor.at.timestamp_micros().to_be_bytes());
    position.extend_from_slice(cursor.id.as_bytes());
    let mut raw = Vec::with_capacity(2 + TAG_LEN + position.len());
    raw.push(VERSION);
    raw.push(scope.kind as u8);
    raw.extend_from_slice(&scope.tag(&position));
    raw.extend_from_slice(&position);
    URL_SAFE_NO_PAD.encode(raw)
}

/// Decodes a token; `Ok(None)` for the empty token (first page).
pub fn decode(scope: &Scope, token: &str) -> Result<Option<Cursor>, &'static str> {
    if token.is_empty() {
        return Ok(None);
    }
    if token.len() > 2 * MAX_ID_LEN {
        return Err("is too long");
    }
    let raw = URL_SAFE_NO_PAD
        .decode(token)
        .map_err(|_| "is not a token this service issued")?;
    if raw.len() <= HEADER_LEN || raw[0] != VERSION {
        return Err("is not a token this service issued");
    }
    if raw[1] != scope.kind as u8 {
        return Err("belongs to another listing");
    }
    let (tag, position) = raw[2..].split_at(TAG_LEN);
    if tag != scope.tag(position) {
        return Err("was issued to another caller or for another listing, or was altered");
    }
    let micros = i64::from_be_bytes(position[..8].try_into().map_err(|_| "is malformed")?);
    let at = DateTime::from_timestamp_micros(micros).ok_or("is malformed")?;
    let id = String::from_utf8(position[8..].to_vec()).map_err(|_| "is malformed")?;
    Ok(Some(Cursor { at, id }))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn messages(user: &str, contact: &str) -> Scope {
        Scope::new(PageKind::Messages, &[user, contact])
    }

    #[test]
    fn round_trip_and_scope_checks() {
        let c = Cursor {
            at: crate::store::now(),
            id: "0193-abc".into(),
        };
        let alice = messages("alice", "c1");
        let t = encode(&alice, &c);
        assert_eq!(decode(&alice, &t).unwrap(), Some(c));
        assert_eq!(
            decode(&Scope::new(PageKind::Conversations, &["alice"]), &t),
            Err("belongs to another listing")
        );
        for other in [
            messages("bob", "c1"),
            messages("alice", "c2"),
            messages("alicec", "1"),
        ] {
            assert!(decode(&other, &t).unwrap_err().contains("another caller"));
        }
        assert_eq!(decode(&alice, ""), Ok(None));
        assert!(decode(&alice, "not*base64").is_err());
        assert!(decode(&alice, "AAAA").is_err());
    }

    #[test]
    fn a_changed_byte_is_refused() {
        let scope = messages("alice", "c1");
        let t = encode(
            &scope,
            &Cursor {
                at: crate::store::now(),
                id: "0193-abc".into(),
            },
        );
        let raw = URL_SAFE_NO_PAD.decode(&t).unwrap();
        for i in 0..raw.len() {
            let mut changed = raw.clone();
            changed[i] ^= 0x01;
            assert!(
                decode(&scope, &URL_SAFE_NO_PAD.encode(&changed)).is_err(),
                "byte {i}"
            );
        }
    }

    proptest! {
        #[test]
        fn garbage_never_panics(s in ".{0,600}") {
            let _ = decode(&Scope::new(PageKind::Numbers, &[""]), &s);
        }

        #[test]
        fn any_cursor_round_trips(micros in -62_135_596_800_000_000i64..253_402_300_799_000_000i64,
                                  id in "[ -~]{1,64}", user in ".{0,40}") {
            let at = DateTime::from_timestamp_micros(micros).unwrap();
            let c = Cursor { at, id };
            let scope = Scope::new(PageKind::Numbers, &[&user]);
            prop_assert_eq!(decode(&scope, &encode(&scope, &c)).unwrap(), Some(c));
        }
    }
}

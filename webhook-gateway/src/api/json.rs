//! What every REST renderer shares. Each route module keeps its own JSON shapes next
//! to it (`messages/json.rs`, `conversations/json.rs`, …): camelCase, RFC 3339
//! timestamps, lower-case enums, each converted from the core's message with
//! `TryFrom`. Response types deny unknown fields so the OpenAPI schemas say
//! `additionalProperties: false` and the contract test catches any field the document
//! does not list. The helpers below are the conversions every shape repeats: times,
//! the core's empty strings as `null`, and lists of items.

use chrono::{DateTime, SecondsFormat};

use crate::error::GatewayError;

/// A core timestamp as RFC 3339; absent (or out of range) is `None`.
pub(super) fn time(ts: Option<prost_types::Timestamp>) -> Option<String> {
    let ts = ts?;
    let nanos = u32::try_from(ts.nanos).ok()?;
    // Milliseconds and `Z`, as JavaScript's toISOString() writes them.
    DateTime::from_timestamp(ts.seconds, nanos)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// A timestamp the core always sets (`field` names it when it did not: a 502).
pub(super) fn required_time(
    ts: Option<prost_types::Timestamp>,
    field: &str,
) -> Result<String, GatewayError> {
    time(ts).ok_or_else(|| GatewayError::bad_core_answer(field))
}

/// The core's "none" for a string (proto3 has no null): `null` in JSON.
pub(super) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Every item of a list in its REST shape; one the gateway cannot show fails the
/// whole answer (a 502) rather than leaving a hole in a page.
pub(super) fn each<P, T>(items: Vec<P>) -> Result<Vec<T>, GatewayError>
where
    T: TryFrom<P, Error = GatewayError>,
{
    items.into_iter().map(T::try_from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339_with_millis_in_utc() {
        let ts = prost_types::Timestamp {
            seconds: 1_764_000_000,
            nanos: 123_456_789,
        };
        assert_eq!(time(Some(ts)).unwrap(), "2025-11-24T16:00:00.123Z");
        assert_eq!(time(None), None);
    }
}

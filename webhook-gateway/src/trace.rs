//! W3C trace context (`traceparent`): continue the caller's trace when it sent one,
//! start one otherwise, and pass it to the core in gRPC metadata.

use std::fmt;

use hyper::HeaderMap;

/// `00-<trace id>-<span id>-<flags>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: String,
    pub span_id: String,
    pub flags: String,
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    // A failed OS generator leaves zeros; the ids only correlate logs.
    let _ = getrandom::fill(&mut buf);
    hex::encode(buf)
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        && s.bytes().any(|b| b != b'0')
}

/// The caller's `traceparent` header, when it sent a readable one.
pub(crate) fn incoming(headers: &HeaderMap) -> Option<&str> {
    headers.get("traceparent").and_then(|v| v.to_str().ok())
}

impl TraceParent {
    /// A valid version-00 `traceparent` value.
    fn parse(value: &str) -> Option<Self> {
        let parts: Vec<&str> = value.trim().split('-').collect();
        (parts.len() == 4
            && parts[0] == "00"
            && is_hex(parts[1], 32)
            && is_hex(parts[2], 16)
            && parts[3].len() == 2)
            .then(|| Self {
                trace_id: parts[1].to_owned(),
                span_id: parts[2].to_owned(),
                flags: parts[3].to_owned(),
            })
    }

    /// The request's current span (it continues the caller's trace; see
    /// `commpro-telemetry`), or, without a tracing layer, a new span id of the incoming
    /// trace or a new trace.
    pub fn current(incoming: Option<&str>) -> Self {
        commpro_telemetry::traceparent(&tracing::Span::current())
            .and_then(|tp| Self::parse(&tp))
            .unwrap_or_else(|| Self::continue_or_start(incoming))
    }

    /// A new span of the incoming trace, or a new trace.
    pub fn continue_or_start(incoming: Option<&str>) -> Self {
        let span_id = random_hex(8);
        match incoming.and_then(Self::parse) {
            Some(parent) => Self { span_id, ..parent },
            None => Self {
                trace_id: random_hex(16),
                span_id,
                flags: "01".into(),
            },
        }
    }
}

impl fmt::Display for TraceParent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn continues_a_valid_trace_and_starts_otherwise() {
        let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = TraceParent::continue_or_start(Some(incoming));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(t.span_id, "00f067aa0ba902b7");
        for bad in [
            None,
            Some("garbage"),
            Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
        ] {
            let t = TraceParent::continue_or_start(bad);
            assert_eq!(t.to_string().len(), 55);
            assert_ne!(t.trace_id, "00000000000000000000000000000000");
        }
    }
}

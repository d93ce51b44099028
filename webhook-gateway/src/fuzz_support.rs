//! What the fuzz targets (`fuzz/`) and the property tests drive: the code that reads
//! untrusted bytes, reached exactly as the handlers reach it. Not an API.

pub use crate::api::fuzz::rest_json;
use crate::twilio::{
    form::{InboundWebhook, StatusWebhook},
    signature::{self, Payload},
};

/// The auth token and URL the webhook target signs with.
const TOKEN: &[u8] = b"fuzz-auth-token";
const URL: &str = "https://gateway.example.com/webhook/sms";

/// One webhook body as Twilio would post it: the form parsed as the gateway parses it
/// (`verify.rs`), both webhook forms read from it, and the signature checked with a
/// signature made from the input. Panics when a property breaks: a form signed with
/// our token must verify (also on the URL with its default port), and the same form
/// under another token or URL must not.
pub fn webhook(body: &[u8]) {
    let form: Vec<(String, String)> = form_urlencoded::parse(body).into_owned().collect();
    if let Ok(inbound) = InboundWebhook::parse(&form) {
        assert!(!inbound.message_sid.is_empty() && !inbound.from.is_empty());
        assert!(inbound.media.len() <= 10, "NumMedia is capped");
    }
    if let Ok(status) = StatusWebhook::parse(&form) {
        assert!(!status.status.is_empty());
        let _ = status.with_message_id(std::str::from_utf8(body).ok());
    }
    let _ = signature::is_well_formed(&String::from_utf8_lossy(body));
    // The input as a claimed signature: checked without panicking, whatever it is.
    let claimed = String::from_utf8_lossy(body);
    let _ = signature::validate(&[TOKEN], URL, Payload::Form(&form), &claimed);
    let good = signature::compute(TOKEN, URL, &form);
    assert!(signature::validate(
        &[b"old", TOKEN],
        URL,
        Payload::Form(&form),
        &good
    ));
    let with_port = "https://gateway.example.com:443/webhook/sms";
    assert!(signature::validate(
        &[TOKEN],
        with_port,
        Payload::Form(&form),
        &good
    ));
    assert!(!signature::validate(
        &[b"other"],
        URL,
        Payload::Form(&form),
        &good
    ));
    let other_url = "https://gateway.example.com/webhook/status";
    assert!(!signature::validate(
        &[TOKEN],
        other_url,
        Payload::Form(&form),
        &good
    ));
    // A JSON body: signed through its bodySHA256 query parameter.
    let url = format!(
        "{URL}?bodySHA256={}",
        signature::body_sha256(body)
    );
    let signed = signature::compute(TOKEN, &url, &[]);
    assert!(signature::validate(&[TOKEN], &url, Payload::Body(body), &signed));
}

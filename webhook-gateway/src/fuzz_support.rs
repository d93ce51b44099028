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
    let url = format!("{URL}?bodySHA256={}", signature::body_sha256(body));
    let signed = signature::compute(TOKEN, &url, &[]);
    assert!(signature::validate(
        &[TOKEN],
        &url,
        Payload::Body(body),
        &signed
    ));
}

/// The fuzz targets' properties in the normal suite: proptest forms and JSON bodies
/// shaped like the real ones plus arbitrary bytes, and the corpus kept in
/// `fuzz/corpus` (crashes found by fuzzing are added there as regression tests).
#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn corpus(target: &str) -> Vec<Vec<u8>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../fuzz/corpus")
            .join(target);
        let files: Vec<Vec<u8>> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| std::fs::read(f.expect("corpus entry").path()).expect("corpus file"))
            .collect();
        assert!(!files.is_empty(), "{} is empty", dir.display());
        files
    }

    #[test]
    fn corpora_keep_their_properties() {
        corpus("webhook_form").iter().for_each(|c| webhook(c));
        corpus("rest_json").iter().for_each(|c| rest_json(c));
    }

    fn form_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("MessageSid".to_owned()),
            Just("SmsSid".to_owned()),
            Just("AccountSid".to_owned()),
            Just("From".to_owned()),
            Just("To".to_owned()),
            Just("Body".to_owned()),
            Just("NumMedia".to_owned()),
            Just("MessageStatus".to_owned()),
            Just("ErrorCode".to_owned()),
            "MediaUrl[0-9]{1,2}",
            "MediaContentType[0-9]",
            ".{0,8}",
        ]
    }

    fn json_key() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("from".to_owned()),
            Just("to".to_owned()),
            Just("body".to_owned()),
            Just("idempotencyKey".to_owned()),
            Just("sendAt".to_owned()),
            Just("mediaIds".to_owned()),
            Just("mediaUrls".to_owned()),
            Just("number".to_owned()),
            Just("name".to_owned()),
            Just("until".to_owned()),
            Just("upToMessageId".to_owned()),
            "[a-z]{0,6}",
        ]
    }

    fn json_value() -> impl Strategy<Value = serde_json::Value> {
        use serde_json::Value;
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            ".{0,20}".prop_map(Value::String),
            proptest::collection::vec(".{0,8}".prop_map(Value::String), 0..3)
                .prop_map(Value::Array),
        ]
    }

    proptest! {
        #[test]
        fn webhook_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            webhook(&bytes);
        }

        #[test]
        fn webhook_forms(
            pairs in proptest::collection::vec((form_key(), "[ -~]{0,12}|\\PC{0,6}|[0-9]{1,3}"), 0..12)
        ) {
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            webhook(body.as_bytes());
        }

        #[test]
        fn rest_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            rest_json(&bytes);
        }

        #[test]
        fn rest_objects(fields in proptest::collection::vec((json_key(), json_value()), 0..6)) {
            let object: serde_json::Map<String, serde_json::Value> = fields.into_iter().collect();
            rest_json(&serde_json::to_vec(&object).expect("serialises"));
        }
    }
}

//! Our validator against signatures computed by Twilio's own helper library
//! (`tests/fixtures/twilio_signatures.json`, made by `gen_twilio_signatures.py`).

use serde::Deserialize;
use webhook_gateway::signature::{Payload, compute, validate};

#[derive(Deserialize)]
struct Fixtures {
    auth_token: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    url: String,
    params: Vec<(String, String)>,
    body: Option<String>,
    signature: String,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(include_str!("fixtures/twilio_signatures.json")).expect("fixture JSON")
}

#[test]
fn every_twilio_library_signature_validates() {
    let f = fixtures();
    assert!(f.cases.len() >= 10);
    let token = f.auth_token.as_bytes();
    for c in &f.cases {
        let payload = match &c.body {
            Some(body) => Payload::Body(body.as_bytes()),
            None => {
                assert_eq!(compute(token, &c.url, &c.params), c.signature, "{}", c.name);
                Payload::Form(&c.params)
            }
        };
        assert!(
            validate(&[token], &c.url, payload, &c.signature),
            "{}",
            c.name
        );
    }
}

#[test]
fn altered_requests_are_refused() {
    let f = fixtures();
    let token = f.auth_token.as_bytes();
    for c in f.cases.iter().filter(|c| c.body.is_none()) {
        // Replayed with an altered body (or any parameter): refused.
        let mut altered = c.params.clone();
        altered[0].1.push('x');
        assert!(
            !validate(&[token], &c.url, Payload::Form(&altered), &c.signature),
            "{}",
            c.name
        );
        // An extra parameter an attacker adds: refused.
        let mut extra = c.params.clone();
        extra.push(("Injected".into(), "1".into()));
        assert!(
            !validate(&[token], &c.url, Payload::Form(&extra), &c.signature),
            "{}",
            c.name
        );
        // Another URL: refused.
        let other = c.url.replace("/webhook/", "/other/");
        assert!(
            !validate(&[token], &other, Payload::Form(&c.params), &c.signature),
            "{}",
            c.name
        );
        // Another token: refused.
        assert!(
            !validate(
                &[b"wrong-token"],
                &c.url,
                Payload::Form(&c.params),
                &c.signature
            ),
            "{}",
            c.name
        );
    }
    let json = f
        .cases
        .iter()
        .find(|c| c.body.is_some())
        .expect("a JSON case");
    assert!(!validate(
        &[token],
        &json.url,
        Payload::Body(b"{\"event\":\"forged\"}"),
        &json.signature
    ));
}

#[test]
fn parameter_order_does_not_matter() {
    let f = fixtures();
    let token = f.auth_token.as_bytes();
    for c in f.cases.iter().filter(|c| c.body.is_none()) {
        let mut reversed = c.params.clone();
        reversed.reverse();
        assert!(
            validate(&[token], &c.url, Payload::Form(&reversed), &c.signature),
            "{}",
            c.name
        );
    }
}

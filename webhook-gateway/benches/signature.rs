#![allow(clippy::unwrap_used)]

//! Twilio signature validation of a typical inbound SMS webhook (19 parameters).
//! `cargo bench -p webhook-gateway --bench signature`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use webhook_gateway::signature::{Payload, compute, validate};

fn signature(c: &mut Criterion) {
    let token = b"0f1e2d3c4b5a69788796a5b4c3d2e1f0";
    let url = "https://hooks.commpro.example/webhook/sms";
    let form: Vec<(String, String)> = [
        ("ToCountry", "US"),
        ("ToState", "CA"),
        ("SmsMessageSid", "SM11111111111111111111111111111111"),
        ("NumMedia", "0"),
        ("ToCity", "SAN FRANCISCO"),
        ("FromZip", "94105"),
        ("SmsSid", "SM11111111111111111111111111111111"),
        ("FromState", "CA"),
        ("SmsStatus", "received"),
        ("FromCity", "SAN FRANCISCO"),
        ("Body", "Hello there, is this still available?"),
        ("FromCountry", "US"),
        ("To", "+15005550006"),
        ("ToZip", "94105"),
        ("NumSegments", "1"),
        ("MessageSid", "SM11111111111111111111111111111111"),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", "+14155550100"),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let sig = compute(token, url, &form);
    c.bench_function("validate X-Twilio-Signature, 19 params", |b| {
        b.iter(|| {
            assert!(validate(
                &[token],
                black_box(url),
                Payload::Form(black_box(&form)),
                black_box(&sig)
            ))
        })
    });
}

criterion_group!(benches, signature);
criterion_main!(benches);

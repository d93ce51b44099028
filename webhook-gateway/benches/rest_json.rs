#![allow(clippy::unwrap_used)]

//! The REST API's own work around a core call: parsing a send's JSON body, and turning
//! a page of 50 decrypted messages into JSON.
//! `cargo bench -p webhook-gateway --bench rest_json`.

use std::hint::black_box;

use commpro_messaging_api::v1 as pb;
use criterion::{Criterion, criterion_group, criterion_main};
use webhook_gateway::bench_support::{parse_send, render_page};

fn page(n: usize) -> pb::GetConversationResponse {
    let ts = |s: i64| {
        Some(prost_types::Timestamp {
            seconds: 1_795_000_000 + s,
            nanos: 123_000_000,
        })
    };
    pb::GetConversationResponse {
        contact_id: "01a20fbe-f2d9-74ca-8b5f-bb559f6db48e".into(),
        contact_number: "+14155550100".into(),
        messages: (0..n)
            .map(|i| pb::Message {
                id: format!("01a20fbe-f2d6-7034-9f19-{i:012}"),
                direction: pb::Direction::Outbound as i32,
                owner_number: "+15005550006".into(),
                contact_number: "+14155550100".into(),
                contact_id: "01a20fbe-f2d9-74ca-8b5f-bb559f6db48e".into(),
                body: format!("Load message {i}: your code is 123456, see you at 7 tonight?"),
                status: pb::MessageStatus::Delivered as i32,
                provider_sid: "SM19fe93cede5249c0b56a6a5661d895ed".into(),
                segments: 1,
                created_at: ts(i as i64),
                sent_at: ts(i as i64 + 1),
                delivered_at: ts(i as i64 + 2),
                content_state: pb::ContentState::Available as i32,
                ..Default::default()
            })
            .collect(),
        next_page_token: "djE6bTowMWEyMGZiZS1mMmQ2".into(),
        ..Default::default()
    }
}

fn rest_json(c: &mut Criterion) {
    let body = br#"{"from":"+33123456789","to":"+33987654321","body":"Hello from CommPro!","idempotencyKey":"order-42"}"#;
    assert!(parse_send(body));
    c.bench_function("parse a send body", |b| {
        b.iter(|| parse_send(black_box(body)))
    });

    let fifty = page(50);
    assert!(!render_page(fifty.clone()).is_empty());
    c.bench_function("render 50 messages as JSON", |b| {
        b.iter_batched(
            || fifty.clone(),
            |p| render_page(black_box(p)),
            criterion::BatchSize::SmallInput,
        )
    });
}

criterion_group!(benches, rest_json);
criterion_main!(benches);

#![allow(clippy::unwrap_used)]

//! Hot functions: sealing/opening a message body, DEK wrap/unwrap, segment counting,
//! page-token decoding. `cargo bench -p messaging-grpc --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use messaging_grpc::{
    crypto::{Aad, Algorithm, DataKey, MasterKey, open, seal, unwrap_dek, wrap_dek},
    sms::count_segments,
    store::page_token::{self, Cursor, PageKind},
};

fn crypto(c: &mut Criterion) {
    let key = DataKey::generate().unwrap();
    let aad = Aad::field(
        "messages",
        "body",
        "user-123",
        "0193a2b4-5c6d-7e8f-9012-3456789abcde",
    );
    let body = "Your appointment is confirmed for Tuesday at 3pm. Reply STOP to opt out.".repeat(2);
    for alg in [Algorithm::Aes256Gcm, Algorithm::XChaCha20Poly1305] {
        let sealed = seal(alg, &key, 1, &aad, body.as_bytes()).unwrap();
        c.bench_function(&format!("seal 146 B body, {alg}"), |b| {
            b.iter(|| seal(alg, &key, 1, black_box(&aad), black_box(body.as_bytes())).unwrap())
        });
        c.bench_function(&format!("open 146 B body, {alg}"), |b| {
            b.iter(|| open(&key, black_box(&aad), black_box(&sealed)).unwrap())
        });
    }
    let kek = MasterKey::new("k1", DataKey::generate().unwrap());
    let wrapped = wrap_dek(&kek, "user-123", 1, &key).unwrap();
    c.bench_function("unwrap DEK (cache miss)", |b| {
        b.iter(|| unwrap_dek(&kek, "user-123", 1, black_box(&wrapped)).unwrap())
    });
}

fn text(c: &mut Criterion) {
    let gsm = "a".repeat(1600);
    let ucs2 = "✓ emoji 😀 ".repeat(130);
    c.bench_function("count segments, 1600 GSM-7 chars", |b| {
        b.iter(|| count_segments(black_box(&gsm)))
    });
    c.bench_function("count segments, 1560 UCS-2 chars", |b| {
        b.iter(|| count_segments(black_box(&ucs2)))
    });
    let token = page_token::encode(
        PageKind::Messages,
        &Cursor {
            at: chrono::Utc::now(),
            id: "0193a2b4-5c6d-7e8f-9012-3456789abcde".into(),
        },
    );
    c.bench_function("decode page token", |b| {
        b.iter(|| page_token::decode(PageKind::Messages, black_box(&token)).unwrap())
    });
}

criterion_group!(benches, crypto, text);
criterion_main!(benches);

#![allow(clippy::unwrap_used)]

//! Hot functions: sealing/opening a message body, DEK wrap/unwrap, segment counting,
//! page-token decoding, and verifying a caller's JWT (every call does it) with each
//! algorithm family the core accepts. `cargo bench -p messaging-grpc --bench hot_paths`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{EncodingKey, Header, encode, get_current_timestamp};
use messaging_grpc::{
    auth::{JwtVerifier, VerifierKey},
    crypto::{Aad, Algorithm, DataKey, MasterKey, open, seal, unwrap_dek, wrap_dek},
    sms::count_segments,
    store::page_token::{self, Cursor, PageKind, Scope},
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
    let scope = Scope::new(PageKind::Messages, &["0193a2b4-user", "0193a2b4-contact"]);
    let token = page_token::encode(
        &scope,
        &Cursor {
            at: chrono::Utc::now(),
            id: "0193a2b4-5c6d-7e8f-9012-3456789abcde".into(),
        },
    );
    c.bench_function("decode page token", |b| {
        b.iter(|| page_token::decode(&scope, black_box(&token)).unwrap())
    });
}

const ISSUER: &str = "commpro-auth";
const AUDIENCE: &str = "commpro-messaging";
/// The RSA pair of the integration tests, and an ES256 pair made for this benchmark
/// (`openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256`).
const TEST_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/it/fixtures");
const BENCH_FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/fixtures");

fn read(path: String) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// A token as an identity provider would issue it (with roles, as the gateway's).
fn token(alg: jsonwebtoken::Algorithm, key: &EncodingKey) -> String {
    let now = get_current_timestamp();
    let claims = serde_json::json!({
        "sub": "user-123", "iss": ISSUER, "aud": AUDIENCE,
        "iat": now, "exp": now + 24 * 3600, "roles": ["gateway"],
    });
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn jwt(c: &mut Criterion) {
    use jsonwebtoken::Algorithm::{ES256, HS256, RS256};
    let secret = b"bench-secret-that-is-at-least-32-bytes-long".to_vec();
    let cases = [
        (
            HS256,
            EncodingKey::from_secret(&secret),
            VerifierKey::Hs256(secret.clone()),
        ),
        (
            ES256,
            EncodingKey::from_ec_pem(&read(format!("{BENCH_FIXTURES}/es256-bench-private.pem")))
                .unwrap(),
            VerifierKey::PublicPem {
                pem: read(format!("{BENCH_FIXTURES}/es256-bench-public.pem")),
                algorithm: ES256,
            },
        ),
        (
            RS256,
            EncodingKey::from_rsa_pem(&read(format!("{TEST_FIXTURES}/rsa-test-private.pem")))
                .unwrap(),
            VerifierKey::PublicPem {
                pem: read(format!("{TEST_FIXTURES}/rsa-test-public.pem")),
                algorithm: RS256,
            },
        ),
    ];
    for (alg, signing, verifying) in cases {
        let token = token(alg, &signing);
        let verifier = JwtVerifier::new(verifying, ISSUER, AUDIENCE).unwrap();
        // The benchmark must measure an accepted token, not a fast refusal.
        assert_eq!(verifier.verify(&token).unwrap().user_id, "user-123");
        // A token's first call pays the signature check; its later calls are served
        // from the verifier's memory of tokens it already checked.
        c.bench_function(&format!("verify JWT, {alg:?}"), |b| {
            b.iter(|| verifier.verify_signature(black_box(&token)).unwrap())
        });
        c.bench_function(&format!("verify JWT, {alg:?}, seen before"), |b| {
            b.iter(|| verifier.verify(black_box(&token)).unwrap())
        });
        // A forged signature (last byte of it changed): refused by the full check the
        // first time, then from the verifier's memory of refused tokens.
        let mut forged = token.clone();
        let last = forged.pop().unwrap();
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(verifier.verify_signature(&forged).is_err());
        c.bench_function(&format!("refuse JWT, {alg:?}, forged"), |b| {
            b.iter(|| verifier.verify_signature(black_box(&forged)).unwrap_err())
        });
        assert!(verifier.verify(&forged).is_err());
        c.bench_function(&format!("refuse JWT, {alg:?}, forged, seen before"), |b| {
            b.iter(|| verifier.verify(black_box(&forged)).unwrap_err())
        });
    }
}

criterion_group!(benches, crypto, text, jwt);
criterion_main!(benches);

//! Cost of verifying a connection token at `connect`, per algorithm (HS256, ES256, EdDSA,
//! RS256), through ringcast's verifier (header decode, key choice, signature, claims).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use ringcast::auth::{TokenVerifier, VerifyingKey};
use serde_json::json;

fn bench(c: &mut Criterion) {
    let now = 1_800_000_000u64;
    let claims = json!({"sub":"alice","exp": now + 3600,"info":{"name":"Alice"}});
    let keys = ringcast::test_keys::dir();
    let read = |f: &str| std::fs::read(keys.join(f)).unwrap();
    let cases = [
        (
            "HS256",
            VerifyingKey::hmac(b"a-secret-of-32-bytes-or-more-....", None).unwrap(),
            EncodingKey::from_secret(b"a-secret-of-32-bytes-or-more-...."),
            Algorithm::HS256,
        ),
        (
            "ES256",
            VerifyingKey::public_pem_file(&keys.join("ec.pub")).unwrap(),
            EncodingKey::from_ec_pem(&read("ec.key")).unwrap(),
            Algorithm::ES256,
        ),
        (
            "EdDSA",
            VerifyingKey::public_pem_file(&keys.join("ed.pub")).unwrap(),
            EncodingKey::from_ed_pem(&read("ed.key")).unwrap(),
            Algorithm::EdDSA,
        ),
        (
            "RS256",
            VerifyingKey::public_pem_file(&keys.join("rsa.pub")).unwrap(),
            EncodingKey::from_rsa_pem(&read("rsa.key")).unwrap(),
            Algorithm::RS256,
        ),
    ];
    let mut g = c.benchmark_group("verify_connect");
    for (name, vk, ek, alg) in cases {
        let token = encode(&Header::new(alg), &claims, &ek).unwrap();
        let v = TokenVerifier::new(vec![vk], None, None);
        assert!(v.verify_connect(&token, now).is_ok());
        g.bench_function(name, |b| {
            b.iter(|| v.verify_connect(black_box(&token), now).unwrap())
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

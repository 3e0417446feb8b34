//! Token verification, one behaviour per test, with keys made at run time ([`crate::test_keys`]).

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::json;

use super::*;

const NOW: u64 = 1_800_000_000;

fn key_file(name: &str) -> Vec<u8> {
    std::fs::read(crate::test_keys::dir().join(name)).unwrap()
}

fn sign(alg: Algorithm, key: &EncodingKey, claims: serde_json::Value) -> String {
    encode(&Header::new(alg), &claims, key).unwrap()
}

fn hmac_verifier(secret: &str) -> TokenVerifier {
    TokenVerifier::new(
        vec![VerifyingKey::hmac(secret.as_bytes(), None).unwrap()],
        None,
        None,
    )
}

fn public_verifier(name: &str) -> TokenVerifier {
    let path = crate::test_keys::dir().join(name);
    TokenVerifier::new(
        vec![VerifyingKey::public_pem_file(&path).unwrap()],
        None,
        None,
    )
}

#[test]
fn hs256_384_512_verify_with_the_secret() {
    let v = hmac_verifier("s3cret");
    for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
        let t = sign(
            alg,
            &EncodingKey::from_secret(b"s3cret"),
            json!({"sub":"alice","exp":NOW+60,"info":{"name":"Alice"},"roles":["moderator"]}),
        );
        let c = v.verify_connect(&t, NOW).unwrap();
        assert_eq!(c.registered.sub, "alice");
        assert_eq!(c.info.as_ref().unwrap().get(), r#"{"name":"Alice"}"#);
        assert_eq!(c.role(), Role::Moderator);
    }
    let t = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"other"),
        json!({"sub":"alice"}),
    );
    assert_eq!(
        v.verify_connect(&t, NOW).unwrap_err(),
        TokenError::Invalid("bad signature".into())
    );
    // A signature cut short, or one bit flipped, is refused too.
    let good = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"s3cret"),
        json!({"sub":"a"}),
    );
    let (msg, sig) = good.rsplit_once('.').unwrap();
    assert!(
        v.verify_connect(&format!("{msg}.{}", &sig[..sig.len() - 2]), NOW)
            .is_err()
    );
    let flipped = format!(
        "{msg}.{}{}",
        if sig.starts_with('A') { "B" } else { "A" },
        &sig[1..]
    );
    assert!(v.verify_connect(&flipped, NOW).is_err());
}

#[test]
fn public_keys_pick_their_algorithm() {
    let cases = [
        ("rsa.pub", "rsa.key", Algorithm::RS256),
        ("rsa.pub", "rsa.key", Algorithm::PS256),
        ("rsa.pub", "rsa.key", Algorithm::RS512),
        ("ec.pub", "ec.key", Algorithm::ES256),
        ("ed.pub", "ed.key", Algorithm::EdDSA),
    ];
    for (public, private, alg) in cases {
        let v = public_verifier(public);
        let pem = key_file(private);
        let key = match alg {
            Algorithm::RS256 | Algorithm::PS256 | Algorithm::RS512 => {
                EncodingKey::from_rsa_pem(&pem)
            }
            Algorithm::ES256 => EncodingKey::from_ec_pem(&pem),
            _ => EncodingKey::from_ed_pem(&pem),
        }
        .unwrap();
        let t = sign(alg, &key, json!({"sub":"bob","exp":NOW+10}));
        assert_eq!(v.verify_connect(&t, NOW).unwrap().registered.sub, "bob");
        // The same key refuses every other family, whatever the header says.
        let hs = sign(
            Algorithm::HS256,
            &EncodingKey::from_secret(b"x"),
            json!({"sub":"bob"}),
        );
        assert!(
            matches!(v.verify_connect(&hs, NOW), Err(TokenError::Invalid(m)) if m.contains("no configured key"))
        );
    }
}

#[test]
fn algorithm_confusion_hs256_keyed_with_the_public_pem_is_refused() {
    let pem = key_file("rsa.pub");
    let v = public_verifier("rsa.pub");
    let forged = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(&pem),
        json!({"sub":"mallory"}),
    );
    assert!(matches!(
        v.verify_connect(&forged, NOW),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn alg_none_is_refused() {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let token = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none","typ":"JWT"}"#),
        b64.encode(br#"{"sub":"mallory"}"#)
    );
    assert!(matches!(
        hmac_verifier("k").verify_connect(&token, NOW),
        Err(TokenError::Invalid(_))
    ));
}

#[test]
fn expiry_nbf_audience_issuer() {
    let key = EncodingKey::from_secret(b"k");
    let v = hmac_verifier("k");
    let expired = sign(Algorithm::HS256, &key, json!({"sub":"a","exp":NOW}));
    assert_eq!(
        v.verify_connect(&expired, NOW).unwrap_err(),
        TokenError::Expired
    );
    let early = sign(Algorithm::HS256, &key, json!({"sub":"a","nbf":NOW+5}));
    assert!(
        matches!(v.verify_connect(&early, NOW), Err(TokenError::Invalid(m)) if m.contains("nbf"))
    );
    assert!(v.verify_connect(&early, NOW + 5).is_ok());

    let v = TokenVerifier::new(
        vec![VerifyingKey::hmac(b"k", None).unwrap()],
        Some("ringcast".into()),
        Some("backend".into()),
    );
    let good = sign(
        Algorithm::HS256,
        &key,
        json!({"sub":"a","aud":["x","ringcast"],"iss":"backend"}),
    );
    assert!(v.verify_connect(&good, NOW).is_ok());
    let bad_aud = sign(
        Algorithm::HS256,
        &key,
        json!({"sub":"a","aud":"other","iss":"backend"}),
    );
    assert!(
        matches!(v.verify_connect(&bad_aud, NOW), Err(TokenError::Invalid(m)) if m.contains("aud"))
    );
    let bad_iss = sign(
        Algorithm::HS256,
        &key,
        json!({"sub":"a","aud":"ringcast","iss":"evil"}),
    );
    assert!(
        matches!(v.verify_connect(&bad_iss, NOW), Err(TokenError::Invalid(m)) if m.contains("iss"))
    );
}

#[test]
fn previous_secret_is_accepted_until_its_time() {
    let v = TokenVerifier::new(
        vec![
            VerifyingKey::hmac(b"new", None).unwrap(),
            VerifyingKey::hmac(b"old", Some(NOW + 100)).unwrap(),
        ],
        None,
        None,
    );
    let old = sign(
        Algorithm::HS256,
        &EncodingKey::from_secret(b"old"),
        json!({"sub":"a"}),
    );
    assert!(v.verify_connect(&old, NOW).is_ok());
    assert!(v.verify_connect(&old, NOW + 101).is_err());
}

#[test]
fn connection_token_with_channel_claim_is_invalid_and_meta_is_kept() {
    let key = EncodingKey::from_secret(b"k");
    let v = hmac_verifier("k");
    let t = sign(Algorithm::HS256, &key, json!({"sub":"a","channel":"x"}));
    assert!(matches!(
        v.verify_connect(&t, NOW),
        Err(TokenError::Invalid(_))
    ));
    let t = sign(
        Algorithm::HS256,
        &key,
        json!({"sub":"a","meta":{"plan":"pro"},"expire_at":0,"exp":NOW+5}),
    );
    let c = v.verify_connect(&t, NOW).unwrap();
    assert_eq!(c.meta.as_ref().unwrap().get(), r#"{"plan":"pro"}"#);
    assert_eq!(c.expires_at(), None, "expire_at 0: never expires");
}

#[test]
fn unknown_role_is_invalid() {
    let key = EncodingKey::from_secret(b"k");
    let t = sign(
        Algorithm::HS256,
        &key,
        json!({"sub":"a","roles":["superuser"]}),
    );
    assert!(
        matches!(hmac_verifier("k").verify_connect(&t, NOW), Err(TokenError::Invalid(m)) if m.contains("superuser"))
    );
}

#[test]
fn jwks_keys_are_chosen_by_kid() {
    let dir = std::env::temp_dir().join(format!("ringcast-jwks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // The Ed25519 public key as a JWK: x = the raw 32 bytes (last 32 of the SPKI DER).
    use base64::Engine;
    let pem = String::from_utf8(key_file("ed.pub")).unwrap();
    let b64: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .unwrap();
    let x = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&der[der.len() - 32..]);
    let jwks = json!({"keys":[{"kty":"OKP","crv":"Ed25519","x":x,"kid":"k1","alg":"EdDSA"}]});
    let path = dir.join("jwks.json");
    std::fs::write(&path, jwks.to_string()).unwrap();
    let v = TokenVerifier::new(VerifyingKey::jwks_file(&path).unwrap(), None, None);
    let key = EncodingKey::from_ed_pem(&key_file("ed.key")).unwrap();
    let mut h = Header::new(Algorithm::EdDSA);
    h.kid = Some("k1".into());
    let t = encode(&h, &json!({"sub":"j"}), &key).unwrap();
    assert_eq!(v.verify_connect(&t, NOW).unwrap().registered.sub, "j");
    h.kid = Some("k2".into());
    let t = encode(&h, &json!({"sub":"j"}), &key).unwrap();
    assert!(v.verify_connect(&t, NOW).is_err(), "unknown kid");
}

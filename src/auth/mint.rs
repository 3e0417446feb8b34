//! HS256 connection tokens minted with the configured secret: `ringcast token --user alice
//! --roles moderator` lets a person try roles in two browser tabs. A development helper; a real
//! backend mints its own tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::json;

use super::Role;

/// What a minted token says.
#[derive(Debug, Clone)]
pub struct Mint<'a> {
    pub user: &'a str,
    pub roles: &'a [Role],
    /// Unix seconds.
    pub now: u64,
    pub ttl_secs: u64,
    /// The `info` claim (any JSON), shown to others in presence and publications.
    pub info: Option<serde_json::Value>,
}

/// A compact JWS (HS256) of the claims `sub`, `iat`, `exp`, `roles` and `info`.
pub fn hs256(secret: &[u8], m: &Mint<'_>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let mut claims = json!({
        "sub": m.user,
        "iat": m.now,
        "exp": m.now + m.ttl_secs,
        "roles": m.roles,
    });
    if let Some(info) = &m.info {
        claims["info"] = info.clone();
    }
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let tag = hmac::sign(
        &hmac::Key::new(hmac::HMAC_SHA256, secret),
        signing_input.as_bytes(),
    );
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{TokenError, TokenVerifier, VerifyingKey};

    #[test]
    fn minted_tokens_verify_and_carry_the_roles() {
        let secret = b"a secret of at least thirty-two bytes!";
        let v = TokenVerifier::new(vec![VerifyingKey::hmac(secret, None).unwrap()], None, None);
        let t = hs256(
            secret,
            &Mint {
                user: "alice",
                roles: &[Role::Moderator],
                now: 1_000,
                ttl_secs: 60,
                info: Some(json!({"name": "Alice"})),
            },
        );
        let c = v.verify_connect(&t, 1_030).unwrap();
        assert_eq!(c.registered.sub, "alice");
        assert_eq!(c.role(), Role::Moderator);
        assert_eq!(c.info.unwrap().get(), r#"{"name":"Alice"}"#);
        assert_eq!(
            v.verify_connect(&t, 1_061).unwrap_err(),
            TokenError::Expired
        );
        let other = TokenVerifier::new(
            vec![VerifyingKey::hmac(b"another secret of thirty-two bytes..", None).unwrap()],
            None,
            None,
        );
        assert!(other.verify_connect(&t, 1_030).is_err());
    }
}

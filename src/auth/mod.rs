//! Who is connecting: JWT verification for connection and subscription tokens. Sans-io: the
//! current time is an argument (unix seconds), keys are loaded once at start.
//!
//! Rules: the algorithms a token may use come from the configured key (an RSA key verifies
//! RS*/PS* only, an HMAC secret HS* only), so `alg: none` and algorithm confusion (an HS256
//! token "signed" with a public key as the secret) are refused; `exp` and `nbf` are checked
//! against the time given; `aud` and `iss` only when configured.
//!
//! | module | owns |
//! |---|---|
//! | [`claims`] | the claims of connection and subscription tokens, roles |
//! | [`keys`] | loading keys: HMAC, PEM public keys, JWKS |
//! | [`mint`] | HS256 connection tokens for `ringcast token` (development) |
//! | `signature` | signature checks with ring, for every algorithm |

pub mod claims;
pub mod keys;
pub mod mint;
mod signature;

use jsonwebtoken::decode_header;
use serde::de::DeserializeOwned;

pub use claims::{ConnectClaims, Role, SubscribeClaims};
pub use keys::{KeyError, VerifyingKey};

use claims::Registered;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// `exp` is in the past: the SDKs fetch a new token on this (error 109).
    #[error("token expired")]
    Expired,
    #[error("invalid token: {0}")]
    Invalid(String),
}

/// Verifies tokens against the configured keys.
#[derive(Default)]
pub struct TokenVerifier {
    /// Replaceable while serving (SIGHUP): a verification clones the Arc, not the keys.
    keys: std::sync::RwLock<std::sync::Arc<Vec<VerifyingKey>>>,
    audience: Option<String>,
    issuer: Option<String>,
}

impl std::fmt::Debug for TokenVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenVerifier")
            .field("keys", &self.keys().len())
            .field("audience", &self.audience)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Trait-free claims access for the shared checks.
pub trait HasRegistered {
    fn registered(&self) -> &Registered;
}
impl HasRegistered for ConnectClaims {
    fn registered(&self) -> &Registered {
        &self.registered
    }
}
impl HasRegistered for SubscribeClaims {
    fn registered(&self) -> &Registered {
        &self.registered
    }
}

impl TokenVerifier {
    pub fn new(keys: Vec<VerifyingKey>, audience: Option<String>, issuer: Option<String>) -> Self {
        Self {
            keys: std::sync::RwLock::new(std::sync::Arc::new(keys)),
            audience,
            issuer,
        }
    }

    fn keys(&self) -> std::sync::Arc<Vec<VerifyingKey>> {
        self.keys.read().expect("token keys lock poisoned").clone()
    }

    /// Whether any key is configured (without one, tokens cannot be checked at all).
    pub fn is_configured(&self) -> bool {
        !self.keys().is_empty()
    }

    /// Takes `fresh`'s keys (a reload); returns how many. Refused when it would switch
    /// between "some keys" and "none" (that changes the server's mode: restart for that).
    pub fn replace_keys(&self, fresh: TokenVerifier) -> Result<usize, String> {
        let keys = fresh.keys();
        if keys.is_empty() != self.keys().is_empty() {
            return Err(
                "the reloaded configuration would turn token checking on or off: restart for that"
                    .into(),
            );
        }
        let n = keys.len();
        *self.keys.write().expect("token keys lock poisoned") = keys;
        Ok(n)
    }

    pub fn verify_connect(&self, token: &str, now: u64) -> Result<ConnectClaims, TokenError> {
        let claims: ConnectClaims = self.verify(token, now)?;
        if claims.channel.is_some() {
            return Err(TokenError::Invalid(
                "a connection token must not carry a `channel` claim (that is a subscription token)"
                    .into(),
            ));
        }
        Ok(claims)
    }

    pub fn verify_subscribe(&self, token: &str, now: u64) -> Result<SubscribeClaims, TokenError> {
        self.verify(token, now)
    }

    fn verify<T: DeserializeOwned + HasRegistered>(
        &self,
        token: &str,
        now: u64,
    ) -> Result<T, TokenError> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = decode_header(token)
            .map_err(|e| TokenError::Invalid(format!("not a JWT we accept ({e})")))?;
        let malformed = || TokenError::Invalid("not a JWT (header.payload.signature)".into());
        let (message, signature) = token.rsplit_once('.').ok_or_else(malformed)?;
        let (_, payload) = message.split_once('.').ok_or_else(malformed)?;
        let signature = b64
            .decode(signature)
            .map_err(|_| TokenError::Invalid("signature is not base64url".into()))?;
        let mut tried = false;
        let keys = self.keys();
        for k in keys.iter() {
            if !k.algorithms.contains(&header.alg) {
                continue;
            }
            if k.valid_until.is_some_and(|t| now > t) {
                continue;
            }
            if let (Some(want), Some(got)) = (&k.kid, &header.kid)
                && want != got
            {
                continue;
            }
            tried = true;
            if signature::verify(header.alg, &k.key, message.as_bytes(), &signature) {
                let payload = b64
                    .decode(payload)
                    .map_err(|_| TokenError::Invalid("payload is not base64url".into()))?;
                let claims: T = serde_json::from_slice(&payload)
                    .map_err(|e| TokenError::Invalid(format!("claims: {e}")))?;
                self.check_registered(claims.registered(), now)?;
                return Ok(claims);
            }
        }
        if !tried {
            return Err(TokenError::Invalid(format!(
                "no configured key verifies {:?} tokens",
                header.alg
            )));
        }
        Err(TokenError::Invalid("bad signature".into()))
    }

    fn check_registered(&self, r: &Registered, now: u64) -> Result<(), TokenError> {
        if r.exp.is_some_and(|exp| exp <= now) {
            return Err(TokenError::Expired);
        }
        if r.nbf.is_some_and(|nbf| nbf > now) {
            return Err(TokenError::Invalid("not valid yet (nbf)".into()));
        }
        if let Some(want) = &self.audience
            && !r.aud.as_ref().is_some_and(|a| a.contains(want))
        {
            return Err(TokenError::Invalid("wrong audience (aud)".into()));
        }
        if let Some(want) = &self.issuer
            && r.iss.as_deref() != Some(want.as_str())
        {
            return Err(TokenError::Invalid("wrong issuer (iss)".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;

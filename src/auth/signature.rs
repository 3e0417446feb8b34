//! JWT signature checks with ring, the crypto library rustls already uses here: one
//! implementation for every algorithm, constant-time HMAC comparison, and public-key checks
//! several times cheaper than the pure-Rust ones (see results/jwt-bench.md). RSA keys must be
//! 2048 bits or more (ring refuses shorter ones, and so do we).

use jsonwebtoken::{Algorithm, DecodingKey, DecodingKeyKind};
use ring::{hmac, signature as sig};

/// Whether `signature` is `alg`'s signature of `message` under `key`. The caller has checked
/// that `alg` is one the key may verify.
pub fn verify(alg: Algorithm, key: &DecodingKey, message: &[u8], signature: &[u8]) -> bool {
    use Algorithm::*;
    match key.kind() {
        DecodingKeyKind::SecretOrDer(bytes) => {
            let hmac_alg = match alg {
                HS256 => Some(hmac::HMAC_SHA256),
                HS384 => Some(hmac::HMAC_SHA384),
                HS512 => Some(hmac::HMAC_SHA512),
                _ => None,
            };
            if let Some(a) = hmac_alg {
                return hmac::verify(&hmac::Key::new(a, bytes), message, signature).is_ok();
            }
            let scheme: &dyn sig::VerificationAlgorithm = match alg {
                ES256 => &sig::ECDSA_P256_SHA256_FIXED,
                ES384 => &sig::ECDSA_P384_SHA384_FIXED,
                EdDSA => &sig::ED25519,
                RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                HS256 | HS384 | HS512 => return false,
            };
            sig::UnparsedPublicKey::new(scheme, bytes)
                .verify(message, signature)
                .is_ok()
        }
        DecodingKeyKind::RsaModulusExponent { n, e } => {
            let params = match alg {
                RS256 => &sig::RSA_PKCS1_2048_8192_SHA256,
                RS384 => &sig::RSA_PKCS1_2048_8192_SHA384,
                RS512 => &sig::RSA_PKCS1_2048_8192_SHA512,
                PS256 => &sig::RSA_PSS_2048_8192_SHA256,
                PS384 => &sig::RSA_PSS_2048_8192_SHA384,
                PS512 => &sig::RSA_PSS_2048_8192_SHA512,
                _ => return false,
            };
            sig::RsaPublicKeyComponents { n, e }
                .verify(params, message, signature)
                .is_ok()
        }
    }
}

//! Loading verification keys: an HMAC secret (and a previous one during rotation), a public key
//! PEM whose type decides the algorithms, and a JWKS file keyed by `kid`.

use std::path::{Path, PathBuf};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey};

/// Why the token keys could not be loaded (a start-up error).
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the token key file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "{path} is not an RSA, EC (P-256/P-384) or Ed25519 public key in PEM (\"-----BEGIN PUBLIC KEY-----\")"
    )]
    NotAPublicKey { path: PathBuf },
    #[error("{path} is not a JWKS document ({{\"keys\":[…]}}): {reason}")]
    BadJwks { path: PathBuf, reason: String },
    #[error("the HMAC secret is empty")]
    EmptySecret,
}

/// A key and the only algorithms it may verify: the algorithm comes from the key, never from
/// the token's header.
pub struct VerifyingKey {
    pub key: DecodingKey,
    pub algorithms: Vec<Algorithm>,
    /// JWKS keys: the `kid` a token must name to use this key.
    pub kid: Option<String>,
    /// Rotation: a previous secret stops verifying after this unix time.
    pub valid_until: Option<u64>,
}

impl VerifyingKey {
    pub fn hmac(secret: &[u8], valid_until: Option<u64>) -> Result<Self, KeyError> {
        if secret.is_empty() {
            return Err(KeyError::EmptySecret);
        }
        Ok(Self {
            key: DecodingKey::from_secret(secret),
            algorithms: vec![Algorithm::HS256, Algorithm::HS384, Algorithm::HS512],
            kid: None,
            valid_until,
        })
    }

    /// RSA → RS256/384/512 and PS256/384/512, EC → ES256/ES384, Ed25519 → EdDSA.
    pub fn public_pem(pem: &[u8], path: &Path) -> Result<Self, KeyError> {
        let (key, algorithms) = if let Ok(k) = DecodingKey::from_rsa_pem(pem) {
            (k, RSA.to_vec())
        } else if let Ok(k) = DecodingKey::from_ec_pem(pem) {
            (k, vec![Algorithm::ES256, Algorithm::ES384])
        } else if let Ok(k) = DecodingKey::from_ed_pem(pem) {
            (k, vec![Algorithm::EdDSA])
        } else {
            return Err(KeyError::NotAPublicKey {
                path: path.to_owned(),
            });
        };
        Ok(Self {
            key,
            algorithms,
            kid: None,
            valid_until: None,
        })
    }

    pub fn public_pem_file(path: &Path) -> Result<Self, KeyError> {
        let pem = read(path)?;
        Self::public_pem(&pem, path)
    }

    /// Every usable key of a JWKS document (`{"keys":[…]}`).
    pub fn jwks_file(path: &Path) -> Result<Vec<Self>, KeyError> {
        let text = read(path)?;
        let set: JwkSet = serde_json::from_slice(&text).map_err(|e| KeyError::BadJwks {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut keys = Vec::new();
        for jwk in &set.keys {
            let algorithms = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => RSA.to_vec(),
                AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
                    EllipticCurve::P256 => vec![Algorithm::ES256],
                    EllipticCurve::P384 => vec![Algorithm::ES384],
                    _ => continue,
                },
                AlgorithmParameters::OctetKeyPair(okp) if okp.curve == EllipticCurve::Ed25519 => {
                    vec![Algorithm::EdDSA]
                }
                _ => continue,
            };
            let key = DecodingKey::from_jwk(jwk).map_err(|e| KeyError::BadJwks {
                path: path.to_owned(),
                reason: format!("key {:?}: {e}", jwk.common.key_id),
            })?;
            keys.push(Self {
                key,
                algorithms,
                kid: jwk.common.key_id.clone(),
                valid_until: None,
            });
        }
        if keys.is_empty() {
            return Err(KeyError::BadJwks {
                path: path.to_owned(),
                reason: "no RSA, EC or Ed25519 key in it".into(),
            });
        }
        Ok(keys)
    }
}

const RSA: [Algorithm; 6] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
];

fn read(path: &Path) -> Result<Vec<u8>, KeyError> {
    std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })
}

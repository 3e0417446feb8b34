//! Signed links: `/files/<path>?expires=<unix>&sig=<hex>`.
//!
//! The signature is HMAC-SHA256 over the **canonical string** `"<path>\n<expires>"`, where
//! `<path>` is the URL path exactly as it appears in the link (percent-encoded, starting with
//! `/files/`) and `<expires>` the decimal unix time, and `sig` its 64 hex digits (either case).
//! Compared in constant time. A previous key may be accepted until a time (rotation). Refusals
//! say only "link expired" or "bad signature", never which part was wrong.

use ring::hmac;

/// Why a link is refused (the whole message a client gets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Denied {
    #[error("link expired")]
    Expired,
    #[error("bad signature")]
    BadSignature,
}

/// A signing key, and until when it is accepted (None: always).
#[derive(Clone)]
pub struct SigningKey {
    key: hmac::Key,
    valid_until: Option<u64>,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

/// Why a key could not be read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the URL signing key must be hex (at least 32 bytes = 64 hex digits): {0}")]
    BadHex(String),
    #[error("the URL signing key is {0} bytes; use at least 32")]
    TooShort(usize),
    #[error("cannot read the URL signing key file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

fn decode_hex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn encode_hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

impl SigningKey {
    /// From hex, or from a file holding hex when `spec` names an existing file.
    pub fn parse(spec: &str, valid_until: Option<u64>) -> Result<Self, KeyError> {
        let text = if std::path::Path::new(spec).is_file() {
            std::fs::read_to_string(spec).map_err(|source| KeyError::Read {
                path: spec.to_owned(),
                source,
            })?
        } else {
            spec.to_owned()
        };
        let text = text.trim();
        let bytes = decode_hex(text).ok_or_else(|| KeyError::BadHex("not hex".into()))?;
        if bytes.len() < 32 {
            return Err(KeyError::TooShort(bytes.len()));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, &bytes),
            valid_until,
        })
    }
}

/// The URL path of a file (`audio/a b.ogg` → `/files/audio/a%20b.ogg`): every byte but
/// unreserved characters and `/` percent-encoded, so the link is signed as it will be sent.
pub fn file_url_path(relative: &str) -> String {
    let mut out = String::from("/files/");
    for b in relative.trim_start_matches('/').bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The string the signature covers.
pub fn canonical(path: &str, expires: u64) -> String {
    format!("{path}\n{expires}")
}

/// The `sig` of a link (lowercase hex).
pub fn sign(key: &SigningKey, path: &str, expires: u64) -> String {
    encode_hex(hmac::sign(&key.key, canonical(path, expires).as_bytes()).as_ref())
}

/// A whole link: `path?expires=…&sig=…`.
pub fn signed_url(key: &SigningKey, path: &str, expires: u64) -> String {
    format!("{path}?expires={expires}&sig={}", sign(key, path, expires))
}

/// Checks a link: `path` as requested, the raw `expires` and `sig` query values.
/// The signature is checked before the expiry, so an expired answer is only ever given for a
/// link the server really issued.
pub fn verify(
    keys: &[SigningKey],
    path: &str,
    expires: Option<&str>,
    sig: Option<&str>,
    now: u64,
) -> Result<(), Denied> {
    let (Some(expires_raw), Some(sig)) = (expires, sig) else {
        return Err(Denied::BadSignature);
    };
    // Digits only (no sign, no spaces, no leading +), at most 20 of them.
    if expires_raw.is_empty()
        || expires_raw.len() > 20
        || !expires_raw.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(Denied::BadSignature);
    }
    let Ok(expires) = expires_raw.parse::<u64>() else {
        return Err(Denied::BadSignature);
    };
    // The canonical form of the expiry: "0012" is not "12".
    if expires.to_string() != expires_raw {
        return Err(Denied::BadSignature);
    }
    let Some(sig) = (sig.len() == 64).then(|| decode_hex(sig)).flatten() else {
        return Err(Denied::BadSignature);
    };
    let message = canonical(path, expires);
    let good = keys.iter().any(|k| {
        k.valid_until.is_none_or(|t| now <= t)
            && hmac::verify(&k.key, message.as_bytes(), &sig).is_ok()
    });
    if !good {
        return Err(Denied::BadSignature);
    }
    if now > expires {
        return Err(Denied::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const K2: &str = "ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100";

    #[test]
    fn links_verify_and_every_edit_breaks_them() {
        let k = SigningKey::parse(K1, None).unwrap();
        let keys = [k.clone()];
        let path = "/files/audio/track%201.ogg";
        let sig = sign(&k, path, 2_000);
        let ok = |p: &str, e: &str, s: &str, now| verify(&keys, p, Some(e), Some(s), now);
        assert_eq!(ok(path, "2000", &sig, 1_000), Ok(()));
        assert_eq!(
            ok(path, "2000", &sig.to_uppercase(), 1_000),
            Ok(()),
            "either case"
        );
        assert_eq!(ok(path, "2000", &sig, 2_001), Err(Denied::Expired));
        assert_eq!(
            ok(path, "2001", &sig, 1_000),
            Err(Denied::BadSignature),
            "expiry changed"
        );
        assert_eq!(
            ok("/files/audio/other.ogg", "2000", &sig, 1_000),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            ok(path, "02000", &sig, 1_000),
            Err(Denied::BadSignature),
            "not canonical"
        );
        assert_eq!(ok(path, "+2000", &sig, 1_000), Err(Denied::BadSignature));
        assert_eq!(
            ok(path, "99999999999999999999999", &sig, 1_000),
            Err(Denied::BadSignature),
            "huge expiry"
        );
        assert_eq!(
            ok(path, "2000", &sig[..62], 1_000),
            Err(Denied::BadSignature)
        );
        assert_eq!(ok(path, "2000", "zz", 1_000), Err(Denied::BadSignature));
        assert_eq!(
            verify(&keys, path, None, Some(&sig), 1_000),
            Err(Denied::BadSignature)
        );
        assert_eq!(
            verify(&keys, path, Some("2000"), None, 1_000),
            Err(Denied::BadSignature)
        );
        // An expired link with a forged signature says "bad signature", not "expired".
        assert_eq!(ok(path, "500", &sig, 1_000), Err(Denied::BadSignature));
    }

    #[test]
    fn rotation_accepts_the_previous_key_until_its_time() {
        let old = SigningKey::parse(K1, Some(1_500)).unwrap();
        let new = SigningKey::parse(K2, None).unwrap();
        let keys = [new.clone(), old.clone()];
        let path = "/files/a";
        let by_old = sign(&old, path, 9_000);
        assert_eq!(
            verify(&keys, path, Some("9000"), Some(&by_old), 1_400),
            Ok(())
        );
        assert_eq!(
            verify(&keys, path, Some("9000"), Some(&by_old), 1_600),
            Err(Denied::BadSignature)
        );
        let by_new = sign(&new, path, 9_000);
        assert_eq!(
            verify(&keys, path, Some("9000"), Some(&by_new), 1_600),
            Ok(())
        );
        assert!(signed_url(&new, path, 9_000).starts_with("/files/a?expires=9000&sig="));
    }

    #[test]
    fn file_paths_are_encoded_as_sent() {
        assert_eq!(file_url_path("audio/a b.ogg"), "/files/audio/a%20b.ogg");
        assert_eq!(file_url_path("/x/ü?.txt"), "/files/x/%C3%BC%3F.txt");
        assert_eq!(
            crate::files::path::relative(&file_url_path("a b/ü.txt")).unwrap(),
            std::path::PathBuf::from("a b/ü.txt"),
            "the server decodes what sign encodes"
        );
    }

    #[test]
    fn keys_are_hex_of_at_least_32_bytes() {
        assert!(matches!(
            SigningKey::parse("abcd", None),
            Err(KeyError::TooShort(2))
        ));
        assert!(matches!(
            SigningKey::parse("not hex", None),
            Err(KeyError::BadHex(_))
        ));
        let dir = std::env::temp_dir().join(format!("ringcast-sign-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("key");
        std::fs::write(&f, format!("{K1}\n")).unwrap();
        assert!(
            SigningKey::parse(f.to_str().unwrap(), None).is_ok(),
            "from a file"
        );
    }
}

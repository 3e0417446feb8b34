//! Validators and conditional requests (RFC 9110 §13): a strong `ETag` from the file's
//! modification time and size, `Last-Modified`; `If-None-Match` (weak comparison, `*`) and
//! `If-Modified-Since` → 304; `If-Range` (strong ETag or the exact date) decides whether a
//! `Range` applies.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// What identifies one version of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Validators {
    /// Quoted, strong: `"<mtime s>-<mtime ns>-<size>"` in hex.
    pub etag: String,
    /// Whole seconds (HTTP dates have no fractions).
    pub modified: SystemTime,
}

impl Validators {
    pub fn new(modified: SystemTime, size: u64) -> Self {
        let d = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        Self {
            etag: format!("\"{:x}-{:x}-{size:x}\"", d.as_secs(), d.subsec_nanos()),
            modified: UNIX_EPOCH + Duration::from_secs(d.as_secs()),
        }
    }

    pub fn last_modified(&self) -> String {
        httpdate::fmt_http_date(self.modified)
    }
}

/// The opaque part of an entity tag and whether it is weak.
fn tag(t: &str) -> (&str, bool) {
    let t = t.trim();
    match t.strip_prefix("W/") {
        Some(rest) => (rest, true),
        None => (t, false),
    }
}

/// Should a GET or HEAD be answered 304?
pub fn not_modified(
    if_none_match: Option<&str>,
    if_modified_since: Option<&str>,
    v: &Validators,
) -> bool {
    if let Some(inm) = if_none_match {
        let inm = inm.trim();
        // Weak comparison: W/"x" matches "x".
        return inm == "*" || inm.split(',').any(|t| tag(t).0 == tag(&v.etag).0);
    }
    match if_modified_since.and_then(|d| httpdate::parse_http_date(d.trim()).ok()) {
        Some(since) => v.modified <= since,
        None => false,
    }
}

/// Does a `Range` apply under this `If-Range`? (No `If-Range`: yes.)
pub fn range_applies(if_range: Option<&str>, v: &Validators) -> bool {
    let Some(ir) = if_range.map(str::trim) else {
        return true;
    };
    if ir.starts_with('"') || ir.starts_with("W/") {
        // Strong comparison: a weak tag never matches.
        let (t, weak) = tag(ir);
        return !weak && t == v.etag;
    }
    httpdate::parse_http_date(ir).is_ok_and(|d| d == v.modified)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v() -> Validators {
        Validators::new(UNIX_EPOCH + Duration::new(1_700_000_000, 123), 4096)
    }

    #[test]
    fn etags_and_dates() {
        let v = v();
        assert_eq!(v.etag, "\"6553f100-7b-1000\"");
        assert_eq!(v.last_modified(), "Tue, 14 Nov 2023 22:13:20 GMT");
        let other = Validators::new(UNIX_EPOCH + Duration::new(1_700_000_000, 124), 4096);
        assert_ne!(v.etag, other.etag, "nanoseconds count");
    }

    #[test]
    fn conditional_gets() {
        let v = v();
        let lm = v.last_modified();
        assert!(not_modified(Some(&v.etag), None, &v));
        assert!(
            not_modified(Some(&format!("\"x\", W/{}", v.etag)), None, &v),
            "weak, in a list"
        );
        assert!(not_modified(Some("*"), None, &v));
        assert!(
            !not_modified(Some("\"x\""), Some(&lm), &v),
            "If-None-Match wins"
        );
        assert!(not_modified(None, Some(&lm), &v));
        assert!(not_modified(
            None,
            Some("Wed, 15 Nov 2023 00:00:00 GMT"),
            &v
        ));
        assert!(!not_modified(
            None,
            Some("Mon, 13 Nov 2023 00:00:00 GMT"),
            &v
        ));
        assert!(
            !not_modified(None, Some("yesterday"), &v),
            "unparsable: ignored"
        );
        assert!(!not_modified(None, None, &v));
    }

    #[test]
    fn if_range() {
        let v = v();
        assert!(range_applies(None, &v));
        assert!(range_applies(Some(&v.etag), &v));
        assert!(
            !range_applies(Some(&format!("W/{}", v.etag)), &v),
            "weak never matches"
        );
        assert!(!range_applies(Some("\"other\""), &v));
        assert!(range_applies(Some(&v.last_modified()), &v));
        assert!(!range_applies(Some("Mon, 13 Nov 2023 00:00:00 GMT"), &v));
        assert!(!range_applies(Some("garbage"), &v));
    }
}

//! From a request path to a file inside `--files DIR`, safely: percent-decoded exactly once;
//! no `..`, `.`, empty segments, NUL, backslash or control characters; relative only; and,
//! once resolved on disk (symlinks followed), still inside DIR and a regular file.

use std::path::{Component, Path, PathBuf};

/// Why a path is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PathError {
    /// Not under `/files/`, a bad escape, a forbidden segment or character: 400.
    #[error("bad path: {0}")]
    Bad(&'static str),
    /// Missing, a directory, or outside the directory after following links: 404.
    #[error("not found")]
    NotFound,
}

pub const PREFIX: &str = "/files/";

fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-decodes once (`%2e%2e` is `..`, `%252e` stays `%2e`).
fn decode_once(s: &str) -> Result<Vec<u8>, PathError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let (Some(h), Some(l)) = (
                b.get(i + 1).copied().and_then(hex),
                b.get(i + 2).copied().and_then(hex),
            ) else {
                return Err(PathError::Bad("a % not followed by two hex digits"));
            };
            out.push(h << 4 | l);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Ok(out)
}

/// The relative path a request names (`/files/a/b.ogg` → `a/b.ogg`), checked but not yet
/// resolved on disk.
pub fn relative(request_path: &str) -> Result<PathBuf, PathError> {
    let rest = request_path
        .strip_prefix(PREFIX)
        .ok_or(PathError::Bad("files are under /files/"))?;
    let bytes = decode_once(rest)?;
    let s = String::from_utf8(bytes).map_err(|_| PathError::Bad("not UTF-8"))?;
    if s.is_empty() {
        return Err(PathError::NotFound);
    }
    if s.chars().any(|c| c == '\0' || c == '\\' || c.is_control()) {
        return Err(PathError::Bad("a NUL, backslash or control character"));
    }
    if s.starts_with('/') {
        return Err(PathError::Bad("an absolute path"));
    }
    for seg in s.split('/') {
        match seg {
            "" => return Err(PathError::Bad("an empty segment")),
            "." | ".." => return Err(PathError::Bad("a . or .. segment")),
            _ => {}
        }
    }
    let p = PathBuf::from(&s);
    debug_assert!(p.components().all(|c| matches!(c, Component::Normal(_))));
    Ok(p)
}

/// Resolves `rel` inside `root` (already canonical): follows links, then requires the result
/// to be inside `root` and a regular file.
pub fn resolve(root: &Path, rel: &Path) -> Result<PathBuf, PathError> {
    let full = root
        .join(rel)
        .canonicalize()
        .map_err(|_| PathError::NotFound)?;
    if !full.starts_with(root) {
        return Err(PathError::NotFound);
    }
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => Ok(full),
        _ => Err(PathError::NotFound),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_paths() {
        assert_eq!(
            relative("/files/a/b.ogg").unwrap(),
            PathBuf::from("a/b.ogg")
        );
        assert_eq!(
            relative("/files/a%20b.ogg").unwrap(),
            PathBuf::from("a b.ogg")
        );
        for (p, why) in [
            ("/files/../etc/passwd", "dots"),
            ("/files/..%2fetc%2fpasswd", "encoded slash and dots"),
            ("/files/%2e%2e/etc/passwd", "encoded dots"),
            ("/files/a/./b", "a dot segment"),
            ("/files//etc/passwd", "absolute after decoding"),
            ("/files/%2fetc%2fpasswd", "encoded absolute"),
            ("/files/a%00b", "NUL"),
            ("/files/a%5cb", "backslash"),
            ("/files/a%0ab", "newline"),
            ("/files/a%zz", "bad escape"),
            ("/files/a%2", "short escape"),
            ("/files/a%ff", "not UTF-8"),
            ("/other/a", "outside /files/"),
        ] {
            assert!(matches!(relative(p), Err(PathError::Bad(_))), "{why}: {p}");
        }
        // Double encoding decodes once: %252e%252e is the literal name "%2e%2e", not "..".
        assert_eq!(
            relative("/files/%252e%252e").unwrap(),
            PathBuf::from("%2e%2e")
        );
        assert_eq!(relative("/files/"), Err(PathError::NotFound));
    }

    #[test]
    fn resolution_stays_inside_the_directory() {
        let base = std::env::temp_dir().join(format!("ringcast-files-{}", std::process::id()));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/ok.txt"), "x").unwrap();
        std::fs::write(base.join("secret.txt"), "s").unwrap();
        let _ = std::fs::remove_file(root.join("escape"));
        let _ = std::fs::remove_file(root.join("inside"));
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("escape")).unwrap();
        std::os::unix::fs::symlink(root.join("sub/ok.txt"), root.join("inside")).unwrap();
        let root = root.canonicalize().unwrap();
        assert!(resolve(&root, Path::new("sub/ok.txt")).is_ok());
        assert!(
            resolve(&root, Path::new("inside")).is_ok(),
            "links inside are fine"
        );
        assert_eq!(
            resolve(&root, Path::new("escape")),
            Err(PathError::NotFound)
        );
        assert_eq!(
            resolve(&root, Path::new("sub")),
            Err(PathError::NotFound),
            "a directory"
        );
        assert_eq!(
            resolve(&root, Path::new("missing")),
            Err(PathError::NotFound)
        );
    }
}

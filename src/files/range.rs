//! `Range: bytes=…` (RFC 9110 §14): one range → 206, several → the whole file (200, the
//! choice documented in PROTOCOL.md: one body, no multipart), an invalid or unsatisfiable one →
//! 416 with `Content-Range: bytes */size`; other units are ignored (200).

/// What to send of a file of `size` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ranged {
    Full,
    /// Bytes `start..=end`.
    Part {
        start: u64,
        end: u64,
    },
    Unsatisfiable,
}

fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

pub fn decide(header: Option<&str>, size: u64) -> Ranged {
    let Some(h) = header else {
        return Ranged::Full;
    };
    let Some(set) = h.trim().strip_prefix("bytes=") else {
        return Ranged::Full;
    };
    if set.contains(',') {
        return Ranged::Full;
    }
    let Some((a, b)) = set.trim().split_once('-') else {
        return Ranged::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        // -n: the last n bytes.
        (true, false) => match number(b) {
            Some(n) if n > 0 && size > 0 => Ranged::Part {
                start: size - n.min(size),
                end: size - 1,
            },
            _ => Ranged::Unsatisfiable,
        },
        // a-: from a to the end.
        (false, true) => match number(a) {
            Some(start) if start < size => Ranged::Part {
                start,
                end: size - 1,
            },
            _ => Ranged::Unsatisfiable,
        },
        (false, false) => match (number(a), number(b)) {
            (Some(start), Some(end)) if start <= end && start < size => Ranged::Part {
                start,
                end: end.min(size - 1),
            },
            _ => Ranged::Unsatisfiable,
        },
        (true, true) => Ranged::Unsatisfiable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_table() {
        let p = |start, end| Ranged::Part { start, end };
        let size = 1000;
        for (h, want) in [
            (None, Ranged::Full),
            (Some("bytes=0-99"), p(0, 99)),
            (Some("bytes=900-"), p(900, 999)),
            (Some("bytes=-100"), p(900, 999)),
            (Some("bytes=-5000"), p(0, 999)),
            (Some("bytes=990-5000"), p(990, 999)),
            (Some("bytes=999-999"), p(999, 999)),
            (Some("bytes = 0-1"), Ranged::Full),
            (Some("bytes=5-1"), Ranged::Unsatisfiable),
            (Some("bytes=-0"), Ranged::Unsatisfiable),
            (Some("bytes=1000-"), Ranged::Unsatisfiable),
            (Some("bytes=1000-1001"), Ranged::Unsatisfiable),
            (Some("bytes=-"), Ranged::Unsatisfiable),
            (Some("bytes=a-b"), Ranged::Unsatisfiable),
            (Some("bytes=+1-2"), Ranged::Unsatisfiable),
            (
                Some("bytes=99999999999999999999999-"),
                Ranged::Unsatisfiable,
            ),
            (Some("bytes=0-1,5-9"), Ranged::Full),
            (Some("items=0-1"), Ranged::Full),
        ] {
            assert_eq!(decide(h, size), want, "{h:?}");
        }
        let thousand = format!(
            "bytes={}",
            (0..1000)
                .map(|i| format!("{i}-{i}"))
                .collect::<Vec<_>>()
                .join(",")
        );
        assert_eq!(decide(Some(&thousand), size), Ranged::Full, "1,000 ranges");
        assert_eq!(
            decide(Some("bytes=0-"), 0),
            Ranged::Unsatisfiable,
            "empty file"
        );
        assert_eq!(decide(Some("bytes=-1"), 0), Ranged::Unsatisfiable);
    }
}

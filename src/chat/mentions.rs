//! `@name` mentions in message text: a mention starts at the beginning or after a character
//! that cannot be part of a name or an address (so `bob@example.com` and `a@b` are not
//! mentions); names are 1–64 of `A-Z a-z 0-9 _ . -`, not ending with `.` or `-`.

const MAX_NAME: usize = 64;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Whether `name` could be mentioned: 1–64 name characters, not ending with `.` or `-`.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name.chars().all(name_char)
        && !name.ends_with(['.', '-'])
}

/// The names mentioned, in order of appearance (duplicates kept; the caller dedupes).
pub fn parse(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut prev: Option<char> = None;
    for (i, c) in text.char_indices() {
        let starts = c == '@' && prev.is_none_or(|p| !(name_char(p) || p == '@'));
        prev = Some(c);
        if !starts {
            continue;
        }
        let rest = &text[i + 1..];
        let len = rest.find(|c: char| !name_char(c)).unwrap_or(rest.len());
        let name = rest[..len].trim_end_matches(['.', '-']);
        if !name.is_empty() && name.len() <= MAX_NAME && !rest[len..].starts_with('@') {
            out.push(name.to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mentions_table() {
        for (text, want) in [
            ("@alice hi", vec!["alice"]),
            ("hi @alice and @bob.", vec!["alice", "bob"]),
            ("(@carol), @dave-", vec!["carol", "dave"]),
            ("mail bob@example.com", vec![]),
            ("a@b", vec![]),
            ("@@x", vec![]),
            ("@", vec![]),
            ("@ alice", vec![]),
            ("x@y@z", vec![]),
            ("@first.last_1", vec!["first.last_1"]),
            ("ü@x", vec!["x"]),
        ] {
            assert_eq!(parse(text), want, "{text:?}");
        }
        assert!(
            parse(&format!("@{}", "a".repeat(65))).is_empty(),
            "too long"
        );
    }
}

//! The chat message shape `{"type":"message","text":…,"reply_to"?,"mentions"?}`, validated on
//! publish: text trimmed, not empty, at most `chat.max_text_len` characters, no control
//! characters but newline and tab. The server never renders: clients show text as text.

use serde::Deserialize;

use crate::client_protocol::codes::ClientError;

/// `chat.max_text_len`'s default, in characters.
pub const DEFAULT_MAX_TEXT_LEN: usize = 4000;
/// Most users one message may mention.
pub const MAX_MENTIONS: usize = 20;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Incoming {
    #[serde(rename = "type")]
    kind: String,
    text: String,
    #[serde(default)]
    reply_to: Option<u64>,
    #[serde(default)]
    mentions: Vec<String>,
}

/// A message that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub text: String,
    pub reply_to: Option<u64>,
    /// From the `mentions` field and the `@names` in the text, deduplicated.
    pub mentions: Vec<String>,
}

fn bad(why: impl std::fmt::Display) -> ClientError {
    ClientError::BAD_REQUEST.with_detail(why)
}

/// Validates a publication's data as a chat message.
pub fn validate(data: &str, max_text_len: usize) -> Result<ChatMessage, ClientError> {
    let m: Incoming = serde_json::from_str(data).map_err(|e| {
        bad(format_args!(
            "a chat message is {{\"type\":\"message\",\"text\":…}}: {e}"
        ))
    })?;
    if m.kind != "message" {
        return Err(bad(format_args!("unknown chat message type {:?}", m.kind)));
    }
    let text = m.text.trim();
    if text.is_empty() {
        return Err(bad("empty message"));
    }
    let len = text.chars().count();
    if len > max_text_len {
        return Err(bad(format_args!(
            "message of {len} characters, over the limit of {max_text_len}"
        )));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        return Err(bad(format_args!(
            "control character U+{:04X} in the message",
            c as u32
        )));
    }
    let mut mentions: Vec<String> = m.mentions;
    mentions.extend(super::mentions::parse(text));
    mentions.sort();
    mentions.dedup();
    if mentions.len() > MAX_MENTIONS {
        return Err(bad(format_args!(
            "{} users mentioned, at most {MAX_MENTIONS}",
            mentions.len()
        )));
    }
    Ok(ChatMessage {
        text: text.to_owned(),
        reply_to: m.reply_to,
        mentions,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_messages() {
        let m = validate(r#"{"type":"message","text":"  hi @bob\n\tbye  "}"#, 4000).unwrap();
        assert_eq!(m.text, "hi @bob\n\tbye");
        assert_eq!(m.mentions, ["bob"]);
        let m = validate(
            r#"{"type":"message","text":"re","reply_to":42,"mentions":["carol","bob"]}"#,
            4000,
        )
        .unwrap();
        assert_eq!(
            (m.reply_to, m.mentions),
            (Some(42), vec!["bob".into(), "carol".into()])
        );
        let html = r#"{"type":"message","text":"<img src=x onerror=alert(1)>"}"#;
        assert_eq!(
            validate(html, 4000).unwrap().text,
            "<img src=x onerror=alert(1)>",
            "kept as text"
        );
    }

    #[test]
    fn refusals_name_the_problem() {
        for (data, words) in [
            (r#"{"type":"message","text":"   "}"#, "empty"),
            (r#"{"type":"message","text":"a\u0007b"}"#, "U+0007"),
            (r#"{"type":"message","text":"a\u0000b"}"#, "U+0000"),
            (r#"{"type":"note","text":"x"}"#, "unknown chat message type"),
            (r#"{"text":"x"}"#, "type"),
            (r#"{"type":"message","text":"x","color":"red"}"#, "color"),
            (r#""just a string""#, "chat message"),
        ] {
            let e = validate(data, 4000).unwrap_err();
            assert_eq!(e.code, 107, "{data}");
            assert!(e.message.contains(words), "{data}: {}", e.message);
        }
        let long = format!(r#"{{"type":"message","text":"{}"}}"#, "é".repeat(11));
        assert!(
            validate(&long, 10)
                .unwrap_err()
                .message
                .contains("11 characters")
        );
        assert!(validate(&long, 11).is_ok(), "characters, not bytes");
        let many: String = (0..21).map(|i| format!("@u{i} ")).collect();
        let e = validate(&format!(r#"{{"type":"message","text":"{many}"}}"#), 4000).unwrap_err();
        assert!(e.message.contains("21 users"), "{}", e.message);
    }
}

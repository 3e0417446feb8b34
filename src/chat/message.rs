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
    #[serde(default)]
    text: Option<String>,
    #[serde(default)]
    reply_to: Option<u64>,
    #[serde(default)]
    mentions: Vec<String>,
    #[serde(default)]
    offset: Option<u64>,
}

/// A message that passed validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    pub text: String,
    pub reply_to: Option<u64>,
    /// From the `mentions` field and the `@names` in the text, deduplicated.
    pub mentions: Vec<String>,
}

/// What a client may publish into a chat room.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatPublication {
    Message(ChatMessage),
    /// `{type:"edit", offset, text}`: new text for the message at `offset`.
    Edit {
        offset: u64,
        text: String,
    },
    /// `{type:"delete", offset}`.
    Delete {
        offset: u64,
    },
}

impl ChatPublication {
    /// The publication as stored and delivered (normalized: trimmed, masked, mentions merged).
    pub fn to_json(&self) -> String {
        let v = match self {
            ChatPublication::Message(m) => {
                let mut v = serde_json::json!({"type": "message", "text": m.text});
                if let Some(r) = m.reply_to {
                    v["reply_to"] = r.into();
                }
                if !m.mentions.is_empty() {
                    v["mentions"] = m.mentions.clone().into();
                }
                v
            }
            ChatPublication::Edit { offset, text } => {
                serde_json::json!({"type": "edit", "offset": offset, "text": text})
            }
            ChatPublication::Delete { offset } => {
                serde_json::json!({"type": "delete", "offset": offset})
            }
        };
        v.to_string()
    }

    /// The text to check against blocked words and auto-moderation.
    pub fn text_mut(&mut self) -> Option<&mut String> {
        match self {
            ChatPublication::Message(m) => Some(&mut m.text),
            ChatPublication::Edit { text, .. } => Some(text),
            ChatPublication::Delete { .. } => None,
        }
    }
}

fn bad(why: impl std::fmt::Display) -> ClientError {
    ClientError::BAD_REQUEST.with_detail(why)
}

/// Trimmed text: not empty, at most `max` characters, no control characters but `\n`, `\t`.
fn check_text(text: &str, max_text_len: usize) -> Result<String, ClientError> {
    let text = text.trim();
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
    Ok(text.to_owned())
}

/// Parses and validates a chat room publication.
pub fn parse(data: &str, max_text_len: usize) -> Result<ChatPublication, ClientError> {
    let m: Incoming = serde_json::from_str(data).map_err(|e| {
        bad(format_args!(
            "a chat message is {{\"type\":\"message\",\"text\":…}}: {e}"
        ))
    })?;
    let need_offset = |o: Option<u64>| {
        o.ok_or_else(|| bad(format_args!("{} needs the offset of the message", m.kind)))
    };
    match m.kind.as_str() {
        "message" => {
            let text = check_text(m.text.as_deref().unwrap_or(""), max_text_len)?;
            if let Some(bad_name) = m.mentions.iter().find(|n| !super::mentions::valid_name(n)) {
                return Err(bad(format_args!(
                    "mentions: {bad_name:?} is not a user name (1–64 of A-Z a-z 0-9 _ . -)"
                )));
            }
            let mut mentions: Vec<String> = m.mentions;
            mentions.extend(super::mentions::parse(&text));
            mentions.sort();
            mentions.dedup();
            if mentions.len() > MAX_MENTIONS {
                return Err(bad(format_args!(
                    "{} users mentioned, at most {MAX_MENTIONS}",
                    mentions.len()
                )));
            }
            Ok(ChatPublication::Message(ChatMessage {
                text,
                reply_to: m.reply_to,
                mentions,
            }))
        }
        "edit" => Ok(ChatPublication::Edit {
            offset: need_offset(m.offset)?,
            text: check_text(m.text.as_deref().unwrap_or(""), max_text_len)?,
        }),
        "delete" => Ok(ChatPublication::Delete {
            offset: need_offset(m.offset)?,
        }),
        other => Err(bad(format_args!("unknown chat message type {other:?}"))),
    }
}

/// Validates a publication's data as a chat message (`type` = `message`).
pub fn validate(data: &str, max_text_len: usize) -> Result<ChatMessage, ClientError> {
    match parse(data, max_text_len)? {
        ChatPublication::Message(m) => Ok(m),
        _ => Err(bad("not a chat message")),
    }
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
    fn edits_and_deletes() {
        let e = parse(r#"{"type":"edit","offset":7,"text":" fixed "}"#, 100).unwrap();
        assert_eq!(
            e,
            ChatPublication::Edit {
                offset: 7,
                text: "fixed".into()
            }
        );
        assert_eq!(e.to_json(), r#"{"offset":7,"text":"fixed","type":"edit"}"#);
        assert_eq!(
            parse(r#"{"type":"delete","offset":3}"#, 100).unwrap(),
            ChatPublication::Delete { offset: 3 }
        );
        let e = parse(r#"{"type":"delete"}"#, 100).unwrap_err();
        assert!(
            e.message.contains("delete needs the offset"),
            "{}",
            e.message
        );
        assert!(parse(r#"{"type":"edit","offset":1,"text":""}"#, 100).is_err());
        let m = parse(r#"{"type":"message","text":"hi @bob"}"#, 100).unwrap();
        assert_eq!(
            m.to_json(),
            r#"{"mentions":["bob"],"text":"hi @bob","type":"message"}"#
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
            (
                r#"{"type":"message","text":"x","mentions":["alice,mallory"]}"#,
                "not a user name",
            ),
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

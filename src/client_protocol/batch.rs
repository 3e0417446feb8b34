//! Newline-delimited batches: several JSON messages in one WebSocket text frame, exactly one
//! `\n` between them and an optional trailing one (Centrifugo's JSON framing, both ways).

use super::command::Command;

/// Why a frame could not be read as commands.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BatchError {
    #[error("command {index} of the frame is not a valid command: {reason}")]
    BadJson { index: usize, reason: String },
    #[error("the frame holds more than {max} commands")]
    TooMany { max: usize },
    #[error("empty line at command {index} (exactly one newline between commands)")]
    EmptyLine { index: usize },
}

/// A command and the line it came from.
#[derive(Debug)]
pub struct Parsed<'a> {
    pub command: Command<'a>,
    pub line: &'a [u8],
}

impl Parsed<'_> {
    /// Whether the line names anything besides `id` (an unknown method, when no known request
    /// object was found). Parsed again only on that error path.
    pub fn has_keys_besides_id(&self) -> bool {
        serde_json::from_slice::<std::collections::BTreeMap<String, serde::de::IgnoredAny>>(
            self.line,
        )
        .is_ok_and(|m| m.keys().any(|k| k != "id"))
    }
}

impl<'a> std::ops::Deref for Parsed<'a> {
    type Target = Command<'a>;
    fn deref(&self) -> &Command<'a> {
        &self.command
    }
}

/// Splits a frame into its commands, parsing each in place. At most `max` commands.
pub fn decode_commands(frame: &[u8], max: usize) -> Result<Vec<Parsed<'_>>, BatchError> {
    let body = frame.strip_suffix(b"\n").unwrap_or(frame);
    let mut out = Vec::new();
    for (index, line) in body.split(|&b| b == b'\n').enumerate() {
        if index >= max {
            return Err(BatchError::TooMany { max });
        }
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.iter().all(u8::is_ascii_whitespace) {
            return Err(BatchError::EmptyLine { index });
        }
        let command = serde_json::from_slice(line).map_err(|e| BatchError::BadJson {
            index,
            reason: e.to_string(),
        })?;
        out.push(Parsed { command, line });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_protocol::command::Request;

    #[test]
    fn one_and_several_commands() {
        let one = decode_commands(br#"{"id":1,"connect":{"token":"t"}}"#, 10).unwrap();
        assert_eq!(one.len(), 1);
        assert!(matches!(one[0].request(), Request::Connect(c) if c.token.as_deref() == Some("t")));
        let frame = b"{\"id\":2,\"subscribe\":{\"channel\":\"a\"}}\n{\"id\":3,\"publish\":{\"channel\":\"a\",\"data\":{\"x\":[1,2]}}}\n";
        let cmds = decode_commands(frame, 10).unwrap();
        assert_eq!(cmds.len(), 2);
        match cmds[1].request() {
            Request::Publish(p) => {
                assert_eq!(p.channel, "a");
                assert_eq!(p.data.unwrap().get(), r#"{"x":[1,2]}"#);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn data_borrows_from_the_frame() {
        let frame = br#"{"id":3,"publish":{"channel":"a","data":{"text":"hi"}}}"#;
        let cmds = decode_commands(frame, 1).unwrap();
        let Request::Publish(p) = cmds[0].request() else {
            panic!()
        };
        let data = p.data.unwrap().get().as_bytes();
        let range = frame.as_ptr_range();
        assert!(
            range.contains(&data.as_ptr()),
            "data is a slice of the frame"
        );
        assert!(matches!(p.channel, std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn empty_command_is_a_pong_and_unknown_keys_are_no_request() {
        let cmds = decode_commands(b"{}", 1).unwrap();
        assert_eq!(cmds[0].id, 0);
        assert!(matches!(cmds[0].request(), Request::None));
        let cmds = decode_commands(br#"{"id":5,"frobnicate":{}}"#, 1).unwrap();
        assert!(matches!(cmds[0].request(), Request::None));
    }

    #[test]
    fn bad_frames_name_the_problem() {
        assert!(matches!(
            decode_commands(b"not json", 1),
            Err(BatchError::BadJson { index: 0, .. })
        ));
        assert_eq!(
            decode_commands(b"{}\n{}\n{}", 2).unwrap_err(),
            BatchError::TooMany { max: 2 }
        );
        assert_eq!(
            decode_commands(b"{}\n\n{}", 5).unwrap_err(),
            BatchError::EmptyLine { index: 1 }
        );
        assert!(matches!(
            decode_commands(br#"{"id":-1}"#, 1),
            Err(BatchError::BadJson { .. })
        ));
        assert!(matches!(
            decode_commands(br#"{"id":1,"publish":{"channel":"a","data":{"x":}}}"#, 1),
            Err(BatchError::BadJson { .. })
        ));
    }
}

//! What ringcast nodes publish to each other through Redis PUB/SUB, one message per push:
//!
//! - `p<offset>:<epoch>:<publication>` — a publication into a channel with history; the
//!   publish script writes it, since only Redis knows the offset (`<publication>` is the
//!   client protocol's publication object, offset included);
//! - `e<push>` — a push without offset, encoded whole by the publishing node (publications
//!   into channels without history, join, leave).
//!
//! Each receiving node turns a message into the client protocol push once and shares it with
//! all its subscribers. Must not: do I/O.

use crate::client_protocol::reply::write_publication_push_around;

/// Why a message from Redis was dropped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MessageError {
    #[error("empty message")]
    Empty,
    #[error("unknown message kind {0:?} (another program publishing into ringcast's channels?)")]
    UnknownKind(char),
    #[error("publication header is not <offset>:<epoch>:")]
    BadHeader,
}

/// What a push without offset is published after.
pub const EVENT: &[u8] = b"e";

/// A push without offset, as published.
#[cfg(test)]
pub fn event(push: &[u8]) -> Vec<u8> {
    [EVENT, push].concat()
}

/// The offset (0: none) and the push that subscribers of `channel` get: the message's own
/// bytes for an event, written into `scratch` for a publication (nothing allocated once
/// `scratch` has grown).
pub fn decode<'a>(
    channel: &str,
    payload: &'a [u8],
    scratch: &'a mut Vec<u8>,
) -> Result<(u64, &'a [u8]), MessageError> {
    let (&kind, rest) = payload.split_first().ok_or(MessageError::Empty)?;
    match kind {
        b'e' => Ok((0, rest)),
        b'p' => {
            let mut parts = rest.splitn(3, |&b| b == b':');
            let (Some(offset), Some(_epoch), Some(publication)) =
                (parts.next(), parts.next(), parts.next())
            else {
                return Err(MessageError::BadHeader);
            };
            let offset = std::str::from_utf8(offset)
                .ok()
                .and_then(|s| s.parse::<u64>().ok())
                .filter(|&o| o > 0)
                .ok_or(MessageError::BadHeader)?;
            scratch.clear();
            write_publication_push_around(scratch, channel, publication);
            Ok((offset, &scratch[..]))
        }
        other => Err(MessageError::UnknownKind(other as char)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client_protocol::reply::{Publication, publication_push};
    use serde_json::value::RawValue;

    #[test]
    fn a_publication_becomes_the_push_the_memory_engine_sends() {
        let data = RawValue::from_string("{\"text\":\"hi\"}".into()).unwrap();
        let expected = publication_push(
            "news",
            &Publication {
                data: &data,
                info: None,
                offset: 7,
            },
        );
        let msg = b"p7:AbCdEfGh:{\"data\":{\"text\":\"hi\"},\"offset\":7}";
        assert_eq!(decode("news", msg, &mut Vec::new()), Ok((7, &expected[..])));
    }

    #[test]
    fn events_pass_whole() {
        let push = b"{\"push\":{\"channel\":\"a\",\"join\":{}}}";
        assert_eq!(
            decode("a", &event(push), &mut Vec::new()),
            Ok((0, &push[..]))
        );
    }

    #[test]
    fn bad_messages_are_named() {
        assert_eq!(decode("a", b"", &mut Vec::new()), Err(MessageError::Empty));
        assert_eq!(
            decode("a", b"x{}", &mut Vec::new()),
            Err(MessageError::UnknownKind('x'))
        );
        assert_eq!(
            decode("a", b"p7:{}", &mut Vec::new()),
            Err(MessageError::BadHeader)
        );
        assert_eq!(
            decode("a", b"p0:e:{}", &mut Vec::new()),
            Err(MessageError::BadHeader)
        );
        assert_eq!(
            decode("a", b"pX:e:{}", &mut Vec::new()),
            Err(MessageError::BadHeader)
        );
    }
}

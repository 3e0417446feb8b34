//! Message assembly (RFC 6455 §5.4): the fragmentation rules, the message size limit and UTF-8
//! of Text messages, as a state machine that never sees the payload storage.
//!
//! The caller reports each frame's header ([`MessageAssembler::on_header`]), the unmasked bytes
//! of each data frame as they arrive ([`MessageAssembler::on_data`], any number of pieces), and
//! the end of each data frame ([`MessageAssembler::on_frame_end`]). Keeping the bytes out of
//! here lets the server unmask straight into the frame it will broadcast.

use super::error::ProtocolError;
use super::frame::FrameHeader;
use super::opcode::{DataKind, OpCode};
use super::utf8::Utf8Validator;

/// What a frame is, once the fragmentation rules have accepted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameRole {
    /// Close, Ping or Pong; may come between the fragments of a message.
    Control(OpCode),
    /// A frame of a data message; `first` is true for the frame that starts it.
    Data { kind: DataKind, first: bool },
}

/// A finished data message: its kind and total payload length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageEnd {
    pub kind: DataKind,
    pub len: u64,
}

#[derive(Debug, Clone, Copy)]
struct InProgress {
    kind: DataKind,
    /// Payload bytes announced so far (headers of all frames of the message).
    len: u64,
    /// FIN of the data frame being read.
    fin: bool,
}

/// Tracks the data message in progress across frames.
#[derive(Debug, Clone)]
pub struct MessageAssembler {
    max_message_size: u64,
    current: Option<InProgress>,
    utf8: Utf8Validator,
}

impl MessageAssembler {
    pub fn new(max_message_size: u64) -> Self {
        Self {
            max_message_size,
            current: None,
            utf8: Utf8Validator::new(),
        }
    }

    /// True while a fragmented message has started and not finished.
    pub fn in_message(&self) -> bool {
        self.current.is_some()
    }

    /// Checks a frame header against the fragmentation rules and the message size limit.
    pub fn on_header(&mut self, h: &FrameHeader) -> Result<FrameRole, ProtocolError> {
        let (kind, first, so_far) = match (h.opcode, self.current) {
            (op, _) if op.is_control() => return Ok(FrameRole::Control(op)),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(cur)) => (cur.kind, false, cur.len),
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::Text, None) => (DataKind::Text, true, 0),
            (_, None) => (DataKind::Binary, true, 0),
        };
        let len = so_far.saturating_add(h.payload_len);
        if len > self.max_message_size {
            return Err(ProtocolError::MessageTooLarge {
                len,
                max: self.max_message_size,
            });
        }
        self.current = Some(InProgress {
            kind,
            len,
            fin: h.fin,
        });
        Ok(FrameRole::Data { kind, first })
    }

    /// Unmasked payload bytes of the current data frame; Text is checked as it arrives.
    pub fn on_data(&mut self, bytes: &[u8]) -> Result<(), ProtocolError> {
        match self.current {
            Some(InProgress {
                kind: DataKind::Text,
                ..
            }) => self
                .utf8
                .feed(bytes)
                .map_err(|_| ProtocolError::InvalidUtf8),
            _ => Ok(()),
        }
    }

    /// The current data frame is complete; returns the message when that frame had FIN.
    pub fn on_frame_end(&mut self) -> Result<Option<MessageEnd>, ProtocolError> {
        let Some(cur) = self.current else {
            return Ok(None);
        };
        if !cur.fin {
            return Ok(None);
        }
        self.current = None;
        if cur.kind == DataKind::Text {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Some(MessageEnd {
            kind: cur.kind,
            len: cur.len,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(fin: bool, opcode: OpCode, len: u64) -> FrameHeader {
        FrameHeader {
            fin,
            rsv: 0,
            opcode,
            mask: None,
            payload_len: len,
        }
    }

    #[test]
    fn single_frame_message() {
        let mut a = MessageAssembler::new(100);
        assert_eq!(
            a.on_header(&h(true, OpCode::Text, 5)),
            Ok(FrameRole::Data {
                kind: DataKind::Text,
                first: true
            })
        );
        a.on_data(b"Hello").unwrap();
        assert_eq!(
            a.on_frame_end(),
            Ok(Some(MessageEnd {
                kind: DataKind::Text,
                len: 5
            }))
        );
        assert!(!a.in_message());
    }

    #[test]
    fn fragments_with_interleaved_control_frames() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&h(false, OpCode::Binary, 3)).unwrap();
        a.on_data(&[1, 2, 3]).unwrap();
        assert_eq!(a.on_frame_end(), Ok(None));
        assert!(a.in_message());
        assert_eq!(
            a.on_header(&h(true, OpCode::Ping, 0)),
            Ok(FrameRole::Control(OpCode::Ping))
        );
        assert_eq!(
            a.on_header(&h(true, OpCode::Continuation, 2)),
            Ok(FrameRole::Data {
                kind: DataKind::Binary,
                first: false
            })
        );
        assert_eq!(
            a.on_frame_end(),
            Ok(Some(MessageEnd {
                kind: DataKind::Binary,
                len: 5
            }))
        );
    }

    #[test]
    fn continuation_without_start_earns_1002() {
        let mut a = MessageAssembler::new(100);
        let e = a.on_header(&h(true, OpCode::Continuation, 1)).unwrap_err();
        assert_eq!(e, ProtocolError::UnexpectedContinuation);
        assert_eq!(e.close_code().0, 1002);
    }

    #[test]
    fn new_data_frame_inside_a_fragmented_message_earns_1002() {
        for op in [OpCode::Text, OpCode::Binary] {
            let mut a = MessageAssembler::new(100);
            a.on_header(&h(false, OpCode::Text, 1)).unwrap();
            a.on_data(b"a").unwrap();
            a.on_frame_end().unwrap();
            let e = a.on_header(&h(true, op, 1)).unwrap_err();
            assert_eq!(e, ProtocolError::ExpectedContinuation);
            assert_eq!(e.close_code().0, 1002);
        }
    }

    #[test]
    fn message_size_is_limited_across_fragments() {
        let mut a = MessageAssembler::new(10);
        a.on_header(&h(false, OpCode::Binary, 6)).unwrap();
        a.on_frame_end().unwrap();
        let e = a.on_header(&h(true, OpCode::Continuation, 5)).unwrap_err();
        assert_eq!(e, ProtocolError::MessageTooLarge { len: 11, max: 10 });
        assert_eq!(e.close_code().0, 1009);
    }

    #[test]
    fn utf8_checked_across_fragments_and_fails_fast() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&h(false, OpCode::Text, 2)).unwrap();
        a.on_data(b"\xce").unwrap(); // first half of κ
        a.on_data(b"\xba").unwrap();
        a.on_frame_end().unwrap();
        a.on_header(&h(true, OpCode::Continuation, 2)).unwrap();
        let e = a.on_data(b"\xed\xa0").unwrap_err(); // surrogate prefix, before FIN
        assert_eq!(e, ProtocolError::InvalidUtf8);
        assert_eq!(e.close_code().0, 1007);
    }

    #[test]
    fn text_ending_mid_code_point_earns_1007() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&h(true, OpCode::Text, 1)).unwrap();
        a.on_data(b"\xce").unwrap();
        assert_eq!(a.on_frame_end(), Err(ProtocolError::InvalidUtf8));
    }

    #[test]
    fn binary_is_not_utf8_checked() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&h(true, OpCode::Binary, 2)).unwrap();
        a.on_data(&[0xff, 0xfe]).unwrap();
        assert!(a.on_frame_end().unwrap().is_some());
    }
}

//! Message assembly (RFC 6455 §5.4): the fragmentation rules, the message size limit and UTF-8
//! of Text messages, as a state machine that never sees the payload storage.
//!
//! The caller reports each frame's header ([`MessageAssembler::on_header`]), the unmasked bytes
//! of each data frame as they arrive ([`MessageAssembler::on_data`], any number of pieces), and
//! the end of each data frame ([`MessageAssembler::on_frame_end`]). Keeping the bytes out of
//! here lets the server unmask straight into the frame it will broadcast.
//!
//! permessage-deflate (RFC 7692 §6): RSV1 on the first frame of a message marks the whole
//! message compressed; RSV1 on a continuation or control frame is an error. A compressed Text
//! message is checked for UTF-8 only after inflating (by [`super::decoder::Message::inflate`]).

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

/// A finished data message: its kind, total payload length, and whether it is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MessageEnd {
    pub kind: DataKind,
    pub len: u64,
    pub compressed: bool,
}

#[derive(Debug, Clone, Copy)]
struct InProgress {
    kind: DataKind,
    /// RSV1 on the first frame (permessage-deflate).
    compressed: bool,
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
        let rsv1 = h.rsv & 0b100 != 0;
        let (kind, first, so_far, compressed) = match (h.opcode, self.current) {
            (op, _) if op.is_control() && rsv1 => return Err(ProtocolError::ReservedBits(h.rsv)),
            (op, _) if op.is_control() => return Ok(FrameRole::Control(op)),
            (OpCode::Continuation, None) => return Err(ProtocolError::UnexpectedContinuation),
            (OpCode::Continuation, Some(_)) if rsv1 => {
                return Err(ProtocolError::ReservedBits(h.rsv));
            }
            (OpCode::Continuation, Some(cur)) => (cur.kind, false, cur.len, cur.compressed),
            (_, Some(_)) => return Err(ProtocolError::ExpectedContinuation),
            (OpCode::Text, None) => (DataKind::Text, true, 0, rsv1),
            (_, None) => (DataKind::Binary, true, 0, rsv1),
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
            compressed,
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
                compressed: false,
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
        if cur.kind == DataKind::Text && !cur.compressed {
            self.utf8.finish().map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        Ok(Some(MessageEnd {
            kind: cur.kind,
            len: cur.len,
            compressed: cur.compressed,
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
                len: 5,
                compressed: false
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
                len: 5,
                compressed: false
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

    fn rsv1(fin: bool, opcode: OpCode, len: u64) -> FrameHeader {
        FrameHeader {
            rsv: 0b100,
            ..h(fin, opcode, len)
        }
    }

    #[test]
    fn rsv1_on_the_first_frame_marks_the_message_compressed() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&rsv1(false, OpCode::Text, 2)).unwrap();
        a.on_data(&[0xff, 0xfe]).unwrap(); // compressed bytes: not UTF-8, not checked
        a.on_frame_end().unwrap();
        a.on_header(&h(true, OpCode::Continuation, 1)).unwrap();
        a.on_data(&[0xff]).unwrap();
        assert_eq!(
            a.on_frame_end(),
            Ok(Some(MessageEnd {
                kind: DataKind::Text,
                len: 3,
                compressed: true
            }))
        );
    }

    #[test]
    fn rsv1_on_a_continuation_or_control_frame_earns_1002() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&rsv1(false, OpCode::Text, 1)).unwrap();
        a.on_frame_end().unwrap();
        let e = a
            .on_header(&rsv1(true, OpCode::Continuation, 1))
            .unwrap_err();
        assert_eq!(e.close_code().0, 1002);
        let mut a = MessageAssembler::new(100);
        let e = a.on_header(&rsv1(true, OpCode::Ping, 0)).unwrap_err();
        assert_eq!(e, ProtocolError::ReservedBits(0b100));
    }

    #[test]
    fn binary_is_not_utf8_checked() {
        let mut a = MessageAssembler::new(100);
        a.on_header(&h(true, OpCode::Binary, 2)).unwrap();
        a.on_data(&[0xff, 0xfe]).unwrap();
        assert!(a.on_frame_end().unwrap().is_some());
    }
}

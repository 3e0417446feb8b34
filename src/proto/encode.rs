//! Frame encoding: server frames (never masked) and client frames (always masked).
//!
//! [`encode_header`] writes a header into a small stack buffer so a payload that already sits in
//! a shared buffer can be sent behind it without being copied (vectored write). The helpers that
//! write whole frames append to a caller's buffer, which is reused across calls.

use bytes::{BufMut, Bytes, BytesMut};

use super::frame::MAX_HEADER_LEN;
use super::mask::unmask_into;
use super::opcode::OpCode;

/// A frame header on the stack (2 to 14 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderBuf {
    bytes: [u8; MAX_HEADER_LEN],
    len: u8,
}

impl HeaderBuf {
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

impl std::fmt::Debug for HeaderBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HeaderBuf({:02x?})", self.as_bytes())
    }
}

/// Header length of an unmasked frame with this payload length: 2, 4 or 10.
#[inline]
pub fn header_len(payload_len: u64) -> usize {
    match payload_len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    }
}

/// Encodes a frame header with the shortest length form. `mask` is `Some` for client frames.
///
/// # Panics
/// If `payload_len` has its top bit set (no frame can be that long).
pub fn encode_header(
    fin: bool,
    opcode: OpCode,
    mask: Option<[u8; 4]>,
    payload_len: u64,
) -> HeaderBuf {
    assert!(
        payload_len >> 63 == 0,
        "payload length {payload_len} cannot be encoded"
    );
    let mut bytes = [0u8; MAX_HEADER_LEN];
    bytes[0] = (fin as u8) << 7 | opcode as u8;
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    let mut len = match header_len(payload_len) {
        2 => {
            bytes[1] = mask_bit | payload_len as u8;
            2
        }
        4 => {
            bytes[1] = mask_bit | 126;
            bytes[2..4].copy_from_slice(&(payload_len as u16).to_be_bytes());
            4
        }
        _ => {
            bytes[1] = mask_bit | 127;
            bytes[2..10].copy_from_slice(&payload_len.to_be_bytes());
            10
        }
    };
    if let Some(key) = mask {
        bytes[len..len + 4].copy_from_slice(&key);
        len += 4;
    }
    HeaderBuf {
        bytes,
        len: len as u8,
    }
}

/// Appends a complete, unmasked, final server frame to `out`.
pub fn write_server_frame(out: &mut impl BufMut, opcode: OpCode, payload: &[u8]) {
    out.put_slice(encode_header(true, opcode, None, payload.len() as u64).as_bytes());
    out.put_slice(payload);
}

/// A complete final server frame in its own shared buffer (one allocation; for control frames
/// and tests, the data path builds frames around the payload instead, see `decoder::Message`).
pub fn server_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let mut b = BytesMut::with_capacity(header_len(payload.len() as u64) + payload.len());
    write_server_frame(&mut b, opcode, payload);
    b.freeze()
}

/// Appends a masked client frame to `out`, masking while copying (one pass over the payload).
pub fn write_client_frame(
    out: &mut Vec<u8>,
    fin: bool,
    opcode: OpCode,
    payload: &[u8],
    key: [u8; 4],
) {
    let header = encode_header(fin, opcode, Some(key), payload.len() as u64);
    out.reserve(header.as_bytes().len() + payload.len());
    out.extend_from_slice(header.as_bytes());
    let at = out.len();
    out.resize(at + payload.len(), 0);
    unmask_into(payload, &mut out[at..], key, 0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::close::CloseCode;
    use crate::proto::control::ControlPayload;
    use crate::proto::frame::{Decoded, FrameConfig, Role, decode_frame};

    fn frame(op: OpCode, payload: &[u8]) -> Vec<u8> {
        server_frame(op, payload).to_vec()
    }

    #[test]
    fn seven_bit_length() {
        assert_eq!(frame(OpCode::Text, b"Hello"), b"\x81\x05Hello");
        assert_eq!(&frame(OpCode::Binary, &[0; 125])[..2], &[0x82, 0x7D]);
    }

    #[test]
    fn sixteen_bit_length_200_bytes() {
        let f = frame(OpCode::Binary, &[0xAB; 200]);
        assert_eq!(&f[..4], &[0x82, 0x7e, 0x00, 0xc8]);
        assert_eq!(f.len(), 204);
        assert_eq!(
            &frame(OpCode::Binary, &[0; 126])[..4],
            &[0x82, 0x7E, 0x00, 0x7E]
        );
        assert_eq!(
            &frame(OpCode::Binary, &[0; 65535])[..4],
            &[0x82, 0x7E, 0xFF, 0xFF]
        );
    }

    #[test]
    fn sixty_four_bit_length_70000_bytes() {
        let f = frame(OpCode::Binary, &vec![1; 70000]);
        assert_eq!(&f[..2], &[0x82, 0x7f]);
        assert_eq!(&f[2..10], &70000u64.to_be_bytes());
        assert_eq!(f.len(), 70010);
        assert_eq!(
            &frame(OpCode::Binary, &vec![0; 65536])[..10],
            &[0x82, 0x7F, 0, 0, 0, 0, 0, 1, 0, 0]
        );
    }

    #[test]
    fn close_ping_pong() {
        let close = ControlPayload::close(CloseCode::NORMAL, "Normal closure");
        let f = frame(OpCode::Close, close.as_bytes());
        assert_eq!(&f[..4], &[0x88, 0x10, 0x03, 0xe8]);
        assert_eq!(&f[4..], b"Normal closure");
        assert_eq!(frame(OpCode::Ping, b"heartbeat"), b"\x89\x09heartbeat");
        assert_eq!(frame(OpCode::Pong, b"heartbeat"), b"\x8a\x09heartbeat");
    }

    #[test]
    fn non_final_and_continuation_headers() {
        assert_eq!(
            encode_header(false, OpCode::Text, None, 3).as_bytes(),
            &[0x01, 0x03]
        );
        assert_eq!(
            encode_header(true, OpCode::Continuation, None, 0).as_bytes(),
            &[0x80, 0x00]
        );
    }

    #[test]
    fn client_frame_is_masked_and_parses_back() {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        let mut out = Vec::new();
        write_client_frame(&mut out, true, OpCode::Text, b"Hello", key);
        assert_eq!(
            out,
            [
                0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58
            ]
        );
        let Decoded::Complete(f) =
            decode_frame(&mut out, &FrameConfig::new(Role::Server, 1 << 20)).unwrap()
        else {
            panic!()
        };
        assert_eq!(&out[f.payload], b"Hello");
    }

    #[test]
    fn client_frames_append_to_a_reused_buffer() {
        let mut out = Vec::new();
        write_client_frame(&mut out, false, OpCode::Text, b"Hel", [1, 2, 3, 4]);
        write_client_frame(&mut out, true, OpCode::Continuation, b"lo", [5, 6, 7, 8]);
        assert_eq!(out.len(), (2 + 4 + 3) + (2 + 4 + 2));
        assert_eq!(out[0], 0x01);
        assert_eq!(out[9], 0x80);
    }
}

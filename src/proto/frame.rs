//! Frame headers (RFC 6455 §5.2): parse from bytes without copying, or report how many more
//! bytes are needed.
//!
//! Two entry points:
//! - [`decode_header`] reads only the header; the stream [`super::decoder::Decoder`] uses it and
//!   then streams the payload, so a 16 MiB frame never has to sit in one buffer;
//! - [`decode_frame`] parses a whole frame inside a mutable buffer, unmasks the payload in place
//!   and returns its range in that buffer (zero copy).
//!
//! Rules are checked as soon as the bytes that break them have arrived (fail fast): reserved
//! bits and opcodes, masking by role, fragmented or oversized control frames, the top bit of a
//! 64-bit length, and the configured maximum frame size (→ 1009).

use std::ops::Range;

use super::error::ProtocolError;
use super::mask::apply_mask;
use super::opcode::OpCode;

/// The longest header: 2 + 8 (64-bit length) + 4 (mask key).
pub const MAX_HEADER_LEN: usize = 14;

/// Which end of the connection we are; decides whether incoming frames must be masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// We serve: client frames must be masked.
    Server,
    /// We are a client: server frames must not be masked.
    Client,
}

/// What incoming frames may look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameConfig {
    pub role: Role,
    /// Frames with a longer payload fail with [`ProtocolError::FrameTooLarge`] (1009).
    pub max_frame_size: u64,
    /// RSV bits an extension has negotiated (bit 2 = RSV1 … bit 0 = RSV3); 0 without extensions.
    pub allowed_rsv: u8,
}

impl FrameConfig {
    pub fn new(role: Role, max_frame_size: u64) -> Self {
        Self {
            role,
            max_frame_size,
            allowed_rsv: 0,
        }
    }
}

/// A parsed frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameHeader {
    pub fin: bool,
    /// RSV1..RSV3 as the low three bits (RSV1 = 0b100).
    pub rsv: u8,
    pub opcode: OpCode,
    pub mask: Option<[u8; 4]>,
    pub payload_len: u64,
}

/// Result of parsing input that may be incomplete. Needing more bytes is not an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded<T> {
    Complete(T),
    /// At least this many more bytes are needed before anything can be said.
    Incomplete {
        needed: usize,
    },
}

/// Parses a frame header from the start of `buf`: the header and its length in bytes.
pub fn decode_header(
    buf: &[u8],
    cfg: &FrameConfig,
) -> Result<Decoded<(FrameHeader, usize)>, ProtocolError> {
    let [b0, b1, ..] = *buf else {
        return Ok(Decoded::Incomplete {
            needed: 2 - buf.len(),
        });
    };
    let fin = b0 & 0x80 != 0;
    let rsv = (b0 >> 4) & 0x7;
    if rsv & !cfg.allowed_rsv != 0 {
        return Err(ProtocolError::ReservedBits(rsv));
    }
    let opcode = OpCode::try_from(b0 & 0x0F)?;
    let masked = b1 & 0x80 != 0;
    match (cfg.role, masked) {
        (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame),
        (Role::Client, true) => return Err(ProtocolError::MaskedFrame),
        _ => {}
    }
    let len7 = b1 & 0x7F;
    if opcode.is_control() {
        if !fin {
            return Err(ProtocolError::FragmentedControlFrame);
        }
        if len7 > 125 {
            // The real length is at least 126 whatever the extended field says.
            return Err(ProtocolError::ControlFrameTooLong(len7 as u64));
        }
    }
    let ext = match len7 {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let header_len = 2 + ext + if masked { 4 } else { 0 };
    if buf.len() < header_len {
        return Ok(Decoded::Incomplete {
            needed: header_len - buf.len(),
        });
    }
    let payload_len = match ext {
        2 => u16::from_be_bytes([buf[2], buf[3]]) as u64,
        8 => {
            let n = u64::from_be_bytes(buf[2..10].try_into().expect("8 bytes"));
            if n >> 63 != 0 {
                return Err(ProtocolError::LengthTopBit);
            }
            n
        }
        _ => len7 as u64,
    };
    if payload_len > cfg.max_frame_size {
        return Err(ProtocolError::FrameTooLarge {
            len: payload_len,
            max: cfg.max_frame_size,
        });
    }
    let mask = masked.then(|| buf[2 + ext..6 + ext].try_into().expect("4 bytes"));
    Ok(Decoded::Complete((
        FrameHeader {
            fin,
            rsv,
            opcode,
            mask,
            payload_len,
        },
        header_len,
    )))
}

/// A whole frame found at the start of a buffer by [`decode_frame`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: FrameHeader,
    /// Where the (already unmasked) payload lies in the buffer.
    pub payload: Range<usize>,
    /// Bytes of the buffer this frame used (header + payload).
    pub len: usize,
}

/// Parses a whole frame at the start of `buf` and unmasks its payload in place.
///
/// Returns `Incomplete` (touching nothing) until the whole payload is in `buf`.
pub fn decode_frame(buf: &mut [u8], cfg: &FrameConfig) -> Result<Decoded<Frame>, ProtocolError> {
    let (header, header_len) = match decode_header(buf, cfg)? {
        Decoded::Complete(h) => h,
        Decoded::Incomplete { needed } => return Ok(Decoded::Incomplete { needed }),
    };
    // payload_len <= max_frame_size; on 64-bit targets it fits in usize.
    let payload_len = usize::try_from(header.payload_len).unwrap_or(usize::MAX);
    let end = header_len.saturating_add(payload_len);
    if buf.len() < end {
        return Ok(Decoded::Incomplete {
            needed: end - buf.len(),
        });
    }
    if let Some(key) = header.mask {
        apply_mask(&mut buf[header_len..end], key, 0);
    }
    Ok(Decoded::Complete(Frame {
        header,
        payload: header_len..end,
        len: end,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SERVER: FrameConfig = FrameConfig {
        role: Role::Server,
        max_frame_size: 1 << 20,
        allowed_rsv: 0,
    };
    const CLIENT: FrameConfig = FrameConfig {
        role: Role::Client,
        max_frame_size: 1 << 20,
        allowed_rsv: 0,
    };

    fn header(
        buf: &[u8],
        cfg: &FrameConfig,
    ) -> Result<Decoded<(FrameHeader, usize)>, ProtocolError> {
        decode_header(buf, cfg)
    }

    #[test]
    fn rfc_vector_masked_hello() {
        let mut buf = [
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        let Decoded::Complete(f) = decode_frame(&mut buf, &SERVER).unwrap() else {
            panic!()
        };
        assert!(f.header.fin);
        assert_eq!(f.header.opcode, OpCode::Text);
        assert_eq!(f.header.mask, Some([0x37, 0xfa, 0x21, 0x3d]));
        assert_eq!(f.header.payload_len, 5);
        assert_eq!(f.payload, 6..11);
        assert_eq!(f.len, 11);
        assert_eq!(&buf[f.payload], b"Hello");
    }

    #[test]
    fn rfc_vector_unmasked_hello_for_a_client() {
        let mut buf = *b"\x81\x05Hello";
        let Decoded::Complete(f) = decode_frame(&mut buf, &CLIENT).unwrap() else {
            panic!()
        };
        assert_eq!(f.header.mask, None);
        assert_eq!(&buf[f.payload], b"Hello");
    }

    #[test]
    fn incomplete_input_says_how_much_is_missing() {
        let full = [
            0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ];
        for n in 0..full.len() {
            let mut part = full[..n].to_vec();
            match decode_frame(&mut part, &SERVER).unwrap() {
                Decoded::Incomplete { needed } => {
                    assert!(
                        needed >= 1 && n + needed <= full.len(),
                        "n {n} needed {needed}"
                    );
                }
                Decoded::Complete(_) => panic!("complete with {n} bytes"),
            }
            assert_eq!(
                part,
                &full[..n],
                "incomplete parse must not touch the buffer"
            );
        }
        assert_eq!(header(&[], &SERVER), Ok(Decoded::Incomplete { needed: 2 }));
        assert_eq!(
            header(&[0x82, 0xFE], &SERVER),
            Ok(Decoded::Incomplete { needed: 6 })
        );
        assert_eq!(
            header(&[0x82, 0xFF, 0], &SERVER),
            Ok(Decoded::Incomplete { needed: 11 })
        );
    }

    #[test]
    fn length_forms() {
        // 7-bit
        let (h, n) = match header(&[0x82, 0x7D], &CLIENT).unwrap() {
            Decoded::Complete(x) => x,
            _ => panic!(),
        };
        assert_eq!((h.payload_len, n), (125, 2));
        // 16-bit
        let (h, n) = match header(&[0x82, 0x7E, 0x00, 0xC8], &CLIENT).unwrap() {
            Decoded::Complete(x) => x,
            _ => panic!(),
        };
        assert_eq!((h.payload_len, n), (200, 4));
        // 64-bit, masked
        let mut b = vec![0x82, 0xFF];
        b.extend_from_slice(&70000u64.to_be_bytes());
        b.extend_from_slice(&[1, 2, 3, 4]);
        let (h, n) = match header(&b, &SERVER).unwrap() {
            Decoded::Complete(x) => x,
            _ => panic!(),
        };
        assert_eq!((h.payload_len, n, h.mask), (70000, 14, Some([1, 2, 3, 4])));
    }

    #[test]
    fn top_bit_of_64_bit_length_is_an_error() {
        let mut b = vec![0x82, 0x7F];
        b.extend_from_slice(&(1u64 << 63).to_be_bytes());
        let e = header(&b, &CLIENT).unwrap_err();
        assert_eq!(e, ProtocolError::LengthTopBit);
        assert_eq!(e.close_code().0, 1002);
    }

    #[test]
    fn frame_over_the_limit_earns_1009() {
        let cfg = FrameConfig::new(Role::Client, 1000);
        let e = header(&[0x82, 0x7E, 0x03, 0xE9], &cfg).unwrap_err();
        assert_eq!(
            e,
            ProtocolError::FrameTooLarge {
                len: 1001,
                max: 1000
            }
        );
        assert_eq!(e.close_code().0, 1009);
        assert!(matches!(
            header(&[0x82, 0x7E, 0x03, 0xE8], &cfg),
            Ok(Decoded::Complete(_))
        ));
    }

    #[test]
    fn reserved_bits_without_extension_earn_1002() {
        for rsv in 1..8u8 {
            let e = header(&[0x81 | (rsv << 4), 0x80], &SERVER).unwrap_err();
            assert_eq!(e, ProtocolError::ReservedBits(rsv));
            assert_eq!(e.close_code().0, 1002);
        }
        let with_rsv1 = FrameConfig {
            allowed_rsv: 0b100,
            ..SERVER
        };
        assert!(header(&[0xC1, 0x80, 0, 0, 0, 0], &with_rsv1).is_ok());
        assert!(
            header(&[0xA1, 0x80, 0, 0, 0, 0], &with_rsv1).is_err(),
            "RSV2 still reserved"
        );
    }

    #[test]
    fn reserved_opcodes_earn_1002() {
        for op in (0x3..=0x7).chain(0xB..=0xF) {
            let e = header(&[0x80 | op, 0x80], &SERVER).unwrap_err();
            assert_eq!(e, ProtocolError::ReservedOpcode(op));
            assert_eq!(e.close_code().0, 1002);
        }
    }

    #[test]
    fn masking_rules_by_role() {
        assert_eq!(
            header(b"\x81\x05Hello", &SERVER),
            Err(ProtocolError::UnmaskedFrame)
        );
        assert_eq!(
            header(&[0x81, 0x80, 0, 0, 0, 0], &CLIENT),
            Err(ProtocolError::MaskedFrame)
        );
        assert_eq!(ProtocolError::UnmaskedFrame.close_code().0, 1002);
    }

    #[test]
    fn control_frame_rules() {
        // Ping with 126-byte payload (16-bit form): too long, detected from the first 2 bytes.
        assert_eq!(
            header(&[0x89, 0xFE], &SERVER),
            Err(ProtocolError::ControlFrameTooLong(126))
        );
        // Fragmented ping.
        assert_eq!(
            header(&[0x09, 0x80], &SERVER),
            Err(ProtocolError::FragmentedControlFrame)
        );
        assert_eq!(
            header(&[0x08, 0x80], &SERVER),
            Err(ProtocolError::FragmentedControlFrame)
        );
        // 125 bytes is fine.
        assert!(matches!(
            header(&[0x8A, 0xFD, 0, 0, 0, 0], &SERVER),
            Ok(Decoded::Complete(_))
        ));
    }

    #[test]
    fn zero_length_frame_and_trailing_bytes() {
        let mut buf = [0x89, 0x80, 1, 2, 3, 4, 0xFF, 0xFF];
        let Decoded::Complete(f) = decode_frame(&mut buf, &SERVER).unwrap() else {
            panic!()
        };
        assert_eq!(f.payload, 6..6);
        assert_eq!(f.len, 6);
        assert_eq!(
            &buf[6..],
            &[0xFF, 0xFF],
            "bytes after the frame are untouched"
        );
    }
}

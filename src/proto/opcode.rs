//! Frame opcodes (RFC 6455 §5.2, §11.8). Conversion from a byte rejects reserved values.

use super::error::ProtocolError;

/// A frame opcode that is defined by RFC 6455. Reserved opcodes cannot be represented.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OpCode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl OpCode {
    /// Close, Ping and Pong are control frames (§5.5).
    #[inline]
    pub fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }
}

impl TryFrom<u8> for OpCode {
    type Error = ProtocolError;

    #[inline]
    fn try_from(b: u8) -> Result<Self, ProtocolError> {
        Ok(match b {
            0x0 => Self::Continuation,
            0x1 => Self::Text,
            0x2 => Self::Binary,
            0x8 => Self::Close,
            0x9 => Self::Ping,
            0xA => Self::Pong,
            other => return Err(ProtocolError::ReservedOpcode(other)),
        })
    }
}

/// The kind of a data message: what the first frame's opcode said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    Text,
    Binary,
}

impl DataKind {
    pub fn opcode(self) -> OpCode {
        match self {
            Self::Text => OpCode::Text,
            Self::Binary => OpCode::Binary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_converts_or_is_reserved() {
        for b in 0u8..=255 {
            match OpCode::try_from(b) {
                Ok(op) => assert_eq!(op as u8, b),
                Err(e) => {
                    assert_eq!(e, ProtocolError::ReservedOpcode(b));
                    assert!(matches!(b, 0x3..=0x7 | 0xB..=0xFF));
                }
            }
        }
    }

    #[test]
    fn control_opcodes() {
        assert!(OpCode::Close.is_control());
        assert!(OpCode::Ping.is_control());
        assert!(OpCode::Pong.is_control());
        assert!(!OpCode::Text.is_control());
        assert!(!OpCode::Binary.is_control());
        assert!(!OpCode::Continuation.is_control());
    }
}

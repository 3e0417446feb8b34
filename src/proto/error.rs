//! Protocol errors: one variant per RFC 6455 rule a peer can break.
//!
//! Every variant knows the close code it earns ([`ProtocolError::close_code`]); the connection
//! code sends that code with the error's `Display` text (truncated to fit) as the close reason.
//! Handshake errors live in [`super::handshake::HandshakeError`] because they earn HTTP statuses.

use super::close::CloseCode;

/// A violation of RFC 6455 framing, fragmentation, close or UTF-8 rules by the peer.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// RSV1–3 set without an extension that defines them (§5.2).
    #[error("reserved bits {0:#05b} set without a negotiated extension")]
    ReservedBits(u8),
    /// Opcodes 0x3–0x7 and 0xB–0xF are reserved (§5.2).
    #[error("reserved opcode {0:#x}")]
    ReservedOpcode(u8),
    /// A client frame without the MASK bit (§5.1).
    #[error("client frame is not masked")]
    UnmaskedFrame,
    /// A server frame with the MASK bit (§5.1).
    #[error("server frame is masked")]
    MaskedFrame,
    /// A 64-bit payload length with the most significant bit set (§5.2).
    #[error("64-bit payload length has its top bit set")]
    LengthTopBit,
    /// Control frames carry at most 125 bytes (§5.5).
    #[error("control frame of {0} bytes (limit 125)")]
    ControlFrameTooLong(u64),
    /// Control frames must not be fragmented (§5.5).
    #[error("fragmented control frame")]
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    #[error("continuation frame without a message to continue")]
    UnexpectedContinuation,
    /// A new Text/Binary frame while a fragmented message is in progress (§5.4).
    #[error("new data frame inside a fragmented message")]
    ExpectedContinuation,
    /// A frame longer than the configured limit.
    #[error("frame of {len} bytes exceeds the limit of {max} bytes")]
    FrameTooLarge { len: u64, max: u64 },
    /// A message (all fragments together) longer than the configured limit.
    #[error("message of at least {len} bytes exceeds the limit of {max} bytes")]
    MessageTooLarge { len: u64, max: u64 },
    /// A Text message or close reason that is not UTF-8 (§8.1).
    #[error("invalid UTF-8 in text message")]
    InvalidUtf8,
    /// A compressed message that is not valid deflate data (RFC 7692 §6.2).
    #[error("invalid permessage-deflate data")]
    BadCompressedData,
    /// A close payload of exactly one byte (§5.5.1).
    #[error("close payload of 1 byte (a code needs 2)")]
    CloseBodyOneByte,
    /// A close code that may not be sent on the wire (§7.4).
    #[error("close code {0} may not be sent on the wire")]
    InvalidCloseCode(u16),
    /// A close reason that is not UTF-8 (§5.5.1).
    #[error("close reason is not UTF-8")]
    CloseReasonNotUtf8,
}

impl ProtocolError {
    /// The close code this error earns (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> CloseCode {
        match self {
            Self::FrameTooLarge { .. } | Self::MessageTooLarge { .. } => CloseCode::TOO_BIG,
            Self::InvalidUtf8 | Self::CloseReasonNotUtf8 | Self::BadCompressedData => {
                CloseCode::INVALID_PAYLOAD
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }
}

//! Control frame payloads (Ping, Pong, Close) kept on the stack: at most 125 bytes (§5.5), so
//! answering a Ping or sending a Close never allocates.

use super::close::{CloseCode, MAX_CLOSE_REASON};

/// Largest control frame payload (§5.5).
pub const MAX_CONTROL_PAYLOAD: usize = 125;

/// Up to 125 bytes of control frame payload.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ControlPayload {
    buf: [u8; MAX_CONTROL_PAYLOAD],
    len: u8,
}

impl ControlPayload {
    pub const EMPTY: Self = Self {
        buf: [0; MAX_CONTROL_PAYLOAD],
        len: 0,
    };

    /// A copy of `bytes`, or `None` when it is longer than 125 bytes.
    pub fn new(bytes: &[u8]) -> Option<Self> {
        let mut p = Self::EMPTY;
        p.try_extend(bytes).then_some(p)
    }

    /// A close payload: the code, then `reason` cut to 123 bytes at a char boundary.
    pub fn close(code: CloseCode, reason: &str) -> Self {
        let mut cut = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut p = Self::EMPTY;
        p.try_extend(&code.0.to_be_bytes());
        p.try_extend(&reason.as_bytes()[..cut]);
        p
    }

    /// Appends `bytes`; false (and nothing appended) when they would not fit.
    pub fn try_extend(&mut self, bytes: &[u8]) -> bool {
        let at = self.len as usize;
        if at + bytes.len() > MAX_CONTROL_PAYLOAD {
            return false;
        }
        self.buf[at..at + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len() as u8;
        true
    }

    /// Room for `n` more bytes at the end, to be filled by the caller (e.g. unmasked into).
    pub(crate) fn append_slot(&mut self, n: usize) -> &mut [u8] {
        let at = self.len as usize;
        assert!(
            at + n <= MAX_CONTROL_PAYLOAD,
            "control payload over 125 bytes"
        );
        self.len += n as u8;
        &mut self.buf[at..at + n]
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..self.len as usize]
    }

    pub fn len(&self) -> usize {
        self.len as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl std::fmt::Debug for ControlPayload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "ControlPayload({:?})",
            String::from_utf8_lossy(self.as_bytes())
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::close::parse_close_payload;

    #[test]
    fn holds_up_to_125_bytes() {
        assert_eq!(ControlPayload::new(&[7; 125]).unwrap().len(), 125);
        assert!(ControlPayload::new(&[7; 126]).is_none());
        assert!(ControlPayload::new(b"").unwrap().is_empty());
    }

    #[test]
    fn close_payload_cuts_long_reasons_at_a_char_boundary() {
        let p = ControlPayload::close(CloseCode::NORMAL, "Normal closure");
        assert_eq!(p.as_bytes(), b"\x03\xe8Normal closure");
        let long = "é".repeat(100); // 200 bytes
        let p = ControlPayload::close(CloseCode::GOING_AWAY, &long);
        let body = parse_close_payload(p.as_bytes()).unwrap().unwrap();
        assert_eq!(body.code, CloseCode::GOING_AWAY);
        assert_eq!(body.reason.len(), 122, "61 two-byte chars fit in 123 bytes");
    }
}

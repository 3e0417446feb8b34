//! Close frames (RFC 6455 §5.5.1, §7.4): codes and validation of received close payloads.
//! Building one is [`super::control::ControlPayload::close`].

use super::error::ProtocolError;
use super::utf8;

use super::control::MAX_CONTROL_PAYLOAD;

/// Largest close reason: the control payload minus the two code bytes.
pub const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;

/// A close status code (§7.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CloseCode(pub u16);

impl CloseCode {
    pub const NORMAL: Self = Self(1000);
    pub const GOING_AWAY: Self = Self(1001);
    pub const PROTOCOL_ERROR: Self = Self(1002);
    pub const UNSUPPORTED_DATA: Self = Self(1003);
    /// Never sent: "no status code was present".
    pub const NO_STATUS: Self = Self(1005);
    /// Never sent: "closed abnormally" (no close frame).
    pub const ABNORMAL: Self = Self(1006);
    pub const INVALID_PAYLOAD: Self = Self(1007);
    pub const POLICY_VIOLATION: Self = Self(1008);
    pub const TOO_BIG: Self = Self(1009);
    pub const MANDATORY_EXTENSION: Self = Self(1010);
    pub const INTERNAL_ERROR: Self = Self(1011);
    pub const SERVICE_RESTART: Self = Self(1012);
    pub const TRY_AGAIN_LATER: Self = Self(1013);

    /// May this code appear in a close frame? 1000–1003, 1007–1014 and 3000–4999 may;
    /// everything below 1000, 1004–1006, 1015, 1016–2999 and 5000+ may not.
    pub fn is_valid_on_wire(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl std::fmt::Display for CloseCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// A validated close payload, borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CloseBody<'a> {
    pub code: CloseCode,
    pub reason: &'a str,
}

/// Validates a received close payload: `Ok(None)` for an empty one (no status code).
pub fn parse_close_payload(payload: &[u8]) -> Result<Option<CloseBody<'_>>, ProtocolError> {
    match payload {
        [] => Ok(None),
        [_] => Err(ProtocolError::CloseBodyOneByte),
        [hi, lo, reason @ ..] => {
            let code = CloseCode(u16::from_be_bytes([*hi, *lo]));
            if !code.is_valid_on_wire() {
                return Err(ProtocolError::InvalidCloseCode(code.0));
            }
            let reason = utf8::validate(reason).map_err(|_| ProtocolError::CloseReasonNotUtf8)?;
            Ok(Some(CloseBody { code, reason }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_validity_of_every_code() {
        for c in 0..=u16::MAX {
            let want = matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(c).is_valid_on_wire(), want, "code {c}");
        }
        for bad in [0, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
            assert!(!CloseCode(bad).is_valid_on_wire(), "{bad}");
        }
    }

    #[test]
    fn empty_payload_has_no_status() {
        assert_eq!(parse_close_payload(&[]), Ok(None));
    }

    #[test]
    fn one_byte_payload_is_a_protocol_error() {
        let e = parse_close_payload(&[0x03]).unwrap_err();
        assert_eq!(e, ProtocolError::CloseBodyOneByte);
        assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
    }

    #[test]
    fn code_and_reason() {
        let body = parse_close_payload(b"\x03\xe8bye").unwrap().unwrap();
        assert_eq!(body.code, CloseCode::NORMAL);
        assert_eq!(body.reason, "bye");
        let body = parse_close_payload(&[0x0f, 0xa0]).unwrap().unwrap(); // 4000
        assert_eq!(body.code, CloseCode(4000));
        assert_eq!(body.reason, "");
    }

    #[test]
    fn invalid_codes_earn_1002() {
        for c in [
            0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
        ] {
            let e = parse_close_payload(&c.to_be_bytes()).unwrap_err();
            assert_eq!(e, ProtocolError::InvalidCloseCode(c));
            assert_eq!(e.close_code(), CloseCode::PROTOCOL_ERROR);
        }
    }

    #[test]
    fn non_utf8_reason_earns_1007() {
        let e = parse_close_payload(
            b"\x03\xe8\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80",
        )
        .unwrap_err();
        assert_eq!(e, ProtocolError::CloseReasonNotUtf8);
        assert_eq!(e.close_code(), CloseCode::INVALID_PAYLOAD);
    }
}

//! The Centrifugo client protocol's error codes (in a reply's `error`) and disconnect codes
//! (a WebSocket Close frame's code and reason), with the reconnect advice their ranges carry.
//!
//! Codes and messages as Centrifugo defines them (`centrifuge/errors.go`, `disconnect.go`):
//! 3000–3499 and 4000–4499 tell the SDK to reconnect; 3500–3999 and 4500–4999 are terminal.

use std::borrow::Cow;

/// An error answered in a reply: `{"id":N,"error":{"code":C,"message":"…"}}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientError {
    pub code: u32,
    pub message: Cow<'static, str>,
    /// The SDKs retry temporary errors.
    pub temporary: bool,
}

impl ClientError {
    const fn fixed(code: u32, message: &'static str, temporary: bool) -> Self {
        Self {
            code,
            message: Cow::Borrowed(message),
            temporary,
        }
    }

    pub const INTERNAL: Self = Self::fixed(100, "internal server error", true);
    pub const UNAUTHORIZED: Self = Self::fixed(101, "unauthorized", false);
    pub const UNKNOWN_CHANNEL: Self = Self::fixed(102, "unknown channel", false);
    pub const PERMISSION_DENIED: Self = Self::fixed(103, "permission denied", false);
    pub const METHOD_NOT_FOUND: Self = Self::fixed(104, "method not found", false);
    pub const ALREADY_SUBSCRIBED: Self = Self::fixed(105, "already subscribed", false);
    pub const LIMIT_EXCEEDED: Self = Self::fixed(106, "limit exceeded", false);
    pub const BAD_REQUEST: Self = Self::fixed(107, "bad request", false);
    pub const NOT_AVAILABLE: Self = Self::fixed(108, "not available", false);
    pub const TOKEN_EXPIRED: Self = Self::fixed(109, "token expired", false);
    pub const EXPIRED: Self = Self::fixed(110, "expired", false);
    pub const TOO_MANY_REQUESTS: Self = Self::fixed(111, "too many requests", true);
    pub const UNRECOVERABLE_POSITION: Self = Self::fixed(112, "unrecoverable position", false);

    /// The same code with a message that names the problem (Centrifugo sends only the fixed
    /// text; the SDKs look at the code, so a longer message is safe and more useful).
    pub fn with_detail(&self, detail: impl std::fmt::Display) -> Self {
        Self {
            code: self.code,
            message: Cow::Owned(format!("{}: {detail}", self.message)),
            temporary: self.temporary,
        }
    }
}

/// Why the server closes a connection: the Close frame's code and reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Disconnect {
    pub code: u16,
    pub reason: Cow<'static, str>,
}

/// Close reasons must fit a control frame: 125 bytes minus the 2-byte code. Centrifugo keeps
/// them under 123; so do we, cutting on a character boundary.
pub const MAX_REASON_LEN: usize = 122;

impl Disconnect {
    const fn fixed(code: u16, reason: &'static str) -> Self {
        Self {
            code,
            reason: Cow::Borrowed(reason),
        }
    }

    pub const CONNECTION_CLOSED: Self = Self::fixed(3000, "connection closed");
    pub const SHUTDOWN: Self = Self::fixed(3001, "shutdown");
    pub const INTERNAL: Self = Self::fixed(3004, "internal server error");
    pub const EXPIRED: Self = Self::fixed(3005, "connection expired");
    pub const SUBSCRIPTION_EXPIRED: Self = Self::fixed(3006, "subscription expired");
    pub const SLOW: Self = Self::fixed(3008, "slow");
    pub const WRITE_ERROR: Self = Self::fixed(3009, "write error");
    pub const INSUFFICIENT_STATE: Self = Self::fixed(3010, "insufficient state");
    pub const FORCE_RECONNECT: Self = Self::fixed(3011, "force reconnect");
    pub const NO_PONG: Self = Self::fixed(3012, "no pong");
    pub const TOO_MANY_REQUESTS: Self = Self::fixed(3013, "too many requests");
    pub const INVALID_TOKEN: Self = Self::fixed(3500, "invalid token");
    pub const BAD_REQUEST: Self = Self::fixed(3501, "bad request");
    pub const STALE: Self = Self::fixed(3502, "stale");
    pub const FORCE_NO_RECONNECT: Self = Self::fixed(3503, "force disconnect");
    pub const CONNECTION_LIMIT: Self = Self::fixed(3504, "connection limit");
    pub const CHANNEL_LIMIT: Self = Self::fixed(3505, "channel limit");
    pub const INAPPROPRIATE_PROTOCOL: Self = Self::fixed(3506, "inappropriate protocol");
    pub const PERMISSION_DENIED: Self = Self::fixed(3507, "permission denied");
    pub const NOT_AVAILABLE: Self = Self::fixed(3508, "not available");
    pub const TOO_MANY_ERRORS: Self = Self::fixed(3509, "too many errors");
    /// (ringcast chat) removed by a moderator; terminal, a new connect is allowed.
    pub const KICKED: Self = Self::fixed(4500, "kicked");
    /// (ringcast chat) banned; terminal, connects are refused until the ban ends.
    pub const BANNED: Self = Self::fixed(4501, "banned");

    /// The same code with a reason that names the problem, cut to [`MAX_REASON_LEN`] bytes.
    pub fn with_detail(&self, detail: impl std::fmt::Display) -> Self {
        let mut reason = format!("{}: {detail}", self.reason);
        if reason.len() > MAX_REASON_LEN {
            let mut cut = MAX_REASON_LEN;
            while !reason.is_char_boundary(cut) {
                cut -= 1;
            }
            reason.truncate(cut);
        }
        Self {
            code: self.code,
            reason: Cow::Owned(reason),
        }
    }

    /// Whether the SDKs reconnect after this code.
    pub fn reconnect(&self) -> bool {
        !matches!(self.code, 3500..=3999 | 4500..=4999)
    }
}

/// Codes of an `unsubscribe` push (2000–2999; from 2500 the SDK resubscribes).
pub mod unsubscribe {
    pub const SERVER: (u32, &str) = (2000, "server unsubscribe");
    pub const INSUFFICIENT_STATE: (u32, &str) = (2500, "insufficient state");
    pub const EXPIRED: (u32, &str) = (2501, "subscription expired");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reconnect_advice_follows_the_ranges() {
        assert!(Disconnect::NO_PONG.reconnect());
        assert!(Disconnect::EXPIRED.reconnect());
        assert!(!Disconnect::INVALID_TOKEN.reconnect());
        assert!(!Disconnect::CONNECTION_LIMIT.reconnect());
    }

    #[test]
    fn reasons_fit_a_close_frame() {
        let d = Disconnect::BAD_REQUEST.with_detail("é".repeat(200));
        assert!(d.reason.len() <= MAX_REASON_LEN);
        assert_eq!(d.code, 3501);
        let e = ClientError::PERMISSION_DENIED.with_detail("publish to chat:x");
        assert_eq!(e.message, "permission denied: publish to chat:x");
    }
}

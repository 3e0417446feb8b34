//! Incremental UTF-8 validation for Text messages that arrive in fragments (RFC 6455 §8.1).
//!
//! A code point may straddle two frames (or two reads), so up to three bytes of an incomplete
//! sequence are carried over. Validation fails as soon as a byte makes the text invalid, not at
//! the end of the message: Autobahn's 6.* cases check that a connection is failed fast.
//! The bulk of each piece goes through `simdutf8` (its `compat` API reports where an
//! incomplete tail starts); the straddling code point goes through `std`.

use simdutf8::compat::from_utf8;

/// Length of the sequence a lead byte starts (0 for a continuation or invalid byte).
#[inline]
fn sequence_len(lead: u8) -> usize {
    match lead {
        0x00..=0x7F => 1,
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => 0,
    }
}

/// The bytes are not UTF-8 (or cannot become UTF-8 whatever follows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid UTF-8")]
pub struct Utf8Error;

/// Validates a UTF-8 stream fed in pieces.
#[derive(Debug, Clone, Default)]
pub struct Utf8Validator {
    /// Start of a code point cut by the end of the previous piece (at most 3 bytes).
    pending: [u8; 4],
    pending_len: u8,
}

impl Utf8Validator {
    pub fn new() -> Self {
        Self::default()
    }

    /// True when the stream so far ends on a code point boundary.
    pub fn is_complete(&self) -> bool {
        self.pending_len == 0
    }

    /// Validates the next piece. Errors as soon as the stream cannot be valid UTF-8.
    pub fn feed(&mut self, mut input: &[u8]) -> Result<(), Utf8Error> {
        if self.pending_len > 0 {
            let have = self.pending_len as usize;
            let need = sequence_len(self.pending[0]);
            let take = (need - have).min(input.len());
            self.pending[have..have + take].copy_from_slice(&input[..take]);
            let joined = &self.pending[..have + take];
            match std::str::from_utf8(joined) {
                Ok(_) => self.pending_len = 0,
                Err(e) if e.error_len().is_none() => {
                    // Still a valid prefix and the input ran out.
                    self.pending_len = joined.len() as u8;
                    return Ok(());
                }
                Err(_) => return Err(Utf8Error),
            }
            input = &input[take..];
        }
        match from_utf8(input) {
            Ok(_) => Ok(()),
            Err(e) if e.error_len().is_none() => {
                let tail = &input[e.valid_up_to()..];
                self.pending[..tail.len()].copy_from_slice(tail);
                self.pending_len = tail.len() as u8;
                Ok(())
            }
            Err(_) => Err(Utf8Error),
        }
    }

    /// Ends the stream: an incomplete code point left over is an error. Resets the validator.
    pub fn finish(&mut self) -> Result<(), Utf8Error> {
        let complete = self.is_complete();
        *self = Self::default();
        if complete { Ok(()) } else { Err(Utf8Error) }
    }
}

/// Validates a complete buffer (a close reason, an unfragmented Text payload).
#[inline]
pub fn validate(bytes: &[u8]) -> Result<&str, Utf8Error> {
    simdutf8::basic::from_utf8(bytes).map_err(|_| Utf8Error)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_split(bytes: &[u8], split: usize) -> Result<(), Utf8Error> {
        let mut v = Utf8Validator::new();
        v.feed(&bytes[..split])?;
        v.feed(&bytes[split..])?;
        v.finish()
    }

    #[test]
    fn valid_text_at_every_split_point() {
        let s = "κόσμε ascii 𝄞 € ü \u{10FFFF}".as_bytes();
        for split in 0..=s.len() {
            assert_eq!(feed_split(s, split), Ok(()), "split {split}");
        }
    }

    #[test]
    fn byte_at_a_time() {
        let s = "Hello-µ@ßöäüàá-UTF-8!! 𝄞".as_bytes();
        let mut v = Utf8Validator::new();
        for b in s {
            v.feed(std::slice::from_ref(b)).unwrap();
        }
        v.finish().unwrap();
    }

    #[test]
    fn invalid_text_is_rejected_at_every_split_point() {
        let cases: &[&[u8]] = &[
            b"\xff",
            b"ab\xc0\xafcd",     // overlong '/'
            b"\xed\xa0\x80",     // surrogate U+D800
            b"\xf4\x90\x80\x80", // above U+10FFFF
            b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
            b"\x80",         // lone continuation
            b"\xe0\x80\x80", // overlong 3-byte
        ];
        for c in cases {
            for split in 0..=c.len() {
                assert_eq!(feed_split(c, split), Err(Utf8Error), "{c:x?} split {split}");
            }
        }
    }

    #[test]
    fn truncated_code_point_fails_only_at_finish() {
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"ok \xf0\x9d"), Ok(()));
        assert!(!v.is_complete());
        assert_eq!(v.finish(), Err(Utf8Error));
        // finish() resets: the validator is usable again.
        assert_eq!(v.feed(b"fine"), Ok(()));
        assert_eq!(v.finish(), Ok(()));
    }

    #[test]
    fn fails_fast_on_an_impossible_prefix() {
        // 0xF4 0x90 can never start a valid sequence: error before the sequence ends.
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"\xf4"), Ok(()));
        assert_eq!(v.feed(b"\x90"), Err(Utf8Error));
        let mut v = Utf8Validator::new();
        assert_eq!(v.feed(b"abc\xed\xa0"), Err(Utf8Error), "surrogate prefix");
    }

    #[test]
    fn pending_sequence_completed_by_a_later_piece_then_more_text() {
        let mut v = Utf8Validator::new();
        v.feed(b"\xf0").unwrap();
        v.feed(b"\x9d").unwrap();
        v.feed(b"\x84\x9e and more").unwrap();
        v.finish().unwrap();
    }

    #[test]
    fn agrees_with_std_on_all_two_byte_inputs_split_anywhere() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let s = [a, b, b'x'];
                let want = std::str::from_utf8(&s).is_ok();
                for split in 0..=3 {
                    assert_eq!(feed_split(&s, split).is_ok(), want, "{s:x?} split {split}");
                }
            }
        }
    }
}

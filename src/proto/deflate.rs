//! permessage-deflate payloads (RFC 7692 §7.2), sans-io: one [`Deflater`] and one
//! [`Inflater`] per worker serve every connection, because ringcast only agrees to no context
//! takeover in both directions (see [`super::deflate_negotiation`]): each message is its own
//! deflate stream, so a broadcast is compressed once per window size and shared.
//!
//! Inflating is bounded: output grows in chunks of [`INFLATE_CHUNK`] and stops as soon as it
//! passes the caller's limit (across fragments too), so a deflate bomb costs at most the limit
//! plus one chunk.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

/// The four bytes a sync flush ends with, removed on the wire (§7.2.1) and put back to inflate.
const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// Output grows by at most this much at a time while inflating.
pub const INFLATE_CHUNK: usize = 16 * 1024;

/// Compresses messages, one independent stream each, with a compressor per window size used.
pub struct Deflater {
    level: Compression,
    /// Index = window bits (9–15); made on first use.
    by_window: [Option<Compress>; 16],
}

impl Deflater {
    /// `level` 0–9 (1: fastest, the default of `--compression-level`).
    pub fn new(level: u32) -> Self {
        Self {
            level: Compression::new(level.min(9)),
            by_window: Default::default(),
        }
    }

    /// Compresses `payload` with a `window_bits` window into `out` (cleared first), trailing
    /// `00 00 ff ff` removed. False (and `out` unspecified) when the result is not smaller than
    /// the payload: send it uncompressed then.
    pub fn compress(&mut self, payload: &[u8], window_bits: u8, out: &mut Vec<u8>) -> bool {
        let bits = window_bits.clamp(9, 15);
        let level = self.level;
        let c = self.by_window[bits as usize]
            .get_or_insert_with(|| Compress::new_with_window_bits(level, false, bits));
        c.reset();
        out.clear();
        out.reserve(payload.len() / 2 + 16);
        let mut input = payload;
        loop {
            let before_in = c.total_in();
            let status = c
                .compress_vec(input, out, FlushCompress::Sync)
                .expect("deflate into a Vec cannot fail");
            input = &input[(c.total_in() - before_in) as usize..];
            // Done when all input is taken and the sync flush fit (room left in `out`).
            if input.is_empty() && out.len() < out.capacity() && status != Status::BufError {
                break;
            }
            if out.len() > payload.len() + 64 {
                // Abandoned mid-stream: make a new compressor next time. zlib-rs 0.6.8's
                // `reset` after an abandoned level-1 (deflate_quick) stream leaves state that
                // later panics inside deflate (found by Autobahn 12.2.*; replayed in a test).
                self.by_window[bits as usize] = None;
                return false;
            }
            out.reserve(out.capacity().max(64));
        }
        if out.ends_with(&TAIL) {
            out.truncate(out.len() - TAIL.len());
        }
        out.len() < payload.len()
    }
}

/// Why a compressed message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    /// Inflates to more than the message size limit (close 1009).
    #[error("message inflates past the size limit")]
    TooBig,
    /// Not valid deflate data (close 1007).
    #[error("invalid compressed data")]
    Corrupt,
}

/// Inflates messages, one independent stream each (client_no_context_takeover), window 15.
pub struct Inflater {
    d: Decompress,
    /// The stream's final block has been read: only our own tail may follow.
    ended: bool,
}

impl Default for Inflater {
    fn default() -> Self {
        Self {
            d: Decompress::new_with_window_bits(false, 15),
            ended: false,
        }
    }
}

impl Inflater {
    /// Starts a new message.
    pub fn begin(&mut self) {
        self.d.reset(false);
        self.ended = false;
    }

    /// Inflates one fragment's compressed bytes, appending to `out`; `last` on the message's
    /// final fragment (the stripped tail is put back). Fails as soon as `out` passes `limit`.
    pub fn inflate(
        &mut self,
        mut input: &[u8],
        last: bool,
        limit: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), InflateError> {
        if self.ended {
            // A final block (BFINAL=1) is allowed (§7.2.3.4); nothing may follow it.
            return if input.is_empty() {
                Ok(())
            } else {
                Err(InflateError::Corrupt)
            };
        }
        let mut tail: &[u8] = if last { &TAIL } else { &[] };
        let mut feeding_tail = false;
        loop {
            if input.is_empty() {
                if tail.is_empty() {
                    return Ok(());
                }
                input = std::mem::take(&mut tail);
                feeding_tail = true;
            }
            if out.len() == out.capacity() {
                // Doubling, but never past the limit plus one chunk.
                let cap = out.capacity();
                let want = (cap * 2)
                    .max(cap + INFLATE_CHUNK)
                    .min(limit + INFLATE_CHUNK);
                out.reserve_exact(want.saturating_sub(out.len()).max(1));
            }
            let before_in = self.d.total_in();
            let before_out = out.len();
            let status = self
                .d
                .decompress_vec(input, out, FlushDecompress::Sync)
                .map_err(|_| InflateError::Corrupt)?;
            input = &input[(self.d.total_in() - before_in) as usize..];
            if out.len() > limit {
                return Err(InflateError::TooBig);
            }
            let progressed = out.len() > before_out || self.d.total_in() > before_in;
            if status == Status::StreamEnd {
                // A final block (BFINAL=1) is allowed (§7.2.3.4); only our own tail may follow.
                self.ended = true;
                return if input.is_empty() || feeding_tail {
                    Ok(())
                } else {
                    Err(InflateError::Corrupt)
                };
            }
            if !progressed && out.len() < out.capacity() {
                // Needs more input than this fragment has: the next fragment continues.
                if input.is_empty() && tail.is_empty() {
                    return Ok(());
                }
                return Err(InflateError::Corrupt);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::io::{Read, Write};

    fn inflate_all(data: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
        let mut i = Inflater::default();
        i.begin();
        let mut out = Vec::new();
        i.inflate(data, true, limit, &mut out)?;
        Ok(out)
    }

    /// flate2's reference path: raw deflate with a sync flush, tail stripped.
    fn reference_compress(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), Compression::new(6));
        e.write_all(data).unwrap();
        e.flush().unwrap();
        let mut v = e.get_ref().clone();
        assert!(v.ends_with(&TAIL));
        v.truncate(v.len() - 4);
        v
    }

    fn reference_inflate(data: &[u8]) -> Vec<u8> {
        let mut input = data.to_vec();
        input.extend_from_slice(&TAIL);
        let mut d = flate2::read::DeflateDecoder::new(&input[..]);
        let mut out = Vec::new();
        let _ = d.read_to_end(&mut out);
        out
    }

    #[test]
    fn json_compresses_and_round_trips() {
        let msg =
            br#"{"push":{"channel":"chat:1","pub":{"data":{"text":"hello hello hello hello"}}}}"#
                .repeat(20);
        let mut d = Deflater::new(1);
        let mut out = Vec::new();
        assert!(d.compress(&msg, 15, &mut out));
        assert!(out.len() < msg.len() / 4, "{} of {}", out.len(), msg.len());
        assert_eq!(inflate_all(&out, 1 << 20).unwrap(), msg);
        assert_eq!(reference_inflate(&out), msg, "flate2's reference agrees");
        // Independent messages: the same input compresses to the same bytes every time.
        let mut again = Vec::new();
        assert!(d.compress(&msg, 15, &mut again));
        assert_eq!(out, again);
    }

    #[test]
    fn incompressible_and_empty_payloads_are_not_compressed() {
        let mut d = Deflater::new(1);
        let mut out = Vec::new();
        let mut x = 0x9e3779b97f4a7c15u64;
        let noise: Vec<u8> = (0..2000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        assert!(!d.compress(&noise, 15, &mut out));
        assert!(!d.compress(b"", 15, &mut out));
        assert!(!d.compress(b"a", 15, &mut out));
    }

    #[test]
    fn a_bomb_stops_at_the_limit_plus_one_chunk() {
        let zeros = vec![0u8; 16 << 20];
        let bomb = reference_compress(&zeros);
        assert!(
            bomb.len() < 32 << 10,
            "16 MiB of zeros is a small bomb: {}",
            bomb.len()
        );
        let mut i = Inflater::default();
        i.begin();
        let mut out = Vec::new();
        let limit = 1 << 20;
        assert_eq!(
            i.inflate(&bomb, true, limit, &mut out),
            Err(InflateError::TooBig)
        );
        assert!(
            out.capacity() <= limit + 2 * INFLATE_CHUNK,
            "allocated {}",
            out.capacity()
        );
    }

    #[test]
    fn across_fragments_and_corrupt_input() {
        let msg = b"fragmented message, fragmented message, fragmented message".repeat(50);
        let c = reference_compress(&msg);
        let (a, b) = c.split_at(c.len() / 3);
        let mut i = Inflater::default();
        i.begin();
        let mut out = Vec::new();
        i.inflate(a, false, 1 << 20, &mut out).unwrap();
        i.inflate(b, true, 1 << 20, &mut out).unwrap();
        assert_eq!(out, msg);
        // The limit counts across fragments.
        i.begin();
        let mut out = Vec::new();
        i.inflate(a, false, 100, &mut out).err();
        let r = i.inflate(b, true, 100, &mut out);
        assert_eq!(r, Err(InflateError::TooBig));
        assert_eq!(
            inflate_all(&[0xff, 0xff, 0xff], 1 << 20),
            Err(InflateError::Corrupt)
        );
    }

    proptest! {
        #[test]
        fn round_trips_through_ours_and_the_reference(
            words in prop::collection::vec(prop::sample::select(vec!["chat", "hello", "{", "}", "\"", "42", " ", "ü"]), 0..400),
            bits in 9u8..=15,
            level in 0u32..=9,
        ) {
            let msg = words.concat().into_bytes();
            let mut d = Deflater::new(level);
            let mut out = Vec::new();
            if d.compress(&msg, bits, &mut out) {
                prop_assert_eq!(inflate_all(&out, 1 << 20).unwrap(), msg.clone());
                prop_assert_eq!(reference_inflate(&out), msg.clone());
            }
            let theirs = reference_compress(&msg);
            prop_assert_eq!(inflate_all(&theirs, 1 << 20).unwrap(), msg);
        }
    }
}

//! A worker's permessage-deflate state: one compressor and one inflater for all of its
//! connections (ringcast only agrees to no context takeover both ways), and the cache that
//! makes a broadcast cost one compression per worker and window size instead of one per
//! recipient.
//!
//! Owns: turning an outgoing server frame into its compressed form for a connection's window
//! (or leaving it as it is: control frames, small payloads, no gain), the counters of that
//! work. Must not: decide what was negotiated (that is [`crate::proto::deflate_negotiation`])
//! or touch sockets.
//!
//! The cache holds, per window size, the last frame compressed and its result. Every recipient
//! of a broadcast on this worker gets the same `Bytes` (same pointer, same length), and the
//! worker fans a delivery out to its members in one go, so all but the first find it here.
//! The cache keeps its source frame alive, so a pointer match can never be a different frame.

use std::sync::atomic::AtomicU64;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};

use super::counters::WorkerCounters;
use crate::proto::OpCode;
use crate::proto::deflate::{Deflater, Inflater};
use crate::proto::encode::{encode_header, header_len};
use crate::proto::inflate_pool::InflaterPool;

/// `--compression-min-size` and `--compression-level`, as the workers use them.
#[derive(Debug, Clone, Copy)]
pub struct CompressionSettings {
    pub min_size: usize,
    pub level: u32,
    /// Inflaters lent at once (`--max-inflating`).
    pub max_inflating: usize,
}

/// Server-wide counters of the compression work (summed over workers for `/metrics`).
#[derive(Debug, Default)]
pub struct CompressionCounters {
    /// Frames sent compressed (counted per compression, not per recipient).
    pub compressed: AtomicU64,
    /// Data frames sent plain to compressing connections: under the minimum size (counted per
    /// recipient), or deflate did not make them smaller (per worker and window size).
    pub skipped: AtomicU64,
    /// Payload bytes before and after, per compression.
    pub bytes_before: AtomicU64,
    pub bytes_after: AtomicU64,
    /// Time spent compressing and inflating.
    pub compress_ns: AtomicU64,
    pub inflate_ns: AtomicU64,
    /// Compressed messages received and inflated.
    pub inflated: AtomicU64,
    /// Compressed messages received whole before inflating: `--max-inflating` connections were
    /// already in the middle of one.
    pub inflate_pool_exhausted: AtomicU64,
}

/// The last frame compressed for one window size: the source (kept alive) and what to send.
struct Cached {
    source: Bytes,
    result: Bytes,
}

/// One per worker.
pub struct WorkerCompression {
    settings: CompressionSettings,
    deflater: Deflater,
    /// Inflates messages received whole (the pool had none left).
    pub inflater: Inflater,
    /// Lent to connections to inflate a compressed message as it arrives.
    pub inflaters: InflaterPool,
    /// Index: window bits − 9.
    cache: [Option<Cached>; 7],
    scratch: Vec<u8>,
}

impl WorkerCompression {
    pub fn new(settings: CompressionSettings) -> Self {
        Self {
            settings,
            deflater: Deflater::new(settings.level),
            inflater: Inflater::default(),
            inflaters: InflaterPool::new(settings.max_inflating),
            cache: Default::default(),
            scratch: Vec::new(),
        }
    }

    /// The frame to send to a connection that agreed on a `window_bits` window: compressed
    /// (RSV1) when it is a final Text/Binary frame of at least the minimum size and deflate
    /// makes it smaller, else `frame` itself.
    pub fn frame_for(
        &mut self,
        frame: &Bytes,
        window_bits: u8,
        counters: &CompressionCounters,
    ) -> Bytes {
        let Some((opcode, header)) = data_frame_header(frame) else {
            return frame.clone();
        };
        let payload = &frame[header..];
        if payload.len() < self.settings.min_size {
            WorkerCounters::add(&counters.skipped, 1);
            return frame.clone();
        }
        let slot = usize::from(window_bits.clamp(9, 15) - 9);
        if let Some(c) = &self.cache[slot]
            && c.source.as_ptr() == frame.as_ptr()
            && c.source.len() == frame.len()
        {
            return c.result.clone();
        }
        let started = Instant::now();
        let smaller = self
            .deflater
            .compress(payload, window_bits, &mut self.scratch);
        WorkerCounters::add(&counters.compress_ns, started.elapsed().as_nanos() as u64);
        let result = if smaller {
            WorkerCounters::add(&counters.compressed, 1);
            WorkerCounters::add(&counters.bytes_before, payload.len() as u64);
            WorkerCounters::add(&counters.bytes_after, self.scratch.len() as u64);
            compressed_frame(opcode, &self.scratch)
        } else {
            WorkerCounters::add(&counters.skipped, 1);
            frame.clone()
        };
        self.cache[slot] = Some(Cached {
            source: frame.clone(),
            result: result.clone(),
        });
        result
    }
}

/// Opcode and header length of an unmasked, final, uncompressed Text or Binary server frame.
fn data_frame_header(frame: &[u8]) -> Option<(OpCode, usize)> {
    let (&b0, &b1) = (frame.first()?, frame.get(1)?);
    let opcode = match b0 {
        0x81 => OpCode::Text,
        0x82 => OpCode::Binary,
        _ => return None, // control, fragment, already RSV1, or not a frame we made
    };
    let header = match b1 {
        0..=125 => 2,
        126 => 4,
        127 => 10,
        _ => return None, // masked: not a server frame
    };
    (frame.len() >= header).then_some((opcode, header))
}

/// A final frame with RSV1 set around a compressed payload.
fn compressed_frame(opcode: OpCode, payload: &[u8]) -> Bytes {
    let len = payload.len() as u64;
    let mut b = BytesMut::with_capacity(header_len(len) + payload.len());
    b.put_slice(encode_header(true, opcode, None, len).as_bytes());
    b[0] |= 0x40; // RSV1: this message is compressed (RFC 7692 §6)
    b.put_slice(payload);
    b.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::encode::server_frame;
    use std::sync::atomic::Ordering;

    fn worker() -> WorkerCompression {
        WorkerCompression::new(CompressionSettings {
            min_size: 256,
            level: 1,
            max_inflating: 4,
        })
    }

    fn inflate(frame: &[u8]) -> Vec<u8> {
        let (_, h) = (frame[0], header_len_of(frame));
        let mut i = Inflater::default();
        i.begin();
        let mut out = Vec::new();
        i.inflate(&frame[h..], true, 1 << 24, &mut out).unwrap();
        out
    }

    fn header_len_of(frame: &[u8]) -> usize {
        match frame[1] & 0x7f {
            126 => 4,
            127 => 10,
            _ => 2,
        }
    }

    #[test]
    fn a_broadcast_is_compressed_once_per_window_size() {
        let mut w = worker();
        let c = CompressionCounters::default();
        let payload =
            br#"{"push":{"channel":"news","pub":{"data":"hello hello hello"}}}"#.repeat(10);
        let frame = server_frame(OpCode::Text, &payload);
        let a = w.frame_for(&frame, 15, &c);
        let b = w.frame_for(&frame, 15, &c);
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "the second recipient shares the first's bytes"
        );
        assert_eq!(c.compressed.load(Ordering::Relaxed), 1);
        assert_eq!(a[0], 0xC1, "FIN + RSV1 + Text");
        assert!(a.len() < frame.len() / 3);
        assert_eq!(inflate(&a), payload);
        let small_window = w.frame_for(&frame, 10, &c);
        assert_eq!(
            c.compressed.load(Ordering::Relaxed),
            2,
            "another window, another stream"
        );
        assert_eq!(inflate(&small_window), payload);
        assert_eq!(
            w.frame_for(&frame, 15, &c).as_ptr(),
            a.as_ptr(),
            "classes cached apart"
        );
        // An equal frame in another buffer is compressed afresh (no false sharing by content).
        let twin = server_frame(OpCode::Text, &payload);
        assert_ne!(w.frame_for(&twin, 15, &c).as_ptr(), a.as_ptr());
    }

    #[test]
    fn small_control_and_incompressible_frames_go_plain() {
        let mut w = worker();
        let c = CompressionCounters::default();
        let small = server_frame(OpCode::Text, b"hi");
        assert_eq!(w.frame_for(&small, 15, &c), small);
        let ping = server_frame(OpCode::Ping, &[b'x'; 100]);
        assert_eq!(w.frame_for(&ping, 15, &c), ping);
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let noise: Vec<u8> = (0..4096)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        let random = server_frame(OpCode::Binary, &noise);
        assert_eq!(w.frame_for(&random, 15, &c), random);
        assert_eq!(c.skipped.load(Ordering::Relaxed), 2);
        assert_eq!(c.compressed.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn long_headers_are_read_right() {
        let mut w = worker();
        let c = CompressionCounters::default();
        for len in [300, 70_000] {
            let payload = vec![b'a'; len];
            let frame = server_frame(OpCode::Binary, &payload);
            let out = w.frame_for(&frame, 15, &c);
            assert_eq!(out[0], 0xC2);
            assert_eq!(inflate(&out), payload);
        }
    }
}

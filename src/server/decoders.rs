//! A worker's pool of idle WebSocket decoders.
//!
//! A connection needs its own decoder only while a frame or a message is partly read. Between
//! messages — nearly always, for a chat or notification client — a decoder holds nothing of
//! the connection's, so the reader gives it back here when a read ends on a message boundary
//! and takes one when the next bytes arrive: an idle connection carries no decoder (its
//! ≈ 490 bytes and the message buffer it kept, results/decoder-pool.md). Taking and giving
//! are a `Vec` pop and push: no allocation once the pool is warm.
//! Bounded by count ([`DecoderPool::new`]'s `max`; more idle decoders are freed) and by what
//! a pooled decoder keeps (a message buffer of at most `keep` bytes).
//! Must not: decode, or hold a decoder in the middle of a frame or message.

use std::cell::RefCell;

use crate::proto::decoder::{Decoder, DecoderConfig};
use crate::proto::inflate_pool::InflaterPool;

pub struct DecoderPool {
    /// Boxed on purpose: a decoder moves between a connection and the pool as a pointer.
    #[allow(clippy::vec_box)]
    free: RefCell<Vec<Box<Decoder>>>,
    cfg: DecoderConfig,
    max: usize,
    keep: usize,
}

impl DecoderPool {
    pub fn new(cfg: DecoderConfig, max: usize, keep: usize) -> Self {
        Self {
            free: RefCell::new(Vec::new()),
            cfg,
            max,
            keep,
        }
    }

    /// A decoder for a connection: compressed messages allowed (and inflated with
    /// `inflaters`) when it agreed to permessage-deflate.
    pub fn take(&self, inflaters: Option<InflaterPool>) -> Box<Decoder> {
        let mut d = self
            .free
            .borrow_mut()
            .pop()
            .unwrap_or_else(|| Box::new(Decoder::new(self.cfg)));
        d.reuse(inflaters, self.keep);
        d
    }

    /// Takes back a decoder whose connection read up to a message boundary (the slot is then
    /// empty); one in the middle of something stays in the slot.
    pub fn give(&self, slot: &mut Option<Box<Decoder>>) {
        let Some(d) = slot.as_ref() else { return };
        if !d.is_idle() || d.is_inflating() {
            return;
        }
        let d = slot.take().expect("checked");
        let mut free = self.free.borrow_mut();
        if free.len() < self.max {
            free.push(d);
        }
    }

    #[cfg(test)]
    fn pooled(&self) -> usize {
        self.free.borrow().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::Role;
    use crate::proto::decoder::Event;

    fn pool(max: usize) -> DecoderPool {
        let cfg = DecoderConfig {
            role: Role::Server,
            max_frame_size: 1 << 20,
            max_message_size: 1 << 20,
        };
        DecoderPool::new(cfg, max, 1024)
    }

    /// A masked client frame (FIN, `opcode`, mask key 0 so the payload reads as it is).
    fn frame(fin: bool, opcode: u8, rsv1: bool, payload: &[u8]) -> Vec<u8> {
        let mut f = vec![
            (u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode,
            0x80 | payload.len() as u8,
        ];
        f.extend_from_slice(&[0, 0, 0, 0]);
        f.extend_from_slice(payload);
        f
    }

    fn decode_all(d: &mut Decoder, mut input: &[u8]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(ev) = d.decode(&mut input).expect("valid") {
            if let Event::Message(m) = ev {
                out.push(m.payload().to_vec());
            }
        }
        out
    }

    #[test]
    fn a_decoder_goes_back_only_on_a_message_boundary() {
        let p = pool(8);
        let mut slot = Some(p.take(None));
        let first = frame(false, 1, false, b"hel");
        assert!(decode_all(slot.as_mut().unwrap(), &first).is_empty());
        p.give(&mut slot);
        assert!(slot.is_some(), "a fragmented message is half read");
        let half = frame(true, 0, false, b"lo");
        assert_eq!(
            decode_all(slot.as_mut().unwrap(), &half[..3]),
            Vec::<Vec<u8>>::new()
        );
        p.give(&mut slot);
        assert!(slot.is_some(), "a frame header is half read");
        assert_eq!(
            decode_all(slot.as_mut().unwrap(), &half[3..]),
            [b"hello".to_vec()]
        );
        p.give(&mut slot);
        assert!(slot.is_none());
        assert_eq!(p.pooled(), 1);
    }

    #[test]
    fn a_reused_decoder_takes_the_new_connections_compression_setting() {
        let p = pool(8);
        let mut slot = Some(p.take(Some(InflaterPool::new(1))));
        p.give(&mut slot);
        assert!(slot.is_none());
        // Now for a connection without permessage-deflate: RSV1 is a protocol error (1002).
        let mut d = p.take(None);
        let mut input = &frame(true, 1, true, b"x")[..];
        let err = d.decode(&mut input).expect_err("RSV1 without deflate");
        assert_eq!(err.close_code().0, 1002);
    }

    #[test]
    fn the_pool_is_bounded() {
        let p = pool(2);
        let mut slots: Vec<_> = (0..5).map(|_| Some(p.take(None))).collect();
        for s in &mut slots {
            p.give(s);
            assert!(s.is_none());
        }
        assert_eq!(p.pooled(), 2);
    }
}

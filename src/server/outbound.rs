//! A connection's outbound queue: shared frames waiting for the next flush, bounded in bytes.
//!
//! Frames — data, Pong, Ping — count against `max_backlog` (queued bytes plus the send in
//! flight); passing it makes the connection a slow consumer, which the caller closes with
//! 1008, so the queue never grows past the limit (a client that floods Pings and never reads
//! is one). Only the handshake answer and the final Close bypass the limit: each happens once.
//! After a Close frame nothing else is queued (RFC 6455 §5.5.1).

use std::collections::VecDeque;

use bytes::Bytes;

/// What happened to a frame offered to the queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    Queued,
    /// The connection is closing: the frame was dropped.
    Closing,
    /// Queuing it would pass the backlog limit: the connection is a slow consumer.
    Overflow,
}

#[derive(Debug)]
pub struct Outbound {
    queue: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Bytes of the send in flight (they still occupy memory until the kernel takes them).
    in_flight: usize,
    max_backlog: usize,
    close_queued: bool,
    /// Once everything queued is sent, end the TLS session and the connection.
    finish: bool,
}

impl Outbound {
    pub fn new(max_backlog: usize) -> Self {
        Self {
            queue: VecDeque::new(),
            queued_bytes: 0,
            in_flight: 0,
            max_backlog,
            close_queued: false,
            finish: false,
        }
    }

    pub fn offer(&mut self, frame: Bytes) -> Offer {
        if self.close_queued {
            return Offer::Closing;
        }
        if self.backlog() + frame.len() > self.max_backlog {
            return Offer::Overflow;
        }
        self.push(frame);
        Offer::Queued
    }

    /// Queues the handshake answer (101 or an HTTP error): once per connection, not limited.
    pub fn push_handshake(&mut self, frame: Bytes) {
        if !self.close_queued {
            self.push(frame);
        }
    }

    /// Queues raw bytes of an HTTP answer (a response head, a file chunk): not limited here,
    /// the file stream keeps one chunk in flight itself. False when the connection is closing.
    pub fn push_raw(&mut self, bytes: Bytes) -> bool {
        if self.close_queued || self.finish {
            return false;
        }
        self.push(bytes);
        true
    }

    /// Queues a Close frame, dropping data frames not yet sent when `discard_pending` (a slow
    /// consumer must not wait for its backlog). False when a Close was already queued.
    pub fn push_close(&mut self, frame: Bytes, discard_pending: bool) -> bool {
        if self.close_queued {
            return false;
        }
        if discard_pending {
            self.queue.clear();
            self.queued_bytes = 0;
        }
        self.push(frame);
        self.close_queued = true;
        true
    }

    fn push(&mut self, frame: Bytes) {
        self.queued_bytes += frame.len();
        self.queue.push_back(frame);
    }

    pub fn close_queued(&self) -> bool {
        self.close_queued
    }

    /// Ask for the connection to end once everything queued has been sent.
    pub fn finish(&mut self) {
        self.finish = true;
    }

    pub fn finishing(&self) -> bool {
        self.finish
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    pub fn backlog(&self) -> usize {
        self.queued_bytes + self.in_flight
    }

    /// Where the next queued frame will be written, for a prefetch hint. Wrong (one past the
    /// buffer's end) when the frame wraps to the buffer's start or the queue must grow, which
    /// a hint tolerates.
    pub fn next_slot(&self) -> *const Bytes {
        match self.queue.as_slices() {
            (front, []) => front.as_ptr_range().end,
            (_, back) => back.as_ptr_range().end,
        }
    }

    /// Moves every queued frame into `batch` (for one coalesced write).
    pub fn drain_into(&mut self, batch: &mut Vec<Bytes>) {
        batch.extend(self.queue.drain(..));
        self.queued_bytes = 0;
    }

    pub fn set_in_flight(&mut self, bytes: usize) {
        self.in_flight = bytes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(n: usize) -> Bytes {
        Bytes::from(vec![0; n])
    }

    #[test]
    fn next_slot_is_where_the_next_frame_lands() {
        let mut o = Outbound::new(1 << 20);
        o.queue = VecDeque::with_capacity(8);
        // Never more than 7 queued (no reallocation); the head moves by 5 a round, so the
        // queue wraps around the buffer's end in later rounds.
        let mut wrapped = 0;
        for round in 0..8 {
            while o.queue.len() < 6 {
                o.offer(frame(1));
            }
            let slot = o.next_slot();
            o.offer(frame(1));
            let (a, b) = o.queue.as_slices();
            if b.len() == 1 {
                // The documented miss: the frame wrapped to the buffer's start; the hint
                // pointed one past the end.
                assert_eq!(slot, a.as_ptr_range().end, "round {round}");
                wrapped += 1;
            } else {
                let last = b.last().or(a.last()).expect("queued");
                assert_eq!(slot, last as *const Bytes, "round {round}");
            }
            o.queue.drain(..5);
        }
        assert!(wrapped < 8, "most rounds must not wrap");
    }

    #[test]
    fn backlog_limit_counts_queued_and_in_flight_bytes() {
        let mut o = Outbound::new(100);
        assert_eq!(o.offer(frame(60)), Offer::Queued);
        assert_eq!(o.offer(frame(41)), Offer::Overflow);
        assert_eq!(o.offer(frame(40)), Offer::Queued);
        let mut batch = Vec::new();
        o.drain_into(&mut batch);
        assert_eq!(batch.len(), 2);
        o.set_in_flight(100);
        assert_eq!(
            o.offer(frame(1)),
            Offer::Overflow,
            "the send in flight still counts"
        );
        o.set_in_flight(0);
        assert_eq!(o.offer(frame(1)), Offer::Queued);
    }

    #[test]
    fn the_handshake_and_the_close_bypass_the_limit_once() {
        let mut o = Outbound::new(10);
        o.push_handshake(frame(50));
        assert_eq!(o.backlog(), 50);
        assert_eq!(o.offer(frame(3)), Offer::Overflow, "pongs count like data");
        assert!(o.push_close(frame(4), false));
        assert!(!o.push_close(frame(4), false), "one close only");
        o.push_handshake(frame(3));
        assert_eq!(o.offer(frame(1)), Offer::Closing);
        let mut batch = Vec::new();
        o.drain_into(&mut batch);
        assert_eq!(batch.iter().map(|b| b.len()).collect::<Vec<_>>(), [50, 4]);
    }

    #[test]
    fn slow_consumer_close_discards_pending_data() {
        let mut o = Outbound::new(100);
        o.offer(frame(90));
        assert!(o.push_close(frame(4), true));
        assert_eq!(o.backlog(), 4);
    }
}

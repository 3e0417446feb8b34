//! A worker's pool of send buffers.
//!
//! A connection's writer encrypts into a send buffer and hands it to the kernel. An idle
//! connection keeps no buffer (memory per idle connection), so without a pool every flush of
//! a chat-rate connection (one message, then quiet) would allocate a fresh one. The writer
//! gives its buffer back here when it goes idle and takes one when it has something to send.
//! Bounded by bytes: the pool keeps buffers while their capacities add up to at most
//! `max_bytes`, and none whose capacity grew past `max_len` (a burst's large buffer is freed,
//! not hoarded). Single-threaded, like the worker that owns it.

use std::cell::{Cell, RefCell};

pub struct SendBuffers {
    free: RefCell<Vec<Vec<u8>>>,
    held_bytes: Cell<usize>,
    max_bytes: usize,
    max_len: usize,
}

impl SendBuffers {
    pub fn new(max_bytes: usize, max_len: usize) -> Self {
        Self {
            free: RefCell::new(Vec::new()),
            held_bytes: Cell::new(0),
            max_bytes,
            max_len,
        }
    }

    /// An empty buffer, from the pool if it has one.
    pub fn take(&self) -> Vec<u8> {
        match self.free.borrow_mut().pop() {
            Some(buf) => {
                self.held_bytes.set(self.held_bytes.get() - buf.capacity());
                buf
            }
            None => Vec::new(),
        }
    }

    /// Takes `buf` back (emptied) unless it has no allocation, is too large, or would take
    /// the pool past its byte budget.
    pub fn give(&self, mut buf: Vec<u8>) {
        let cap = buf.capacity();
        if cap == 0 || cap > self.max_len || self.held_bytes.get() + cap > self.max_bytes {
            return;
        }
        buf.clear();
        self.held_bytes.set(self.held_bytes.get() + cap);
        self.free.borrow_mut().push(buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kept(pool: &SendBuffers) -> usize {
        pool.free.borrow().len()
    }

    #[test]
    fn a_returned_buffer_is_reused_with_its_allocation() {
        let pool = SendBuffers::new(4096, 1024);
        let mut b = pool.take();
        assert_eq!(
            b.capacity(),
            0,
            "an empty pool hands out an unallocated Vec"
        );
        b.extend_from_slice(&[1; 300]);
        let ptr = b.as_ptr();
        pool.give(b);
        let again = pool.take();
        assert!(again.is_empty(), "handed out cleared");
        assert_eq!(again.as_ptr(), ptr, "the same allocation comes back");
        assert_eq!(kept(&pool), 0);
    }

    #[test]
    fn the_pool_keeps_at_most_its_byte_budget_and_no_large_buffer() {
        let pool = SendBuffers::new(1024, 1024);
        pool.give(Vec::new());
        assert_eq!(kept(&pool), 0, "nothing to keep in an unallocated Vec");
        pool.give(Vec::with_capacity(4096));
        assert_eq!(kept(&pool), 0, "a burst's large buffer is freed");
        for _ in 0..3 {
            pool.give(Vec::with_capacity(512));
        }
        assert_eq!(kept(&pool), 2, "bounded by bytes: 2 × 512 fit in 1024");
        let b = pool.take();
        assert_eq!(b.capacity(), 512);
        pool.give(Vec::with_capacity(512));
        assert_eq!(kept(&pool), 2, "taking one made room for one");
    }
}

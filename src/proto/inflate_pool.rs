//! A worker's bounded pool of [`Inflater`]s, lent to connections while a compressed message is
//! arriving, so that message is inflated as its bytes come in (the compressed bytes are never
//! held whole, and a deflate bomb is stopped by the first chunk that passes the size limit).
//!
//! Owns: how many inflaters exist at once (`max_lent`), the few kept idle for reuse, and the
//! count of times none was left. Must not: inflate (that is [`super::deflate`]) or decide what
//! a connection does when none is left (the decoder then assembles the compressed message
//! whole, as without a pool, and the caller inflates it with the worker's own inflater).
//!
//! An inflater goes back to the pool when its [`LentInflater`] is dropped: at the message's
//! end, on a protocol error, or with the connection's decoder — no path can leak one.

use std::cell::RefCell;
use std::ops::{Deref, DerefMut};
use std::rc::Rc;

use super::deflate::Inflater;

/// Idle inflaters kept for reuse (≈ 40 KiB each once used); more are freed when returned.
pub const KEEP_IDLE: usize = 8;

#[derive(Default)]
struct Inner {
    idle: Vec<Inflater>,
    lent: usize,
    max_lent: usize,
    exhausted: u64,
}

/// A cheap handle; clones share one pool (one per worker thread).
#[derive(Clone)]
pub struct InflaterPool(Rc<RefCell<Inner>>);

impl std::fmt::Debug for InflaterPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let i = self.0.borrow();
        f.debug_struct("InflaterPool")
            .field("lent", &i.lent)
            .field("max_lent", &i.max_lent)
            .finish()
    }
}

impl InflaterPool {
    /// At most `max_lent` inflaters lent at once (connections in the middle of a compressed
    /// message); 0 lends none.
    pub fn new(max_lent: usize) -> Self {
        Self(Rc::new(RefCell::new(Inner {
            max_lent,
            ..Inner::default()
        })))
    }

    /// An inflater reset for a new message, or `None` when `max_lent` are out (counted).
    pub fn take(&self) -> Option<LentInflater> {
        let mut i = self.0.borrow_mut();
        if i.lent >= i.max_lent {
            i.exhausted += 1;
            return None;
        }
        i.lent += 1;
        let mut inflater = i.idle.pop().unwrap_or_default();
        drop(i);
        inflater.begin();
        Some(LentInflater {
            inflater: Some(inflater),
            pool: self.clone(),
        })
    }

    /// Inflaters out now.
    pub fn lent(&self) -> usize {
        self.0.borrow().lent
    }

    /// Times [`Self::take`] found none left since the pool was made.
    pub fn exhausted(&self) -> u64 {
        self.0.borrow().exhausted
    }

    fn give_back(&self, inflater: Inflater) {
        let mut i = self.0.borrow_mut();
        i.lent -= 1;
        if i.idle.len() < KEEP_IDLE {
            i.idle.push(inflater);
        }
    }
}

/// An inflater on loan; returns to its pool when dropped.
pub struct LentInflater {
    inflater: Option<Inflater>,
    pool: InflaterPool,
}

impl std::fmt::Debug for LentInflater {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LentInflater")
    }
}

impl Deref for LentInflater {
    type Target = Inflater;
    fn deref(&self) -> &Inflater {
        self.inflater.as_ref().expect("held until dropped")
    }
}

impl DerefMut for LentInflater {
    fn deref_mut(&mut self) -> &mut Inflater {
        self.inflater.as_mut().expect("held until dropped")
    }
}

impl Drop for LentInflater {
    fn drop(&mut self) {
        if let Some(i) = self.inflater.take() {
            self.pool.give_back(i);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lends_at_most_max_and_takes_back_on_drop() {
        let pool = InflaterPool::new(2);
        let a = pool.take().unwrap();
        let b = pool.take().unwrap();
        assert!(pool.take().is_none());
        assert_eq!((pool.lent(), pool.exhausted()), (2, 1));
        drop(a);
        assert_eq!(pool.lent(), 1);
        let c = pool.take().expect("one came back");
        drop((b, c));
        assert_eq!(pool.lent(), 0);
        assert!(InflaterPool::new(0).take().is_none());
    }

    #[test]
    fn keeps_only_a_few_idle() {
        let pool = InflaterPool::new(100);
        let all: Vec<_> = (0..50).map(|_| pool.take().unwrap()).collect();
        drop(all);
        assert_eq!(pool.0.borrow().idle.len(), KEEP_IDLE);
        assert_eq!(pool.lent(), 0);
    }
}

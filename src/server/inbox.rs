//! The cross-core ring: one bounded inbox per worker. A broadcast puts ONE entry (room name +
//! shared frame) into the inbox of each other worker that has members in the room, never one
//! per recipient, and wakes that worker; the worker fans the frame out to its own members.
//!
//! Policy when full: the entry is dropped and counted (`dropped`), and a warning is logged —
//! a worker that cannot keep up must not make others grow memory without bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::Context;

use bytes::Bytes;
use crossbeam_queue::ArrayQueue;
use futures_util::task::AtomicWaker;

/// Which subscriber lists a delivery is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A raw room.
    Room,
    /// A client protocol channel.
    Channel,
}

/// A frame for every local member of a room or channel.
pub struct Delivery {
    pub target: Target,
    pub room: Arc<str>,
    pub frame: Bytes,
    /// The publication's offset in its channel (0: none: raw rooms, channels without history,
    /// join/leave).
    pub offset: u64,
}

pub struct Inbox {
    queue: ArrayQueue<Delivery>,
    waker: AtomicWaker,
    pub dropped: AtomicU64,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: ArrayQueue::new(capacity.max(1)),
            waker: AtomicWaker::new(),
            dropped: AtomicU64::new(0),
        }
    }

    /// Queues a delivery and wakes the owning worker; false when the inbox was full.
    pub fn send(&self, d: Delivery) -> bool {
        let ok = self.queue.push(d).is_ok();
        if !ok {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
        self.waker.wake();
        ok
    }

    /// Wakes the owning worker without a delivery (shutdown).
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// Registers the owner's waker; true when deliveries are waiting.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        !self.queue.is_empty()
    }

    pub fn pop(&self) -> Option<Delivery> {
        self.queue.pop()
    }
}

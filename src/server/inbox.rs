//! The cross-core ring: one bounded inbox per worker. A broadcast puts ONE entry (room name +
//! shared frame) into the inbox of each other worker that has members in the room, never one
//! per recipient, and wakes that worker; the worker fans the frame out to its own members.
//!
//! Policy when full: the entry is dropped and counted (`dropped`), and a warning is logged —
//! a worker that cannot keep up must not make others grow memory without bound. A dropped
//! channel publication with an offset is also remembered ([`Inbox::take_lost`]: the channel and
//! its highest dropped offset, up to [`MAX_LOST_CHANNELS`] channels, then "some channel"), so
//! the owning worker tells the subscribers that missed it even when nothing follows it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

/// Channels remembered per inbox as having lost a publication; past this, the inbox only
/// remembers that some channel did ([`Lost::overflow`]).
pub const MAX_LOST_CHANNELS: usize = 1024;

/// Channel publications an inbox dropped since the last [`Inbox::take_lost`].
#[derive(Debug, Default)]
pub struct Lost {
    /// Channel → the highest offset dropped (a subscriber positioned below it missed it).
    pub channels: HashMap<Arc<str>, u64>,
    /// More channels lost publications than are remembered: treat every channel as affected.
    pub overflow: bool,
}

/// What the control plane asks of a worker (API commands, surveys): a second, small queue
/// beside the deliveries, drained first.
pub enum Control {
    /// For every matching session on the worker.
    Session(Arc<crate::api::SessionCommand>),
    /// Report this worker's channels and counts.
    Survey(tokio::sync::oneshot::Sender<crate::api::Survey>),
}

/// Entries of a worker's control queue.
pub const CONTROL_CAPACITY: usize = 4096;

pub struct Inbox {
    queue: ArrayQueue<Delivery>,
    control: ArrayQueue<Control>,
    waker: AtomicWaker,
    pub dropped: AtomicU64,
    lost: Mutex<Lost>,
    any_lost: AtomicBool,
}

impl Inbox {
    pub fn new(capacity: usize) -> Self {
        Self {
            queue: ArrayQueue::new(capacity.max(1)),
            control: ArrayQueue::new(CONTROL_CAPACITY),
            waker: AtomicWaker::new(),
            dropped: AtomicU64::new(0),
            lost: Mutex::new(Lost::default()),
            any_lost: AtomicBool::new(false),
        }
    }

    /// Queues a delivery and wakes the owning worker; false when the inbox was full.
    pub fn send(&self, d: Delivery) -> bool {
        let ok = match self.queue.push(d) {
            Ok(()) => true,
            Err(d) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if d.target == Target::Channel && d.offset != 0 {
                    self.remember_lost(d.room, d.offset);
                }
                false
            }
        };
        self.waker.wake();
        ok
    }

    fn remember_lost(&self, channel: Arc<str>, offset: u64) {
        let mut lost = self.lost.lock().expect("inbox lost set poisoned");
        let full = lost.channels.len() >= MAX_LOST_CHANNELS;
        match lost.channels.get_mut(&channel) {
            Some(o) => *o = (*o).max(offset),
            None if full => lost.overflow = true,
            None => {
                lost.channels.insert(channel, offset);
            }
        }
        self.any_lost.store(true, Ordering::Release);
    }

    /// Every channel may have lost publications (the engine's backend connection broke):
    /// the owner tells every positioned subscriber.
    pub fn lose_all(&self) {
        self.lost.lock().expect("inbox lost set poisoned").overflow = true;
        self.any_lost.store(true, Ordering::Release);
        self.waker.wake();
    }

    /// What was dropped since the last call (None, without a lock, when nothing was).
    pub fn take_lost(&self) -> Option<Lost> {
        if !self.any_lost.swap(false, Ordering::AcqRel) {
            return None;
        }
        let mut lost = self.lost.lock().expect("inbox lost set poisoned");
        Some(std::mem::take(&mut *lost))
    }

    /// Queues a control request and wakes the owning worker; false when the queue was full.
    pub fn send_control(&self, c: Control) -> bool {
        let ok = self.control.push(c).is_ok();
        self.waker.wake();
        ok
    }

    pub fn pop_control(&self) -> Option<Control> {
        self.control.pop()
    }

    /// Wakes the owning worker without a delivery (shutdown).
    pub fn wake(&self) {
        self.waker.wake();
    }

    /// Registers the owner's waker; true when deliveries (or losses to report) are waiting.
    pub fn poll_ready(&self, cx: &mut Context<'_>) -> bool {
        self.waker.register(cx.waker());
        !self.queue.is_empty() || !self.control.is_empty() || self.any_lost.load(Ordering::Acquire)
    }

    pub fn pop(&self) -> Option<Delivery> {
        self.queue.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(room: &str, offset: u64) -> Delivery {
        Delivery {
            target: Target::Channel,
            room: room.into(),
            frame: Bytes::new(),
            offset,
        }
    }

    #[test]
    fn a_full_inbox_remembers_the_highest_lost_offset_per_channel() {
        let inbox = Inbox::new(1);
        assert!(inbox.take_lost().is_none());
        assert!(inbox.send(delivery("a", 1)));
        assert!(!inbox.send(delivery("a", 2)));
        assert!(!inbox.send(delivery("a", 3)));
        assert!(
            !inbox.send(delivery("b", 0)),
            "no offset: nothing to remember"
        );
        let lost = inbox.take_lost().unwrap();
        assert_eq!(lost.channels.len(), 1);
        assert_eq!(lost.channels["a"], 3);
        assert!(!lost.overflow);
        assert!(inbox.take_lost().is_none(), "taken");
        assert_eq!(inbox.dropped.load(Ordering::Relaxed), 3);
    }

    #[test]
    fn lost_channels_are_bounded() {
        let inbox = Inbox::new(1);
        assert!(inbox.send(delivery("x", 1)));
        for i in 0..MAX_LOST_CHANNELS + 5 {
            inbox.send(delivery(&format!("c{i}"), 1));
        }
        let lost = inbox.take_lost().unwrap();
        assert_eq!(lost.channels.len(), MAX_LOST_CHANNELS);
        assert!(lost.overflow);
    }
}

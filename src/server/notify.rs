//! A single-thread, single-waiter wake-up flag: one task waits, any code on the same worker
//! thread wakes it. Wakes that arrive while nobody waits are remembered (one bit), so a wake is
//! never lost between "checked the queue" and "went to sleep".

use std::cell::Cell;
use std::future::poll_fn;
use std::task::{Poll, Waker};

#[derive(Default)]
pub struct Notify {
    pending: Cell<bool>,
    waiter: Cell<Option<Waker>>,
}

impl Notify {
    pub fn notify(&self) {
        self.pending.set(true);
        if let Some(w) = self.waiter.take() {
            w.wake();
        }
    }

    /// Completes at the first `notify` since the last completion (at once if one is pending).
    pub async fn notified(&self) {
        poll_fn(|cx| {
            if self.pending.replace(false) {
                Poll::Ready(())
            } else {
                self.waiter.set(Some(cx.waker().clone()));
                Poll::Pending
            }
        })
        .await
    }
}

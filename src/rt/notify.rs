//! Task wake-ups on one worker thread: [`Notify`], a single-waiter wake-up flag (one task
//! waits, any code on the same thread wakes it; a wake that arrives while nobody waits is
//! remembered, so it is never lost between "checked the queue" and "went to sleep"), and
//! [`yield_now`], which lets the other ready tasks run.

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

/// Lets every other ready task on this thread's runtime run once.
pub async fn yield_now() {
    let mut yielded = false;
    poll_fn(|cx| {
        if std::mem::replace(&mut yielded, true) {
            Poll::Ready(())
        } else {
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    })
    .await
}

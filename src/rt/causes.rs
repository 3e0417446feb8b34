//! [`Causes`]: which of a task's sub-futures woke it, so that a task waiting on several things
//! at once (a connection: its send, its receive, its timer) polls only the ones that were
//! woken instead of all of them on every wake-up.
//!
//! One allocation per task: an `Arc` holding the pending bits and the task's own waker. Each
//! cause gets a [`Waker`] pointing at that allocation with the cause's index in the pointer's
//! low bits; waking it sets the cause's bit and wakes the task.
//!
//! Must not: decide anything about the sub-futures; a bit only says "poll this one".

use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, RawWaker, RawWakerVTable, Waker};

/// Up to 8 causes; the pointer's low 3 bits (the `Arc`'s alignment is 8) carry the index.
const INDEX_MASK: usize = 0b111;

struct Inner {
    pending: AtomicU8,
    task: OnceLock<Waker>,
}

#[repr(align(8))]
struct Aligned(Inner);

/// The wake-up causes of one task.
pub struct Causes {
    inner: Arc<Aligned>,
}

impl Default for Causes {
    fn default() -> Self {
        Self::new()
    }
}

impl Causes {
    /// Every cause starts pending: each sub-future is polled once (and registers its waker).
    pub fn new() -> Self {
        Self {
            inner: Arc::new(Aligned(Inner {
                pending: AtomicU8::new(u8::MAX),
                task: OnceLock::new(),
            })),
        }
    }

    /// Remembers the task's waker (the first one seen: a task's waker wakes that task).
    pub fn register(&self, cx: &Context<'_>) {
        if self.inner.0.task.get().is_none() {
            let _ = self.inner.0.task.set(cx.waker().clone());
        }
    }

    /// Whether `cause` was woken since it was last taken; clears it.
    pub fn take(&self, cause: u8) -> bool {
        let bit = 1u8 << cause;
        self.inner.0.pending.fetch_and(!bit, Ordering::AcqRel) & bit != 0
    }

    /// Every cause woken since the last look, as bits (`1 << cause`); clears them all.
    pub fn take_all(&self) -> u8 {
        self.inner.0.pending.swap(0, Ordering::AcqRel)
    }

    /// Gives back bits taken by [`Causes::take_all`] but not acted on.
    pub fn put_back(&self, bits: u8) {
        if bits != 0 {
            self.inner.0.pending.fetch_or(bits, Ordering::AcqRel);
        }
    }

    /// Marks `cause` to be polled at the next look (a new sub-future, or a stream that may
    /// have more ready).
    pub fn set(&self, cause: u8) {
        self.inner.0.pending.fetch_or(1 << cause, Ordering::AcqRel);
    }

    /// The waker to poll `cause`'s sub-future with.
    pub fn waker(&self, cause: u8) -> Waker {
        assert!((cause as usize) <= INDEX_MASK);
        let ptr = Arc::into_raw(self.inner.clone()) as usize;
        debug_assert_eq!(ptr & INDEX_MASK, 0);
        // SAFETY: the pointer came from `Arc::into_raw` and carries one strong count, which
        // the vtable's `drop`/`wake` give back.
        unsafe { Waker::from_raw(RawWaker::new((ptr | cause as usize) as *const (), &VTABLE)) }
    }
}

static VTABLE: RawWakerVTable = RawWakerVTable::new(clone, wake, wake_by_ref, drop_waker);

fn split(data: *const ()) -> (*const Aligned, u8) {
    let p = data as usize;
    ((p & !INDEX_MASK) as *const Aligned, (p & INDEX_MASK) as u8)
}

unsafe fn clone(data: *const ()) -> RawWaker {
    let (arc, _) = split(data);
    // SAFETY: `arc` is a live `Arc` pointer (the waker being cloned holds a count).
    unsafe { Arc::increment_strong_count(arc) };
    RawWaker::new(data, &VTABLE)
}

unsafe fn wake(data: *const ()) {
    // SAFETY: as in `wake_by_ref`, then the waker's count is given back.
    unsafe {
        wake_by_ref(data);
        drop_waker(data);
    }
}

unsafe fn wake_by_ref(data: *const ()) {
    let (arc, cause) = split(data);
    // SAFETY: the waker holds a count, so the allocation is live.
    let inner = unsafe { &(*arc).0 };
    inner.pending.fetch_or(1 << cause, Ordering::AcqRel);
    if let Some(task) = inner.task.get() {
        task.wake_by_ref();
    }
}

unsafe fn drop_waker(data: *const ()) {
    let (arc, _) = split(data);
    // SAFETY: gives back the count this waker held.
    unsafe { Arc::decrement_strong_count(arc) };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;
    use std::task::Wake;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_cause_wakes_the_task_and_marks_only_itself() {
        let woken = Arc::new(Count(AtomicUsize::new(0)));
        let task = Waker::from(woken.clone());
        let causes = Causes::new();
        causes.register(&Context::from_waker(&task));
        for c in 0..3 {
            assert!(causes.take(c), "every cause starts pending");
            assert!(!causes.take(c));
        }
        let w1 = causes.waker(1);
        let w2 = causes.waker(2).clone();
        w1.wake_by_ref();
        assert_eq!(woken.0.load(Ordering::SeqCst), 1);
        assert!(!causes.take(0));
        assert!(causes.take(1));
        assert!(!causes.take(2));
        w2.wake();
        assert!(causes.take(2));
        assert_eq!(woken.0.load(Ordering::SeqCst), 2);
        causes.set(0);
        assert!(causes.take(0));
        drop(w1);
        assert_eq!(
            Arc::strong_count(&causes.inner),
            1,
            "wakers give their counts back"
        );
    }
}

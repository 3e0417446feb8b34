//! The worker's writer: one task per worker seals and sends for all its connections — no task
//! per connection.
//!
//! A connection with something to write (a queued frame, TLS bytes, its closing) goes on the
//! worker's ready list once ([`Writers::schedule`]). Once per pass of the run queue the flusher
//! ([`flush_loop`]) takes up to [`SENDS_PER_PASS`] of them: seals everything queued with the TLS
//! session into one buffer (frames coalesced into few records) and submits one send each — one
//! send in flight per connection, which is the back-pressure (frames queued meanwhile go with
//! the next send). A send's completion wakes the connection's [`SendDone`] waker, which puts the
//! connection's id on the completion list and wakes the flusher; there the connection goes idle,
//! or back on the ready list when more was queued meanwhile. After each pass the flusher submits
//! the pass's sends and offers its core to other threads (results/flusher.md).
//!
//! An idle connection keeps no send buffer (it goes back to the worker's pool) and no frame
//! batch (the worker's scratch is used).
//!
//! Must not: read, or decide when a connection closes (the reader does; the writer only reports
//! that the last bytes went out, or that the socket broke).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::{Future, poll_fn};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use compio::BufResult;
use compio::buf::IntoInner;
use compio::driver::op::{Send, SendFlags};
use compio::driver::{SharedFd, ToSharedFd};

use super::Conn;
use crate::rt::yield_now;
use crate::server::counters::WorkerCounters;
use crate::server::worker::Worker;

/// Sends the flusher starts per pass of the worker's run queue; after each pass it yields its
/// core. The limit comes from the writer tasks it replaced: without it a broadcast's thousands
/// of sends ran before the reader of the next publication and the cross-core inbox, and a
/// saturated broadcast's p99 was 3× worse (results/write-turns.md). With the flusher and its
/// yield, 32, 64, 128 and 256 were measured side by side: 64 had the lowest p99 (0.86× of 128's
/// when saturated, 0.92× at 1,000 × 100/s, CPU level; results/pass-size.md).
const SENDS_PER_PASS: usize = 64;

type SendOp = Send<Vec<u8>, SharedFd<socket2::Socket>>;

/// Where a connection's writing stands.
pub(super) enum WriteState {
    /// Nothing to write, nothing in flight.
    Idle,
    /// On the worker's ready list, with the connection's send buffer if it kept one, and
    /// since when it has had something to send (for the send-wait histogram).
    Ready { buf: Vec<u8>, since: Instant },
    /// One send in flight since `started` (the pass's clock); `again`: since when something
    /// scheduled meanwhile waits.
    Sending {
        send: compio::runtime::Submit<SendOp>,
        started: Instant,
        again: Option<Instant>,
    },
    /// The last bytes went out, or the socket broke: nothing more is written.
    Done,
}

/// A worker's ready list and completion list.
pub struct Writers {
    /// Connections (by id) to seal and send for; one entry per connection in `Ready`.
    ready: RefCell<VecDeque<usize>>,
    completions: Arc<Completions>,
    /// The clock of the fan-out under way ([`Writers::stamped`]): one read per publication,
    /// not one per connection it schedules.
    clock: Cell<Option<Instant>>,
}

/// Connections whose send completed, filled by their wakers (the driver wakes them on the
/// worker's thread; a `Mutex` because a `Waker` must be `Send`). One entry per send in flight
/// at most, so bounded by the worker's connections.
#[derive(Default)]
struct Completions(Mutex<CompletionList>);

#[derive(Default)]
struct CompletionList {
    conns: Vec<usize>,
    /// The flusher, while it waits for work.
    flusher: Option<Waker>,
}

impl Completions {
    fn list(&self) -> std::sync::MutexGuard<'_, CompletionList> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake_flusher(&self) {
        let flusher = self.list().flusher.take();
        if let Some(w) = flusher {
            w.wake();
        }
    }
}

/// A connection's send-completion waker (one allocation per connection, not per send).
struct SendDone {
    conn: usize,
    completions: Arc<Completions>,
}

impl Wake for SendDone {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }

    fn wake_by_ref(self: &Arc<Self>) {
        let flusher = {
            let mut list = self.completions.list();
            list.conns.push(self.conn);
            list.flusher.take()
        };
        if let Some(w) = flusher {
            w.wake();
        }
    }
}

impl Writers {
    pub fn new() -> Self {
        Self {
            ready: RefCell::new(VecDeque::new()),
            completions: Arc::default(),
            clock: Cell::new(None),
        }
    }

    /// The waker a connection's sends complete with.
    pub(super) fn waker_for(&self, conn: usize) -> Waker {
        Waker::from(Arc::new(SendDone {
            conn,
            completions: self.completions.clone(),
        }))
    }

    /// Runs `f` (a fan-out) with one clock read for everything it schedules: its frames all
    /// count as queued when it began (a send-wait over-counted by at most the fan-out's length).
    /// A fan-out inside another keeps the outer one's clock.
    pub fn stamped<R>(&self, f: impl FnOnce() -> R) -> R {
        let outer = self.clock.get();
        self.clock.set(Some(outer.unwrap_or_else(Instant::now)));
        let r = f();
        self.clock.set(outer);
        r
    }

    fn now(&self) -> Instant {
        self.clock.get().unwrap_or_else(Instant::now)
    }

    /// `conn` has something to write: onto the ready list unless it is there, sending (then it
    /// goes again after the send) or done.
    pub(super) fn schedule(&self, conn: &Conn) {
        let mut state = conn.write.borrow_mut();
        match &mut *state {
            WriteState::Idle => {
                *state = WriteState::Ready {
                    buf: Vec::new(),
                    since: self.now(),
                };
                self.push_ready(conn.id);
            }
            WriteState::Sending { again, .. } => {
                again.get_or_insert_with(|| self.now());
            }
            WriteState::Ready { .. } | WriteState::Done => {}
        }
    }

    fn push_ready(&self, id: usize) {
        let mut ready = self.ready.borrow_mut();
        ready.push_back(id);
        if ready.len() == 1 {
            drop(ready);
            self.completions.wake_flusher();
        }
    }

    /// Waits until a send completed or a connection is ready; the completed ones land in `done`.
    async fn work(&self, done: &mut Vec<usize>) {
        poll_fn(|cx| {
            let mut list = self.completions.list();
            if !list.conns.is_empty() {
                std::mem::swap(&mut list.conns, done);
                return Poll::Ready(());
            }
            if !self.ready.borrow().is_empty() {
                return Poll::Ready(());
            }
            list.flusher = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

/// The worker's flusher: completions first, then up to [`SENDS_PER_PASS`] sends, then it lets
/// the rest of the run queue (readers, the inbox) go.
pub(crate) async fn flush_loop(worker: Rc<Worker>) {
    let writers = &worker.writers;
    let mut done = Vec::new();
    loop {
        writers.work(&mut done).await;
        // One clock read per pass: the send-wait and flight histograms are off by at most the
        // pass's length.
        let now = Instant::now();
        for id in done.drain(..) {
            let conn = worker.conns.borrow().get(id).cloned();
            if let Some(conn) = conn {
                poll_send(&worker, &conn, now);
            }
        }
        let mut sends = 0;
        while sends < SENDS_PER_PASS {
            let Some(id) = writers.ready.borrow_mut().pop_front() else {
                break;
            };
            let conn = worker.conns.borrow().get(id).cloned();
            if let Some(conn) = conn
                && flush(&worker, &conn, now)
            {
                sends += 1;
            }
        }
        if sends > 0 {
            // The pass's sends go to the kernel now, in one submission, and the completions
            // already there are taken (the runtime polls its driver only after up to 61 task
            // polls, and the flusher may be polled many times among them). On its own this
            // measured level (results/flusher.md); kept with the yield, as measured together.
            compio::runtime::Runtime::with_current(|rt| rt.poll_with(Some(Duration::ZERO)));
            // Then the thread offers its core to whoever else waits for it (a no-op when nobody
            // does). Without it, a worker pushing sends back to back held its core for whole
            // time slices while the receivers on the same host waited, and the saturated
            // broadcast's p99 was 1.3–1.7× worse (results/flusher.md). Since Linux 6.18 a
            // yield forfeits the rest of the thread's slice (beside a thread that never sleeps
            // this one would get ≈ a quarter of a CPU); gentler policies measured no better
            // (results/saturated-tail.md §2c).
            std::thread::yield_now();
        }
        yield_now().await;
    }
}

/// Seals what `conn` has queued and submits the send; true if a send started. `now`: the pass's
/// clock.
fn flush(worker: &Worker, conn: &Conn, now: Instant) -> bool {
    let (mut buf, since) = match conn.write.replace(WriteState::Idle) {
        WriteState::Ready { buf, since } => (buf, since),
        other => {
            // A stale entry (the id was reused, or the connection went on by other means).
            conn.write.replace(other);
            return false;
        }
    };
    if conn.broken.get() {
        end(conn);
        return false;
    }
    let finishing = {
        let mut out = conn.out.borrow_mut();
        if !out.is_empty() && buf.capacity() == 0 {
            buf = worker.send_buffers.take();
        }
        let mut batch = worker.write_batch.borrow_mut();
        out.drain_into(&mut batch);
        let mut session = conn.session.borrow_mut();
        let finishing = out.finishing();
        session.write(&batch, &mut buf);
        batch.clear();
        if finishing && !conn.close_notify_sent.get() {
            // After the last frames: nothing may be sealed after close_notify.
            session.send_close_notify();
            conn.close_notify_sent.set(true);
            session.write(&[], &mut buf);
        }
        out.set_in_flight(buf.len());
        finishing
    };
    if !buf.is_empty() {
        worker.shared.counters[worker.index]
            .send_wait
            .observe_own(now.saturating_duration_since(since));
        start_send(worker, conn, buf, None, now);
        return true;
    }
    if buf.capacity() > 0 {
        worker.send_buffers.give(buf);
    }
    if finishing {
        end(conn);
    }
    false
}

/// Submits `buf` to the socket and polls it once (a driver may complete it at once); `again`:
/// something was scheduled while the bytes before it were in flight.
fn start_send(worker: &Worker, conn: &Conn, buf: Vec<u8>, again: Option<Instant>, now: Instant) {
    let op = Send::new(conn.stream.to_shared_fd(), buf, SendFlags::NOSIGNAL);
    conn.write.replace(WriteState::Sending {
        send: compio::runtime::submit(op),
        started: now,
        again,
    });
    poll_send(worker, conn, now);
}

/// Polls `conn`'s send in flight (after its waker fired) and acts on the result; `now`: the
/// pass's clock.
fn poll_send(worker: &Worker, conn: &Conn, now: Instant) {
    let (res, op, again, started) = {
        let mut state = conn.write.borrow_mut();
        let WriteState::Sending {
            send,
            started,
            again,
        } = &mut *state
        else {
            return; // a stale completion
        };
        let mut cx = Context::from_waker(&conn.send_done);
        let BufResult(res, op) = match Pin::new(send).poll(&mut cx) {
            Poll::Pending => return,
            Poll::Ready(r) => r,
        };
        (res, op, again.take(), *started)
    };
    conn.write.replace(WriteState::Idle);
    let mut buf = op.into_inner();
    let counters = &worker.shared.counters[worker.index];
    let n = match res {
        Ok(n) if n > 0 => n,
        _ => {
            conn.broken.set(true);
            end(conn);
            return;
        }
    };
    WorkerCounters::add(&counters.bytes_out, n as u64);
    counters
        .send_flight
        .observe_own(now.saturating_duration_since(started));
    if n < buf.len() {
        // A short send: the rest goes next (rare; a copy of what is left).
        buf.drain(..n);
        start_send(worker, conn, buf, again, now);
        return;
    }
    WorkerCounters::add(&counters.sends, 1);
    let (idle, finishing) = {
        let mut out = conn.out.borrow_mut();
        out.set_in_flight(0);
        (out.is_empty(), out.finishing())
    };
    buf.clear();
    let more = again.is_some() || !idle || (finishing && !conn.close_notify_sent.get());
    if idle {
        // An idle connection keeps no send buffer (it goes back to the worker's pool); a busy
        // one reuses its own.
        worker.send_buffers.give(std::mem::take(&mut buf));
        conn.drained.notify();
    }
    if more {
        let since = again.unwrap_or(now);
        conn.write.replace(WriteState::Ready { buf, since });
        worker.writers.push_ready(conn.id);
    } else if finishing {
        end(conn);
    }
}

/// Nothing more is written: the reader may end the connection.
fn end(conn: &Conn) {
    conn.write.replace(WriteState::Done);
    conn.writer_done.set(true);
    conn.wake_reader.notify();
}

//! The write side of a connection, run inside the connection's one task (no task of its own).
//!
//! Owns the connection's send buffer between sends and the rule "one send in flight": when no
//! send is in flight, everything queued in [`Outbound`](super::Outbound) is sealed by the TLS
//! session into one buffer (frames coalesced into few records), and that buffer is the next
//! send. The send's future lives in the connection task's frame (see `Reader::run`), so a
//! connection with nothing to send holds no writer future, no task and no buffer: an idle
//! connection's buffer goes back to the worker's pool.
//!
//! Must not: wait, or decide when a connection closes (the reader does; this side only
//! reports that the last bytes went out, or that the socket broke).

use std::mem;

use compio::BufResult;
use compio::io::AsyncWriteExt;
use compio::net::TcpStream;

use super::Conn;
use crate::server::counters::WorkerCounters;
use crate::server::worker::Worker;

/// The send buffer of a connection while no send is in flight (empty and unallocated when the
/// connection is idle).
#[derive(Default)]
pub(super) struct WriteSide {
    buf: Vec<u8>,
}

impl WriteSide {
    /// The bytes of the next send: everything queued, sealed; or `None` when there is nothing
    /// to send. When the connection is finishing and everything (close_notify included) has
    /// been sent, marks the write side done.
    pub(super) fn next(&mut self, worker: &Worker, conn: &Conn) -> Option<Vec<u8>> {
        if conn.writer_done.get() {
            return None;
        }
        {
            // The common case after a send completes: nothing more to seal.
            let out = conn.out.borrow();
            if out.is_empty() && !out.finishing() && !conn.session.borrow().wants_write() {
                return None;
            }
        }
        if self.buf.capacity() == 0 && !conn.out.borrow().is_empty() {
            self.buf = worker.send_buffers.take();
        }
        let finishing = {
            let mut out = conn.out.borrow_mut();
            let mut batch = worker.write_batch.borrow_mut();
            out.drain_into(&mut batch);
            let mut session = conn.session.borrow_mut();
            session.write(&batch, &mut self.buf);
            batch.clear();
            let finishing = out.finishing();
            if finishing && !conn.close_notify_sent.get() {
                // After the last frames: nothing may be sealed after close_notify.
                session.send_close_notify();
                conn.close_notify_sent.set(true);
                session.write(&[], &mut self.buf);
            }
            out.set_in_flight(self.buf.len());
            finishing
        };
        if !self.buf.is_empty() {
            return Some(mem::take(&mut self.buf));
        }
        if self.buf.capacity() != 0 {
            worker.send_buffers.give(mem::take(&mut self.buf));
        }
        if finishing || conn.broken.get() {
            self.done(conn);
        }
        None
    }

    /// A send completed: counts it, keeps the buffer for the next send or gives it back to the
    /// worker's pool when nothing else is queued.
    pub(super) fn sent(&mut self, worker: &Worker, conn: &Conn, result: BufResult<(), Vec<u8>>) {
        let BufResult(res, mut buf) = result;
        let idle = {
            let mut out = conn.out.borrow_mut();
            out.set_in_flight(0);
            out.is_empty()
        };
        match res {
            Ok(()) => {
                let counters = &worker.shared.counters[worker.index];
                WorkerCounters::add(&counters.bytes_out, buf.len() as u64);
            }
            Err(e) => {
                tracing::debug!(conn = conn.id, "send failed: {e}");
                conn.broken.set(true);
            }
        }
        buf.clear();
        if idle || conn.broken.get() {
            worker.send_buffers.give(buf);
            if !conn.broken.get() {
                conn.drained.notify();
            }
        } else {
            self.buf = buf;
        }
        if conn.broken.get() {
            self.done(conn);
        }
    }

    fn done(&mut self, conn: &Conn) {
        conn.writer_done.set(true);
        conn.drained.notify();
    }
}

/// One send of a whole buffer (several `send`s if the kernel takes part of it).
pub(super) async fn send_all(stream: &TcpStream, buf: Vec<u8>) -> BufResult<(), Vec<u8>> {
    let mut stream = stream;
    stream.write_all(buf).await
}

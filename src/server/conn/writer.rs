//! A connection's writer task: waits until something is queued in [`Outbound`](super::Outbound),
//! then seals everything queued with the TLS session into one buffer (frames coalesced into
//! few records) and sends it — one send in flight per connection, which is the back-pressure
//! (frames queued meanwhile go with the next send).
//!
//! An idle connection keeps no send buffer (it goes back to the worker's pool) and no frame
//! batch (the worker's scratch is used).
//!
//! Must not: read, or decide when a connection closes (the reader does; the writer only reports
//! that the last bytes went out, or that the socket broke).
//!
//! Measured and not kept (results/one-task.md): the writer inside the reader's task (one task
//! per connection) saved ≈ 230 B per idle connection but cost ≈ 1 µs of user CPU per delivery:
//! every wake-up then resumes the whole connection state machine.

use std::rc::Rc;

use compio::BufResult;
use compio::io::AsyncWriteExt;

use super::Conn;
use crate::server::counters::WorkerCounters;
use crate::server::worker::Worker;

/// Sends a worker's writers may start per pass of its run queue (see [`crate::rt::Turns`]).
/// Without the limit a broadcast's thousands of writers ran before the reader of the next
/// publication and the cross-core inbox — each waited a whole pass — and a saturated
/// broadcast's p99 was 3× worse (results/write-turns.md: 64, 128 and 512 measured; 128 kept).
pub(crate) const SENDS_PER_PASS: usize = 128;

/// The writer task: one coalesced write and one send per wake-up (each send takes a turn).
pub(super) async fn write_loop(worker: Rc<Worker>, conn: Rc<Conn>) {
    let mut buf: Vec<u8> = Vec::new();
    loop {
        if !conn.out.borrow().is_empty() {
            worker.write_turns.take().await;
            if buf.capacity() == 0 {
                // Taken after the turn: a writer waiting for its turn holds no buffer.
                buf = worker.send_buffers.take();
            }
        }
        let finishing = {
            let mut out = conn.out.borrow_mut();
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
            let mut stream = &conn.stream;
            let len = buf.len() as u64;
            let BufResult(res, back) = stream.write_all(buf).await;
            buf = back;
            if res.is_ok() {
                let counters = &worker.shared.counters[worker.index];
                WorkerCounters::add(&counters.bytes_out, len);
                WorkerCounters::add(&counters.sends, 1);
            }
            let idle = {
                let mut out = conn.out.borrow_mut();
                out.set_in_flight(0);
                out.is_empty()
            };
            if res.is_err() {
                conn.broken.set(true);
                break;
            }
            // An idle connection keeps no send buffer (it goes back to the worker's pool); a
            // busy one reuses its own.
            if idle {
                worker.send_buffers.give(std::mem::take(&mut buf));
                conn.drained.notify();
            } else {
                buf.clear()
            }
            continue;
        }
        if finishing || conn.broken.get() {
            break;
        }
        conn.wake_writer.notified().await;
    }
    conn.writer_done.set(true);
    conn.wake_reader.notify();
}

//! A worker: one OS thread, one compio runtime (io_uring, or epoll where io_uring is missing),
//! one SO_REUSEPORT listener, and everything its connections need — their slab, its rooms.
//!
//! Tasks on a worker: the accept loop, the inbox drain (broadcasts from other workers), and two
//! per connection (see `conn`). Nothing here is shared with other threads except through
//! [`ServerShared`]: the room directory, the inboxes, counters and the shutdown flag.

use std::cell::RefCell;
use std::collections::HashMap;
use std::future::poll_fn;
use std::num::NonZero;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::driver::{DriverType, ProactorBuilder};
use compio::net::TcpListener;
use compio::runtime::RuntimeBuilder;
use futures_util::StreamExt;
use slab::Slab;
use tracing::{debug, info, warn};

use super::ServerShared;
use super::compression::WorkerCompression;
use super::conn::{self, Conn, ConnEvent};
use super::decoders::DecoderPool;
use super::inbox::{Control, Inbox, Lost};
use super::inbox::{Delivery, Target};
use super::options::RecvMode;
use super::rooms::{Admit, LocalRoom, LocalRooms, Member, RoomDirectory};
use super::send_buffers::SendBuffers;
use crate::api::Survey;
use crate::proto::handshake::Status;
use crate::proto::{DecoderConfig, Role};
use crate::rt::Notify;

/// Idle connections' send buffers a worker keeps for reuse: up to 1 MiB in all (a chat-rate
/// fan-out to 4,000 connections flushes 4,000 buffers of ≈ 256 bytes at once), none over
/// 64 KiB. A fixed cost per worker, whatever the number of connections.
const SEND_BUFFERS_KEPT_BYTES: usize = 1 << 20;
const SEND_BUFFER_KEPT_LEN: usize = 64 * 1024;
/// Idle decoders a worker keeps for the next connection that reads (more are freed), and the
/// largest message buffer one of them keeps.
const DECODERS_KEPT: usize = 256;
const DECODER_BUFFER_KEPT_LEN: usize = 8 * 1024;

/// What a worker reports once it is serving.
#[derive(Debug, Clone)]
pub struct WorkerInfo {
    pub index: usize,
    pub driver: &'static str,
    pub recv_mode: RecvMode,
}

pub struct Worker {
    pub index: usize,
    pub shared: Arc<ServerShared>,
    pub recv_mode: RecvMode,
    /// This worker's connections; a connection's id is its key here.
    pub conns: RefCell<Slab<Rc<Conn>>>,
    pub rooms: RefCell<LocalRooms>,
    /// This worker's subscribers of client protocol channels.
    pub channels: RefCell<LocalRooms>,
    /// Connected client protocol sessions by user: where the server API's commands go.
    pub sessions: RefCell<HashMap<Box<str>, Vec<usize>>>,
    /// Notified when a connection ends (shutdown waits for the slab to empty).
    pub conns_changed: Notify,
    /// Send buffers of connections that went idle, for the next flush of any connection.
    pub send_buffers: SendBuffers,
    /// Scratch for the frames of one write (filled and emptied within one call).
    pub write_batch: RefCell<Vec<bytes::Bytes>>,
    /// The ready and completion lists of the worker's writer (see [`conn::flush_loop`]).
    pub writers: Rc<conn::Writers>,
    /// Decoders of connections between messages (an idle connection holds none).
    pub decoders: DecoderPool,
    /// permessage-deflate, with `--compression`.
    pub compression: Option<RefCell<WorkerCompression>>,
    shutdown: Notify,
}

impl Worker {
    /// Sends a frame to everyone in `room`: this worker's members directly, other workers
    /// with members through ONE inbox entry each.
    pub fn publish(&self, room: &str, frame: Bytes) {
        let rooms = self.rooms.borrow();
        let Some(local) = rooms.get(room) else { return };
        let mut others = local.workers.load(Ordering::Acquire) & !(1u64 << self.index);
        while others != 0 {
            let w = others.trailing_zeros() as usize;
            others &= others - 1;
            let delivery = Delivery {
                target: Target::Room,
                room: local.name.clone(),
                frame: frame.clone(),
                offset: 0,
            };
            if !self.shared.inboxes[w].send(delivery) {
                warn!(
                    worker = self.index,
                    to = w,
                    "inbox of worker {w} is full: broadcast dropped there"
                );
            }
        }
        self.fan_out(local, &frame);
    }

    fn fan_out(&self, room: &LocalRoom, frame: &Bytes) {
        let frame = &own_copy(frame, room.members.len());
        let conns = self.conns.borrow();
        self.writers.stamped(|| {
            for (_, c) in members_prefetched(room, &conns) {
                c.send(self, frame.clone());
            }
        });
    }

    /// A channel's frame to this worker's subscribers, by position: a subscriber that already
    /// has the offset (recovery overlap) is skipped; one that would miss an offset is told
    /// (insufficient state) instead of skipping silently.
    fn fan_out_channel(&self, room: &LocalRoom, frame: &Bytes, offset: u64) {
        let frame = &own_copy(frame, room.members.len());
        let conns = self.conns.borrow();
        self.writers.stamped(|| {
            for (m, c) in members_prefetched(room, &conns) {
                match m.admit(offset) {
                    Admit::Deliver => c.send(self, frame.clone()),
                    Admit::Skip => {}
                    Admit::Gap { expected } => {
                        warn!(worker = self.index, conn = m.conn, channel = %room.name, expected, got = offset, "subscriber missed a publication: telling it (insufficient state)");
                        c.report_gap(room.name.clone());
                    }
                }
            }
        });
    }

    /// Publications this worker's inbox dropped: each subscriber that needed one is told
    /// (insufficient state), even if no later publication arrives to show the gap.
    fn report_lost(&self, lost: &Lost) {
        warn!(
            worker = self.index,
            channels = lost.channels.len(),
            overflow = lost.overflow,
            "inbox dropped channel publications: telling the subscribers that missed them"
        );
        let conns = self.conns.borrow();
        self.channels.borrow().apply_lost(lost, |channel, conn| {
            if let Some(c) = conns.get(conn) {
                c.report_gap(channel.clone());
            }
        });
    }

    pub fn index_session(&self, user: &str, conn: usize) {
        let mut sessions = self.sessions.borrow_mut();
        match sessions.get_mut(user) {
            Some(v) => v.push(conn),
            None => {
                sessions.insert(user.into(), vec![conn]);
            }
        }
    }

    pub fn unindex_session(&self, user: &str, conn: usize) {
        let mut sessions = self.sessions.borrow_mut();
        if let Some(v) = sessions.get_mut(user) {
            v.retain(|&c| c != conn);
            if v.is_empty() {
                sessions.remove(user);
            }
        }
    }

    /// A control plane request: a command for the user's sessions here, or a survey.
    fn on_control(&self, c: Control) {
        match c {
            Control::Session(cmd) => {
                let sessions = self.sessions.borrow();
                let Some(ids) = sessions.get(cmd.sessions().user.as_str()) else {
                    return;
                };
                let conns = self.conns.borrow();
                for id in ids {
                    if let Some(conn) = conns.get(*id) {
                        conn.post(ConnEvent::Command(cmd.clone()));
                    }
                }
            }
            Control::Survey(reply) => {
                let mut survey = Survey::default();
                for room in self.channels.borrow().iter() {
                    let n = room.members.len() as u32;
                    survey.subs += n as u64;
                    survey.channels.insert(room.name.to_string(), n);
                }
                survey.clients = self
                    .sessions
                    .borrow()
                    .values()
                    .map(|v| v.len() as u64)
                    .sum();
                let _ = reply.send(survey);
            }
        }
    }

    /// Fans out what other workers sent, until the shutdown flag is set.
    async fn drain_inbox(self: Rc<Self>) {
        let inbox = &self.shared.inboxes[self.index];
        loop {
            poll_fn(|cx| {
                if inbox.poll_ready(cx) || self.shared.shutting_down.load(Ordering::Acquire) {
                    Poll::Ready(())
                } else {
                    Poll::Pending
                }
            })
            .await;
            while let Some(c) = inbox.pop_control() {
                self.on_control(c);
            }
            while let Some(d) = inbox.pop() {
                match d.target {
                    Target::Room => {
                        if let Some(local) = self.rooms.borrow().get(&d.room) {
                            self.fan_out(local, &d.frame);
                        }
                    }
                    Target::Channel => {
                        if let Some(local) = self.channels.borrow().get(&d.room) {
                            self.fan_out_channel(local, &d.frame, d.offset);
                        }
                    }
                }
            }
            if let Some(lost) = inbox.take_lost() {
                self.report_lost(&lost);
            }
            if self.shared.shutting_down.load(Ordering::Acquire) {
                self.shutdown.notify();
                return;
            }
        }
    }

    async fn accept_loop(self: Rc<Self>, listener: TcpListener) {
        let mut incoming = listener.incoming();
        let shared = &self.shared;
        loop {
            let next = {
                let mut stop = pin!(self.shutdown.notified());
                poll_fn(|cx| {
                    if stop.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(None);
                    }
                    incoming.poll_next_unpin(cx).map(Some)
                })
                .await
            };
            let stream = match next {
                None | Some(None) => break,
                Some(Some(Ok(s))) => s,
                Some(Some(Err(e))) => {
                    warn!(worker = self.index, "accept failed: {e}");
                    compio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let Ok(peer) = stream.peer_addr() else {
                continue;
            };
            let _ = stream.set_nodelay(true);
            shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
            let max = shared.opts.max_connections;
            let open = shared.connections.load(Ordering::Acquire);
            if open >= max + reject_headroom(max) {
                // Far over the limit: answering 503 would cost a TLS handshake each. Drop.
                shared.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let open = shared.connections.fetch_add(1, Ordering::AcqRel);
            shared.worker_connections[self.index].fetch_add(1, Ordering::AcqRel);
            let reject = (open >= max).then(|| {
                shared.stats.rejected_full.fetch_add(1, Ordering::Relaxed);
                Status::SERVICE_UNAVAILABLE
            });
            compio::runtime::spawn(conn::run(self.clone(), stream, peer, reject)).detach();
        }
        // Cancel the multishot accept and close the socket now, while the runtime still runs:
        // left to the process exit, the kernel tears the io_uring down asynchronously and the
        // LISTEN socket can outlive the process, so an immediate restart finds the port taken.
        drop(incoming);
        match compio::time::timeout(Duration::from_secs(1), listener.close()).await {
            Ok(Ok(())) => debug!(worker = self.index, "stopped accepting, listener closed"),
            Ok(Err(e)) => warn!(worker = self.index, "closing the listener: {e}"),
            Err(_) => warn!(worker = self.index, "listener not closed within 1 s"),
        }
    }

    /// Tells every connection to go — in batches of `--drain-batch` (shared by the workers)
    /// every `--drain-interval`, protocol sessions with 3001 and others with 1001 — and waits
    /// (bounded) until they are gone.
    async fn close_all(&self) {
        let opts = &self.shared.opts;
        let timeout = opts.shutdown_timeout;
        let conns: Vec<Rc<Conn>> = self.conns.borrow().iter().map(|(_, c)| c.clone()).collect();
        let batch = match opts.drain_batch {
            0 => conns.len().max(1),
            n => n.div_ceil(self.shared.inboxes.len()).max(1),
        };
        for (i, chunk) in conns.chunks(batch).enumerate() {
            if i > 0 {
                compio::time::sleep(opts.drain_interval).await;
            }
            debug!(
                worker = self.index,
                batch = i,
                connections = chunk.len(),
                "draining"
            );
            for c in chunk {
                c.post(ConnEvent::Drain);
            }
        }
        drop(conns);
        let deadline = Instant::now() + timeout + Duration::from_secs(1);
        while !self.conns.borrow().is_empty() && Instant::now() < deadline {
            let _ = compio::time::timeout_at(deadline, self.conns_changed.notified()).await;
        }
        let left = self.conns.borrow().len();
        if left > 0 {
            warn!(
                worker = self.index,
                "{left} connections did not close within {timeout:?}"
            );
        }
    }
}

/// Fan-outs to at least this many of a worker's connections queue a copy of the frame of the
/// worker's own (see [`own_copy`]).
const OWN_COPY_MIN_MEMBERS: usize = 32;

/// The frame a fan-out to `members` connections queues: a worker's own copy when they are many.
/// Every queued clone increments the frame's reference count (a locked add); with one `Bytes`
/// shared by both workers, their fan-outs incremented the same cache line thousands of times
/// at once and each increment waited for the line — 6.4 % of the server's CPU in a saturated
/// broadcast (results/fan-out-memory.md). One copy per worker per publication ends the sharing.
fn own_copy(frame: &Bytes, members: usize) -> Bytes {
    if members >= OWN_COPY_MIN_MEMBERS {
        Bytes::copy_from_slice(frame)
    } else {
        frame.clone()
    }
}

/// How many members ahead a fan-out prefetches: a connection's state at twice this distance,
/// then the slot its queue writes to at this distance (which needs the state already loaded).
const PREFETCH_AHEAD: usize = 8;

/// A room's members on this worker with their connections, prefetching ahead: a fan-out's
/// `send` to thousands of connections otherwise waits for memory at each (a connection's state
/// and its queue are cold by the time the next publication reaches it; `Conn::send` was 9.7 %
/// of the server's CPU in a saturated broadcast, most of it two cache misses —
/// results/fan-out-memory.md).
fn members_prefetched<'a>(
    room: &'a LocalRoom,
    conns: &'a Slab<Rc<Conn>>,
) -> impl Iterator<Item = (&'a Member, &'a Conn)> + 'a {
    let mut far = room.members.iter().skip(2 * PREFETCH_AHEAD);
    let mut near = room.members.iter().skip(PREFETCH_AHEAD);
    room.members.iter().filter_map(move |(_, m)| {
        if let Some((_, f)) = far.next()
            && let Some(c) = conns.get(f.conn)
        {
            c.prefetch();
        }
        if let Some((_, n)) = near.next()
            && let Some(c) = conns.get(n.conn)
        {
            c.prefetch_queue();
        }
        conns.get(m.conn).map(|c| (m, &**c))
    })
}

/// Puts a channel's frame into the inbox of every worker with subscribers, the caller's own
/// included, under the channel directory's lock: called by the engine while it holds the
/// channel's lock, so every worker gets a channel's frames in offset order (app-layer rule 1).
pub fn publish_channel(
    channels: &RoomDirectory,
    inboxes: &[Inbox],
    channel: &str,
    offset: u64,
    frame: Bytes,
) {
    channels.with_workers(channel, |name, mut mask| {
        while mask != 0 {
            let w = mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let delivery = Delivery {
                target: Target::Channel,
                room: name.clone(),
                frame: frame.clone(),
                offset,
            };
            if !inboxes[w].send(delivery) {
                warn!(
                    to = w,
                    channel,
                    offset,
                    "inbox of worker {w} is full: publication dropped there (its subscribers will be told)"
                );
            }
        }
    });
}

/// Connections past `--max-connections` still answered with a 503 (they cost a TLS handshake
/// each); beyond this many more, new connections are closed at once.
pub fn reject_headroom(max_connections: usize) -> usize {
    (max_connections / 10).max(64)
}

/// Decides how connections read, given the driver and the kernel. A fallback from multishot
/// is logged once per process, not once per worker.
fn resolve_recv_mode(asked: RecvMode, driver: DriverType, kernel: Option<(u32, u32)>) -> RecvMode {
    static LOGGED: std::sync::Once = std::sync::Once::new();
    let multishot_ok = driver == DriverType::IoUring && kernel.is_some_and(|k| k >= (6, 0));
    match asked {
        RecvMode::Auto | RecvMode::Multishot if multishot_ok => RecvMode::Multishot,
        RecvMode::Auto | RecvMode::Multishot => {
            LOGGED.call_once(|| {
                warn!(
                    ?driver,
                    ?kernel,
                    "multishot recv into a buffer ring needs io_uring on Linux 6.0+: using single-shot reads"
                )
            });
            RecvMode::Single
        }
        RecvMode::Single => RecvMode::Single,
    }
}

/// The worker thread's body: builds the runtime, reports readiness, serves until shutdown.
pub fn run(
    index: usize,
    shared: Arc<ServerShared>,
    listener: std::net::TcpListener,
    ready: std::sync::mpsc::Sender<std::io::Result<WorkerInfo>>,
) {
    shared.counters[index]
        .thread_id
        .store(crate::host::current_thread_id(), Ordering::Relaxed);
    let opts = &shared.opts;
    let mut proactor = ProactorBuilder::new();
    proactor
        .buffer_pool_size(NonZero::new(opts.recv_buffers.max(1)).expect("max(1)"))
        .buffer_pool_buffer_len(opts.recv_buffer_size as usize);
    let runtime = match RuntimeBuilder::new().with_proactor(proactor).build() {
        Ok(rt) => rt,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    let driver = runtime.driver_type();
    let recv_mode = resolve_recv_mode(opts.recv_mode, driver, crate::host::kernel_version());
    runtime.block_on(async {
        let listener = match TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = ready.send(Err(e));
                return;
            }
        };
        let worker = Rc::new(Worker {
            index,
            shared: shared.clone(),
            recv_mode,
            conns: RefCell::new(Slab::new()),
            rooms: RefCell::new(LocalRooms::default()),
            channels: RefCell::new(LocalRooms::default()),
            sessions: RefCell::new(HashMap::new()),
            conns_changed: Notify::default(),
            send_buffers: SendBuffers::new(SEND_BUFFERS_KEPT_BYTES, SEND_BUFFER_KEPT_LEN),
            write_batch: RefCell::new(Vec::new()),
            writers: Rc::new(conn::Writers::new()),
            decoders: DecoderPool::new(
                DecoderConfig {
                    role: Role::Server,
                    max_frame_size: opts.frame_limit(),
                    max_message_size: opts.max_message_size,
                },
                DECODERS_KEPT,
                DECODER_BUFFER_KEPT_LEN,
            ),
            compression: opts
                .compression
                .settings()
                .map(|s| RefCell::new(WorkerCompression::new(s))),
            shutdown: Notify::default(),
        });
        let driver = match driver {
            DriverType::IoUring => "io_uring",
            DriverType::Poll => "epoll",
            DriverType::IOCP => "iocp",
        };
        let _ = ready.send(Ok(WorkerInfo {
            index,
            driver,
            recv_mode,
        }));
        compio::runtime::spawn(worker.clone().drain_inbox()).detach();
        compio::runtime::spawn(conn::flush_loop(worker.clone())).detach();
        worker.clone().accept_loop(listener).await;
        info!(
            worker = index,
            connections = worker.conns.borrow().len(),
            "worker shutting down"
        );
        worker.close_all().await;
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recv_mode_follows_driver_and_kernel() {
        let io = DriverType::IoUring;
        assert_eq!(
            resolve_recv_mode(RecvMode::Auto, io, Some((6, 18))),
            RecvMode::Multishot
        );
        assert_eq!(
            resolve_recv_mode(RecvMode::Auto, io, Some((5, 19))),
            RecvMode::Single
        );
        assert_eq!(
            resolve_recv_mode(RecvMode::Auto, DriverType::Poll, Some((6, 18))),
            RecvMode::Single
        );
        assert_eq!(
            resolve_recv_mode(RecvMode::Multishot, io, Some((5, 15))),
            RecvMode::Single
        );
        assert_eq!(
            resolve_recv_mode(RecvMode::Single, io, Some((6, 18))),
            RecvMode::Single
        );
    }
}

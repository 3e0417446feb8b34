//! One connection: its reader task and the worker's writer sharing a [`Conn`].
//!
//! - the **reader** (a task per connection) receives (multishot recv into the worker's buffer
//!   ring, or single reads), feeds the TLS session, upgrades HTTP → WebSocket, decodes frames
//!   and acts on them: publish a message to the room, answer a Ping, echo a Close; it also owns
//!   the timers (handshake deadline, heartbeat Pings, idle timeout, waiting for the peer's
//!   Close);
//! - the worker's **writer** ([`writer`], one task per worker) takes the connection when
//!   something is queued and writes everything queued as one coalesced TLS write and one send —
//!   one send in flight per connection.
//!
//! Closing: whoever decides queues a Close frame in [`Outbound`]. If the peer closed first, or
//! the stream is broken (protocol error), the connection ends once the Close is sent; if the
//! server closed first, the reader waits up to a deadline for the peer's Close. Then TLS
//! close_notify, half-close, a short drain (so unread bytes do not turn our FIN into a RST),
//! and the connection leaves its room and the worker's slab.

use std::cell::{Cell, RefCell};
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::ops::ControlFlow;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadMulti, AsyncWrite};
use compio::net::TcpStream;
use futures_util::Stream;
use tracing::{debug, info, warn};

use super::app::{Admitted, ClientApp, RawRoom, admit};
use super::counters::WorkerCounters;
use super::files;
use super::options::RecvMode;
use super::outbound::{Offer, Outbound};
use super::rate::TokenBucket;
use super::worker::Worker;
use crate::proto::deflate_negotiation::negotiate;
use crate::proto::encode::server_frame;
use crate::proto::handshake::{
    MAX_REQUEST_LEN, Status, error_response, parse_request, switching_protocols,
};
use crate::proto::{CloseCode, ControlPayload, Decoder, Event, OpCode, ProtocolError};
use crate::rt::{Notify, yield_now};
use crate::tls::session::{Received, ServerSession};

mod writer;
use writer::WriteState;
pub(crate) use writer::{Writers, flush_loop};

/// Payload of the server's heartbeat Pings.
const PING_PAYLOAD: &[u8] = b"ringcast";
/// After our last byte is sent, how long we read and discard before closing the socket.
const DRAIN_TIME: Duration = Duration::from_millis(500);
/// Receive chunks a reader handles before it yields, so writers (its own and others') flush.
const READ_BUDGET: u32 = 16;
/// Back-off when the worker's buffer ring is empty (ENOBUFS): back-pressure, not an error.
const RING_EMPTY_BACKOFF: Duration = Duration::from_millis(1);

/// State shared by a connection's reader and writer (and by broadcasters on the same worker).
pub struct Conn {
    pub id: usize,
    pub peer: SocketAddr,
    stream: TcpStream,
    session: RefCell<ServerSession>,
    out: RefCell<Outbound>,
    /// Where its writing stands (the worker's [`writer`] drives it).
    write: RefCell<WriteState>,
    writers: Rc<Writers>,
    /// Its sends complete with this waker (it tells the worker's writer which connection).
    send_done: std::task::Waker,
    wake_reader: Notify,
    /// The server sent a Close and waits for the peer's until then.
    close_deadline: Cell<Option<Instant>>,
    close_notify_sent: Cell<bool>,
    writer_done: Cell<bool>,
    /// The socket failed; stop everything.
    broken: Cell<bool>,
    /// The close code of the closing handshake and whether the server started it (for the log).
    closed_with: Cell<Option<(u16, bool)>>,
    /// Events for the session (set by the worker, handled by the reader, which owns it).
    events: RefCell<Vec<ConnEvent>>,
    /// Notified by the writer each time everything queued has been sent.
    drained: Notify,
    /// A file answer is streaming: later requests on the connection wait.
    pub file_busy: Cell<bool>,
    /// permessage-deflate agreed: the window (bits) our messages are compressed with.
    deflate_window: Cell<Option<u8>>,
}

/// Something for a connection's session from outside its reader.
pub enum ConnEvent {
    /// The fan-out saw it miss a publication of this channel.
    Gap(std::sync::Arc<str>),
    /// The server API's command.
    Command(std::sync::Arc<crate::api::SessionCommand>),
    /// The server is draining: close (3001 for protocol sessions, 1001 otherwise).
    Drain,
}

impl Conn {
    /// Queues a frame (data, Pong, Ping); a connection past its backlog limit is closed as a
    /// slow consumer with 1008.
    pub fn send(&self, worker: &Worker, frame: Bytes) {
        let counters = &worker.shared.counters[worker.index];
        let frame = match (self.deflate_window.get(), &worker.compression) {
            (Some(window), Some(c)) => {
                c.borrow_mut()
                    .frame_for(&frame, window, &counters.compression)
            }
            _ => frame,
        };
        let offer = self.out.borrow_mut().offer(frame);
        WorkerCounters::add(&counters.frames_out, 1);
        match offer {
            Offer::Queued => self.writers.schedule(self),
            Offer::Closing => {}
            Offer::Overflow => {
                worker
                    .shared
                    .stats
                    .slow_consumers
                    .fetch_add(1, Ordering::Relaxed);
                info!(conn = self.id, peer = %self.peer, "slow consumer: backlog limit reached, closing with 1008");
                let reason = "slow consumer: outbound backlog over the limit";
                self.close(
                    CloseCode::POLICY_VIOLATION,
                    reason,
                    true,
                    worker.shared.opts.close_timeout,
                );
            }
        }
    }

    /// Hints the CPU to load what [`send`](Self::send) reads first (a fan-out calls it for a
    /// connection a few places ahead; a connection's state is cold when a broadcast reaches it).
    pub fn prefetch(&self) {
        crate::rt::prefetch(&self.out);
        crate::rt::prefetch(&self.write);
        crate::rt::prefetch(&self.deflate_window);
    }

    /// Hints the CPU to load the slot the next queued frame goes to (after [`prefetch`](Self::prefetch),
    /// which loads the queue's header).
    pub fn prefetch_queue(&self) {
        if let Ok(out) = self.out.try_borrow() {
            crate::rt::prefetch(out.next_slot());
        }
    }

    /// The fan-out saw this connection miss a publication of `channel`: the reader tells the
    /// session (which unsubscribes with 2500 or disconnects with 3010).
    pub fn report_gap(&self, channel: std::sync::Arc<str>) {
        self.post(ConnEvent::Gap(channel));
    }

    /// Hands an event to the session (the reader runs it on its next turn).
    pub fn post(&self, event: ConnEvent) {
        self.events.borrow_mut().push(event);
        self.wake_reader.notify();
    }

    /// Queues bytes of an HTTP answer (`/files/`); false when the connection is closing.
    pub fn push_raw(&self, bytes: Bytes) -> bool {
        let ok = self.out.borrow_mut().push_raw(bytes);
        self.writers.schedule(self);
        ok
    }

    /// Waits until everything queued has been sent; false if that takes longer than `limit`
    /// or the connection broke.
    pub async fn wait_drained(&self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        loop {
            if self.broken.get() || self.writer_done.get() {
                return false;
            }
            if self.out.borrow().backlog() == 0 {
                return true;
            }
            if compio::time::timeout_at(deadline, self.drained.notified())
                .await
                .is_err()
            {
                return false;
            }
        }
    }

    /// A file answer is complete: the reader may take the next request.
    pub fn file_done(&self) {
        self.file_busy.set(false);
        self.wake_reader.notify();
    }

    /// An HTTP answer cannot be completed (or the connection is to close after it): send what
    /// is queued, then end the connection.
    pub fn abort_http(&self) {
        self.file_busy.set(false);
        self.finish();
        self.wake_reader.notify();
    }

    /// Queues the answer to the upgrade request (101 or an HTTP error).
    fn send_handshake(&self, answer: Vec<u8>) {
        self.out.borrow_mut().push_handshake(Bytes::from(answer));
        self.writers.schedule(self);
    }

    /// Starts the closing handshake from the server's side: Close frame, then wait up to
    /// `wait` for the peer's Close. Does nothing if a Close was already queued.
    pub fn close(&self, code: CloseCode, reason: &str, discard_pending: bool, wait: Duration) {
        let frame = server_frame(
            OpCode::Close,
            ControlPayload::close(code, reason).as_bytes(),
        );
        if self.out.borrow_mut().push_close(frame, discard_pending) {
            self.closed_with.set(Some((code.0, true)));
            self.close_deadline.set(Some(Instant::now() + wait));
            self.writers.schedule(self);
            self.wake_reader.notify();
        }
    }

    /// End the connection once everything queued is sent.
    fn finish(&self) {
        self.out.borrow_mut().finish();
        self.writers.schedule(self);
    }
}

/// Runs a freshly accepted connection to its end.
pub fn run(
    worker: Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    reject: Option<Status>,
) -> impl Future<Output = ()> {
    // Set up here, outside the task: an `async fn`'s arguments stay in its state for the
    // connection's whole life (≈ 120 B per connection), an `async` block holds only what it uses.
    // Used in place: moving it into locals would hold it twice across the await.
    let mut started = open(&worker, stream, peer, reject);
    async move {
        let Some(reader) = &mut started else {
            return;
        };
        reader.run().await;
        if let Some(reader) = started {
            closed(reader);
        }
    }
}

/// The connection's `Conn` and slab entry, and its reader (None: no TLS session).
fn open(
    worker: &Rc<Worker>,
    stream: TcpStream,
    peer: SocketAddr,
    reject: Option<Status>,
) -> Option<Reader> {
    let opts = &worker.shared.opts;
    let session = match ServerSession::new(worker.shared.tls.as_ref()) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(%peer, "cannot start a TLS session: {e}");
            release(worker);
            return None;
        }
    };
    let id = worker.conns.borrow().vacant_key();
    let conn = Rc::new(Conn {
        id,
        peer,
        stream,
        session: RefCell::new(session),
        out: RefCell::new(Outbound::new(opts.max_backlog as usize)),
        write: RefCell::new(WriteState::Idle),
        writers: worker.writers.clone(),
        send_done: worker.writers.waker_for(id),
        wake_reader: Notify::default(),
        close_deadline: Cell::new(None),
        close_notify_sent: Cell::new(false),
        writer_done: Cell::new(false),
        broken: Cell::new(false),
        closed_with: Cell::new(None),
        events: RefCell::new(Vec::new()),
        drained: Notify::default(),
        file_busy: Cell::new(false),
        deflate_window: Cell::new(None),
    });
    assert_eq!(worker.conns.borrow_mut().insert(conn.clone()), id);
    debug!(conn = id, %peer, "connection accepted");
    Some(Reader::new(worker.clone(), conn, reject))
}

/// After the reader ended: the connection leaves its room, its session, the slab.
fn closed(mut reader: Reader) {
    let worker = reader.worker.clone();
    let conn = reader.conn.clone();
    let (id, peer) = (conn.id, conn.peer);
    // Cancels a send stuck on a peer that stopped reading.
    conn.write.replace(WriteState::Done);
    let counters = &worker.shared.counters[worker.index];
    if let Some(r) = reader.room.take() {
        worker
            .rooms
            .borrow_mut()
            .leave(&worker.shared.rooms, worker.index, &r.membership);
        WorkerCounters::add(&counters.raw_closed, 1);
    }
    if let Some(mut app) = reader.client.take() {
        app.on_closed(&worker, id);
        WorkerCounters::add(&counters.protocol_closed, 1);
    }
    worker.conns.borrow_mut().remove(id);
    release(&worker);
    match conn.closed_with.get() {
        Some((code, by_server)) => {
            let by = if by_server { "server" } else { "client" };
            debug!(conn = id, %peer, code, by, secs = reader.accepted.elapsed().as_secs(), "connection closed");
        }
        None => {
            debug!(conn = id, %peer, secs = reader.accepted.elapsed().as_secs(), "connection closed without a close handshake (1006)")
        }
    }
}

/// Gives back the connection slot counted at accept.
fn release(worker: &Worker) {
    worker.shared.connections.fetch_sub(1, Ordering::AcqRel);
    worker.shared.worker_connections[worker.index].fetch_sub(1, Ordering::AcqRel);
    worker.conns_changed.notify();
}

enum Phase {
    /// TLS handshake and HTTP upgrade request; `head` collects the request.
    Upgrading {
        head: Vec<u8>,
        reject: Option<Status>,
    },
    Open {
        /// Only while a frame or message is partly read; between messages it is back in the
        /// worker's pool.
        decoder: Option<Box<Decoder>>,
        bucket: Option<TokenBucket>,
    },
    /// HTTP/1.1 keep-alive for `/files/`: `head` collects the next request(s).
    Files { head: Vec<u8> },
    /// Nothing more is read from the peer: the connection ends once the writer is done.
    Ending,
}

/// A single read in flight (fallback mode), kept until it completes.
type PendingRead = Pin<Box<dyn Future<Output = BufResult<usize, Vec<u8>>>>>;

/// Where the bytes come from.
enum Source<S> {
    Ring(Pin<Box<S>>),
    Single {
        buf: Option<Vec<u8>>,
        pending: Option<PendingRead>,
    },
}

struct Reader {
    worker: Rc<Worker>,
    conn: Rc<Conn>,
    phase: Phase,
    /// A raw room connection's room.
    room: Option<RawRoom>,
    /// A client protocol connection's session.
    client: Option<Box<ClientApp>>,
    accepted: Instant,
    ending_since: Instant,
    last_rx: Instant,
    last_ping: Instant,
    /// When the timer next checks `last_rx` against the idle timeout.
    idle_check_at: Instant,
}

enum Wake<B> {
    Read(Option<io::Result<B>>),
    Signal,
    Timer,
}

impl Reader {
    fn new(worker: Rc<Worker>, conn: Rc<Conn>, reject: Option<Status>) -> Self {
        let now = Instant::now();
        Self {
            worker,
            conn,
            phase: Phase::Upgrading {
                head: Vec::new(),
                reject,
            },
            room: None,
            client: None,
            accepted: now,
            ending_since: now,
            last_rx: now,
            last_ping: now,
            idle_check_at: now,
        }
    }

    async fn run(&mut self) {
        let conn = self.conn.clone();
        let mut stream = &conn.stream;
        let mode = self.worker.recv_mode;
        let buf_len = self.worker.shared.opts.recv_buffer_size as usize;
        let mut source = match mode {
            RecvMode::Single => Source::Single {
                buf: Some(Vec::with_capacity(buf_len)),
                pending: None,
            },
            _ => Source::Ring(Box::pin(stream.read_multi(0))),
        };
        let mut timer_at = self.next_deadline();
        let mut timer = pin!(compio::time::sleep_until(timer_at));
        let mut budget = READ_BUDGET;
        loop {
            if matches!(self.phase, Phase::Ending) && (conn.writer_done.get() || conn.broken.get())
            {
                break;
            }
            if conn.broken.get() {
                break;
            }
            let wake = {
                let mut signal = pin!(conn.wake_reader.notified());
                poll_fn(|cx| {
                    if let Poll::Ready(r) = poll_source(&mut source, &conn.stream, buf_len, cx) {
                        return Poll::Ready(Wake::Read(r));
                    }
                    if signal.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Signal);
                    }
                    if timer.as_mut().poll(cx).is_ready() {
                        return Poll::Ready(Wake::Timer);
                    }
                    Poll::Pending
                })
                .await
            };
            let now = Instant::now();
            let fired = matches!(wake, Wake::Timer);
            match wake {
                Wake::Read(Some(Ok(chunk))) => {
                    self.last_rx = now;
                    self.on_bytes(&chunk, now);
                    source.give_back(chunk);
                    budget -= 1;
                    if budget == 0 {
                        budget = READ_BUDGET;
                        yield_now().await;
                    }
                }
                Wake::Read(Some(Err(e))) if e.kind() == io::ErrorKind::ResourceBusy => {
                    // The worker's buffer ring is empty: wait for buffers to come back.
                    compio::time::sleep(RING_EMPTY_BACKOFF).await;
                }
                Wake::Read(Some(Err(e))) => {
                    debug!(conn = conn.id, "receive failed: {e}");
                    conn.broken.set(true);
                }
                Wake::Read(None) => {
                    // (Logged when the connection ends: with or without a close handshake.)
                    self.end();
                    break;
                }
                Wake::Signal => {
                    if matches!(self.phase, Phase::Files { .. }) {
                        let _ = self.serve_files();
                    }
                    let events = std::mem::take(&mut *conn.events.borrow_mut());
                    for event in events {
                        match (&mut self.client, event) {
                            (Some(app), event) => app.on_event(&self.worker, &conn, event),
                            (None, ConnEvent::Drain) => conn.close(
                                CloseCode::GOING_AWAY,
                                "server shutting down",
                                false,
                                self.worker.shared.opts.shutdown_timeout,
                            ),
                            (None, _) => {}
                        }
                    }
                }
                Wake::Timer => self.on_timer(now),
            }
            let next = self.next_deadline();
            // A fired timer must not be polled again.
            if fired || next != timer_at {
                timer_at = next;
                timer.set(compio::time::sleep_until(timer_at));
            }
        }
        self.end();
        // Boxed: the lingering future (440 B) is needed once, at the end; in the reader's own
        // frame it made every open connection's state 320 B larger (results/linger-box.md).
        Box::pin(self.linger(&mut source)).await;
    }

    /// Waits (bounded) for the writer to flush, half-closes, and drains what the peer still sends.
    async fn linger<S: Stream<Item = io::Result<compio::driver::BufferRef>>>(
        &mut self,
        source: &mut Source<S>,
    ) {
        let conn = &self.conn;
        let deadline = Instant::now() + DRAIN_TIME;
        while !conn.writer_done.get() && !conn.broken.get() && Instant::now() < deadline {
            let _ = compio::time::timeout_at(deadline, conn.wake_reader.notified()).await;
        }
        if conn.broken.get() {
            return;
        }
        let mut stream = &conn.stream;
        let _ = stream.shutdown().await;
        let buf_len = self.worker.shared.opts.recv_buffer_size as usize;
        let drain = async {
            while let Some(Ok(chunk)) =
                poll_fn(|cx| poll_source(source, &conn.stream, buf_len, cx)).await
            {
                source.give_back(chunk);
            }
        };
        let _ = compio::time::timeout_at(deadline, drain).await;
    }

    fn end(&mut self) {
        if !matches!(self.phase, Phase::Ending) {
            self.phase = Phase::Ending;
            self.ending_since = Instant::now();
            self.conn.finish();
        }
    }

    fn next_deadline(&self) -> Instant {
        let opts = &self.worker.shared.opts;
        let mut t = match self.phase {
            Phase::Upgrading { .. } => self.accepted + opts.handshake_timeout,
            // Not `last_rx + idle_timeout`: that moves with every message and would re-arm the
            // timer each time. The idle check runs when the timer fires (see `on_timer`).
            Phase::Open { .. } => (self.last_ping + opts.heartbeat).min(self.idle_check_at),
            // A streaming answer bounds itself (`files::stream`); between requests the next
            // head must come within the handshake timeout.
            Phase::Files { .. } if self.conn.file_busy.get() => self.last_rx + opts.idle_timeout,
            Phase::Files { .. } => self.last_rx + opts.handshake_timeout,
            // Bounded time for the writer to flush the last frames to a peer that may not read.
            Phase::Ending => return self.ending_since + opts.close_timeout,
        };
        if let Some(d) = self.conn.close_deadline.get() {
            t = t.min(d);
        }
        if let Some(d) = self.client.as_ref().and_then(|c| c.poll_timeout()) {
            t = t.min(d);
        }
        t
    }

    fn on_timer(&mut self, now: Instant) {
        let opts = &self.worker.shared.opts;
        let conn = &self.conn;
        if let Phase::Ending = self.phase {
            if now >= self.ending_since + opts.close_timeout {
                debug!(
                    conn = conn.id,
                    "final frames not flushed in time: dropping the connection"
                );
                conn.broken.set(true);
            }
            return;
        }
        if conn.close_deadline.get().is_some_and(|d| now >= d) {
            debug!(conn = conn.id, "peer did not answer our Close in time");
            conn.close_deadline.set(None);
            self.end();
            return;
        }
        match self.phase {
            Phase::Files { .. }
                if !conn.file_busy.get() && now >= self.last_rx + opts.handshake_timeout =>
            {
                debug!(
                    conn = conn.id,
                    "no next request in time: closing the keep-alive connection"
                );
                self.end();
            }
            Phase::Upgrading { .. } if now >= self.accepted + opts.handshake_timeout => {
                self.worker
                    .shared
                    .stats
                    .handshake_timeouts
                    .fetch_add(1, Ordering::Relaxed);
                info!(conn = conn.id, peer = %conn.peer, "handshake not finished within {:?}: dropped", opts.handshake_timeout);
                conn.broken.set(true);
            }
            Phase::Open { .. } => {
                if let Some(app) = &mut self.client
                    && app.poll_timeout().is_some_and(|d| now >= d)
                {
                    app.on_timeout(&self.worker, conn);
                }
                if now >= self.idle_check_at {
                    // Next look at the idle clock: when it would run out at the earliest.
                    self.idle_check_at = self.last_rx + opts.idle_timeout;
                    if now >= self.idle_check_at {
                        self.idle_check_at = now + opts.idle_timeout;
                        let reason = format!(
                            "idle: nothing received for {} s",
                            opts.idle_timeout.as_secs()
                        );
                        conn.close(CloseCode::GOING_AWAY, &reason, false, opts.close_timeout);
                        return;
                    }
                }
                if now >= self.last_ping + opts.heartbeat {
                    self.last_ping = now;
                    conn.send(&self.worker, server_frame(OpCode::Ping, PING_PAYLOAD));
                }
            }
            _ => {}
        }
    }

    /// Bytes from the socket: through TLS, then HTTP or WebSocket.
    fn on_bytes(&mut self, data: &[u8], now: Instant) {
        let w = &self.worker;
        WorkerCounters::add(&w.shared.counters[w.index].bytes_in, data.len() as u64);
        let conn = self.conn.clone();
        let received = {
            let mut session = conn.session.borrow_mut();
            session.receive(data, |plain| self.on_plaintext(plain, now))
        };
        match received {
            Ok(Received::Open) => {}
            Ok(Received::Stopped) => {}
            Ok(Received::PeerClosed) => self.end(),
            Err(e) => {
                self.worker
                    .shared
                    .stats
                    .tls_errors
                    .fetch_add(1, Ordering::Relaxed);
                debug!(conn = conn.id, peer = %conn.peer, "TLS error: {e}");
                self.end();
            }
        }
        if conn.session.borrow().wants_write() {
            conn.writers.schedule(&conn);
        }
    }

    fn on_plaintext(&mut self, plain: &[u8], now: Instant) -> ControlFlow<()> {
        match &mut self.phase {
            Phase::Upgrading { head, .. } => {
                let take = plain
                    .len()
                    .min(MAX_REQUEST_LEN + 1 - head.len().min(MAX_REQUEST_LEN + 1));
                head.extend_from_slice(&plain[..take]);
                self.on_request_bytes(now)
            }
            Phase::Open { .. } => self.decode(plain, now),
            Phase::Files { head } => {
                // Requests pipelined behind a streaming answer wait here, bounded.
                if head.len() + plain.len() > 4 * files::MAX_HEAD {
                    debug!(
                        conn = self.conn.id,
                        "too many pipelined request bytes: closing"
                    );
                    self.end();
                    return ControlFlow::Break(());
                }
                head.extend_from_slice(plain);
                self.serve_files()
            }
            Phase::Ending => ControlFlow::Break(()),
        }
    }

    /// Answers the requests collected so far, one at a time (a streaming answer first ends).
    fn serve_files(&mut self) -> ControlFlow<()> {
        let Some(cfg) = self.worker.shared.files.clone() else {
            self.end();
            return ControlFlow::Break(());
        };
        loop {
            if self.conn.file_busy.get() {
                return ControlFlow::Continue(());
            }
            if self.conn.out.borrow().finishing() {
                self.end();
                return ControlFlow::Break(());
            }
            let Phase::Files { head } = &mut self.phase else {
                return ControlFlow::Break(());
            };
            if head.is_empty() {
                return ControlFlow::Continue(());
            }
            match files::answer(&self.worker, &self.conn, &cfg, head) {
                files::Parsed::Partial => return ControlFlow::Continue(()),
                files::Parsed::Answered {
                    used,
                    keep_alive,
                    stream,
                } => {
                    head.drain(..used.min(head.len()));
                    match stream {
                        Some((path, start, len)) => {
                            self.conn.file_busy.set(true);
                            let task = files::stream(
                                self.worker.clone(),
                                self.conn.clone(),
                                path,
                                start,
                                len,
                                keep_alive,
                            );
                            compio::runtime::spawn(task).detach();
                        }
                        None if !keep_alive => {
                            self.end();
                            return ControlFlow::Break(());
                        }
                        None => {}
                    }
                }
            }
        }
    }

    /// Tries to parse the upgrade request collected so far and answers it.
    fn on_request_bytes(&mut self, now: Instant) -> ControlFlow<()> {
        let Phase::Upgrading { head, reject } = &mut self.phase else {
            unreachable!()
        };
        let head = std::mem::take(head);
        let reject = *reject;
        if self.worker.shared.files.is_some() && files::is_files_request(&head) {
            self.phase = Phase::Files { head };
            return self.serve_files();
        }
        if crate::web::is_page_request(&head) {
            let shared = &self.worker.shared;
            self.conn.send_handshake(crate::web::answer(&head, || {
                super::stats_page::json(shared)
            }));
            self.end();
            return ControlFlow::Break(());
        }
        let (request, used) = match parse_request(&head) {
            Ok(None) => {
                self.phase = Phase::Upgrading { head, reject };
                return ControlFlow::Continue(());
            }
            Ok(Some(r)) => r,
            Err(e) => {
                info!(conn = self.conn.id, peer = %self.conn.peer, status = e.status().0, "handshake refused: {e}");
                return self.refuse(e.response());
            }
        };
        let shared = &self.worker.shared;
        if let Some(status) = reject {
            let msg = format!(
                "server is at its limit of {} connections; try again later",
                shared.opts.max_connections
            );
            return self.refuse(error_response(status, &msg));
        }
        let admitted = admit(
            &self.worker,
            self.conn.id,
            &request,
            self.conn.peer.ip(),
            now,
        );
        let (protocol, close) = match admitted {
            Err(refusal) => return self.refuse(refusal),
            Ok(Admitted::Room(r)) => {
                debug!(conn = self.conn.id, room = %r.membership.room, "upgraded");
                WorkerCounters::add(&shared.counters[self.worker.index].raw_opened, 1);
                self.room = Some(r);
                (None, None)
            }
            Ok(Admitted::Client {
                app,
                protocol,
                close,
            }) => {
                debug!(
                    conn = self.conn.id,
                    client = app.session.client_id(),
                    "upgraded to the client protocol"
                );
                self.client = Some(app);
                WorkerCounters::add(&shared.counters[self.worker.index].protocol_opened, 1);
                (protocol, close)
            }
        };
        let deflate = match &self.worker.compression {
            Some(_) => negotiate(request.extensions()),
            None => None,
        };
        self.conn.send_handshake(switching_protocols(
            &request.accept_key(),
            protocol,
            deflate.as_ref().map(|(_, header)| header.as_str()),
        ));
        if let Some(d) = close {
            self.conn.close(
                CloseCode(d.code),
                &d.reason,
                false,
                shared.opts.close_timeout,
            );
        }
        let opts = &shared.opts;
        if let Some((agreed, _)) = deflate {
            self.conn
                .deflate_window
                .set(Some(agreed.server_window_bits));
        }
        self.phase = Phase::Open {
            decoder: None,
            // Client protocol sessions limit their commands themselves.
            bucket: if self.client.is_some() {
                None
            } else {
                TokenBucket::per_minute(opts.rate_limit, now)
            },
        };
        self.last_rx = now;
        self.last_ping = now;
        self.idle_check_at = now + opts.idle_timeout;
        // Frames the client sent right behind its request.
        self.decode(&head[used..], now)
    }

    fn refuse(&mut self, response: Vec<u8>) -> ControlFlow<()> {
        self.worker
            .shared
            .stats
            .handshakes_refused
            .fetch_add(1, Ordering::Relaxed);
        self.conn.send_handshake(response);
        self.end();
        ControlFlow::Break(())
    }

    fn decode(&mut self, mut input: &[u8], now: Instant) -> ControlFlow<()> {
        loop {
            let Phase::Open { decoder, .. } = &mut self.phase else {
                return ControlFlow::Break(());
            };
            let worker = &self.worker;
            let decoder = decoder.get_or_insert_with(|| {
                let inflaters = match (self.conn.deflate_window.get(), &worker.compression) {
                    (Some(_), Some(c)) => Some(c.borrow().inflaters.clone()),
                    _ => None,
                };
                worker.decoders.take(inflaters)
            });
            // Inflating happens inside the decoder as bytes arrive: time the calls that do it.
            let timed = self.conn.deflate_window.get().map(|_| Instant::now());
            let was_inflating = decoder.is_inflating();
            let decoded = decoder.decode(&mut input);
            if let Some(started) = timed {
                let inflated = matches!(&decoded, Ok(Some(Event::Message(m))) if m.inflated);
                if was_inflating || inflated || decoder.is_inflating() {
                    let counters = &self.worker.shared.counters[self.worker.index].compression;
                    WorkerCounters::add(&counters.inflate_ns, started.elapsed().as_nanos() as u64);
                    WorkerCounters::add(&counters.inflated, u64::from(inflated));
                }
            }
            let decoded = decoded.and_then(|event| self.inflate(event));
            match decoded {
                Ok(None) => {
                    // Everything read: between messages the decoder goes back to the pool.
                    if let Phase::Open { decoder, .. } = &mut self.phase {
                        self.worker.decoders.give(decoder);
                    }
                    return ControlFlow::Continue(());
                }
                Ok(Some(event)) => self.on_event(event, now)?,
                Err(e) => {
                    self.worker
                        .shared
                        .stats
                        .protocol_errors
                        .fetch_add(1, Ordering::Relaxed);
                    info!(conn = self.conn.id, peer = %self.conn.peer, code = e.close_code().0, "protocol error: {e}");
                    let opts = &self.worker.shared.opts;
                    self.conn
                        .close(e.close_code(), &e.to_string(), false, opts.close_timeout);
                    // The stream cannot be parsed past the error: stop reading, close after the flush.
                    self.end();
                    return ControlFlow::Break(());
                }
            }
        }
    }

    /// A compressed message that arrived whole (the worker's inflaters were all lent out)
    /// inflated with the worker's own inflater, bounded by the message size limit; its
    /// compressed buffer goes back to the decoder.
    fn inflate(&mut self, event: Option<Event>) -> Result<Option<Event>, ProtocolError> {
        let Some(Event::Message(m)) = event else {
            return Ok(event);
        };
        if !m.compressed {
            return Ok(Some(Event::Message(m)));
        }
        let c = self
            .worker
            .compression
            .as_ref()
            .expect("compressed messages are only accepted with compression on");
        let counters = &self.worker.shared.counters[self.worker.index].compression;
        let exhausted = counters
            .inflate_pool_exhausted
            .fetch_add(1, Ordering::Relaxed)
            + 1;
        if exhausted.is_power_of_two() {
            warn!(
                conn = self.conn.id,
                max_inflating = self.worker.shared.opts.compression.max_inflating,
                times = exhausted,
                "all inflaters lent: a compressed message was received whole before inflating (raise --max-inflating)"
            );
        }
        let started = Instant::now();
        let limit = self.worker.shared.opts.max_message_size;
        let inflated = m.inflate(&mut c.borrow_mut().inflater, limit);
        WorkerCounters::add(&counters.inflate_ns, started.elapsed().as_nanos() as u64);
        WorkerCounters::add(&counters.inflated, 1);
        let (m, spent) = inflated?;
        if let (
            Some(buf),
            Phase::Open {
                decoder: Some(decoder),
                ..
            },
        ) = (spent, &mut self.phase)
        {
            decoder.recycle(buf);
        }
        Ok(Some(Event::Message(m)))
    }

    /// One message's worth of the rate limit. Past it: Close 1008, and false (the message or
    /// Ping is not acted on; reading goes on, for the peer's Close).
    fn take_token(&mut self, now: Instant) -> bool {
        let Phase::Open {
            bucket: Some(b), ..
        } = &mut self.phase
        else {
            return true;
        };
        if b.try_take(now) {
            return true;
        }
        let opts = &self.worker.shared.opts;
        self.worker
            .shared
            .stats
            .rate_limited
            .fetch_add(1, Ordering::Relaxed);
        let reason = format!(
            "rate limit: more than {} messages per minute",
            opts.rate_limit
        );
        info!(conn = self.conn.id, peer = %self.conn.peer, "{reason}: closing with 1008");
        self.conn.close(
            CloseCode::POLICY_VIOLATION,
            &reason,
            false,
            opts.close_timeout,
        );
        false
    }

    fn on_event(&mut self, event: Event, now: Instant) -> ControlFlow<()> {
        let conn = self.conn.clone();
        let closing = conn.out.borrow().close_queued();
        match event {
            Event::Message(m) => {
                if closing {
                    return ControlFlow::Continue(());
                }
                if !self.take_token(now) {
                    return ControlFlow::Continue(());
                }
                self.worker
                    .shared
                    .stats
                    .messages_in
                    .fetch_add(1, Ordering::Relaxed);
                if let Some(app) = &mut self.client {
                    app.on_message(&self.worker, &conn, m.text().map(str::as_bytes));
                    return ControlFlow::Continue(());
                }
                let room = self.room.as_ref().expect("open connections have an app");
                if room.can_publish {
                    self.worker
                        .publish(&room.membership.room, m.into_server_frame());
                } else {
                    debug!(
                        conn = conn.id,
                        "raw room message dropped: no publish permission"
                    );
                }
            }
            Event::Ping(p) => {
                // A Pong costs like a message: Pings count against the rate limit too.
                if !closing && self.take_token(now) {
                    conn.send(&self.worker, server_frame(OpCode::Pong, p.as_bytes()));
                }
            }
            Event::Pong(_) => {}
            Event::Close(_) if closing => {
                // The peer answered our Close: the handshake is complete.
                self.end();
                return ControlFlow::Break(());
            }
            Event::Close(_) => {
                let code = event.close_body().map_or(CloseCode::NORMAL, |b| b.code);
                let frame = server_frame(OpCode::Close, &code.0.to_be_bytes());
                conn.out.borrow_mut().push_close(frame, false);
                conn.closed_with.set(Some((code.0, false)));
                self.end();
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }
}

/// A chunk of received bytes: a buffer-ring entry (returned to the ring on drop) or the
/// connection's own buffer in single-read mode.
enum Chunk {
    Ring(compio::driver::BufferRef),
    Owned(Vec<u8>),
}

impl std::ops::Deref for Chunk {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Self::Ring(b) => b,
            Self::Owned(v) => v,
        }
    }
}

impl<S> Source<S> {
    fn give_back(&mut self, chunk: Chunk) {
        if let (Self::Single { buf, .. }, Chunk::Owned(mut v)) = (self, chunk) {
            v.clear();
            *buf = Some(v);
        }
    }
}

fn poll_source<S: Stream<Item = io::Result<compio::driver::BufferRef>>>(
    source: &mut Source<S>,
    stream: &TcpStream,
    buf_len: usize,
    cx: &mut std::task::Context<'_>,
) -> Poll<Option<io::Result<Chunk>>> {
    match source {
        Source::Ring(s) => s
            .as_mut()
            .poll_next(cx)
            .map(|o| o.map(|r| r.map(Chunk::Ring))),
        Source::Single { buf, pending } => {
            if pending.is_none() {
                let v = buf.take().unwrap_or_else(|| Vec::with_capacity(buf_len));
                let s = stream.clone();
                // The read future is kept until it completes: dropping it could lose bytes.
                *pending = Some(Box::pin(async move {
                    let mut s = s;
                    s.read(v).await
                }));
            }
            let fut = pending.as_mut().expect("set above");
            let BufResult(res, v) = std::task::ready!(fut.as_mut().poll(cx));
            *pending = None;
            Poll::Ready(match res {
                Ok(0) => None,
                Ok(_) => Some(Ok(Chunk::Owned(v))),
                Err(e) => Some(Err(e)),
            })
        }
    }
}

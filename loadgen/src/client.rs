//! One load client: TCP (optionally from a chosen source address) → TLS (a rustls
//! `ClientConnection` driven by hand) → HTTP upgrade → frames.
//!
//! After the upgrade a client runs two tasks, like the server's connections: a reader
//! (multishot recv into the worker's buffer ring → TLS → ringcast's client-role `Decoder`, whose
//! message buffers are recycled, so receiving allocates nothing) and a writer (frames queued by
//! the scheduler are encrypted in one write and sent in one send). What a received message means
//! is left to a callback (`on_message`), so this module knows nothing of latency or loss.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::io::{self, BufRead, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::task::Poll;

use compio::BufResult;
use compio::io::{AsyncRead, AsyncReadMulti, AsyncWriteExt};
use compio::net::{TcpSocket, TcpStream};
use futures_util::Stream;
use ringcast::proto::deflate::Inflater;
use ringcast::proto::encode::write_client_frame;
use ringcast::proto::handshake::accept_key;
use ringcast::proto::{CloseCode, ControlPayload, Decoder, DecoderConfig, Event, OpCode, Role};
use ringcast::rt::{Notify, yield_now};
use rustls::pki_types::ServerName;

/// Where to connect and how.
#[derive(Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: String,
    pub tls: Option<(Arc<rustls::ClientConfig>, ServerName<'static>)>,
    /// Offer permessage-deflate (what browsers offer); messages the server compresses are
    /// inflated before they are timed.
    pub compression: bool,
}

/// Why a client could not connect (the connect storm counts these by `reason()`).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("TCP connect: {0}")]
    Tcp(io::Error),
    #[error("TLS: {0}")]
    Tls(rustls::Error),
    #[error("connection closed during the handshake")]
    Closed,
    #[error("I/O during the handshake: {0}")]
    Io(io::Error),
    #[error("HTTP {0} instead of 101")]
    Http(u16),
    #[error("bad upgrade response: {0}")]
    BadResponse(&'static str),
}

impl ConnectError {
    /// A short, stable label for tables.
    pub fn reason(&self) -> String {
        match self {
            Self::Tcp(e) => format!("tcp: {}", e.kind()),
            Self::Tls(_) => "tls".into(),
            Self::Closed => "closed during handshake".into(),
            Self::Io(e) => format!("io: {}", e.kind()),
            Self::Http(s) => format!("http {s}"),
            Self::BadResponse(_) => "bad 101".into(),
        }
    }
}

/// TLS or plain bytes.
enum Session {
    Tls(Box<rustls::ClientConnection>),
    Plain,
}

pub struct Client {
    stream: TcpStream,
    session: RefCell<Session>,
    /// Frames (already masked) waiting for the writer.
    pending: RefCell<Vec<u8>>,
    wake_writer: Notify,
    closed: Cell<bool>,
    mask_state: Cell<u64>,
    /// The server agreed to permessage-deflate.
    compressed: bool,
}

async fn send_all(stream: &TcpStream, buf: Vec<u8>) -> io::Result<Vec<u8>> {
    let mut s = stream;
    let BufResult(r, buf) = s.write_all(buf).await;
    r.map(|()| buf)
}

async fn recv_some(stream: &TcpStream, buf: Vec<u8>) -> Result<Vec<u8>, ConnectError> {
    let mut s = stream;
    let BufResult(r, buf) = s.read(buf).await;
    match r {
        Ok(0) => Err(ConnectError::Closed),
        Ok(_) => Ok(buf),
        Err(e) => Err(ConnectError::Io(e)),
    }
}

impl Client {
    /// Connects, handshakes TLS, upgrades to `path`. Returns the client and any frame bytes
    /// that arrived behind the 101.
    pub async fn connect(
        target: &Target,
        source: Option<IpAddr>,
        path: &str,
        seed: u64,
        bearer: Option<&str>,
    ) -> Result<(Rc<Self>, Vec<u8>), ConnectError> {
        let socket = match target.addr {
            SocketAddr::V4(_) => TcpSocket::new_v4().await,
            SocketAddr::V6(_) => TcpSocket::new_v6().await,
        }
        .map_err(ConnectError::Tcp)?;
        if let Some(ip) = source {
            socket
                .bind(SocketAddr::new(ip, 0))
                .await
                .map_err(ConnectError::Tcp)?;
        }
        let stream = socket
            .connect(target.addr)
            .await
            .map_err(ConnectError::Tcp)?;
        let _ = stream.set_nodelay(true);
        let mut session = match &target.tls {
            Some((cfg, name)) => {
                let mut c = rustls::ClientConnection::new(cfg.clone(), name.clone())
                    .map_err(ConnectError::Tls)?;
                c.set_buffer_limit(None);
                Session::Tls(Box::new(c))
            }
            None => Session::Plain,
        };
        let key = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            seed.to_le_bytes().repeat(2),
        );
        let auth = bearer.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
        let deflate = if target.compression {
            "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        } else {
            ""
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{auth}{deflate}\r\n",
            target.host
        );
        let mut plain_in: Vec<u8> = Vec::new();
        let mut peer_closed = false;
        let mut buf = Vec::with_capacity(16 * 1024);
        let mut out = Vec::new();
        match &mut session {
            Session::Plain => out.extend_from_slice(request.as_bytes()),
            Session::Tls(c) => {
                // rustls sends the request as early data once the handshake allows it.
                c.writer()
                    .write_all(request.as_bytes())
                    .expect("unlimited buffer");
            }
        }
        loop {
            if let Session::Tls(c) = &mut session {
                while c.wants_write() {
                    c.write_tls(&mut out).expect("into a Vec");
                }
            }
            if !out.is_empty() {
                out = send_all(&stream, out).await.map_err(ConnectError::Io)?;
                out.clear();
            }
            if let Some(end) = plain_in.windows(4).position(|w| w == b"\r\n\r\n") {
                let compressed = check_response(&plain_in[..end + 4], &key)?;
                let rest = plain_in[end + 4..].to_vec();
                let client = Rc::new(Self {
                    stream,
                    session: RefCell::new(session),
                    pending: RefCell::new(Vec::new()),
                    wake_writer: Notify::default(),
                    closed: Cell::new(false),
                    mask_state: Cell::new(seed | 1),
                    compressed,
                });
                return Ok((client, rest));
            }
            if plain_in.len() > 16 * 1024 {
                return Err(ConnectError::BadResponse("response head over 16 KiB"));
            }
            if peer_closed {
                // (A refusal that came with the close was read above: its status is reported.)
                return Err(ConnectError::Closed);
            }
            buf.clear();
            buf = recv_some(&stream, buf).await?;
            match &mut session {
                Session::Plain => plain_in.extend_from_slice(&buf),
                Session::Tls(c) => {
                    let mut rd = &buf[..];
                    while !rd.is_empty() {
                        c.read_tls(&mut rd).map_err(ConnectError::Io)?;
                        c.process_new_packets().map_err(ConnectError::Tls)?;
                        let mut chunk = [0u8; 4096];
                        loop {
                            match c.reader().read(&mut chunk) {
                                Ok(0) => {
                                    peer_closed = true;
                                    break;
                                }
                                Ok(n) => plain_in.extend_from_slice(&chunk[..n]),
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(e) => return Err(ConnectError::Io(e)),
                            }
                        }
                    }
                }
            }
        }
    }

    /// A fresh masking key (xorshift; clients must not use predictable keys on the open web,
    /// a load generator only needs them to vary).
    fn next_key(&self) -> [u8; 4] {
        let mut x = self.mask_state.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.mask_state.set(x);
        (x as u32).to_le_bytes()
    }

    /// Queues one masked Binary frame; false (not queued) when `cap` bytes already wait.
    pub fn queue_binary(&self, payload: &[u8], cap: usize) -> bool {
        self.queue_data(OpCode::Binary, payload, cap)
    }

    /// Queues one masked Text frame (the client protocol's commands); false when `cap` bytes
    /// already wait.
    pub fn queue_text(&self, payload: &[u8], cap: usize) -> bool {
        self.queue_data(OpCode::Text, payload, cap)
    }

    fn queue_data(&self, op: OpCode, payload: &[u8], cap: usize) -> bool {
        if self.closed.get() {
            return false;
        }
        let key = self.next_key();
        let mut p = self.pending.borrow_mut();
        if p.len() >= cap {
            return false;
        }
        write_client_frame(&mut p, true, op, payload, key);
        drop(p);
        self.wake_writer.notify();
        true
    }

    fn queue_control(&self, op: OpCode, payload: &[u8]) {
        let key = self.next_key();
        write_client_frame(&mut self.pending.borrow_mut(), true, op, payload, key);
        self.wake_writer.notify();
    }

    /// Whether the connection is closing or closed (by either side).
    pub fn is_closed(&self) -> bool {
        self.closed.get()
    }

    /// Sends Close 1000; the reader ends when the server answers or the socket closes.
    pub fn close(&self) {
        if !self.closed.get() {
            let p = ControlPayload::close(CloseCode::NORMAL, "loadgen done");
            self.queue_control(OpCode::Close, p.as_bytes());
            self.closed.set(true);
        }
    }

    /// The writer task: everything queued goes out as one TLS write and one send.
    pub async fn write_loop(self: Rc<Self>) {
        let mut plain = Vec::new();
        let mut wire = Vec::new();
        loop {
            std::mem::swap(&mut plain, &mut *self.pending.borrow_mut());
            match &mut *self.session.borrow_mut() {
                Session::Plain => wire.extend_from_slice(&plain),
                Session::Tls(c) => {
                    if !plain.is_empty() {
                        c.writer().write_all(&plain).expect("unlimited buffer");
                    }
                    while c.wants_write() {
                        c.write_tls(&mut wire).expect("into a Vec");
                    }
                }
            }
            plain.clear();
            if !wire.is_empty() {
                match send_all(&self.stream, std::mem::take(&mut wire)).await {
                    Ok(mut back) => {
                        back.clear();
                        wire = back;
                    }
                    Err(_) => {
                        self.closed.set(true);
                        return;
                    }
                }
                continue;
            }
            if self.closed.get() && self.pending.borrow().is_empty() {
                return;
            }
            self.wake_writer.notified().await;
        }
    }

    /// The reader task: hands every data message's payload to `on_message` until the server
    /// closes. Answers Pings. Returns the close code the server sent, if any.
    pub async fn read_loop(
        self: Rc<Self>,
        early: Vec<u8>,
        mut on_message: impl FnMut(&[u8]),
    ) -> Option<u16> {
        let mut decoder = Decoder::new(DecoderConfig {
            role: Role::Client,
            max_frame_size: 64 << 20,
            max_message_size: 64 << 20,
        });
        if self.compressed {
            decoder.allow_compression();
        }
        let mut close_code = None;
        let mut handle = |bytes: &[u8], decoder: &mut Decoder| -> bool {
            let mut input = bytes;
            loop {
                match decoder.decode(&mut input) {
                    Ok(None) => return true,
                    Ok(Some(Event::Message(m))) if m.compressed => {
                        COMPRESSED_IN.set(COMPRESSED_IN.get() + 1);
                        let inflated =
                            INFLATER.with_borrow_mut(|i| m.inflate(i, 64 << 20).map(|(m, _)| m));
                        match inflated {
                            Ok(m) => on_message(m.payload()),
                            Err(_) => return false,
                        }
                    }
                    Ok(Some(Event::Message(m))) => {
                        on_message(m.payload());
                        decoder.recycle(m.into_buffer());
                    }
                    Ok(Some(Event::Ping(p))) => self.queue_control(OpCode::Pong, p.as_bytes()),
                    Ok(Some(Event::Pong(_))) => {}
                    Ok(Some(ev @ Event::Close(_))) => {
                        close_code = Some(ev.close_body().map_or(1005, |b| b.code.0));
                        if !self.closed.get() {
                            self.queue_control(
                                OpCode::Close,
                                &close_code.unwrap_or(1000).to_be_bytes(),
                            );
                            self.closed.set(true);
                        }
                        return false;
                    }
                    Err(_) => return false,
                }
            }
        };
        if !handle(&early, &mut decoder) {
            return close_code;
        }
        let mut stream = &self.stream;
        let mut reads = pin!(stream.read_multi(0));
        let mut empty_in_a_row = 0u32;
        loop {
            let next = poll_fn(|cx| match reads.as_mut().poll_next(cx) {
                Poll::Ready(r) => Poll::Ready(r),
                Poll::Pending => Poll::Pending,
            })
            .await;
            let chunk = match next {
                Some(Ok(c)) => {
                    empty_in_a_row = 0;
                    c
                }
                Some(Err(e)) if e.kind() == io::ErrorKind::ResourceBusy => {
                    // The worker's buffer ring is empty (ENOBUFS ends the multishot recv).
                    // Buffers come back as soon as the other clients' chunks are handled: try
                    // again after them, and only if it is still empty pause 1 ms.
                    RING_EMPTY.set(RING_EMPTY.get() + 1);
                    if empty_in_a_row == 0 {
                        yield_now().await;
                    } else {
                        compio::time::sleep(std::time::Duration::from_millis(1)).await;
                    }
                    empty_in_a_row += 1;
                    // The stream arms a new multishot recv when polled again.
                    continue;
                }
                _ => break,
            };
            let keep_going = match &mut *self.session.borrow_mut() {
                Session::Plain => handle(&chunk, &mut decoder),
                Session::Tls(c) => {
                    let mut rd = &chunk[..];
                    let mut ok = true;
                    while ok && !rd.is_empty() {
                        if c.read_tls(&mut rd).is_err() || c.process_new_packets().is_err() {
                            ok = false;
                            break;
                        }
                        let mut reader = c.reader();
                        loop {
                            match reader.fill_buf() {
                                Ok([]) => {
                                    ok = false;
                                    break;
                                }
                                Ok(plain) => {
                                    let n = plain.len();
                                    ok = handle(plain, &mut decoder);
                                    reader.consume(n);
                                    if !ok {
                                        break;
                                    }
                                }
                                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                                Err(_) => {
                                    ok = false;
                                    break;
                                }
                            }
                        }
                    }
                    ok
                }
            };
            drop(chunk);
            if !keep_going {
                break;
            }
        }
        self.closed.set(true);
        self.wake_writer.notify();
        close_code
    }
}

thread_local! {
    /// Times a read found this worker's buffer ring empty (ENOBUFS) and stalled.
    static RING_EMPTY: Cell<u64> = const { Cell::new(0) };
    /// Compressed messages received (permessage-deflate).
    static COMPRESSED_IN: Cell<u64> = const { Cell::new(0) };
    /// One inflater for all of this thread's clients (the server agrees to no context takeover).
    static INFLATER: RefCell<Inflater> = RefCell::new(Inflater::default());
}

/// How many compressed messages this thread's clients received.
pub fn compressed_messages() -> u64 {
    COMPRESSED_IN.get()
}

/// How often this thread's clients found the receive buffer ring empty (each: one client's
/// reads stalled, which shows up as latency). Read by the worker when it ends.
pub fn ring_empty_events() -> u64 {
    RING_EMPTY.get()
}

/// Checks the 101; true when it agrees to permessage-deflate.
fn check_response(head: &[u8], key: &str) -> Result<bool, ConnectError> {
    let text = std::str::from_utf8(head).map_err(|_| ConnectError::BadResponse("not UTF-8"))?;
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or(ConnectError::BadResponse("no status"))?;
    if status != 101 {
        return Err(ConnectError::Http(status));
    }
    let header = |name: &str| {
        text.lines().find_map(|l| {
            l.split_once(':')
                .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
                .map(|(_, v)| v.trim())
        })
    };
    if header("sec-websocket-accept") != Some(accept_key(key).as_str()) {
        return Err(ConnectError::BadResponse("wrong Sec-WebSocket-Accept"));
    }
    Ok(header("sec-websocket-extensions").is_some_and(|v| v.starts_with("permessage-deflate")))
}

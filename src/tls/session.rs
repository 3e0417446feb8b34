//! A connection's byte session: TLS or plain ws://.
//!
//! TLS: rustls' unbuffered server connection driven by hand for the handshake (and for TLS 1.2
//! connections throughout); after a TLS 1.3 handshake the keys go to our own record layer
//! (`tls::record`). The session owns no buffer an idle connection pays for. Receive: the
//! socket's bytes are copied into the worker's scratch buffer and decrypted from there; only a
//! record the socket cut in two stays with the connection until its rest arrives. Send: TLS's
//! own records (handshake, tickets, alerts, key updates) wait in a buffer that exists only while
//! they do, and queued frames are encrypted straight into the connection's send buffer, small
//! frames packed into one record. This module is the only place that knows rustls' call order;
//! nothing here does I/O.
use std::cell::Cell;
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;

use super::record::{MAX_PLAIN, Opened, RecordError, Records};
use rustls::ServerConfig;
use rustls::server::{ServerConnectionData, UnbufferedServerConnection};
use rustls::unbuffered::{
    ConnectionState, EncodeError, EncodeTlsData, EncryptError, UnbufferedStatus, WriteTraffic,
};

/// Room for a record's header, tag and content type (TLS 1.3: 22 bytes, TLS 1.2: 29).
const RECORD_OVERHEAD: usize = 32;
/// A worker scratch buffer larger than this is not kept after use.
const SCRATCH_KEEP: usize = 256 * 1024;

thread_local! {
    /// Received bytes being decrypted (one per worker thread; taken while in use).
    static RECEIVE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
    /// Small frames packed into one record's plaintext.
    static COALESCE_SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

fn scratch_take(slot: &'static std::thread::LocalKey<Cell<Vec<u8>>>) -> Vec<u8> {
    slot.with(Cell::take)
}

/// Gives a buffer back to the worker's slot, emptied, if it is worth keeping.
fn scratch_give(slot: &'static std::thread::LocalKey<Cell<Vec<u8>>>, mut buf: Vec<u8>) {
    if buf.capacity() == 0 || buf.capacity() > SCRATCH_KEEP {
        return;
    }
    buf.clear();
    slot.with(|s| {
        let kept = s.take();
        s.set(if kept.capacity() >= buf.capacity() {
            kept
        } else {
            buf
        });
    });
}

pub enum ServerSession {
    Tls(Box<TlsSession>),
    Plain,
}

/// What the peer's bytes amounted to.
#[derive(Debug, PartialEq, Eq)]
pub enum Received {
    /// All plaintext handed over; the session goes on.
    Open,
    /// The callback asked to stop (the connection is failing).
    Stopped,
    /// The peer ended the TLS session (close_notify).
    PeerClosed,
}

/// Who protects the records.
enum Engine {
    /// rustls: the handshake, and TLS 1.2 connections throughout.
    Rustls(Box<UnbufferedServerConnection>),
    /// Our record layer with the keys rustls handed over after a TLS 1.3 handshake.
    Own(Box<Records>),
    /// Neither: the hand-over failed (the session failed with it).
    Gone,
}

/// A TLS session and the few bytes it holds between calls.
pub struct TlsSession {
    engine: Engine,
    /// The configuration lets us take the keys after the handshake (TLS 1.3 only).
    own_records: bool,
    /// The start of a record the socket cut in two (or of a handshake message spread over
    /// records); empty, without capacity, when nothing waits.
    incoming: Vec<u8>,
    /// TLS's own records to send before any application data; empty without capacity when
    /// there are none.
    pending: Vec<u8>,
    /// A close_notify is to follow the next frames written.
    close_notify: bool,
    /// The application stopped taking plaintext; what still arrives is dropped.
    stopped: bool,
    /// TLS failed: nothing is decrypted or encrypted any more (an alert may still be pending).
    failed: bool,
}

impl ServerSession {
    pub fn new(tls: Option<&Arc<ServerConfig>>) -> Result<Self, rustls::Error> {
        Ok(match tls {
            Some(cfg) => Self::Tls(Box::new(TlsSession {
                engine: Engine::Rustls(Box::new(UnbufferedServerConnection::new(cfg.clone())?)),
                own_records: cfg.enable_secret_extraction,
                incoming: Vec::new(),
                pending: Vec::new(),
                close_notify: false,
                stopped: false,
                failed: false,
            })),
            None => Self::Plain,
        })
    }

    /// Feeds bytes received from the socket; hands each piece of plaintext to `on_plain`.
    /// A TLS error is fatal: flush what [`ServerSession::wants_write`] asks (the alert), then close.
    pub fn receive(
        &mut self,
        data: &[u8],
        mut on_plain: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Received, rustls::Error> {
        match self {
            Self::Plain => Ok(match on_plain(data) {
                ControlFlow::Continue(()) => Received::Open,
                ControlFlow::Break(()) => Received::Stopped,
            }),
            Self::Tls(tls) => tls.receive(data, &mut on_plain),
        }
    }

    /// Encrypts `frames` (coalesced) and appends everything TLS wants to send to `out`.
    pub fn write(&mut self, frames: &[Bytes], out: &mut Vec<u8>) {
        match self {
            Self::Plain => {
                out.reserve(frames.iter().map(Bytes::len).sum());
                for f in frames {
                    out.extend_from_slice(f);
                }
            }
            Self::Tls(tls) => tls.write(frames, out),
        }
    }

    /// TLS has records of its own to send (handshake, tickets, alerts, close_notify).
    pub fn wants_write(&self) -> bool {
        matches!(self, Self::Tls(t) if !t.pending.is_empty() || t.close_notify)
    }

    /// Queues a TLS close_notify (flushed by the next [`ServerSession::write`], after its frames).
    pub fn send_close_notify(&mut self) {
        if let Self::Tls(t) = self {
            t.close_notify = true;
        }
    }

    /// Bytes the session holds between calls.
    #[cfg(test)]
    pub fn held_bytes(&self) -> usize {
        match self {
            Self::Tls(t) => t.incoming.capacity() + t.pending.capacity(),
            Self::Plain => 0,
        }
    }
}

impl TlsSession {
    fn receive(
        &mut self,
        data: &[u8],
        on_plain: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Received, rustls::Error> {
        if self.failed {
            return Ok(Received::Stopped);
        }
        let mut work = if self.incoming.is_empty() {
            scratch_take(&RECEIVE_SCRATCH)
        } else {
            std::mem::take(&mut self.incoming)
        };
        work.extend_from_slice(data);
        let mut start = 0;
        let mut handshake_done = false;
        let outcome = match &mut self.engine {
            Engine::Rustls(conn) => {
                let outcome = receive_rustls(
                    conn,
                    &mut work,
                    &mut start,
                    &mut self.pending,
                    &mut self.stopped,
                    &mut handshake_done,
                    on_plain,
                );
                if outcome.is_err() {
                    self.failed = true;
                    // The alert rustls queued goes out with the next write.
                    collect_alert(conn, &mut work[start..], &mut self.pending);
                    start = work.len();
                }
                outcome
            }
            Engine::Own(records) => {
                let outcome = receive_own(
                    records,
                    &mut work,
                    &mut start,
                    &mut self.pending,
                    &mut self.stopped,
                    on_plain,
                );
                if outcome.is_err() {
                    self.failed = true;
                    start = work.len();
                }
                outcome
            }
            Engine::Gone => Ok(Received::Stopped),
        };
        if handshake_done && self.own_records && !self.failed {
            self.take_keys();
        }
        if start == work.len() {
            scratch_give(&RECEIVE_SCRATCH, work);
        } else {
            // A cut record: its start stays with the connection until the rest arrives.
            work.drain(..start);
            self.incoming = work;
        }
        outcome
    }

    /// Hands the records over from rustls to our own layer after a TLS 1.3 handshake (rustls
    /// has nothing left to send then: its tickets are in `pending`).
    fn take_keys(&mut self) {
        if !matches!(&self.engine, Engine::Rustls(c)
            if c.protocol_version() == Some(rustls::ProtocolVersion::TLSv1_3))
        {
            // TLS 1.2 (rustls throughout), or the keys are ours already.
            return;
        }
        let Engine::Rustls(conn) = std::mem::replace(&mut self.engine, Engine::Gone) else {
            unreachable!("checked above");
        };
        let taken = (*conn)
            .dangerous_into_kernel_connection()
            .map_err(|e| RecordError::Keys(e.to_string()))
            .and_then(|(secrets, kernel)| Records::new(secrets, kernel));
        match taken {
            Ok(records) => self.engine = Engine::Own(Box::new(records)),
            Err(e) => {
                tracing::warn!("TLS: cannot take the keys after the handshake: {e}");
                self.failed = true;
            }
        }
    }

    fn write(&mut self, frames: &[Bytes], out: &mut Vec<u8>) {
        if !self.pending.is_empty() {
            if out.is_empty() && out.capacity() < self.pending.capacity() {
                std::mem::swap(out, &mut self.pending);
            } else {
                out.extend_from_slice(&self.pending);
            }
            self.pending = Vec::new();
        }
        if self.failed || (frames.is_empty() && !self.close_notify) {
            return;
        }
        let closing = std::mem::take(&mut self.close_notify);
        match &mut self.engine {
            Engine::Rustls(conn) => write_rustls(conn, &mut self.incoming, frames, closing, out),
            Engine::Own(records) => {
                records.seal_frames(frames, out);
                if closing {
                    records.seal_alert(1, 0, out);
                }
            }
            Engine::Gone => {}
        }
        if self.incoming.is_empty() && self.incoming.capacity() > 0 {
            self.incoming = Vec::new();
        }
    }
}

/// rustls takes the received bytes (during the handshake, and for TLS 1.2).
fn receive_rustls(
    conn: &mut UnbufferedServerConnection,
    work: &mut [u8],
    start: &mut usize,
    pending: &mut Vec<u8>,
    stopped: &mut bool,
    handshake_done: &mut bool,
    on_plain: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<Received, rustls::Error> {
    loop {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut work[*start..]);
        let mut extra = 0;
        let step = match state {
            Err(e) => Some(Err(e)),
            Ok(ConnectionState::ReadTraffic(mut r)) => {
                let mut step = None;
                while let Some(record) = r.next_record() {
                    match record {
                        Ok(record) => {
                            extra += record.discard;
                            if !*stopped && on_plain(record.payload).is_break() {
                                *stopped = true;
                                step = Some(Ok(Received::Stopped));
                                break;
                            }
                        }
                        Err(e) => {
                            step = Some(Err(e));
                            break;
                        }
                    }
                }
                if step.is_none() && *stopped {
                    step = Some(Ok(Received::Stopped));
                }
                step
            }
            Ok(ConnectionState::EncodeTlsData(e)) => {
                encode(e, pending);
                None
            }
            Ok(ConnectionState::TransmitTlsData(t)) => {
                // `pending` goes out with the next write, before any application data.
                t.done();
                None
            }
            Ok(ConnectionState::BlockedHandshake) => Some(Ok(Received::Open)),
            Ok(ConnectionState::WriteTraffic(_)) => {
                *handshake_done = true;
                Some(Ok(Received::Open))
            }
            Ok(ConnectionState::PeerClosed | ConnectionState::Closed) => {
                Some(Ok(Received::PeerClosed))
            }
            Ok(other) => Some(Err(rustls::Error::General(format!(
                "unexpected TLS state {other:?} (early data is not accepted)"
            )))),
        };
        *start += discard + extra;
        if let Some(step) = step {
            return step;
        }
    }
}

/// After an error rustls has queued its alert: move it to `pending`. One look only: a second
/// would deframe the failing record again (rustls does not discard it) and fail twice.
fn collect_alert(conn: &mut UnbufferedServerConnection, rest: &mut [u8], pending: &mut Vec<u8>) {
    if let Ok(ConnectionState::EncodeTlsData(e)) = conn.process_tls_records(rest).state {
        encode(e, pending);
    }
}

/// Our record layer takes the received bytes (after a TLS 1.3 handshake).
fn receive_own(
    records: &mut Records,
    work: &mut [u8],
    start: &mut usize,
    pending: &mut Vec<u8>,
    stopped: &mut bool,
    on_plain: &mut dyn FnMut(&[u8]) -> ControlFlow<()>,
) -> Result<Received, rustls::Error> {
    loop {
        let at = *start;
        match records.open(&mut work[at..], pending) {
            Ok(None) => {
                return Ok(if *stopped {
                    Received::Stopped
                } else {
                    Received::Open
                });
            }
            Ok(Some((consumed, opened))) => {
                *start += consumed;
                match opened {
                    Opened::Data(range) => {
                        let plain = &work[at + range.start..at + range.end];
                        if !*stopped && on_plain(plain).is_break() {
                            *stopped = true;
                            return Ok(Received::Stopped);
                        }
                    }
                    Opened::Nothing => {}
                    Opened::PeerClosed => return Ok(Received::PeerClosed),
                }
            }
            Err(e) => {
                records.seal_alert_for(&e, pending);
                return Err(match e {
                    RecordError::BadRecordMac => rustls::Error::DecryptError,
                    RecordError::PeerAlert(d) => rustls::Error::AlertReceived(d.into()),
                    other => rustls::Error::General(other.to_string()),
                });
            }
        }
    }
}

/// rustls encrypts the frames (TLS 1.2 connections).
fn write_rustls(
    conn: &mut UnbufferedServerConnection,
    incoming: &mut Vec<u8>,
    frames: &[Bytes],
    closing: bool,
    out: &mut Vec<u8>,
) {
    loop {
        let UnbufferedStatus { discard, state } = conn.process_tls_records(&mut incoming[..]);
        let done = match state {
            Ok(ConnectionState::EncodeTlsData(e)) => {
                encode(e, out);
                false
            }
            Ok(ConnectionState::TransmitTlsData(t)) => {
                t.done();
                false
            }
            Ok(ConnectionState::ReadTraffic(mut r)) => {
                // Only after the application stopped reading (else `receive` took every
                // whole record): nothing wants this plaintext.
                while let Some(Ok(_)) = r.next_record() {}
                false
            }
            Ok(ConnectionState::WriteTraffic(mut w)) => {
                if encrypt_frames(&mut w, frames, out).is_ok() && closing {
                    grow_into(out, RECORD_OVERHEAD, |buf| {
                        w.queue_close_notify(buf).map_err(|e| match e {
                            EncryptError::InsufficientSize(s) => Some(s.required_size),
                            _ => None,
                        })
                    });
                }
                true
            }
            // Not reached: the server sends nothing before the client's request, which
            // comes after the handshake; a session that failed or closed sends nothing more.
            Ok(_) | Err(_) => true,
        };
        incoming.drain(..discard);
        if done {
            return;
        }
    }
}

/// Appends a record rustls encoded (handshake, ticket, alert) to `out`.
fn encode(mut e: EncodeTlsData<'_, ServerConnectionData>, out: &mut Vec<u8>) {
    grow_into(out, 0, |buf| match e.encode(buf) {
        Ok(n) => Ok(n),
        Err(EncodeError::InsufficientSize(s)) => Err(Some(s.required_size)),
        Err(EncodeError::AlreadyEncoded) => Ok(0),
    });
}

/// Encrypts `frames` into records at the end of `out`: a frame of a record or more on its own,
/// runs of smaller frames packed into one record each.
fn encrypt_frames(
    w: &mut WriteTraffic<'_, ServerConnectionData>,
    frames: &[Bytes],
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let mut packed = scratch_take(&COALESCE_SCRATCH);
    let mut result = Ok(());
    let mut i = 0;
    while i < frames.len() && result.is_ok() {
        let first = &frames[i];
        let fits_next = frames
            .get(i + 1)
            .is_some_and(|next| first.len() + next.len() <= MAX_PLAIN);
        if !fits_next {
            result = encrypt(w, first, out);
            i += 1;
            continue;
        }
        packed.clear();
        while let Some(f) = frames.get(i)
            && packed.len() + f.len() <= MAX_PLAIN
        {
            packed.extend_from_slice(f);
            i += 1;
        }
        result = encrypt(w, &packed, out);
    }
    scratch_give(&COALESCE_SCRATCH, packed);
    result
}

fn encrypt(
    w: &mut WriteTraffic<'_, ServerConnectionData>,
    plain: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), ()> {
    let records = plain.len() / MAX_PLAIN + 1;
    let room = plain.len() + records * RECORD_OVERHEAD;
    let ok = grow_into(out, room, |buf| match w.encrypt(plain, buf) {
        Ok(n) => Ok(n),
        Err(EncryptError::InsufficientSize(s)) => Err(Some(s.required_size)),
        Err(e) => {
            tracing::debug!("TLS cannot encrypt: {e}");
            Err(None)
        }
    });
    if ok { Ok(()) } else { Err(()) }
}

/// Runs `fill` on `room` bytes of free space at the end of `out` (more when it asks for more:
/// `Err(Some(n))`) and keeps what it wrote; false when it failed (`Err(None)`).
fn grow_into(
    out: &mut Vec<u8>,
    mut room: usize,
    mut fill: impl FnMut(&mut [u8]) -> Result<usize, Option<usize>>,
) -> bool {
    let at = out.len();
    loop {
        out.resize(at + room, 0);
        match fill(&mut out[at..]) {
            Ok(n) => {
                out.truncate(at + n);
                return true;
            }
            Err(Some(more)) if more > room => room = more,
            Err(_) => {
                out.truncate(at);
                return false;
            }
        }
    }
}

#[cfg(test)]
mod tests;

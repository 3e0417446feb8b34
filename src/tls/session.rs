//! A connection's byte session: TLS (a rustls `ServerConnection` driven by hand) or plain ws://.
//!
//! Receive: ciphertext in, plaintext handed to a callback as borrowed slices (rustls copies
//! the bytes in, so the receive buffer goes back to the ring right after). Send: queued frames
//! are written with ONE vectored write (rustls packs them into as few records as possible) and
//! the records are appended to the connection's send buffer for one send. This module is the
//! only place that knows rustls's call order; nothing here does I/O.

use std::io::{self, BufRead, IoSlice, Write as _};
use std::ops::ControlFlow;
use std::sync::Arc;

use bytes::Bytes;
use rustls::{ServerConfig, ServerConnection};

pub enum ServerSession {
    Tls(Box<ServerConnection>),
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

impl ServerSession {
    pub fn new(tls: Option<&Arc<ServerConfig>>) -> Result<Self, rustls::Error> {
        Ok(match tls {
            Some(cfg) => {
                let mut conn = ServerConnection::new(cfg.clone())?;
                // Our own outbound queue enforces the backlog limit.
                conn.set_buffer_limit(None);
                Self::Tls(Box::new(conn))
            }
            None => Self::Plain,
        })
    }

    /// Feeds bytes received from the socket; hands each piece of plaintext to `on_plain`.
    /// A TLS error is fatal: flush what [`ServerSession::wants_write`] asks (the alert), then close.
    pub fn receive(
        &mut self,
        mut data: &[u8],
        mut on_plain: impl FnMut(&[u8]) -> ControlFlow<()>,
    ) -> Result<Received, rustls::Error> {
        let conn = match self {
            Self::Plain => {
                return Ok(match on_plain(data) {
                    ControlFlow::Continue(()) => Received::Open,
                    ControlFlow::Break(()) => Received::Stopped,
                });
            }
            Self::Tls(conn) => conn,
        };
        while !data.is_empty() {
            // Reading from a slice cannot fail; it takes at most what rustls has room for.
            conn.read_tls(&mut data)
                .expect("reading TLS bytes from a slice");
            let state = conn.process_new_packets()?;
            let mut reader = conn.reader();
            loop {
                match reader.fill_buf() {
                    Ok([]) => return Ok(Received::PeerClosed),
                    Ok(plain) => {
                        let n = plain.len();
                        if on_plain(plain).is_break() {
                            return Ok(Received::Stopped);
                        }
                        reader.consume(n);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => return Ok(Received::PeerClosed),
                }
            }
            if state.peer_has_closed() {
                return Ok(Received::PeerClosed);
            }
        }
        Ok(Received::Open)
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
            Self::Tls(conn) => {
                const IOV: usize = 64;
                for group in frames.chunks(IOV) {
                    let mut iov = [IoSlice::new(&[]); IOV];
                    for (slot, f) in iov.iter_mut().zip(group) {
                        *slot = IoSlice::new(f);
                    }
                    let mut pending = &mut iov[..group.len()];
                    while !pending.is_empty() {
                        // No buffer limit is set, so rustls takes everything we give it.
                        let n = conn
                            .writer()
                            .write_vectored(pending)
                            .expect("unlimited rustls buffer");
                        if n == 0 {
                            break;
                        }
                        IoSlice::advance_slices(&mut pending, n);
                    }
                }
                while conn.wants_write() {
                    conn.write_tls(out).expect("writing TLS records into a Vec");
                }
            }
        }
    }

    /// TLS has records of its own to send (handshake, tickets, alerts, close_notify).
    pub fn wants_write(&self) -> bool {
        matches!(self, Self::Tls(c) if c.wants_write())
    }

    /// Queues a TLS close_notify (flushed by the next [`ServerSession::write`]).
    pub fn send_close_notify(&mut self) {
        if let Self::Tls(c) = self {
            c.send_close_notify();
        }
    }
}

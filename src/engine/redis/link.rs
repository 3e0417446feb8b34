//! The node's subscriber connection split in two: one thread reads what Redis pushes while
//! worker threads write SUBSCRIBE commands. Plain TCP splits by cloning the socket. TLS shares
//! one rustls connection behind a mutex that is held only to decrypt what was read or to
//! encrypt what is written: the blocking read of the socket happens outside it.
//!
//! Must not: parse RESP (the reader hands plaintext bytes to `pubsub`).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard};

use rustls::ClientConnection;

use super::conn::Wire;

type Shared = Arc<Mutex<ClientConnection>>;

fn lock(c: &Shared) -> MutexGuard<'_, ClientConnection> {
    c.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reading half (one thread).
pub struct LinkReader {
    tcp: TcpStream,
    tls: Option<Shared>,
    /// Ciphertext read and not yet taken by rustls.
    pending: Vec<u8>,
}

/// The writing half (any thread, one at a time: the caller holds its own lock).
pub struct LinkWriter {
    tcp: TcpStream,
    tls: Option<Shared>,
}

/// Splits a connected (and logged-in) wire.
pub fn split(wire: Wire) -> std::io::Result<(LinkReader, LinkWriter)> {
    let (tcp, tls) = match wire {
        Wire::Plain(s) => (s, None),
        Wire::Tls(t) => {
            let (conn, sock) = t.into_parts();
            (sock, Some(Arc::new(Mutex::new(conn))))
        }
    };
    let writer = LinkWriter {
        tcp: tcp.try_clone()?,
        tls: tls.clone(),
    };
    Ok((
        LinkReader {
            tcp,
            tls,
            pending: Vec::new(),
        },
        writer,
    ))
}

fn tls_error(e: rustls::Error) -> std::io::Error {
    std::io::Error::new(ErrorKind::InvalidData, e)
}

impl LinkReader {
    /// Plaintext from Redis; `Ok(0)` at the end of the stream.
    pub fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let Some(shared) = &self.tls else {
            return self.tcp.read(buf);
        };
        let mut raw = [0u8; 16 << 10];
        loop {
            {
                let mut conn = lock(shared);
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !self.pending.is_empty() {
                    let mut rd = &self.pending[..];
                    conn.read_tls(&mut rd)?;
                    let used = self.pending.len() - rd.len();
                    self.pending.drain(..used);
                    conn.process_new_packets().map_err(tls_error)?;
                    while conn.wants_write() {
                        conn.write_tls(&mut &self.tcp)?;
                    }
                    continue;
                }
            }
            let n = self.tcp.read(&mut raw)?;
            if n == 0 {
                return Ok(0);
            }
            self.pending.extend_from_slice(&raw[..n]);
        }
    }
}

impl LinkWriter {
    pub fn write_all(&self, bytes: &[u8]) -> std::io::Result<()> {
        let Some(shared) = &self.tls else {
            return (&self.tcp).write_all(bytes);
        };
        let mut conn = lock(shared);
        conn.writer().write_all(bytes)?;
        while conn.wants_write() {
            match conn.write_tls(&mut &self.tcp) {
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                r => {
                    r?;
                }
            }
        }
        Ok(())
    }

    /// Ends both halves (the reader sees the end of the stream).
    pub fn shutdown(&self) {
        let _ = self.tcp.shutdown(Shutdown::Both);
    }
}

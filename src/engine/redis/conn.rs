//! One blocking connection to Redis for commands, on ringcast's own RESP codec ([`super::resp`]):
//! commands out, their replies in, within a deadline; the login (`AUTH`, `SELECT`) at connect.
//!
//! Why not the `redis` crate's connection: engine calls run on worker threads that own an
//! io_uring, and the kernel tells such a thread about completions with a task-work notification
//! that makes a blocking socket read with a timeout fail with EINTR. The crate reports that as
//! a failed command after the command was sent — a publish that happened would be reported as
//! lost (measured: 43 such failures in a 15 s two-node run). Here an interrupted read or write
//! is resumed and the deadline checked instead.
//!
//! Must not: retry a command (a reply is read or the call fails; the caller drops the
//! connection on any failure but a Redis error reply).

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::address::RedisAddress;
use super::resp::{self, Arg, RespError, Value};

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    #[error("cannot connect to {0}: {1}")]
    Connect(String, String),
    #[error("{0}")]
    Io(std::io::Error),
    /// The command was sent and not answered: Redis may still carry it out.
    #[error("no answer within {0:?} (the command was sent: Redis may still carry it out)")]
    Timeout(Duration),
    #[error("Redis closed the connection")]
    Closed,
    #[error(transparent)]
    Resp(#[from] RespError),
    /// Redis answered with an error reply (the connection stays usable).
    #[error("Redis answered: {0}")]
    Redis(String),
    #[error("Redis refused the login (engine.redis.address): {0}")]
    Login(String),
    #[error("unexpected reply to {0}")]
    Unexpected(&'static str),
}

impl ConnError {
    /// The connection can serve the next command (the error was in the reply, not the wire).
    pub fn connection_usable(&self) -> bool {
        matches!(self, ConnError::Redis(_) | ConnError::Unexpected(_))
    }
}

/// The wire: plain TCP, or TLS (`rediss://`) over it.
pub enum Wire {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Wire {
    pub fn tcp(&self) -> &TcpStream {
        match self {
            Wire::Plain(s) => s,
            Wire::Tls(t) => t.get_ref(),
        }
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.read(buf),
            Wire::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Wire::Plain(s) => s.write(buf),
            Wire::Tls(t) => t.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Wire::Plain(s) => s.flush(),
            Wire::Tls(t) => t.flush(),
        }
    }
}

/// A connection: the wire, what was read and not yet parsed, the time a call may take.
pub struct Conn {
    sock: Wire,
    buf: Vec<u8>,
    /// The command being written (kept: no allocation per command once grown).
    out: Vec<u8>,
    /// Scratch for a caller's argument (a publication), kept like `out`.
    scratch: Vec<u8>,
    /// The last string [`Conn::interned`], shared while it repeats.
    interned: Option<Arc<str>>,
    timeout: Duration,
}

/// Flushes, resuming after EINTR.
pub fn flush(w: &mut impl Write) -> std::io::Result<()> {
    loop {
        match w.flush() {
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

fn io(e: std::io::Error, timeout: Duration) -> ConnError {
    match e.kind() {
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ConnError::Timeout(timeout),
        _ => ConnError::Io(e),
    }
}

impl Conn {
    /// Connects within `timeout` (TLS with `tls` for a `rediss://` address), logs in with the
    /// address' password (and user), selects its database.
    pub fn connect(
        addr: &RedisAddress,
        tls: Option<&Arc<ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, ConnError> {
        let target = &addr.host_port;
        let sock_addr = target
            .to_socket_addrs()
            .map_err(|e| ConnError::Connect(target.clone(), e.to_string()))?
            .next()
            .ok_or_else(|| ConnError::Connect(target.clone(), "resolves to no address".into()))?;
        let sock = TcpStream::connect_timeout(&sock_addr, timeout)
            .map_err(|e| ConnError::Connect(target.clone(), e.to_string()))?;
        let _ = sock.set_nodelay(true);
        sock.set_read_timeout(Some(timeout))
            .and_then(|()| sock.set_write_timeout(Some(timeout)))
            .map_err(ConnError::Io)?;
        let sock = match (addr.tls, tls) {
            (false, _) => Wire::Plain(sock),
            (true, None) => {
                return Err(ConnError::Connect(
                    target.clone(),
                    "rediss:// without a TLS configuration".into(),
                ));
            }
            (true, Some(cfg)) => {
                let name = rustls::pki_types::ServerName::try_from(addr.host().to_owned())
                    .map_err(|e| ConnError::Connect(target.clone(), e.to_string()))?;
                let tls = ClientConnection::new(cfg.clone(), name)
                    .map_err(|e| ConnError::Connect(target.clone(), e.to_string()))?;
                let mut stream = StreamOwned::new(tls, sock);
                while stream.conn.is_handshaking() {
                    match stream.conn.complete_io(&mut stream.sock) {
                        Ok(_) => {}
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => {
                            return Err(ConnError::Connect(
                                target.clone(),
                                format!("TLS handshake: {e}"),
                            ));
                        }
                    }
                }
                Wire::Tls(Box::new(stream))
            }
        };
        let mut c = Self {
            sock,
            buf: Vec::new(),
            out: Vec::new(),
            scratch: Vec::new(),
            interned: None,
            timeout,
        };
        // Silence while logging in is a connection failure: nothing of the caller's was sent.
        let silent = |e| match e {
            ConnError::Timeout(d) => ConnError::Connect(
                target.clone(),
                format!("no answer to the login within {d:?}"),
            ),
            other => other,
        };
        if let Some(auth) = addr.auth() {
            let args: Vec<&[u8]> = auth.iter().map(Vec::as_slice).collect();
            c.query(&args).map_err(|e| match e {
                ConnError::Redis(m) => ConnError::Login(m),
                other => silent(other),
            })?;
        }
        if addr.db != 0 {
            c.query(&[b"SELECT", addr.db.to_string().as_bytes()])
                .map_err(silent)?;
        }
        Ok(c)
    }

    /// The wire (logged in), without a read timeout, for a connection that reads pushes.
    pub fn into_wire(self) -> Wire {
        let _ = self.sock.tcp().set_read_timeout(None);
        self.sock
    }

    /// One command and its reply (an error reply is [`ConnError::Redis`]).
    pub fn query(&mut self, args: &[&[u8]]) -> Result<Value, ConnError> {
        self.query_in_place(|out| resp::command(out, args), resp::whole_value)
    }

    /// One command written by `write`, its reply read in place by `read` (one whole value;
    /// `None`: not the expected shape). An error reply is [`ConnError::Redis`]. Nothing is
    /// allocated once the connection's buffers have grown, unless `write` or `read` does.
    pub fn query_in_place<T>(
        &mut self,
        write: impl FnOnce(&mut Vec<u8>),
        read: impl FnOnce(&[u8]) -> Option<T>,
    ) -> Result<T, ConnError> {
        let mut out = std::mem::take(&mut self.out);
        out.clear();
        write(&mut out);
        let sent = self.send(&out);
        self.out = out;
        sent?;
        let len = self.read_len(Instant::now() + self.timeout)?;
        let reply = &self.buf[..len];
        let r = if reply.first() == Some(&b'-') {
            let text = &reply[1..len.saturating_sub(2)];
            Err(ConnError::Redis(String::from_utf8_lossy(text).into_owned()))
        } else {
            read(reply).ok_or(ConnError::Unexpected("a reply of another shape"))
        };
        self.buf.drain(..len);
        r
    }

    /// The connection's scratch buffer, emptied, to build an argument in; give it back with
    /// [`Conn::put_scratch`] to keep its capacity.
    pub fn take_scratch(&mut self) -> Vec<u8> {
        let mut s = std::mem::take(&mut self.scratch);
        s.clear();
        s
    }

    pub fn put_scratch(&mut self, s: Vec<u8>) {
        self.scratch = s;
    }

    /// `s` as a shared string: the one returned last time when it is the same (no allocation
    /// while a connection keeps seeing one value, such as a channel's epoch). `None`: not UTF-8.
    pub fn interned(&mut self, s: &[u8]) -> Option<Arc<str>> {
        let s = std::str::from_utf8(s).ok()?;
        match &self.interned {
            Some(last) if &**last == s => Some(last.clone()),
            _ => {
                let new: Arc<str> = s.into();
                self.interned = Some(new.clone());
                Some(new)
            }
        }
    }

    /// Several commands in one write; their replies in order (the first error reply is the
    /// result, after every reply was read).
    pub fn pipeline(&mut self, cmds: &[Vec<&[u8]>]) -> Result<Vec<Value>, ConnError> {
        let mut out = Vec::new();
        for args in cmds {
            resp::command(&mut out, args);
        }
        self.send(&out)?;
        let deadline = Instant::now() + self.timeout;
        let mut replies = Vec::with_capacity(cmds.len());
        for _ in cmds {
            replies.push(self.read_value(deadline)?);
        }
        if let Some(Value::Error(e)) = replies.iter().find(|v| matches!(v, Value::Error(_))) {
            return Err(ConnError::Redis(String::from_utf8_lossy(e).into_owned()));
        }
        Ok(replies)
    }

    fn send(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        // `write_all` resumes after EINTR by itself; `flush` sends what TLS still holds.
        self.sock
            .write_all(bytes)
            .and_then(|()| flush(&mut self.sock))
            .map_err(|e| io(e, self.timeout))
    }

    fn read_value(&mut self, deadline: Instant) -> Result<Value, ConnError> {
        let len = self.read_len(deadline)?;
        let (v, _) =
            resp::parse(&self.buf[..len])?.ok_or(ConnError::Unexpected("a whole value"))?;
        self.buf.drain(..len);
        Ok(v)
    }

    /// Reads until `buf` starts with a whole value: its length.
    fn read_len(&mut self, deadline: Instant) -> Result<usize, ConnError> {
        let mut chunk = [0u8; 16 << 10];
        loop {
            if let Some(len) = resp::value_len(&self.buf)? {
                return Ok(len);
            }
            if Instant::now() >= deadline {
                return Err(ConnError::Timeout(self.timeout));
            }
            match self.sock.read(&mut chunk) {
                Ok(0) => return Err(ConnError::Closed),
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e, self.timeout)),
            }
        }
    }
}

/// A Lua script: run by its SHA1 (`EVALSHA`), sent whole once Redis does not know it
/// (`NOSCRIPT`: a Redis restarted or flushed), which is safe to repeat since nothing ran.
pub struct Script {
    body: &'static str,
    sha: String,
}

impl Script {
    pub fn new(body: &'static str) -> Self {
        use sha1::Digest;
        let sha = sha1::Sha1::digest(body.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Self { body, sha }
    }

    /// Runs the script with `keys` and `args`.
    pub fn run(&self, c: &mut Conn, keys: &[&[u8]], args: &[&[u8]]) -> Result<Value, ConnError> {
        let (keys, args) = (
            keys.iter().map(|k| Arg::Bytes(k)),
            args.iter().map(|a| Arg::Bytes(a)),
        );
        self.run_in_place(c, keys, args, resp::whole_value)
    }

    /// Runs the script with `keys` and `args`, its reply read in place by `read` (see
    /// [`Conn::query_in_place`]): nothing allocated here.
    pub fn run_in_place<'a, T>(
        &self,
        c: &mut Conn,
        keys: impl ExactSizeIterator<Item = Arg<'a>> + Clone,
        args: impl ExactSizeIterator<Item = Arg<'a>> + Clone,
        read: impl Fn(&[u8]) -> Option<T>,
    ) -> Result<T, ConnError> {
        let call = |c: &mut Conn, how: &[u8], what: &[u8]| {
            let (keys, args) = (keys.clone(), args.clone());
            c.query_in_place(
                |out| {
                    resp::push_command(out, 3 + keys.len() + args.len());
                    resp::push_arg(out, Arg::Bytes(how));
                    resp::push_arg(out, Arg::Bytes(what));
                    resp::push_arg(out, Arg::Number(keys.len() as u64));
                    for a in keys.chain(args) {
                        resp::push_arg(out, a);
                    }
                },
                &read,
            )
        };
        match call(c, b"EVALSHA", self.sha.as_bytes()) {
            Err(ConnError::Redis(m)) if m.starts_with("NOSCRIPT") => {
                call(c, b"EVAL", self.body.as_bytes())
            }
            r => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn script_sha_is_redis_sha1_of_the_body() {
        // `redis-cli SCRIPT LOAD "return 1"` answers this.
        assert_eq!(
            Script::new("return 1").sha,
            "e0e1f9fabfc9d4800c877a703b823ac0578ff8db"
        );
    }
}

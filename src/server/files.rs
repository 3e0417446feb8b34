//! `/files/…` on the wss listener: a connection whose first request names `/files/` stays an
//! HTTP/1.1 keep-alive connection. Each request head is answered by [`crate::files::route`];
//! a file range is then streamed by a task of its own, in chunks of at most [`CHUNK`] read with
//! io_uring, **one chunk in flight**: the next is read only once the writer has sent the last,
//! so a slow reader holds one chunk, not the file. Requests pipelined behind a streaming answer
//! wait for it.

use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;

use bytes::Bytes;
use compio::BufResult;
use compio::io::AsyncReadAt;
use tracing::debug;

use super::conn::Conn;
use super::counters::WorkerCounters;
use super::worker::Worker;
use crate::files::path::{PathError, resolve};
use crate::files::route::{Body, FileRequest, FilesConfig, Stat, text};

/// Largest chunk read and queued at once.
pub const CHUNK: usize = 64 * 1024;
/// Longest request head (431 beyond).
pub const MAX_HEAD: usize = 8 * 1024;
const MAX_HEADERS: usize = 32;

/// Whether a request head (so far) is for the file route.
pub fn is_files_request(head: &[u8]) -> bool {
    [&b"GET /files/"[..], b"HEAD /files/", b"OPTIONS /files/"]
        .iter()
        .any(|p| head.starts_with(p))
}

/// What one parsed request head led to.
pub enum Parsed {
    /// Not complete yet.
    Partial,
    /// Answered; `used` bytes of the buffer were the head; keep the connection open or not;
    /// the answer names a file range to stream, if any.
    Answered {
        used: usize,
        keep_alive: bool,
        stream: Option<(PathBuf, u64, u64)>,
    },
}

fn open(root: &Path, rel: &Path) -> Result<Stat, PathError> {
    let path = resolve(root, rel)?;
    let m = std::fs::metadata(&path).map_err(|_| PathError::NotFound)?;
    Ok(Stat {
        path,
        size: m.len(),
        modified: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    })
}

/// Parses the head at the start of `buf` and queues its answer on `conn`.
pub fn answer(worker: &Worker, conn: &Conn, cfg: &FilesConfig, buf: &[u8]) -> Parsed {
    let counters = &worker.shared.counters[worker.index];
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let now = SystemTime::now();
    let (answer, used, keep_alive) = match req.parse(buf) {
        Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Parsed::Partial,
        Ok(httparse::Status::Partial) | Err(httparse::Error::TooManyHeaders) => (
            text(431, "request header fields too large"),
            buf.len(),
            false,
        ),
        Ok(httparse::Status::Complete(n)) if n > MAX_HEAD => {
            (text(431, "request header fields too large"), n, false)
        }
        Err(e) => (text(400, &format!("bad request: {e}")), buf.len(), false),
        Ok(httparse::Status::Complete(n)) => {
            let (method, target) = (req.method.unwrap_or(""), req.path.unwrap_or(""));
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (target, None),
            };
            let hs = &*req.headers;
            let header = |name: &str| {
                hs.iter()
                    .find(|h| h.name.eq_ignore_ascii_case(name))
                    .and_then(|h| std::str::from_utf8(h.value).ok())
            };
            let close = header("connection").is_some_and(|c| c.eq_ignore_ascii_case("close"));
            let request = FileRequest {
                method,
                path,
                query,
                header: &header,
            };
            let unix = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let a = cfg.answer(&request, unix, &|rel| open(&cfg.root, rel));
            // After a refused body we cannot find the next request's start: close.
            let keep = req.version == Some(1) && !close && a.status != 400;
            (a, n, keep)
        }
    };
    counters.file_answer(answer.status);
    debug!(
        conn = conn.id,
        status = answer.status,
        "file request answered"
    );
    conn.push_raw(Bytes::from(answer.encode(keep_alive, now)));
    let stream = match answer.body {
        Body::File { path, start, len } => Some((path, start, len)),
        _ => None,
    };
    Parsed::Answered {
        used,
        keep_alive,
        stream,
    }
}

/// Streams `len` bytes of `path` from `start` into `conn`, one chunk in flight, then takes the
/// next request (`keep_alive`) or ends the connection. Ends it early too if the file cannot deliver what the head promised, or the client stops reading
/// for `--idle-timeout`.
pub async fn stream(
    worker: Rc<Worker>,
    conn: Rc<Conn>,
    path: PathBuf,
    start: u64,
    len: u64,
    keep_alive: bool,
) {
    let idle = worker.shared.opts.idle_timeout;
    let counters = &worker.shared.counters[worker.index];
    let file = match compio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            debug!(conn = conn.id, "cannot open {}: {e}", path.display());
            conn.abort_http();
            return;
        }
    };
    let (mut at, end) = (start, start + len);
    while at < end {
        let want = CHUNK.min((end - at) as usize);
        let BufResult(r, buf) = file.read_at(Vec::with_capacity(want), at).await;
        let n = match r {
            Ok(n) if n > 0 => n,
            _ => {
                // Shorter than its head said (truncated meanwhile) or unreadable: the answer
                // cannot be completed; the client sees the connection end early.
                debug!(conn = conn.id, "{} ended early", path.display());
                conn.abort_http();
                return;
            }
        };
        at += n as u64;
        WorkerCounters::add(&counters.file_bytes, n as u64);
        if !conn.push_raw(Bytes::from(buf)) {
            return;
        }
        if !conn.wait_drained(idle).await {
            debug!(conn = conn.id, "client stopped reading the file: closing");
            conn.abort_http();
            return;
        }
    }
    let _ = file.close().await;
    if keep_alive {
        conn.file_done();
    } else {
        conn.abort_http();
    }
}

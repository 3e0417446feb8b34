//! Publishing through the server API instead of the WebSocket (`broadcast --publish-api URL`):
//! one keep-alive HTTP/1.1 connection per loadgen worker with senders, requests pipelined as
//! the open-loop schedule plans them (never waiting for an answer before the next), answers
//! read by a task of their own and counted (`{"result":…}` ok, anything else an error by code).
//! The publication's `data` is the same base64 load message the WebSocket path sends, so the
//! receivers time and count it the same way.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;

use compio::io::{AsyncRead, AsyncWriteExt};
use compio::net::TcpStream;

/// `http://host:port/api` → where to connect and the path prefix.
#[derive(Debug, Clone)]
pub struct ApiTarget {
    pub addr: SocketAddr,
    pub path: String,
    pub key: Option<String>,
}

impl ApiTarget {
    pub fn parse(url: &str, key: Option<String>) -> Result<Self, String> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| format!("{url}: only http:// API URLs (the API is on loopback)"))?;
        let (hostport, path) = rest.split_once('/').unwrap_or((rest, "api"));
        let addr = std::net::ToSocketAddrs::to_socket_addrs(hostport)
            .map_err(|e| format!("{hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("{hostport}: no address"))?;
        Ok(Self {
            addr,
            path: format!("/{}", path.trim_end_matches('/')),
            key,
        })
    }
}

/// Answers counted by the reader task.
#[derive(Debug, Default)]
pub struct Answers {
    pub ok: u64,
    /// Error code (or HTTP status when the body is not an API error) → count.
    pub errors: std::collections::BTreeMap<u32, u64>,
}

/// One pipelined API connection.
pub struct ApiConn {
    stream: Rc<TcpStream>,
    head: String,
    request: Vec<u8>,
    pub answers: Rc<RefCell<Answers>>,
}

impl ApiConn {
    pub async fn connect(target: &ApiTarget) -> std::io::Result<Self> {
        let stream = TcpStream::connect(target.addr).await?;
        stream.set_nodelay(true)?;
        let stream = Rc::new(stream);
        let answers = Rc::new(RefCell::new(Answers::default()));
        compio::runtime::spawn(read_answers(stream.clone(), answers.clone())).detach();
        let key = target
            .key
            .as_deref()
            .map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
        Ok(Self {
            stream,
            head: format!(
                "POST {}/publish HTTP/1.1\r\nHost: {}\r\n{key}Content-Type: application/json\r\nContent-Length: ",
                target.path, target.addr
            ),
            request: Vec::new(),
            answers,
        })
    }

    /// Sends `{"channel":C,"data":"<base64 payload>"}`; false when the write failed.
    pub async fn publish(&mut self, channel: &str, payload: &[u8], body: &mut Vec<u8>) -> bool {
        crate::centrifuge::publish_body(channel, payload, body);
        self.request.clear();
        self.request.extend_from_slice(self.head.as_bytes());
        self.request
            .extend_from_slice(body.len().to_string().as_bytes());
        self.request.extend_from_slice(b"\r\n\r\n");
        self.request.extend_from_slice(body);
        let buf = std::mem::take(&mut self.request);
        let mut s = &*self.stream;
        let compio::BufResult(r, buf) = s.write_all(buf).await;
        self.request = buf;
        r.is_ok()
    }
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

/// Reads responses until the connection closes: status line, headers, Content-Length body.
async fn read_answers(stream: Rc<TcpStream>, answers: Rc<RefCell<Answers>>) {
    let mut pending: Vec<u8> = Vec::new();
    let mut chunk = Vec::with_capacity(64 * 1024);
    loop {
        let mut s = &*stream;
        let compio::BufResult(r, c) = s.read(chunk).await;
        chunk = c;
        match r {
            Ok(0) | Err(_) => return,
            Ok(n) => pending.extend_from_slice(&chunk[..n]),
        }
        chunk.clear();
        while let Some(end) = find(&pending, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&pending[..end]).to_ascii_lowercase();
            let status: u32 = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if pending.len() < end + 4 + len {
                break;
            }
            let body = &pending[end + 4..end + 4 + len];
            let mut a = answers.borrow_mut();
            if status == 200 && body.starts_with(b"{\"result\"") {
                a.ok += 1;
            } else {
                let code = serde_json::from_slice::<serde_json::Value>(body)
                    .ok()
                    .and_then(|v| v["error"]["code"].as_u64())
                    .map_or(status, |c| c as u32);
                *a.errors.entry(code).or_default() += 1;
            }
            drop(a);
            pending.drain(..end + 4 + len);
        }
    }
}

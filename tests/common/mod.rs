//! Test harness: a real ringcast server in-process on 127.0.0.1:0 (its own threads and
//! io_uring runtimes), a real wss client (tokio-tungstenite over rustls, trusting the server's
//! dev certificate), and a raw TLS client that speaks bytes through ringcast's own encoder
//! (for frames a well-behaved client library refuses to send).
#![allow(dead_code)]

pub mod files;
pub mod postgres;
pub mod process;
pub mod protocol;
pub mod redis;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser;
use futures_util::{SinkExt, StreamExt};
use ringcast::proto::encode::write_client_frame;
use ringcast::proto::{Decoder, DecoderConfig, Event, OpCode, Role};
use ringcast::server::{ServerHandle, ServerOptions};
use ringcast::tls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

#[derive(Parser)]
#[command(args_override_self = true)]
struct Args {
    #[command(flatten)]
    opts: ServerOptions,
}

pub struct TestServer {
    pub handle: Option<ServerHandle>,
    pub port: u16,
    pub tls: Arc<rustls::ClientConfig>,
    dir: PathBuf,
}

/// The repository's root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Whether the real client at `marker` is installed; panics when it must be
/// (RINGCAST_REQUIRE_SDKS=1, set by scripts/test) and is not.
pub fn installed(marker: &std::path::Path, what: &str) -> bool {
    if marker.exists() {
        return true;
    }
    if std::env::var_os("RINGCAST_REQUIRE_SDKS").is_some_and(|v| v == "1") {
        panic!(
            "{what} is not installed ({} missing): run scripts/test",
            marker.display()
        );
    }
    eprintln!(
        "SKIPPED: {what} is not installed ({} missing); scripts/test installs it",
        marker.display()
    );
    false
}

/// The Python of the repository's venv (centrifuge-python, websockets, …), if installed.
pub fn venv_python(what: &str) -> Option<PathBuf> {
    let python = root().join(".venv/bin/python");
    installed(&python, what).then_some(python)
}

/// Writes `contents` to a file of its own (never shared with another test running in
/// parallel, so no server reads a half-written config) and returns its path.
pub fn temp_file(name: &str, contents: &str) -> String {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringcast-tmp-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, contents).unwrap();
    p.to_str().unwrap().to_owned()
}

/// Connects with `connect` (called with a running number) until at least `min` connections
/// were made and each of the server's workers took at least one of them: SO_REUSEPORT spreads
/// connections by a hash of their ports, so a few can all land on one worker. Panics after 64.
pub async fn connect_on_every_worker<T, F, Fut>(
    srv: &TestServer,
    min: usize,
    mut connect: F,
) -> Vec<T>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let mut made = Vec::new();
    let mut took = vec![0usize; srv.handle().connections_per_worker().len()];
    while made.len() < min || took.contains(&0) {
        assert!(
            made.len() < 64,
            "connections never reached every worker: {took:?}"
        );
        let before = srv.handle().connections_per_worker();
        made.push(connect(made.len()).await);
        let after = srv.handle().connections_per_worker();
        for (w, (a, b)) in after.iter().zip(&before).enumerate() {
            if a > b {
                took[w] += 1;
            }
        }
    }
    made
}

/// Starts a server with the given extra flags (rate limit off unless a test sets it).
pub fn start(extra: &[&str]) -> TestServer {
    if std::env::var_os("RUST_LOG").is_some() {
        ringcast::logging::init(ringcast::logging::LogFormat::Text);
    }
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringcast-test-{}-{n}", std::process::id()));
    let dir_s = dir.to_str().unwrap().to_owned();
    let mut argv = vec![
        "ringcast",
        "--listen",
        "127.0.0.1:0",
        "--cert-dir",
        &dir_s,
        "--workers",
        "2",
        "--rate-limit",
        "0",
        "--api-listen",
        "127.0.0.1:0",
    ];
    argv.extend_from_slice(extra);
    let opts = Args::try_parse_from(argv).expect("valid test flags").opts;
    let handle = ServerHandle::start(opts).expect("server starts");
    let port = handle.local_addr.port();
    // A --plaintext server makes no certificate: its clients trust nothing (ws:// only).
    let ca = dir.join(tls::DEV_CERT);
    let tls = if ca.exists() {
        tls::client_config_trusting(&ca).expect("the dev certificate is trusted")
    } else {
        tls::client_config(rustls::RootCertStore::empty())
    };
    TestServer {
        handle: Some(handle),
        port,
        tls: Arc::new(tls),
        dir,
    }
}

impl TestServer {
    pub fn handle(&self) -> &ServerHandle {
        self.handle.as_ref().expect("running")
    }

    /// The dev certificate the server made (what clients trust).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("dev-cert.pem")
    }

    pub fn url(&self, path: &str) -> String {
        format!("wss://127.0.0.1:{}{path}", self.port)
    }

    /// A tokio-tungstenite client connected to `path`.
    pub async fn ws(&self, path: &str) -> Ws {
        self.try_ws(path).await.expect("websocket upgrade")
    }

    pub async fn try_ws(&self, path: &str) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let connector = Connector::Rustls(self.tls.clone());
        let (ws, resp) = tokio_tungstenite::connect_async_tls_with_config(
            self.url(path),
            None,
            true,
            Some(connector),
        )
        .await?;
        assert_eq!(resp.status(), 101);
        Ok(ws)
    }

    /// Status and body of an upgrade the server refuses (panics if it accepts).
    pub async fn refused(&self, path: &str) -> (u16, String) {
        match self.try_ws(path).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                let body = resp.body().as_deref().unwrap_or_default();
                (
                    resp.status().as_u16(),
                    String::from_utf8_lossy(body).into_owned(),
                )
            }
            other => panic!("expected an HTTP refusal, got {:?}", other.map(|_| ())),
        }
    }

    /// A raw TLS connection (no WebSocket handshake yet).
    pub async fn raw(&self) -> Raw {
        self.raw_with(self.tls.clone()).await
    }

    /// A raw TLS connection made with the given client configuration.
    pub async fn raw_with(&self, tls: Arc<rustls::ClientConfig>) -> Raw {
        let tcp = TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        tcp.set_nodelay(true).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let tls = TlsConnector::from(tls).connect(name, tcp).await.unwrap();
        Raw {
            tls,
            buf: Vec::new(),
            decoder: client_decoder(),
        }
    }

    /// Shuts down gracefully and waits for the workers to end.
    pub fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            // From a thread that is not unwinding: compio aborts the process when a waker of
            // one of its tasks is woken from a panicking thread, which would hide the failed
            // assertion's message behind a SIGABRT.
            std::thread::spawn(move || {
                h.shutdown();
                h.join();
            })
            .join()
            .expect("server shutdown");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn client_decoder() -> Decoder {
    Decoder::new(DecoderConfig {
        role: Role::Client,
        max_frame_size: 64 << 20,
        max_message_size: 64 << 20,
    })
}

pub const KEY_REQUEST: &str = "dGhlIHNhbXBsZSBub25jZQ==";

pub fn upgrade_request(path: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {KEY_REQUEST}\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
}

/// Raw bytes over TLS, frames decoded with ringcast's own client-role decoder.
pub struct Raw {
    pub tls: TlsStream<TcpStream>,
    buf: Vec<u8>,
    decoder: Decoder,
}

impl Raw {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).await.unwrap();
        self.tls.flush().await.unwrap();
    }

    /// Sends `request` and reads the response head (and keeps bytes after it).
    pub async fn http(&mut self, request: &str) -> String {
        self.send(request.as_bytes()).await;
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8(self.buf[..end + 4].to_vec()).unwrap();
                self.buf.drain(..end + 4);
                return head;
            }
            let mut chunk = [0u8; 4096];
            let n = tokio::time::timeout(Duration::from_secs(5), self.tls.read(&mut chunk))
                .await
                .unwrap()
                .unwrap();
            assert!(n > 0, "connection closed before the response head");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads the rest of the response body until the server closes.
    pub async fn rest(&mut self) -> String {
        let mut v = std::mem::take(&mut self.buf);
        let _ = tokio::time::timeout(Duration::from_secs(5), self.tls.read_to_end(&mut v)).await;
        String::from_utf8_lossy(&v).into_owned()
    }

    /// Upgrades to `path` and checks the 101.
    pub async fn upgrade(&mut self, path: &str) {
        let head = self.http(&upgrade_request(path)).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    }

    /// permessage-deflate was agreed: accept RSV1 frames (read them with `Message::inflate`).
    pub fn allow_compression(&mut self) {
        self.decoder.allow_compression();
    }

    /// Sends one masked client frame.
    pub async fn frame(&mut self, fin: bool, op: OpCode, payload: &[u8]) {
        let mut v = Vec::new();
        write_client_frame(&mut v, fin, op, payload, [0x12, 0x34, 0x56, 0x78]);
        self.send(&v).await;
    }

    /// The next event from the server, or None when it closed the connection.
    pub async fn event(&mut self) -> Option<Event> {
        loop {
            let mut input = &self.buf[..];
            let ev = self
                .decoder
                .decode(&mut input)
                .expect("server sent valid frames");
            let used = self.buf.len() - input.len();
            self.buf.drain(..used);
            if let Some(ev) = ev {
                return Some(ev);
            }
            let mut chunk = [0u8; 16384];
            let n = match tokio::time::timeout(Duration::from_secs(5), self.tls.read(&mut chunk))
                .await
            {
                Ok(Ok(n)) => n,
                Ok(Err(_)) => 0,
                Err(_) => panic!("no event from the server within 5 s"),
            };
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads events until a Close; returns its code and reason.
    pub async fn close_frame(&mut self) -> (u16, String) {
        loop {
            match self.event().await {
                Some(ev @ Event::Close(_)) => {
                    let b = ev.close_body().expect("close with a code");
                    return (b.code.0, b.reason.to_owned());
                }
                Some(_) => continue,
                None => panic!("connection closed without a Close frame"),
            }
        }
    }
}

/// Next data message (skipping pings/pongs) within 5 s.
pub async fn next_msg(ws: &mut Ws) -> Message {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s")
            .expect("stream open")
            .expect("no error");
        match m {
            Message::Ping(_) | Message::Pong(_) => continue,
            other => return other,
        }
    }
}

pub async fn send_text(ws: &mut Ws, s: &str) {
    ws.send(Message::text(s)).await.unwrap();
}

/// `GET path` on a plain-HTTP listener (the server API's), `Connection: close`: the whole
/// response, head and body.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

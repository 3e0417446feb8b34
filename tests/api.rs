//! The server API's answers to hostile and broken requests, over plain sockets (real clients
//! never send most of these; `tests/sdk/py_api.py` drives the real `cent` client).

mod common;

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

const KEY: &str = "hostile-test-key";
const SECRET: &str = "api-test-secret-of-at-least-32-bytes";

fn server() -> common::TestServer {
    common::start(&[
        "--api-key",
        KEY,
        "--token-hmac-secret",
        SECRET,
        "--allow-anonymous",
    ])
}

/// Sends raw bytes, returns (status, body) of the response (reads until the server closes or
/// the body announced by Content-Length is complete).
async fn raw(addr: std::net::SocketAddr, request: &[u8]) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(request).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let n = tokio::time::timeout(Duration::from_secs(15), s.read(&mut chunk))
            .await
            .expect("the API answers")
            .unwrap_or(0);
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse::<usize>().unwrap());
            if buf.len() >= end + 4 + len {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn post(path: &str, auth: &str, body: &str) -> Vec<u8> {
    format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn key_header() -> String {
    format!("X-API-Key: {KEY}\r\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_requests_get_their_status() {
    let s = server();
    let api = s.handle().api_addr.unwrap();
    let k = key_header();
    let apikey = format!("Authorization: apikey {KEY}\r\n");
    let cases: Vec<(&str, Vec<u8>, u16, &str)> = vec![
        ("no key", post("/api/info", "", "{}"), 401, "api key"),
        ("wrong key", post("/api/info", "X-API-Key: nope\r\n", "{}"), 401, "api key"),
        (
            "wrong scheme",
            post("/api/info", &format!("Authorization: Bearer {KEY}\r\n"), "{}"),
            401,
            "api key",
        ),
        ("apikey scheme", post("/api/info", &apikey, "{}"), 200, "nodes"),
        ("unknown method", post("/api/frobnicate", &k, "{}"), 404, "frobnicate"),
        ("not JSON", post("/api/publish", &k, "{\"channel\":"), 400, "not json"),
        (
            "invalid channel",
            post("/api/publish", &k, r#"{"channel":"nope:x","data":{}}"#),
            200,
            "\"code\":102",
        ),
        (
            "empty channel",
            post("/api/publish", &k, r#"{"channel":"","data":{}}"#),
            200,
            "\"code\":107",
        ),
        (
            "unknown user",
            post("/api/disconnect", &k, r#"{"user":"nobody"}"#),
            200,
            "{\"result\":{}}",
        ),
        (
            "GET on the API",
            b"GET /api/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            405,
            "post",
        ),
        (
            "smuggling: Content-Length and Transfer-Encoding",
            format!(
                "POST /api/info HTTP/1.1\r\nHost: x\r\n{k}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
            )
            .into_bytes(),
            400,
            "",
        ),
        ("health", b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 200, "ok"),
        ("ready", b"GET /ready HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 200, "ready"),
        ("elsewhere", b"GET /etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(), 404, ""),
    ];
    for (what, req, status, words) in cases {
        let (got, body) = raw(api, &req).await;
        assert_eq!(got, status, "{what}: {body}");
        assert!(body.to_lowercase().contains(words), "{what}: {body}");
    }
    // 10 MiB: refused from the declared length, without reading it all.
    let big = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\n{k}Content-Length: {}\r\n\r\n",
        10 << 20
    );
    let (status, body) = raw(api, big.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    // The same without a declared length (chunked): cut at the limit.
    let mut chunked = format!(
        "POST /api/publish HTTP/1.1\r\nHost: x\r\n{k}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        chunked.extend_from_slice(format!("{:x}\r\n", 100_000).as_bytes());
        chunked.extend(std::iter::repeat_n(b' ', 100_000));
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let (status, _) = raw(api, &chunked).await;
    assert_eq!(status, 413);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_loris_is_closed_and_workers_do_not_notice() {
    let s = server();
    let api = s.handle().api_addr.unwrap();
    // Half a request line, then nothing.
    let mut loris = TcpStream::connect(api).await.unwrap();
    loris
        .write_all(b"POST /api/publish HTTP/1.1\r\nHost:")
        .await
        .unwrap();
    let started = Instant::now();
    // Meanwhile the WebSocket side serves as usual.
    let mut ws = s.ws("/connection/websocket").await;
    ws.send(Message::text(r#"{"id":1,"connect":{}}"#))
        .await
        .unwrap();
    let reply = ws.next().await.unwrap().unwrap();
    assert!(reply.to_text().unwrap().contains("\"client\""), "{reply:?}");
    let mut buf = [0u8; 1024];
    let n = tokio::time::timeout(Duration::from_secs(20), loris.read(&mut buf))
        .await
        .expect("the server closes a slow client")
        .unwrap_or(0);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(9),
        "closed after the header timeout, not before: {waited:?}"
    );
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.contains("408"), "{text}");
    // And the API still answers others.
    let (status, _) = raw(api, &post("/api/info", &key_header(), "{}")).await;
    assert_eq!(status, 200);
}

/// API commands reach the sessions of the user on every worker, and only those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disconnect_and_refresh_reach_every_connection_of_the_user() {
    let s = server();
    let api = s.handle().api_addr.unwrap();
    let token = |user: &str| common::protocol::user_token(SECRET, user);
    let mut conns = Vec::new();
    for user in ["u1", "u1", "u1", "u2"] {
        let mut ws = s.ws("/connection/websocket").await;
        let t = token(user);
        ws.send(Message::text(format!(
            r#"{{"id":1,"connect":{{"token":"{t}"}}}}"#
        )))
        .await
        .unwrap();
        let r = ws.next().await.unwrap().unwrap();
        assert!(r.to_text().unwrap().contains("\"client\""));
        conns.push(ws);
    }
    let (status, body) = raw(
        api,
        &post(
            "/api/disconnect",
            &key_header(),
            r#"{"user":"u1","disconnect":{"code":4000,"reason":"go away"}}"#,
        ),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"result":{}}"#));
    for ws in conns.iter_mut().take(3) {
        let close = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        match close {
            Message::Close(Some(f)) => {
                assert_eq!((u16::from(f.code), f.reason.as_str()), (4000, "go away"))
            }
            m => panic!("{m:?}"),
        }
    }
    // u2 untouched: its refresh makes the connection expire (3005).
    raw(
        api,
        &post(
            "/api/refresh",
            &key_header(),
            r#"{"user":"u2","expired":true}"#,
        ),
    )
    .await;
    let ws = &mut conns[3];
    let close = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    match close {
        Message::Close(Some(f)) => assert_eq!(u16::from(f.code), 3005),
        m => panic!("u2 got {m:?}"),
    }
}

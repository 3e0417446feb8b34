//! The opening handshake (RFC 6455 §4.2): parse and validate the client's HTTP/1.1 upgrade
//! request from bytes that may arrive in pieces, and build the answers (101 or an error).
//!
//! "Need more bytes" is `Ok(None)`, not an error. A request whose head passes
//! [`MAX_REQUEST_LEN`] is refused with 431 before it is complete. Every rule broken is its own
//! [`HandshakeError`] variant, mapped to the HTTP status it earns and a one-line body that names
//! the problem. The parsed [`Request`] borrows from the input buffer and exposes what later
//! layers decide on: path, query, Origin, Cookie, Authorization, subprotocols, extensions.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha1::{Digest, Sha1};

/// Longest request head accepted (request line + headers + blank line).
pub const MAX_REQUEST_LEN: usize = 8 * 1024;
/// Most header lines accepted.
pub const MAX_HEADERS: usize = 64;
/// Appended to the client's key before hashing (§1.3).
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Why a handshake was refused; [`HandshakeError::status`] is the HTTP answer it earns.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    #[error("request head is larger than {MAX_REQUEST_LEN} bytes")]
    TooLarge,
    #[error("request has more than {MAX_HEADERS} header lines")]
    TooManyHeaders,
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    #[error("method {0} is not allowed: a WebSocket upgrade is a GET")]
    MethodNotGet(String),
    #[error("HTTP/1.1 or later is required")]
    HttpVersion,
    #[error("missing Host header")]
    MissingHost,
    #[error("this is a WebSocket endpoint: send 'Upgrade: websocket'")]
    NotWebSocketUpgrade,
    #[error("the Connection header must contain the 'Upgrade' token")]
    ConnectionNotUpgrade,
    #[error("missing Sec-WebSocket-Key header")]
    MissingKey,
    #[error("Sec-WebSocket-Key must be base64 of 16 bytes")]
    BadKey,
    #[error("header {0} appears more than once")]
    DuplicateHeader(&'static str),
    #[error("unsupported Sec-WebSocket-Version {0:?}: this server speaks version 13")]
    UnsupportedVersion(String),
    #[error("request target must be an absolute path such as /room")]
    BadPath,
}

impl HandshakeError {
    pub fn status(&self) -> Status {
        match self {
            Self::TooLarge | Self::TooManyHeaders => Status::HEADERS_TOO_LARGE,
            Self::MethodNotGet(_) => Status::METHOD_NOT_ALLOWED,
            Self::NotWebSocketUpgrade | Self::UnsupportedVersion(_) => Status::UPGRADE_REQUIRED,
            _ => Status::BAD_REQUEST,
        }
    }

    /// The complete HTTP error response for this refusal.
    pub fn response(&self) -> Vec<u8> {
        error_response(self.status(), &self.to_string())
    }
}

/// An HTTP status code with its reason phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status(pub u16, pub &'static str);

impl Status {
    pub const OK: Self = Self(200, "OK");
    pub const BAD_REQUEST: Self = Self(400, "Bad Request");
    pub const UNAUTHORIZED: Self = Self(401, "Unauthorized");
    pub const FORBIDDEN: Self = Self(403, "Forbidden");
    pub const NOT_FOUND: Self = Self(404, "Not Found");
    pub const METHOD_NOT_ALLOWED: Self = Self(405, "Method Not Allowed");
    pub const UPGRADE_REQUIRED: Self = Self(426, "Upgrade Required");
    pub const TOO_MANY_REQUESTS: Self = Self(429, "Too Many Requests");
    pub const HEADERS_TOO_LARGE: Self = Self(431, "Request Header Fields Too Large");
    pub const SERVICE_UNAVAILABLE: Self = Self(503, "Service Unavailable");
}

/// A valid upgrade request, borrowing from the bytes it was parsed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request<'a> {
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub host: &'a str,
    pub key: &'a str,
    pub origin: Option<&'a str>,
    pub cookie: Option<&'a str>,
    pub authorization: Option<&'a str>,
    /// The last `X-Forwarded-For` header (a proxy appends to it), if any.
    pub forwarded_for: Option<&'a str>,
    protocols: Option<&'a str>,
    extensions: Option<&'a str>,
}

impl<'a> Request<'a> {
    /// Subprotocols the client offers (Sec-WebSocket-Protocol), in its order of preference.
    pub fn protocols(&self) -> impl Iterator<Item = &'a str> + 'a {
        tokens(self.protocols)
    }

    /// Extensions the client offers (Sec-WebSocket-Extensions), each with its parameters.
    pub fn extensions(&self) -> impl Iterator<Item = &'a str> + 'a {
        tokens(self.extensions)
    }

    /// The value of `Sec-WebSocket-Accept` for this request.
    pub fn accept_key(&self) -> String {
        accept_key(self.key)
    }
}

fn tokens(list: Option<&str>) -> impl Iterator<Item = &str> {
    list.into_iter()
        .flat_map(|l| l.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

fn has_token(list: &str, token: &str) -> bool {
    list.split(',')
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Stores a header that may appear only once.
fn set_once<'a>(
    slot: &mut Option<&'a str>,
    name: &'static str,
    value: &'a str,
) -> Result<(), HandshakeError> {
    match slot.replace(value) {
        Some(_) => Err(HandshakeError::DuplicateHeader(name)),
        None => Ok(()),
    }
}

/// `base64(SHA-1(key + GUID))` (§4.2.2).
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WEBSOCKET_GUID.as_bytes());
    BASE64.encode(h.finalize())
}

/// Parses an upgrade request at the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet (read more, call again with the longer buffer).
/// `Ok(Some((request, n)))`: the head took `n` bytes; bytes after it are the client's first
/// frames (a client may send them before reading the 101).
pub fn parse_request(buf: &[u8]) -> Result<Option<(Request<'_>, usize)>, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let n = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_REQUEST_LEN => {
            return Err(HandshakeError::TooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    };
    if n > MAX_REQUEST_LEN {
        return Err(HandshakeError::TooLarge);
    }
    let method = req.method.expect("complete request has a method");
    if method != "GET" {
        return Err(HandshakeError::MethodNotGet(method.to_owned()));
    }
    if req.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let target = req.path.expect("complete request has a path");
    if !target.starts_with('/') {
        return Err(HandshakeError::BadPath);
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };

    let mut host = None;
    let mut upgrade = None;
    let mut connection = false;
    let mut key = None;
    let mut version = None;
    let mut origin = None;
    let mut cookie = None;
    let mut authorization = None;
    let mut forwarded_for = None;
    let mut protocols = None;
    let mut extensions = None;
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(HandshakeError::Malformed(format!(
                "header {} is not UTF-8",
                h.name
            )));
        };
        let value = value.trim();
        let name = h.name;
        if name.eq_ignore_ascii_case("host") {
            set_once(&mut host, "Host", value)?;
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade = Some(value);
        } else if name.eq_ignore_ascii_case("connection") {
            connection |= has_token(value, "upgrade");
        } else if name.eq_ignore_ascii_case("sec-websocket-key") {
            set_once(&mut key, "Sec-WebSocket-Key", value)?;
        } else if name.eq_ignore_ascii_case("sec-websocket-version") {
            set_once(&mut version, "Sec-WebSocket-Version", value)?;
        } else if name.eq_ignore_ascii_case("origin") {
            set_once(&mut origin, "Origin", value)?;
        } else if name.eq_ignore_ascii_case("cookie") {
            cookie = Some(value);
        } else if name.eq_ignore_ascii_case("authorization") {
            set_once(&mut authorization, "Authorization", value)?;
        } else if name.eq_ignore_ascii_case("x-forwarded-for") {
            forwarded_for = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
            protocols = Some(value);
        } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
            extensions = Some(value);
        }
    }
    let host = host
        .filter(|h| !h.is_empty())
        .ok_or(HandshakeError::MissingHost)?;
    if !upgrade.is_some_and(|u| has_token(u, "websocket")) {
        return Err(HandshakeError::NotWebSocketUpgrade);
    }
    if !connection {
        return Err(HandshakeError::ConnectionNotUpgrade);
    }
    match version {
        Some("13") => {}
        Some(v) => return Err(HandshakeError::UnsupportedVersion(v.to_owned())),
        None => return Err(HandshakeError::UnsupportedVersion(String::new())),
    }
    let key = key.ok_or(HandshakeError::MissingKey)?;
    if !matches!(BASE64.decode(key), Ok(raw) if raw.len() == 16) {
        return Err(HandshakeError::BadKey);
    }
    let request = Request {
        path,
        query,
        host,
        key,
        origin,
        cookie,
        authorization,
        forwarded_for,
        protocols,
        extensions,
    };
    Ok(Some((request, n)))
}

/// The `101 Switching Protocols` answer; `protocol` is the subprotocol chosen, if any, and
/// `extensions` the `Sec-WebSocket-Extensions` value agreed, if any.
pub fn switching_protocols(
    accept: &str,
    protocol: Option<&str>,
    extensions: Option<&str>,
) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n"
    );
    if let Some(p) = protocol {
        r.push_str("Sec-WebSocket-Protocol: ");
        r.push_str(p);
        r.push_str("\r\n");
    }
    if let Some(e) = extensions {
        r.push_str("Sec-WebSocket-Extensions: ");
        r.push_str(e);
        r.push_str("\r\n");
    }
    r.push_str("\r\n");
    r.into_bytes()
}

/// An HTTP error answer with a plain-text body naming the problem; the connection closes after.
pub fn error_response(status: Status, message: &str) -> Vec<u8> {
    let extra = match status.0 {
        405 => "Allow: GET\r\n",
        426 => "Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n",
        429 | 503 => "Retry-After: 1\r\n",
        _ => "",
    };
    let body = format!("{message}\n");
    format!(
        "HTTP/1.1 {} {}\r\n{extra}Content-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        status.0,
        status.1,
        body.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "GET /chat?token=abc HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
        Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
        Origin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
        Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits, x-foo\r\n\
        Cookie: a=b\r\nAuthorization: Bearer t\r\nSec-WebSocket-Version: 13\r\n\r\n";

    fn with(header: &str, replacement: Option<&str>) -> String {
        GOOD.lines()
            .filter_map(|l| {
                let l = l.trim_end_matches('\r');
                if l.to_ascii_lowercase()
                    .starts_with(&format!("{}:", header.to_ascii_lowercase()))
                {
                    replacement.map(|r| format!("{r}\r\n"))
                } else {
                    Some(format!("{l}\r\n"))
                }
            })
            .collect::<String>()
    }

    fn err(req: &str) -> HandshakeError {
        parse_request(req.as_bytes()).unwrap_err()
    }

    #[test]
    fn rfc_accept_vector() {
        assert_eq!(
            accept_key("dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn parses_a_full_request() {
        let (r, n) = parse_request(GOOD.as_bytes()).unwrap().unwrap();
        assert_eq!(n, GOOD.len());
        assert_eq!(r.path, "/chat");
        assert_eq!(r.query, Some("token=abc"));
        assert_eq!(r.host, "server.example.com");
        assert_eq!(r.origin, Some("http://example.com"));
        assert_eq!(r.cookie, Some("a=b"));
        assert_eq!(r.authorization, Some("Bearer t"));
        assert_eq!(r.protocols().collect::<Vec<_>>(), ["chat", "superchat"]);
        assert_eq!(
            r.extensions().collect::<Vec<_>>(),
            ["permessage-deflate; client_max_window_bits", "x-foo"]
        );
        assert_eq!(r.accept_key(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn incomplete_at_every_split_then_complete_with_trailing_frame_bytes() {
        for n in 0..GOOD.len() {
            assert_eq!(parse_request(&GOOD.as_bytes()[..n]), Ok(None), "prefix {n}");
        }
        let mut with_frame = GOOD.as_bytes().to_vec();
        with_frame.extend_from_slice(&[0x81, 0x80, 1, 2, 3, 4]);
        let (_, n) = parse_request(&with_frame).unwrap().unwrap();
        assert_eq!(&with_frame[n..], &[0x81, 0x80, 1, 2, 3, 4]);
    }

    #[test]
    fn oversized_head_earns_431() {
        let big = format!(
            "GET / HTTP/1.1\r\nX-Pad: {}\r\n",
            "a".repeat(MAX_REQUEST_LEN)
        );
        let e = parse_request(big.as_bytes()).unwrap_err();
        assert_eq!(e, HandshakeError::TooLarge);
        assert_eq!(e.status().0, 431);
        let many: String = (0..MAX_HEADERS + 1)
            .map(|i| format!("X-{i}: v\r\n"))
            .collect();
        let e = err(&format!("GET / HTTP/1.1\r\n{many}\r\n"));
        assert_eq!(e.status().0, 431);
    }

    #[test]
    fn method_version_and_path() {
        assert_eq!(
            err(&GOOD.replacen("GET", "POST", 1)),
            HandshakeError::MethodNotGet("POST".into())
        );
        assert_eq!(err(&GOOD.replacen("GET", "POST", 1)).status().0, 405);
        assert_eq!(
            err(&GOOD.replacen("HTTP/1.1", "HTTP/1.0", 1)),
            HandshakeError::HttpVersion
        );
        assert_eq!(
            err(&GOOD.replacen("/chat?token=abc", "*", 1)),
            HandshakeError::BadPath
        );
        assert_eq!(err("GARBAGE\r\n\r\n").status().0, 400);
    }

    #[test]
    fn required_headers() {
        assert_eq!(err(&with("Host", None)), HandshakeError::MissingHost);
        assert_eq!(
            err(&with("Upgrade", None)),
            HandshakeError::NotWebSocketUpgrade
        );
        assert_eq!(err(&with("Upgrade", Some("Upgrade: h2c"))).status().0, 426);
        assert_eq!(
            err(&with("Connection", Some("Connection: keep-alive"))),
            HandshakeError::ConnectionNotUpgrade
        );
        assert_eq!(
            err(&with("Sec-WebSocket-Key", None)),
            HandshakeError::MissingKey
        );
        assert_eq!(
            err(&with(
                "Sec-WebSocket-Key",
                Some("Sec-WebSocket-Key: c2hvcnQ=")
            )),
            HandshakeError::BadKey
        );
        assert_eq!(
            err(&with("Sec-WebSocket-Key", Some("Sec-WebSocket-Key: !!!"))),
            HandshakeError::BadKey
        );
        for e in [
            err(&with("Host", None)),
            err(&with("Sec-WebSocket-Key", None)),
        ] {
            assert_eq!(e.status().0, 400);
        }
    }

    #[test]
    fn tokens_are_case_insensitive() {
        let req = with("Upgrade", Some("Upgrade: WebSocket"));
        let req = req.replace("Connection: keep-alive, Upgrade", "connection: UPGRADE");
        assert!(parse_request(req.as_bytes()).unwrap().is_some());
    }

    #[test]
    fn wrong_or_missing_version_earns_426_with_the_supported_version() {
        let e = err(&with(
            "Sec-WebSocket-Version",
            Some("Sec-WebSocket-Version: 8"),
        ));
        assert_eq!(e, HandshakeError::UnsupportedVersion("8".into()));
        assert_eq!(e.status().0, 426);
        let resp = String::from_utf8(e.response()).unwrap();
        assert!(resp.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
        assert!(resp.contains("\r\nSec-WebSocket-Version: 13\r\n"));
        assert!(resp.ends_with("this server speaks version 13\n"));
        assert_eq!(err(&with("Sec-WebSocket-Version", None)).status().0, 426);
    }

    #[test]
    fn duplicate_key_is_refused() {
        let req = GOOD.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        );
        assert_eq!(
            err(&req),
            HandshakeError::DuplicateHeader("Sec-WebSocket-Key")
        );
    }

    #[test]
    fn switching_protocols_response() {
        let r = String::from_utf8(switching_protocols(
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=",
            Some("chat"),
            None,
        ))
        .unwrap();
        assert_eq!(
            r,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: chat\r\n\r\n"
        );
    }

    #[test]
    fn error_responses_for_every_status() {
        for (status, header) in [
            (Status::BAD_REQUEST, None),
            (Status::FORBIDDEN, None),
            (Status::NOT_FOUND, None),
            (Status::METHOD_NOT_ALLOWED, Some("Allow: GET")),
            (Status::UPGRADE_REQUIRED, Some("Sec-WebSocket-Version: 13")),
            (Status::TOO_MANY_REQUESTS, Some("Retry-After: 1")),
            (Status::HEADERS_TOO_LARGE, None),
            (Status::SERVICE_UNAVAILABLE, Some("Retry-After: 1")),
        ] {
            let r = String::from_utf8(error_response(status, "why it failed")).unwrap();
            assert!(
                r.starts_with(&format!("HTTP/1.1 {} {}\r\n", status.0, status.1)),
                "{r}"
            );
            assert!(
                r.contains("Content-Length: 14\r\n") && r.ends_with("\r\n\r\nwhy it failed\n"),
                "{r}"
            );
            assert!(r.contains("Connection: close\r\n"));
            if let Some(h) = header {
                assert!(r.contains(h), "{r}");
            }
        }
    }
}

//! The web pages on the public listener: `GET /` the chat page, `GET /stats` a live page of the
//! server's counters (`/stats.json`). Plain HTML, CSS and JS embedded in the binary (no build
//! step), served with a Content-Security-Policy that allows no inline script and no foreign
//! origin; the page renders every user-supplied text with `textContent` only.
//!
//! Sans-io: a request head in, the whole response out ([`answer`]). Must not: serve anything
//! but these fixed pages, read files, or keep the connection (every answer closes it).

use crate::proto::handshake::Status;

/// The pages, by path: (content type, body).
const PAGES: [(&str, &str, &str); 6] = [
    (
        "/",
        "text/html; charset=utf-8",
        include_str!("static/chat.html"),
    ),
    (
        "/chat.js",
        "text/javascript; charset=utf-8",
        include_str!("static/chat.js"),
    ),
    (
        "/chat.css",
        "text/css; charset=utf-8",
        include_str!("static/chat.css"),
    ),
    (
        "/stats",
        "text/html; charset=utf-8",
        include_str!("static/stats.html"),
    ),
    (
        "/stats.js",
        "text/javascript; charset=utf-8",
        include_str!("static/stats.js"),
    ),
    (
        "/favicon.ico",
        "image/svg+xml",
        include_str!("static/favicon.svg"),
    ),
];

/// The policy: scripts, styles and connections from this origin only, nothing inline, no
/// plugins, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// Whether a request head (so far) is a page request: `GET` or `HEAD` of a page path, and not
/// a WebSocket upgrade. Decided on the request line and headers once complete.
pub fn is_page_request(head: &[u8]) -> bool {
    // The request line alone first: every WebSocket upgrade (`/connection/websocket`, a room)
    // is turned away here without a second parse of its head.
    let target = head
        .split(|&b| b == b' ')
        .nth(1)
        .map(|t| t.split(|&b| b == b'?').next().unwrap_or(t));
    let named = target
        .is_some_and(|t| t == b"/stats.json" || PAGES.iter().any(|(p, _, _)| p.as_bytes() == t));
    if !named {
        return false;
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(head) else {
        return false;
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return false;
    };
    let upgrade = req
        .headers
        .iter()
        .any(|h| h.name.eq_ignore_ascii_case("upgrade"));
    let path = path.split('?').next().unwrap_or(path);
    matches!(method, "GET" | "HEAD") && !upgrade && (page(path).is_some() || path == "/stats.json")
}

fn page(path: &str) -> Option<(&'static str, &'static str)> {
    PAGES
        .iter()
        .find(|(p, _, _)| *p == path)
        .map(|(_, t, b)| (*t, *b))
}

fn response(status: Status, content_type: &str, body: &[u8], head_only: bool) -> Vec<u8> {
    let mut r = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
Cache-Control: no-cache\r\nContent-Security-Policy: {CSP}\r\nX-Content-Type-Options: nosniff\r\n\
Referrer-Policy: no-referrer\r\nConnection: close\r\n\r\n",
        status.0,
        status.1,
        body.len()
    )
    .into_bytes();
    if !head_only {
        r.extend_from_slice(body);
    }
    r
}

/// The answer to a page request (see [`is_page_request`]); `stats` makes `/stats.json`.
pub fn answer(head: &[u8], stats: impl FnOnce() -> String) -> Vec<u8> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let _ = req.parse(head);
    let head_only = req.method == Some("HEAD");
    let path = req.path.unwrap_or("/");
    let path = path.split('?').next().unwrap_or(path);
    if path == "/stats.json" {
        return response(
            Status::OK,
            "application/json",
            stats().as_bytes(),
            head_only,
        );
    }
    match page(path) {
        Some((t, body)) => response(Status::OK, t, body.as_bytes(), head_only),
        None => response(Status::NOT_FOUND, "text/plain", b"not found\n", head_only),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_are_served_with_the_policy() {
        let r = answer(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", String::new);
        let text = String::from_utf8(r).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Security-Policy: default-src 'none'; script-src 'self'"));
        assert!(text.contains("<script src=\"/chat.js\""));
        let r = answer(b"HEAD /stats.json HTTP/1.1\r\nHost: x\r\n\r\n", || {
            "{\"a\":1}".into()
        });
        let text = String::from_utf8(r).unwrap();
        assert!(
            text.contains("Content-Length: 7\r\n") && text.ends_with("\r\n\r\n"),
            "{text}"
        );
    }

    #[test]
    fn which_requests_are_pages() {
        assert!(is_page_request(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(is_page_request(
            b"GET /stats?x=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        ));
        assert!(
            !is_page_request(b"GET / HTTP/1.1\r\nHost: x\r\n"),
            "incomplete"
        );
        assert!(!is_page_request(
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\r\n"
        ));
        assert!(!is_page_request(b"POST / HTTP/1.1\r\nHost: x\r\n\r\n"));
        assert!(!is_page_request(b"GET /chat HTTP/1.1\r\nHost: x\r\n\r\n"));
    }

    /// ` on<letters>=` inside a tag.
    fn has_inline_handler(html: &str) -> bool {
        html.match_indices(" on").any(|(i, _)| {
            let rest = &html[i + 3..];
            let n = rest.bytes().take_while(u8::is_ascii_alphabetic).count();
            n > 0 && rest[n..].starts_with('=')
        })
    }

    #[test]
    fn no_inline_script_or_html_sinks_in_the_pages() {
        for (path, _, body) in PAGES {
            if path == "/" || path == "/stats" {
                assert!(!body.contains("<script>"), "{path}: inline script");
                assert!(!has_inline_handler(body), "{path}: inline handler");
            }
            if path.ends_with(".js") {
                for sink in [
                    "innerHTML",
                    "outerHTML",
                    "insertAdjacentHTML",
                    "document.write",
                    "eval(",
                ] {
                    assert!(!body.contains(sink), "{path} uses {sink}");
                }
            }
        }
    }
}

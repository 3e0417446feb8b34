//! The web pages on the wss listener, over TLS: the chat page with its security headers, the
//! stats JSON with live counts, a 404 for other paths, and a WebSocket upgrade on `/` still goes to
//! the WebSocket side (the pages answer plain GETs only).

mod common;

use common::*;

#[tokio::test]
async fn pages_answer_plain_gets_with_their_policy() {
    let srv = start(&[]);
    let mut raw = srv.raw().await;
    let head = raw.http("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("Content-Security-Policy: default-src 'none'; script-src 'self';"),
        "{head}"
    );
    assert!(head.contains("X-Content-Type-Options: nosniff"), "{head}");
    let body = raw.rest().await;
    assert!(body.contains("<script src=\"/chat.js\" defer>"), "{body}");

    let mut raw = srv.raw().await;
    raw.http("GET /stats.json HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    let stats: serde_json::Value = serde_json::from_str(&raw.rest().await).unwrap();
    assert!(stats["connections"].as_u64().unwrap() >= 1, "{stats}");
    assert_eq!(stats["workers"], 2);

    let mut raw = srv.raw().await;
    let head = raw
        .http("GET /nothing-here HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await;
    assert!(!head.starts_with("HTTP/1.1 200"), "{head}");

    // An upgrade request for `/` goes to the WebSocket side (no room named: 404), not the page.
    let mut raw = srv.raw().await;
    let head = raw.http(&upgrade_request("/")).await;
    assert!(
        head.starts_with("HTTP/1.1 404") && !head.contains("Content-Security-Policy"),
        "{head}"
    );
    srv.raw().await.upgrade("/room").await;
}

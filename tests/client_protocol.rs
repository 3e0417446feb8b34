//! The client protocol over real wss, for what the SDKs never send: each test asserts the exact
//! error or close code. (The SDKs themselves are the judges in tests/sdk.rs.)

mod common;

use std::time::Duration;

use common::{TestServer, Ws, next_msg, send_text};
use futures_util::{SinkExt, StreamExt};
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

const SECRET: &str = "integration-secret";
const CONFIG: &str = r#"
[client]
command_rate_limit = 0
[channel.without_namespace]
allow_subscribe_for_client = true
allow_publish_for_client = true
[[channel.namespaces]]
name = "chat"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
[[channel.namespaces]]
name = "news"
allow_subscribe_for_client = true
[[channel.namespaces]]
name = "dm"
allow_user_limited_channels = true
allow_publish_for_client = true
[[channel.namespaces]]
name = "personal"
allow_user_limited_channels = true
[client.subscribe_to_user_personal_channel]
enabled = true
personal_channel_namespace = "personal"
"#;

fn config_file() -> String {
    common::temp_file("config.toml", CONFIG)
}

fn server(extra: &[&str]) -> TestServer {
    let cfg = config_file();
    let mut flags = vec!["--config", &cfg, "--token-hmac-secret", SECRET];
    flags.extend_from_slice(extra);
    common::start(&flags)
}

use common::protocol::unix_now as now;

fn hs256(claims: Value) -> String {
    common::protocol::hs256(SECRET, claims)
}

fn user_token(user: &str) -> String {
    common::protocol::user_token(SECRET, user)
}

async fn ws(s: &TestServer) -> Ws {
    s.ws("/connection/websocket").await
}

thread_local! {
    /// Replies that came in the same frame as an earlier one (newline-delimited batches).
    static PENDING: std::cell::RefCell<std::collections::HashMap<usize, std::collections::VecDeque<Value>>> =
        Default::default();
}

/// The next reply or push, skipping server pings (`{}`); batches are split into messages.
async fn reply(ws: &mut Ws) -> Value {
    let key = ws as *const Ws as usize;
    loop {
        if let Some(v) = PENDING.with(|p| p.borrow_mut().get_mut(&key).and_then(|q| q.pop_front()))
        {
            return v;
        }
        match next_msg(ws).await {
            Message::Text(t) => {
                for line in t.as_str().split('\n').filter(|l| *l != "{}") {
                    let v: Value = serde_json::from_str(line).expect("JSON reply");
                    PENDING.with(|p| p.borrow_mut().entry(key).or_default().push_back(v));
                }
            }
            other => panic!("expected a text reply, got {other:?}"),
        }
    }
}

async fn close_code(ws: &mut Ws) -> (u16, String) {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(f))))) => return (f.code.into(), f.reason.to_string()),
            Ok(Some(Ok(Message::Close(None)))) => panic!("close without a code"),
            Ok(Some(Ok(_))) => continue,
            other => panic!("expected a Close frame, got {other:?}"),
        }
    }
}

async fn connect(ws: &mut Ws, token: &str) -> Value {
    send_text(ws, &json!({"id":1,"connect":{"token":token}}).to_string()).await;
    reply(ws).await
}

async fn connected(s: &TestServer, user: &str) -> Ws {
    let mut w = ws(s).await;
    let r = connect(&mut w, &user_token(user)).await;
    assert!(r["connect"]["client"].is_string(), "{r}");
    w
}

fn error_code(r: &Value) -> u64 {
    r["error"]["code"]
        .as_u64()
        .unwrap_or_else(|| panic!("an error reply: {r}"))
}

#[tokio::test]
async fn publication_reaches_subscribers_on_both_workers() {
    let s = server(&[]);
    // Subscribe until both workers hold subscribers (six at least).
    let mut subs = common::connect_on_every_worker(&s, 6, |i| {
        let s = &s;
        async move {
            let mut w = connected(s, &format!("u{i}")).await;
            send_text(&mut w, r#"{"id":2,"subscribe":{"channel":"chat:room"}}"#).await;
            assert_eq!(reply(&mut w).await, json!({"id":2,"subscribe":{}}));
            w
        }
    })
    .await;
    send_text(
        &mut subs[0],
        r#"{"id":3,"publish":{"channel":"chat:room","data":{"text":"hi"}}}"#,
    )
    .await;
    for (i, w) in subs.iter_mut().enumerate() {
        let mut got = reply(w).await;
        if got.get("id") == Some(&json!(3)) {
            assert_eq!(got, json!({"id":3,"publish":{}}));
            got = reply(w).await;
        }
        assert_eq!(got["push"]["channel"], "chat:room", "subscriber {i}: {got}");
        assert_eq!(got["push"]["pub"]["data"], json!({"text":"hi"}));
        assert_eq!(got["push"]["pub"]["info"]["user"], "u0");
    }
}

#[tokio::test]
async fn bad_input_gets_its_code() {
    let s = server(&[]);
    let mut w = connected(&s, "alice").await;
    send_text(&mut w, r#"{"id":2,"frobnicate":{}}"#).await;
    assert_eq!(error_code(&reply(&mut w).await), 104, "unknown method");
    send_text(&mut w, r#"{"id":3}"#).await;
    assert_eq!(error_code(&reply(&mut w).await), 107, "no request object");
    send_text(&mut w, r#"{"id":4,"presence":{"channel":"chat:a"}}"#).await;
    assert_eq!(
        error_code(&reply(&mut w).await),
        108,
        "presence: not available yet"
    );
    send_text(
        &mut w,
        r#"{"id":5,"publish":{"channel":"news:a","data":{}}}"#,
    )
    .await;
    assert_eq!(
        error_code(&reply(&mut w).await),
        103,
        "no publish permission"
    );
    send_text(&mut w, r#"{"id":6,"subscribe":{"channel":"nope:a"}}"#).await;
    assert_eq!(error_code(&reply(&mut w).await), 102, "unknown namespace");
    let long = "x".repeat(256);
    send_text(
        &mut w,
        &json!({"id":7,"subscribe":{"channel":long}}).to_string(),
    )
    .await;
    assert_eq!(error_code(&reply(&mut w).await), 107, "channel.max_length");

    let mut w = connected(&s, "bob").await;
    send_text(&mut w, "not json").await;
    assert_eq!(close_code(&mut w).await.0, 3501);

    let mut w = connected(&s, "carol").await;
    send_text(&mut w, r#"{"id":0,"subscribe":{"channel":"a"}}"#).await;
    assert_eq!(close_code(&mut w).await.0, 3501, "id 0 for a request");

    let mut w = connected(&s, "dave").await;
    w.send(Message::binary(vec![1u8, 2, 3])).await.unwrap();
    let (code, reason) = close_code(&mut w).await;
    assert_eq!(code, 3506, "{reason}");
}

#[tokio::test]
async fn floods_and_oversize_are_refused() {
    let s = server(&[]);
    let mut w = connected(&s, "alice").await;
    let many: Vec<String> = (0..10_000)
        .map(|i| format!(r#"{{"id":{},"ping":{{}}}}"#, i + 2))
        .collect();
    send_text(&mut w, &many.join("\n")).await;
    let (code, reason) = close_code(&mut w).await;
    assert_eq!(code, 3501, "{reason}");

    let mut w = connected(&s, "bob").await;
    let big = format!(
        r#"{{"id":2,"publish":{{"channel":"a","data":"{}"}}}}"#,
        "x".repeat(1 << 20)
    );
    send_text(&mut w, &big[..(1 << 20) - 100]).await;
    let (code, reason) = close_code(&mut w).await;
    assert_eq!(code, 3501, "{reason}");
    assert!(reason.contains("65536"), "the limit is named: {reason}");

    let mut w = connected(&s, "carol").await;
    let subs: Vec<String> = (0..200)
        .map(|i| format!(r#"{{"id":{},"subscribe":{{"channel":"c{i}"}}}}"#, i + 2))
        .collect();
    send_text(&mut w, &subs.join("\n")).await;
    let (mut ok, mut limited) = (0, 0);
    for _ in 0..200 {
        let r = reply(&mut w).await;
        if r.get("subscribe").is_some() {
            ok += 1;
        } else if error_code(&r) == 106 {
            limited += 1;
        }
    }
    assert_eq!(
        (ok, limited),
        (127, 73),
        "128 channels with the personal one"
    );
}

#[tokio::test]
async fn bad_tokens_are_3500_and_expired_109() {
    let s = server(&["--token-audience", "ringcast", "--token-issuer", "backend"]);
    let good = json!({"sub":"a","aud":"ringcast","iss":"backend","exp": now() + 60});
    let mut w = ws(&s).await;
    assert!(connect(&mut w, &hs256(good.clone())).await["connect"].is_object());

    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let none = format!(
        "{}.{}.",
        b64.encode(br#"{"alg":"none"}"#),
        b64.encode(br#"{"sub":"a","aud":"ringcast","iss":"backend"}"#)
    );
    let mut bad = vec![("alg none", none)];
    let mut with = |what: &'static str, k: &str, v: Value| {
        let mut c = good.clone();
        c[k] = v;
        bad.push((what, hs256(c)));
    };
    with("wrong aud", "aud", json!("other"));
    with("wrong iss", "iss", json!("evil"));
    with("nbf in the future", "nbf", json!(now() + 3600));
    for (what, token) in bad {
        let mut w = ws(&s).await;
        send_text(
            &mut w,
            &json!({"id":1,"connect":{"token":token}}).to_string(),
        )
        .await;
        let (code, reason) = close_code(&mut w).await;
        assert_eq!(code, 3500, "{what}: {reason}");
    }
    let mut expired = good.clone();
    expired["exp"] = json!(now() - 5);
    let mut w = ws(&s).await;
    assert_eq!(error_code(&connect(&mut w, &hs256(expired)).await), 109);
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let keys = ringcast::test_keys::dir().join("rsa.pub");
    let keys = keys.to_str().unwrap();
    let cfg = config_file();
    let s = common::start(&["--config", &cfg, "--token-public-key", keys]);
    let pem = std::fs::read(keys).unwrap();
    let forged = encode(
        &Header::new(Algorithm::HS256),
        &json!({"sub":"mallory"}),
        &EncodingKey::from_secret(&pem),
    )
    .unwrap();
    let mut w = ws(&s).await;
    send_text(
        &mut w,
        &json!({"id":1,"connect":{"token":forged}}).to_string(),
    )
    .await;
    assert_eq!(close_code(&mut w).await.0, 3500);
}

#[tokio::test]
async fn other_users_channels_are_closed_to_you() {
    let s = server(&[]);
    let mut w = connected(&s, "alice").await;
    send_text(
        &mut w,
        r##"{"id":2,"subscribe":{"channel":"personal:#bob"}}"##,
    )
    .await;
    assert_eq!(
        error_code(&reply(&mut w).await),
        103,
        "another user's personal channel"
    );
    send_text(
        &mut w,
        r##"{"id":3,"subscribe":{"channel":"dm:#bob,carol"}}"##,
    )
    .await;
    assert_eq!(
        error_code(&reply(&mut w).await),
        103,
        "a user-limited channel you are not in"
    );
    send_text(
        &mut w,
        r##"{"id":4,"publish":{"channel":"dm:#bob,carol","data":{}}}"##,
    )
    .await;
    assert_eq!(error_code(&reply(&mut w).await), 103);
    send_text(
        &mut w,
        r##"{"id":5,"subscribe":{"channel":"dm:#alice,bob"}}"##,
    )
    .await;
    assert_eq!(reply(&mut w).await, json!({"id":5,"subscribe":{}}));
}

#[tokio::test]
async fn personal_channel_is_subscribed_server_side() {
    let s = server(&[]);
    let mut w = ws(&s).await;
    let r = connect(&mut w, &user_token("alice")).await;
    assert_eq!(r["connect"]["subs"], json!({"personal:#alice":{}}), "{r}");
    let mut bob = connected(&s, "bob").await;
    send_text(
        &mut bob,
        r##"{"id":2,"publish":{"channel":"personal:#alice","data":{"x":1}}}"##,
    )
    .await;
    assert_eq!(
        error_code(&reply(&mut bob).await),
        103,
        "only alice may use it"
    );
}

#[tokio::test]
async fn user_connection_cap() {
    let s = server(&["--user-connection-limit", "5"]);
    let mut keep = Vec::new();
    for _ in 0..5 {
        keep.push(connected(&s, "alice").await);
    }
    let mut sixth = ws(&s).await;
    send_text(
        &mut sixth,
        &json!({"id":1,"connect":{"token":user_token("alice")}}).to_string(),
    )
    .await;
    assert_eq!(close_code(&mut sixth).await.0, 3504);
    drop(keep.pop());
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _again = connected(&s, "alice").await;
}

#[tokio::test]
async fn stale_connection_is_3502() {
    let s = server(&["--stale-close-delay", "300ms"]);
    let mut w = ws(&s).await;
    let start = std::time::Instant::now();
    assert_eq!(close_code(&mut w).await.0, 3502);
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn protobuf_subprotocol_is_refused_with_3506() {
    let s = server(&[]);
    let mut req = s
        .url("/connection/websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("centrifuge-protobuf"),
    );
    let connector = tokio_tungstenite::Connector::Rustls(s.tls.clone());
    let (mut w, resp) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector))
            .await
            .unwrap();
    assert_eq!(
        resp.headers()["sec-websocket-protocol"],
        "centrifuge-protobuf"
    );
    let (code, reason) = close_code(&mut w).await;
    assert_eq!(code, 3506, "{reason}");
}

#[tokio::test]
async fn json_subprotocol_is_selected() {
    let s = server(&[]);
    let mut req = s
        .url("/connection/websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("centrifuge-json"),
    );
    let connector = tokio_tungstenite::Connector::Rustls(s.tls.clone());
    let (_w, resp) =
        tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector))
            .await
            .unwrap();
    assert_eq!(resp.headers()["sec-websocket-protocol"], "centrifuge-json");
}

#[tokio::test]
async fn bad_origin_is_403_and_connect_flood_429() {
    let s = server(&[
        "--allowed-origins",
        "https://app.example",
        "--connect-rate-limit",
        "5/s",
    ]);
    let mut req = s
        .url("/connection/websocket")
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("Origin", HeaderValue::from_static("https://evil.example"));
    let connector = tokio_tungstenite::Connector::Rustls(s.tls.clone());
    match tokio_tungstenite::connect_async_tls_with_config(req, None, true, Some(connector)).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 403);
            let body = String::from_utf8_lossy(resp.body().as_deref().unwrap()).into_owned();
            assert!(body.contains("https://evil.example"), "{body}");
        }
        other => panic!("expected 403, got {other:?}"),
    }
    let mut refused = None;
    let mut open = Vec::new();
    for _ in 0..12 {
        match s.try_ws("/connection/websocket").await {
            Ok(w) => open.push(w),
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                refused = Some((
                    resp.status().as_u16(),
                    resp.headers().get("retry-after").cloned(),
                ));
                break;
            }
            Err(e) => panic!("{e}"),
        }
    }
    let (status, retry) = refused.expect("a flood from one IP is refused");
    assert_eq!(status, 429);
    assert!(retry.is_some(), "Retry-After is set");
}

#[tokio::test]
async fn raw_rooms_obey_auth_and_can_be_turned_off() {
    let s = server(&[]);
    assert_eq!(s.refused("/news:x").await.0, 404, "not a room name");
    let (status, body) = s.refused("/lobby").await;
    assert_eq!(status, 401, "{body}");
    let url = format!("/lobby?token={}", user_token("alice"));
    let mut w = s.ws(&url).await;
    send_text(&mut w, "hello").await;
    assert_eq!(next_msg(&mut w).await, Message::text("hello"));

    let off = server(&["--raw-rooms", "off"]);
    let (status, body) = off.refused("/lobby").await;
    assert_eq!(status, 404);
    assert!(body.contains("/connection/websocket"), "{body}");
}

#[tokio::test]
async fn try_it_out_mode_lets_anyone_in() {
    let s = common::start(&[]);
    let mut w = ws(&s).await;
    send_text(&mut w, r#"{"id":1,"connect":{}}"#).await;
    let r = reply(&mut w).await;
    assert!(r["connect"]["client"].is_string(), "{r}");
    send_text(&mut w, "{\"id\":2,\"subscribe\":{\"channel\":\"demo\"}}\n{\"id\":3,\"publish\":{\"channel\":\"demo\",\"data\":{\"a\":1}}}").await;
    assert_eq!(reply(&mut w).await, json!({"id":2,"subscribe":{}}));
    let mut seen = [reply(&mut w).await, reply(&mut w).await];
    seen.sort_by_key(|v| v.get("push").is_some());
    assert_eq!(seen[0], json!({"id":3,"publish":{}}));
    assert_eq!(seen[1]["push"]["pub"]["data"], json!({"a":1}));
    assert!(seen[1]["push"]["pub"]["info"]["user"] == "");
}

/// Behind a trusted proxy the per-IP connect limit counts the client named in
/// X-Forwarded-For; from an untrusted peer the header is ignored.
#[tokio::test]
async fn connect_limit_counts_forwarded_clients_only_behind_trusted_proxies() {
    let upgrade = |xff: &str| {
        common::upgrade_request("/connection/websocket")
            .replace("\r\n\r\n", &format!("\r\nX-Forwarded-For: {xff}\r\n\r\n"))
    };
    let status = |head: String| head.split(' ').nth(1).unwrap().to_owned();
    let trusted = server(&[
        "--connect-rate-limit",
        "1/s",
        "--trusted-proxies",
        "127.0.0.1",
    ]);
    // Two clients through the proxy: each has its own budget.
    for client in ["203.0.113.1", "203.0.113.2"] {
        let mut r = trusted.raw().await;
        assert_eq!(status(r.http(&upgrade(client)).await), "101", "{client}");
    }
    // The same client again within the second: refused, whatever it put left of the proxy.
    let mut r = trusted.raw().await;
    let head = r.http(&upgrade("198.51.100.9, 203.0.113.1")).await;
    assert_eq!(status(head), "429");

    let untrusted = server(&["--connect-rate-limit", "1/s"]);
    let mut r = untrusted.raw().await;
    assert_eq!(status(r.http(&upgrade("203.0.113.1")).await), "101");
    let mut r = untrusted.raw().await;
    let head = r.http(&upgrade("203.0.113.2")).await;
    assert_eq!(
        status(head),
        "429",
        "a forged header does not buy a new budget"
    );
}

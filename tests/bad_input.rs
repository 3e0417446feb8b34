//! Bad handshakes earn HTTP statuses, bad frames earn close codes, and the others in the room
//! keep working after one client misbehaves.

mod common;

use common::*;
use ringcast::proto::OpCode;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn handshake_errors_get_statuses_that_name_the_problem() {
    let srv = start(&[]);
    let cases: Vec<(String, &str, &str)> = vec![
        (
            "GET /chat HTTP/1.1\r\nHost: x\r\n\r\n".into(),
            "426",
            "Upgrade: websocket",
        ),
        (
            upgrade_request("/chat").replace("Version: 13", "Version: 8"),
            "426",
            "Sec-WebSocket-Version: 13",
        ),
        (
            upgrade_request("/chat").replace(&format!("Sec-WebSocket-Key: {KEY_REQUEST}\r\n"), ""),
            "400",
            "Sec-WebSocket-Key",
        ),
        (
            upgrade_request("/chat").replace("Connection: Upgrade", "Connection: close"),
            "400",
            "Connection",
        ),
        (
            upgrade_request("/chat").replacen("GET", "POST", 1),
            "405",
            "Allow: GET",
        ),
        (upgrade_request("/not/a/room"), "404", "room names are"),
        (
            format!("GET /x HTTP/1.1\r\nX-Pad: {}\r\n\r\n", "a".repeat(9000)),
            "431",
            "larger than 8192",
        ),
    ];
    for (req, status, needle) in cases {
        let mut raw = srv.raw().await;
        let head = raw.http(&req).await;
        let body = raw.rest().await;
        assert!(
            head.starts_with(&format!("HTTP/1.1 {status} ")),
            "{req:?} → {head}"
        );
        assert!(
            head.contains(needle) || body.contains(needle),
            "{req:?}: {needle:?} not in {head}{body}"
        );
    }
    // The server still serves.
    let mut ws = srv.ws("/chat").await;
    send_text(&mut ws, "fine").await;
    assert_eq!(next_msg(&mut ws).await, Message::text("fine"));
}

async fn expect_close(srv: &TestServer, send: Vec<u8>, code: u16, reason_has: &str) {
    let mut raw = srv.raw().await;
    raw.upgrade("/bad").await;
    raw.send(&send).await;
    let (got, reason) = raw.close_frame().await;
    assert_eq!(got, code, "reason {reason:?}");
    assert!(
        reason.contains(reason_has),
        "{reason:?} lacks {reason_has:?}"
    );
    assert!(
        raw.event().await.is_none(),
        "server closes the connection after a protocol error"
    );
}

fn client_frame(fin: bool, op: OpCode, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    ringcast::proto::encode::write_client_frame(&mut v, fin, op, payload, [1, 2, 3, 4]);
    v
}

#[tokio::test]
async fn bad_frames_get_their_close_codes_and_others_keep_working() {
    let srv = start(&["--max-message-size", "1KiB", "--max-backlog", "64KiB"]);
    let mut bystander = srv.ws("/bad").await;

    expect_close(&srv, b"\x81\x05Hello".to_vec(), 1002, "not masked").await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Text, b"ok \xed\xa0\x80"),
        1007,
        "UTF-8",
    )
    .await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Binary, &[0; 2048]),
        1009,
        "exceeds the limit",
    )
    .await;
    let two_fragments = [
        client_frame(false, OpCode::Binary, &[0; 600]),
        client_frame(true, OpCode::Continuation, &[0; 600]),
    ]
    .concat();
    expect_close(&srv, two_fragments, 1009, "message").await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Continuation, b"x"),
        1002,
        "continuation",
    )
    .await;
    expect_close(&srv, vec![0x83, 0x80, 0, 0, 0, 0], 1002, "reserved opcode").await;
    expect_close(&srv, vec![0xC1, 0x80, 0, 0, 0, 0], 1002, "reserved bits").await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Ping, &[0; 126]),
        1002,
        "control frame",
    )
    .await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Close, &[0x03]),
        1002,
        "1 byte",
    )
    .await;
    expect_close(
        &srv,
        client_frame(true, OpCode::Close, &1005u16.to_be_bytes()),
        1002,
        "1005",
    )
    .await;

    send_text(&mut bystander, "still here").await;
    assert_eq!(next_msg(&mut bystander).await, Message::text("still here"));
    assert_eq!(
        srv.handle()
            .stats()
            .protocol_errors
            .load(std::sync::atomic::Ordering::Relaxed),
        10
    );
}

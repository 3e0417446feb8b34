//! Limits: max connections (503), message rate (1008), slow consumers (1008).

mod common;

use std::sync::atomic::Ordering;
use std::time::Duration;

use common::*;
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn connections_over_the_limit_get_503() {
    let srv = start(&["--max-connections", "2"]);
    let _a = srv.ws("/l").await;
    let _b = srv.ws("/l").await;
    let (status, body) = srv.refused("/l").await;
    assert_eq!(status, 503);
    assert!(body.contains("limit of 2 connections"), "{body}");
    assert_eq!(
        srv.handle().stats().rejected_full.load(Ordering::Relaxed),
        1
    );
}

#[tokio::test]
async fn sending_faster_than_the_rate_limit_closes_with_1008() {
    let srv = start(&["--rate-limit", "5"]);
    let mut ws = srv.ws("/r").await;
    for i in 0..6 {
        ws.send(Message::text(format!("m{i}"))).await.unwrap();
    }
    let mut echoed = 0;
    loop {
        match tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Text(_))) => echoed += 1,
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(u16::from(f.code), 1008);
                assert!(
                    f.reason
                        .contains("rate limit: more than 5 messages per minute"),
                    "{}",
                    f.reason
                );
                break;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(echoed, 5, "the first 5 messages went through");
    assert_eq!(srv.handle().stats().rate_limited.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_client_that_stops_reading_is_closed_as_a_slow_consumer() {
    let srv = start(&[
        "--max-message-size",
        "16KiB",
        "--max-backlog",
        "1MiB",
        "--close-timeout",
        "1s",
    ]);
    let mut slow = srv.raw().await; // upgrades, then stops reading
    slow.upgrade("/flood").await;
    let mut fast = srv.ws("/flood").await;
    let payload = vec![7u8; 16 * 1024];
    let stats = srv.handle().stats();
    let mut sent = 0;
    // The fast client reads its own copy before sending the next: only `slow` falls behind
    // (kernel socket buffers first, then the server's 1 MiB backlog).
    while stats.slow_consumers.load(Ordering::Relaxed) == 0 && sent < 4000 {
        fast.send(Message::binary(payload.clone())).await.unwrap();
        assert_eq!(next_msg(&mut fast).await, Message::binary(payload.clone()));
        sent += 1;
    }
    assert_eq!(
        stats.slow_consumers.load(Ordering::Relaxed),
        1,
        "after {sent} messages"
    );
    assert!(
        sent > 64,
        "the backlog limit (1 MiB = 64 messages) was not reached before the cut: {sent}"
    );
    // The slow client finds, after whatever was already on its way, a Close 1008.
    let (code, reason) = slow.close_frame().await;
    assert_eq!(code, 1008);
    assert!(reason.contains("slow consumer"), "{reason}");
    // The fast client keeps working and is not cut off.
    for _ in 0..10 {
        fast.send(Message::binary(payload.clone())).await.unwrap();
        assert_eq!(next_msg(&mut fast).await, Message::binary(payload.clone()));
    }
    assert_eq!(stats.slow_consumers.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn rooms_over_the_limit_get_503_and_a_freed_room_is_reusable() {
    let srv = start(&["--max-rooms", "2"]);
    let a = srv.ws("/one").await;
    let _b = srv.ws("/two").await;
    let (status, body) = srv.refused("/three").await;
    assert_eq!(status, 503);
    assert!(body.contains("already has 2 rooms"), "{body}");
    // An existing room still takes members; when its last member leaves, the slot is free.
    let _a2 = srv.ws("/one").await;
    drop(a);
    drop(_a2);
    let mut third = None;
    for _ in 0..50 {
        if let Ok(ws) = srv.try_ws("/three").await {
            third = Some(ws);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        third.is_some(),
        "room slot not freed after its members left"
    );
}

#[tokio::test]
async fn a_ping_flood_that_never_reads_its_pongs_is_cut_off() {
    let srv = start(&[
        "--max-message-size",
        "1KiB",
        "--max-backlog",
        "64KiB",
        "--close-timeout",
        "500ms",
    ]);
    let mut raw = srv.raw().await;
    raw.upgrade("/pings").await;
    let stats = srv.handle().stats();
    // 125-byte Pings, written as fast as TCP takes them, Pongs never read: the server's queue
    // for this client would grow without end if Pongs were not counted against the backlog.
    let mut ping = Vec::new();
    for _ in 0..256 {
        ringcast::proto::encode::write_client_frame(
            &mut ping,
            true,
            ringcast::proto::OpCode::Ping,
            &[b'p'; 125],
            [1, 2, 3, 4],
        );
    }
    let t = std::time::Instant::now();
    while stats.slow_consumers.load(Ordering::Relaxed) == 0 && t.elapsed() < Duration::from_secs(20)
    {
        if tokio::time::timeout(Duration::from_millis(200), raw.send(&ping))
            .await
            .is_err()
        {
            // Our own send buffer is full: the server stopped reading us, or closed. Look again.
            continue;
        }
    }
    assert_eq!(
        stats.slow_consumers.load(Ordering::Relaxed),
        1,
        "the flood was not cut off"
    );
}

#[tokio::test]
async fn pings_count_against_the_rate_limit() {
    let srv = start(&["--rate-limit", "5"]);
    let mut raw = srv.raw().await;
    raw.upgrade("/rp").await;
    for _ in 0..6 {
        raw.frame(true, ringcast::proto::OpCode::Ping, b"hi").await;
    }
    let mut pongs = 0;
    let (code, reason) = loop {
        match raw.event().await {
            Some(ringcast::proto::Event::Pong(_)) => pongs += 1,
            Some(ev @ ringcast::proto::Event::Close(_)) => {
                let b = ev.close_body().unwrap();
                break (b.code.0, b.reason.to_owned());
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    assert_eq!((pongs, code), (5, 1008));
    assert!(reason.contains("rate limit"), "{reason}");
}

#[tokio::test]
async fn far_over_the_connection_limit_sockets_are_closed_without_tls() {
    use tokio::io::AsyncReadExt;
    let srv = start(&["--max-connections", "1", "--handshake-timeout", "5s"]);
    let _member = srv.ws("/full").await;
    // 1 allowed + 64 answered with 503 (after TLS); the rest are closed at accept.
    let mut socks = Vec::new();
    for _ in 0..80 {
        socks.push(
            tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
                .await
                .unwrap(),
        );
    }
    let stats = srv.handle().stats();
    let t = std::time::Instant::now();
    while stats.dropped_full.load(Ordering::Relaxed) < 16 && t.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        stats.dropped_full.load(Ordering::Relaxed),
        16,
        "80 - 64 headroom"
    );
    // A dropped socket sees EOF at once, without a byte of TLS.
    let mut eof = 0;
    for s in socks.iter_mut() {
        let mut b = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_millis(20), s.read(&mut b)).await {
            eof += 1;
        }
    }
    assert_eq!(eof, 16);
}

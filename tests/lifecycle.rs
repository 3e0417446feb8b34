//! Ping/Pong, the close handshake, heartbeat, idle timeout, handshake timeout, shutdown.

mod common;

use std::time::{Duration, Instant};

use common::*;
use futures_util::StreamExt;
use ringcast::proto::{Event, OpCode};
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as TCode;

#[tokio::test]
async fn ping_gets_pong_with_the_same_payload_and_unsolicited_pong_is_ignored() {
    let srv = start(&[]);
    let mut raw = srv.raw().await;
    raw.upgrade("/p").await;
    raw.frame(true, OpCode::Pong, b"unsolicited").await;
    raw.frame(true, OpCode::Ping, b"are you there").await;
    let Some(Event::Pong(p)) = raw.event().await else {
        panic!("expected a pong")
    };
    assert_eq!(p.as_bytes(), b"are you there");
}

#[tokio::test]
async fn close_is_echoed_with_its_code_then_tcp_closes() {
    let srv = start(&[]);
    for (payload, want) in [
        (&b"\x0f\xa0bye"[..], 4000u16),
        (&b""[..], 1000),
        (&b"\x03\xe9"[..], 1001),
    ] {
        let mut raw = srv.raw().await;
        raw.upgrade("/c").await;
        raw.frame(true, OpCode::Close, payload).await;
        let (code, _) = raw.close_frame().await;
        assert_eq!(code, want);
        assert!(
            raw.event().await.is_none(),
            "TCP closed after the close handshake"
        );
    }
    // A library client sees a clean close.
    let mut ws = srv.ws("/c").await;
    ws.close(Some(CloseFrame {
        code: TCode::Normal,
        reason: "done".into(),
    }))
    .await
    .unwrap();
    match ws.next().await {
        Some(Ok(Message::Close(Some(f)))) => assert_eq!(f.code, TCode::Normal),
        other => panic!("expected the echoed close, got {other:?}"),
    }
}

#[tokio::test]
async fn server_pings_on_heartbeat() {
    let srv = start(&["--heartbeat", "200ms"]);
    let mut raw = srv.raw().await;
    raw.upgrade("/hb").await;
    let Some(Event::Ping(p)) = raw.event().await else {
        panic!("expected a heartbeat ping")
    };
    assert_eq!(p.as_bytes(), b"ringcast");
}

#[tokio::test]
async fn silent_connection_is_closed_after_the_idle_timeout() {
    let srv = start(&["--idle-timeout", "300ms", "--close-timeout", "300ms"]);
    let mut raw = srv.raw().await;
    raw.upgrade("/idle").await;
    let t = Instant::now();
    let (code, reason) = raw.close_frame().await;
    assert_eq!(code, 1001);
    assert!(reason.contains("idle"), "{reason}");
    assert!(t.elapsed() >= Duration::from_millis(250));
    assert!(
        raw.event().await.is_none(),
        "closed after the close timeout"
    );
}

#[tokio::test]
async fn slowloris_is_dropped_after_the_handshake_timeout() {
    let srv = start(&["--handshake-timeout", "300ms"]);
    // TCP only: no TLS ClientHello at all.
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
        .await
        .unwrap();
    let t = Instant::now();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(3), tcp.read(&mut buf))
        .await
        .expect("closed in time")
        .unwrap_or(0);
    assert_eq!(n, 0);
    assert!(t.elapsed() >= Duration::from_millis(250));
    // TLS done but the HTTP request never finishes.
    let mut raw = srv.raw().await;
    raw.send(b"GET /chat HTTP/1.1\r\nHost: x\r\n").await;
    assert_eq!(raw.rest().await, "");
    assert_eq!(
        srv.handle()
            .stats()
            .handshake_timeouts
            .load(std::sync::atomic::Ordering::Relaxed),
        2
    );
}

#[tokio::test]
async fn graceful_shutdown_sends_1001_and_waits_for_clients() {
    let mut srv = start(&["--shutdown-timeout", "5s"]);
    let mut a = srv.ws("/s").await;
    let mut b = srv.ws("/s").await;
    let handle = srv.handle.take().unwrap();
    let t = Instant::now();
    let join = std::thread::spawn(move || {
        handle.shutdown();
        handle.join();
    });
    for ws in [&mut a, &mut b] {
        match tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Close(Some(f)))) => {
                assert_eq!(f.code, TCode::Away);
                assert!(f.reason.contains("shutting down"));
            }
            other => panic!("expected Close 1001, got {other:?}"),
        }
        // Polling again flushes tungstenite's Close reply and sees the end of the stream.
        let end = tokio::time::timeout(Duration::from_secs(3), ws.next())
            .await
            .unwrap();
        assert!(end.is_none() || matches!(end, Some(Err(_))), "{end:?}");
    }
    // tungstenite answered the Close; the server ends well before its 5 s timeout.
    tokio::task::spawn_blocking(move || join.join().unwrap())
        .await
        .unwrap();
    assert!(
        t.elapsed() < Duration::from_secs(3),
        "took {:?}",
        t.elapsed()
    );
    // Nothing listens any more.
    assert!(
        tokio::net::TcpStream::connect(("127.0.0.1", srv.port))
            .await
            .is_err()
    );
}

#[tokio::test]
async fn shutdown_is_bounded_when_a_client_never_answers_the_close() {
    let mut srv = start(&["--shutdown-timeout", "500ms"]);
    let mut raw = srv.raw().await;
    raw.upgrade("/deaf").await;
    let handle = srv.handle.take().unwrap();
    let t = Instant::now();
    let join = std::thread::spawn(move || {
        handle.shutdown();
        handle.join();
    });
    // The raw client reads the Close 1001 but never answers it.
    let (code, _) = raw.close_frame().await;
    assert_eq!(code, 1001);
    tokio::task::spawn_blocking(move || join.join().unwrap())
        .await
        .unwrap();
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_secs(4),
        "took {took:?}"
    );
    assert!(
        raw.event().await.is_none(),
        "the server closed the connection"
    );
}

/// `--drain-batch`: connections are told to go a few at a time; protocol sessions get 3001
/// (their SDKs reconnect elsewhere), raw connections 1001; /ready says 503 meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_in_batches_with_3001_for_protocol_clients() {
    use futures_util::SinkExt;
    let mut s = common::start(&[
        "--drain-batch",
        "2",
        "--drain-interval",
        "300ms",
        "--allow-anonymous",
    ]);
    let api = s.handle().api_addr.unwrap();
    let mut clients = Vec::new();
    for _ in 0..6 {
        let mut ws = s.ws("/connection/websocket").await;
        ws.send(Message::text(r#"{"id":1,"connect":{}}"#))
            .await
            .unwrap();
        let r = ws.next().await.unwrap().unwrap();
        assert!(r.to_text().unwrap().contains("\"client\""));
        clients.push(ws);
    }
    let mut raw = s.ws("/room").await;
    let stopper = std::thread::spawn(move || s.stop());
    let started = Instant::now();
    // While draining, /ready says so (load balancers stop sending new clients).
    tokio::time::sleep(Duration::from_millis(50)).await;
    let answer = common::http_get(api, "/ready").await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    let mut closed_at = Vec::new();
    for ws in clients.iter_mut() {
        loop {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Close(Some(f))))) => {
                    assert_eq!(u16::from(f.code), 3001, "{f:?}");
                    closed_at.push(started.elapsed());
                    break;
                }
                Ok(Some(Ok(_))) => continue,
                other => panic!("expected Close 3001, got {other:?}"),
            }
        }
    }
    match tokio::time::timeout(Duration::from_secs(10), raw.next()).await {
        Ok(Some(Ok(Message::Close(Some(f))))) => assert_eq!(u16::from(f.code), 1001),
        other => panic!("expected Close 1001, got {other:?}"),
    }
    // 6 connections on 2 workers, one per worker per batch: some worker waited an interval.
    let spread = closed_at
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*closed_at.iter().min().unwrap());
    assert!(
        spread >= Duration::from_millis(250),
        "closes spread over batches: {closed_at:?}"
    );
    drop(clients);
    drop(raw);
    stopper.join().unwrap();
}

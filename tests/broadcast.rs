//! Room broadcast over real wss: everyone in the room gets every message, the sender too.

mod common;

use common::*;
use futures_util::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[tokio::test]
async fn three_clients_all_receive_including_the_sender() {
    let srv = start(&[]);
    let mut a = srv.ws("/chat").await;
    let mut b = srv.ws("/chat").await;
    let mut c = srv.ws("/chat").await;
    let mut other_room = srv.ws("/elsewhere").await;

    send_text(&mut a, "hello from a").await;
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(next_msg(ws).await, Message::text("hello from a"));
    }
    b.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    for ws in [&mut a, &mut b, &mut c] {
        assert_eq!(
            next_msg(ws).await,
            Message::binary(vec![0u8, 1, 2, 255]),
            "binary stays binary"
        );
    }
    // The other room heard nothing: its next message is its own.
    send_text(&mut other_room, "mine").await;
    assert_eq!(next_msg(&mut other_room).await, Message::text("mine"));
}

#[tokio::test]
async fn large_messages_in_every_length_form() {
    let srv = start(&[]);
    let mut a = srv.ws("/big").await;
    let mut b = srv.ws("/big").await;
    for len in [0usize, 125, 126, 200, 65535, 65536, 70000, 500_000] {
        let payload: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
        a.send(Message::binary(payload.clone())).await.unwrap();
        assert_eq!(
            next_msg(&mut a).await,
            Message::binary(payload.clone()),
            "len {len} to sender"
        );
        assert_eq!(
            next_msg(&mut b).await,
            Message::binary(payload),
            "len {len} to peer"
        );
    }
}

#[tokio::test]
async fn fragmented_message_is_delivered_whole() {
    let srv = start(&[]);
    let mut listener = srv.ws("/frag").await;
    let mut raw = srv.raw().await;
    raw.upgrade("/frag").await;
    raw.frame(false, ringcast::proto::OpCode::Text, "κό".as_bytes())
        .await;
    raw.frame(true, ringcast::proto::OpCode::Ping, b"in between")
        .await;
    raw.frame(
        false,
        ringcast::proto::OpCode::Continuation,
        "σμ".as_bytes(),
    )
    .await;
    raw.frame(true, ringcast::proto::OpCode::Continuation, "ε".as_bytes())
        .await;
    assert_eq!(next_msg(&mut listener).await, Message::text("κόσμε"));
    // The raw sender gets the Pong first, then its own message as one frame.
    let Some(ringcast::proto::Event::Pong(p)) = raw.event().await else {
        panic!("pong")
    };
    assert_eq!(p.as_bytes(), b"in between");
    let Some(ringcast::proto::Event::Message(m)) = raw.event().await else {
        panic!("message")
    };
    assert_eq!(m.text(), Some("κόσμε"));
}

#[tokio::test]
async fn broadcast_crosses_workers() {
    let srv = start(&["--workers", "2"]);
    // Connect until both workers hold members of the room.
    let mut clients = connect_on_every_worker(&srv, 4, |_| srv.ws("/x")).await;
    for i in 0..3 {
        let text = format!("message {i}");
        send_text(&mut clients[i], &text).await;
        for ws in clients.iter_mut() {
            assert_eq!(next_msg(ws).await, Message::text(text.clone()));
        }
    }
    assert_eq!(srv.handle().inbox_dropped(), 0);
}

#[tokio::test]
async fn plaintext_mode_serves_ws() {
    let srv = start(&["--plaintext"]);
    let url = format!("ws://127.0.0.1:{}/plain", srv.port);
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    send_text(&mut ws, "no tls").await;
    assert_eq!(next_msg(&mut ws).await, Message::text("no tls"));
}

#[tokio::test]
async fn single_read_fallback_mode_serves_the_same() {
    let srv = start(&["--recv-mode", "single"]);
    assert!(
        srv.handle()
            .workers
            .iter()
            .all(|w| w.recv_mode == ringcast::server::options::RecvMode::Single)
    );
    let mut a = srv.ws("/single").await;
    let mut b = srv.ws("/single").await;
    let big = vec![3u8; 100_000];
    a.send(Message::binary(big.clone())).await.unwrap();
    assert_eq!(next_msg(&mut b).await, Message::binary(big.clone()));
    assert_eq!(next_msg(&mut a).await, Message::binary(big));
}

#[tokio::test]
async fn the_io_uring_path_is_the_one_tested() {
    let srv = start(&[]);
    for w in &srv.handle().workers {
        assert_eq!(w.driver, "io_uring", "this host has io_uring (Linux 6.18)");
        assert_eq!(w.recv_mode, ringcast::server::options::RecvMode::Multishot);
    }
}

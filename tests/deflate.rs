//! permessage-deflate over the wire: what the 101 agrees to, a broadcast compressed once per
//! worker and shared, plain frames for clients that did not offer it, and a deflate bomb
//! refused with 1009 while the server's memory stays bounded (measured on the real binary).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use ringcast::proto::deflate::{Deflater, Inflater};
use ringcast::proto::encode::write_client_frame;
use ringcast::proto::{Event, OpCode};

/// The 101's `Sec-WebSocket-Extensions` for an offer (None: no header).
async fn agreed(s: &common::TestServer, offer: &str) -> Option<String> {
    let mut raw = s.raw().await;
    let req = common::upgrade_request("/deflate-room").replace(
        "\r\n\r\n",
        &format!("\r\nSec-WebSocket-Extensions: {offer}\r\n\r\n"),
    );
    let head = raw.http(&req).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    head.lines()
        .find_map(|l| l.strip_prefix("Sec-WebSocket-Extensions: "))
        .map(str::to_owned)
}

#[tokio::test]
async fn the_handshake_agrees_on_our_terms_or_not_at_all() {
    let s = common::start(&["--compression"]);
    let ours = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    assert_eq!(
        agreed(&s, "permessage-deflate; client_max_window_bits")
            .await
            .as_deref(),
        Some(ours),
        "what browsers offer"
    );
    assert_eq!(
        agreed(&s, "permessage-deflate; server_max_window_bits=10").await,
        Some(format!("{ours}; server_max_window_bits=10")),
    );
    assert_eq!(
        agreed(&s, "permessage-deflate; server_max_window_bits=8").await,
        None,
        "8 declined: zlib cannot make an 8-bit window"
    );
    assert_eq!(
        agreed(
            &s,
            "permessage-deflate; server_max_window_bits=8, permessage-deflate"
        )
        .await
        .as_deref(),
        Some(ours),
        "the next offer is tried"
    );
    assert_eq!(agreed(&s, "x-webkit-deflate-frame").await, None);
    let off = common::start(&[]);
    assert_eq!(
        agreed(&off, "permessage-deflate").await,
        None,
        "off by default"
    );
}

fn big_json() -> Vec<u8> {
    format!(
        r#"{{"type":"message","text":"{}"}}"#,
        "the quick brown fox jumps over the lazy dog ".repeat(46)
    )
    .into_bytes()
}

#[tokio::test]
async fn a_broadcast_is_compressed_once_per_worker_and_plain_for_the_others() {
    let s = common::start(&["--compression"]);
    let mut plain = s.raw().await;
    plain.upgrade("/fanout").await;
    // Until both workers hold compressing members (six at least): the plain one alone on a
    // worker is not enough.
    let mut compressing = common::connect_on_every_worker(&s, 6, |_| async {
        let mut raw = s.raw().await;
        let req = common::upgrade_request("/fanout").replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        assert!(raw.http(&req).await.contains("permessage-deflate"));
        raw.allow_compression();
        raw
    })
    .await;

    let payload = big_json();
    compressing[0].frame(true, OpCode::Text, &payload).await;
    let mut inflater = Inflater::default();
    for raw in &mut compressing {
        let Some(Event::Message(m)) = raw.event().await else {
            panic!("a message")
        };
        assert!(m.compressed, "RSV1 on the frame");
        let (m, _) = m.inflate(&mut inflater, 1 << 20).unwrap();
        assert_eq!(m.payload(), &payload[..]);
    }
    let Some(Event::Message(m)) = plain.event().await else {
        panic!("a message")
    };
    assert!(
        !m.compressed,
        "a client that did not offer gets the plain frame"
    );
    assert_eq!(m.payload(), &payload[..]);
    let compressed: u64 = s
        .handle()
        .worker_counters()
        .map(|c| {
            c.compression
                .compressed
                .load(std::sync::atomic::Ordering::Relaxed)
        })
        .sum();
    assert_eq!(
        compressed,
        2,
        "once per worker, not once per recipient ({})",
        compressing.len() + 1
    );
}

/// Peak RSS (VmHWM) and RSS of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
            .unwrap()
    };
    (field("VmHWM:"), field("VmRSS:"))
}

/// A permessage-deflate payload that inflates to `mib` MiB of zeros: independently compressed
/// 1 MiB pieces, joined by the empty stored blocks their sync flushes end with.
fn bomb(mib: usize) -> Vec<u8> {
    let mut piece = Vec::new();
    assert!(Deflater::new(9).compress(&vec![0u8; 1 << 20], 15, &mut piece));
    let mut out = Vec::with_capacity((piece.len() + 4) * mib);
    for i in 0..mib {
        if i > 0 {
            out.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        }
        out.extend_from_slice(&piece);
    }
    out
}

fn send_frame(c: &mut TcpStream, rsv1: bool, op: OpCode, payload: &[u8]) {
    let mut v = Vec::new();
    write_client_frame(&mut v, true, op, payload, [1, 2, 3, 4]);
    if rsv1 {
        v[0] |= 0x40;
    }
    c.write_all(&v).unwrap();
}

/// Reads one server frame: (first byte, payload).
fn read_frame(c: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut h = [0u8; 2];
    c.read_exact(&mut h).unwrap();
    let len = match h[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            c.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            c.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    c.read_exact(&mut payload).unwrap();
    (h[0], payload)
}

#[test]
fn a_one_gib_deflate_bomb_is_closed_with_1009_and_memory_stays_bounded() {
    // Just over the bomb's compressed size, so the bomb is a legal message that must be
    // inflated to be refused.
    let limit: usize = 1088 << 10;
    let bomb = bomb(1024);
    assert!(
        bomb.len() < limit,
        "the bomb ({} B) fits the message limit",
        bomb.len()
    );
    let dir = std::env::temp_dir().join(format!("ringcast-bomb-{}", std::process::id()));
    let mut server = common::process::serve(&[
        "--listen",
        "127.0.0.1:0",
        "--plaintext",
        "--compression",
        "--workers",
        "1",
        "--recv-buffers",
        "32",
        "--rate-limit",
        "0",
        "--max-message-size",
        "1088KiB",
        "--max-backlog",
        "8MiB",
        "--api-listen",
        "off",
        "--cert-dir",
        dir.to_str().unwrap(),
    ]);
    let pid = server.child.id();
    let mut c = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let req = common::upgrade_request("/bomb").replace(
        "\r\n\r\n",
        "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
    );
    c.write_all(req.as_bytes()).unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.contains("permessage-deflate"), "{head}");

    // Warm-up: a plain message at the limit (what any client may send) and a compressed one,
    // echoed back, so the receive ring, the heap and the compressor have met their sizes.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let plain: Vec<u8> = (0..limit - 64)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 32) as u8
        })
        .collect(); // incompressible: echoed plain
    send_frame(&mut c, false, OpCode::Binary, &plain);
    assert_eq!(read_frame(&mut c).1.len(), plain.len());
    let mut z = Vec::new();
    assert!(Deflater::new(1).compress(&big_json(), 15, &mut z));
    send_frame(&mut c, true, OpCode::Text, &z);
    let (b0, _) = read_frame(&mut c);
    assert_eq!(b0, 0xC1, "the echo comes back compressed");

    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").expect("reset the peak RSS");
    let (_, before) = memory_kib(pid);
    send_frame(&mut c, true, OpCode::Binary, &bomb);
    let (b0, close) = read_frame(&mut c);
    assert_eq!(b0, 0x88, "a Close frame");
    let code = u16::from_be_bytes([close[0], close[1]]);
    assert_eq!(code, 1009, "{}", String::from_utf8_lossy(&close[2..]));
    let (peak, _) = memory_kib(pid);
    let growth = peak.saturating_sub(before);
    println!(
        "deflate bomb: {} B inflating to 1 GiB, limit {} KiB: server peak RSS +{growth} KiB",
        bomb.len(),
        limit >> 10
    );
    // The issue's bound, 2 MiB. The compressed bytes are inflated as they arrive (never held
    // whole), so what grows is the inflate output: it stops at the limit plus one 16 KiB chunk
    // (1,104 KiB here), and even if one of its growth steps copied (old and new buffer both
    // resident), 1,104 + 552 KiB stays under the bound.
    let bound = 2048;
    assert!(
        growth < bound,
        "the bomb grew the server's peak RSS by {growth} KiB (bound {bound} KiB)"
    );
    server.signal();
    let (status, log) = server.exit(Duration::from_secs(10));
    assert!(status.success(), "{log}");
    let _ = std::fs::remove_dir_all(dir);
}

//! Memory of the memory engine's history: 10,000 channels × 100 publications of a 100-byte
//! payload (1 M stored publications), through the real encoding and the real WebSocket frame
//! (history keeps a compact copy of the publication object). Reports RSS growth per stored
//! publication next to the payload size; `cargo bench --bench history_memory [-- --with-info]`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::client_protocol::reply::ClientInfo;
use ringcast::engine::memory::{Limits, MemoryEngine};
use ringcast::engine::{Broker, HistoryOptions, Outlet};
use serde_json::value::RawValue;

struct Frames;
impl Outlet for Frames {
    fn frame(&self, push: &[u8]) -> Bytes {
        ringcast::proto::encode::server_frame(ringcast::proto::OpCode::Text, push)
    }
    fn deliver(&self, _: &str, _: u64, _: Bytes) {}
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("Linux");
    // Resident pages; 4 KiB pages on x86_64 Linux.
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

fn main() {
    const CHANNELS: usize = 10_000;
    const PER_CHANNEL: usize = 100;
    // 100 bytes of JSON: a string of 98 characters in quotes.
    let payload = RawValue::from_string(format!("\"{}\"", "x".repeat(98))).unwrap();
    assert_eq!(payload.get().len(), 100);
    let info = ClientInfo {
        user: "user-1234",
        client: "6f1c2a4e-9b1d-4c3a-8e2f-0123456789ab",
        conn_info: None,
        chan_info: None,
    };
    // One configuration per process: freed memory is not given back, so a second run in the
    // same process would reuse it and read low.
    let with_info = std::env::args().any(|a| a == "--with-info");
    let runs = if with_info {
        [("with publisher info (client publications)", Some(&info))]
    } else {
        [("no publisher info (API publications)", None)]
    };
    for (label, info) in runs {
        let engine = MemoryEngine::new(
            Arc::new(Frames),
            Limits {
                max_channels: CHANNELS * 2,
                max_history_bytes: usize::MAX,
                max_presence: 0,
            },
        );
        let opts = HistoryOptions {
            size: PER_CHANNEL,
            ttl: Duration::from_secs(3600),
            meta_ttl: Duration::ZERO,
        };
        let names: Vec<String> = (0..CHANNELS).map(|i| format!("chat:room-{i}")).collect();
        let before = rss_bytes();
        let now = Instant::now();
        for _ in 0..PER_CHANNEL {
            for n in &names {
                engine.publish(n, &payload, info, opts, now).unwrap();
            }
        }
        let after = rss_bytes();
        let stored = (CHANNELS * PER_CHANNEL) as f64;
        let per = (after - before) as f64 / stored;
        let json = engine.history_bytes() as f64 / stored;
        println!(
            "{label}: {CHANNELS} channels × {PER_CHANNEL} publications of 100 B: RSS +{:.1} MiB = {per:.0} B per stored publication ({:.2}× the payload); publication JSON {json:.0} B",
            (after - before) as f64 / (1 << 20) as f64,
            per / 100.0
        );
        drop(engine);
    }
}

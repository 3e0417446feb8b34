//! What a publish costs the calling thread (a worker, or the API thread) with the memory engine
//! and with the Redis engine against a real `redis-server` on loopback (started here on a free
//! port, no persistence), and how long a publication takes to come back to this node through
//! Redis PUB/SUB (publish call → the outlet). 100-byte payloads into a channel with history
//! (size 100, TTL 300 s), one at a time; the engines alternate for three rounds.
//! `cargo bench --bench engine_publish` (needs Debian's redis-server).

use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use ringcast::engine::memory::{Limits, MemoryEngine};
use ringcast::engine::redis::{RedisEngine, RedisOptions};
use ringcast::engine::{Engine, HistoryOptions, Outlet};
use serde_json::value::RawValue;

/// Records when each offset reached the outlet.
#[derive(Default)]
struct Arrivals(Mutex<Vec<(u64, Instant)>>);
impl Outlet for Arrivals {
    fn frame(&self, push: &[u8]) -> Bytes {
        ringcast::proto::encode::server_frame(ringcast::proto::OpCode::Text, push)
    }
    fn deliver(&self, _: &str, offset: u64, _: Bytes) {
        self.0.lock().unwrap().push((offset, Instant::now()));
    }
}

const N: usize = 20_000;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() - 1) as f64 * p) as usize]
}

fn run(name: &str, engine: &dyn Engine, arrivals: &Arrivals, round: usize) {
    let data = RawValue::from_string(format!("\"{}\"", "x".repeat(98))).unwrap();
    let opts = HistoryOptions {
        size: 100,
        ttl: Duration::from_secs(300),
        meta_ttl: Duration::ZERO,
    };
    let channel = format!("bench{round}");
    engine.node_subscribe(&channel).unwrap();
    arrivals.0.lock().unwrap().clear();
    let mut calls = Vec::with_capacity(N);
    let mut sent = Vec::with_capacity(N);
    let start = Instant::now();
    for _ in 0..N {
        let t = Instant::now();
        let pos = engine
            .publish(&channel, &data, None, opts, t)
            .unwrap()
            .unwrap();
        calls.push(t.elapsed().as_secs_f64() * 1e6);
        sent.push((pos.offset, t));
    }
    let wall = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(10);
    while arrivals.0.lock().unwrap().len() < N && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let got = arrivals.0.lock().unwrap().clone();
    assert_eq!(got.len(), N, "{name}: every publication reached the outlet");
    let mut lat: Vec<f64> = got
        .iter()
        .zip(&sent)
        .map(|((o, at), (so, st))| {
            assert_eq!(o, so, "{name}: offset order");
            at.duration_since(*st).as_secs_f64() * 1e6
        })
        .collect();
    engine.node_unsubscribe(&channel);
    println!(
        "| {round} | {name} | {:.1} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} |",
        pct(&mut calls, 0.5),
        pct(&mut calls, 0.99),
        wall.as_secs_f64() * 1e6 / N as f64,
        N as f64 / wall.as_secs_f64(),
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
    );
}

fn main() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut redis = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian redis-server) starts");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    let mem_out = Arc::new(Arrivals::default());
    let memory = MemoryEngine::new(
        mem_out.clone(),
        Limits {
            max_channels: 1000,
            max_history_bytes: 256 << 20,
            max_presence: 1000,
        },
    );
    let redis_out = Arc::new(Arrivals::default());
    let red = RedisEngine::start(
        redis_out.clone(),
        RedisOptions {
            address: format!("redis://127.0.0.1:{port}"),
            prefix: "bench".into(),
            presence_ttl: Duration::from_secs(60),
            max_presence_per_channel: 1000,
            timeout: Duration::from_secs(2),
            tls_ca_file: None,
        },
    )
    .expect("the Redis engine starts");
    println!("{N} publishes of 100 B, one at a time, per row (µs unless said)");
    println!();
    println!(
        "| round | engine | call p50 | call p99 | wall per publish | publishes/s | to outlet p50 | to outlet p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for round in 1..=3 {
        run("memory", &memory, &mem_out, round);
        run("redis", &red, &redis_out, round);
    }
    drop(red);
    let _ = redis.kill();
    let _ = redis.wait();
}

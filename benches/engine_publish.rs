//! What a publish costs the calling thread (a worker, or the API thread) with the memory engine
//! and with the Redis engine against a real `redis-server` on loopback (started here on a free
//! port, no persistence), and how long a publication takes to come back to this node through
//! Redis PUB/SUB (publish call → the outlet). 100-byte payloads into a channel with history
//! (size 100, TTL 300 s), one at a time; the engines (memory, Redis, Redis over TLS: the same
//! redis-server build with a self-signed certificate) alternate for three rounds.
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A throw-away redis-server on `port` (`extra`: more flags, e.g. TLS), once it listens.
fn redis_server(port: u16, extra: &[&str]) -> std::process::Child {
    let child = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .args(extra)
        .stdout(Stdio::null())
        .spawn()
        .expect("redis-server (Debian redis-server) starts");
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn redis_engine(
    address: String,
    tls_ca_file: Option<std::path::PathBuf>,
) -> (RedisEngine, Arc<Arrivals>) {
    let out = Arc::new(Arrivals::default());
    let engine = RedisEngine::start(
        out.clone(),
        RedisOptions {
            address,
            prefix: "bench".into(),
            presence_ttl: Duration::from_secs(60),
            max_presence_per_channel: 1000,
            timeout: Duration::from_secs(2),
            tls_ca_file,
        },
    )
    .expect("the Redis engine starts");
    (engine, out)
}

fn main() {
    let (port, tls_port) = (free_port(), free_port());
    let mut plain = redis_server(port, &["--port", &port.to_string()]);
    // The same Redis build speaking TLS (self-signed certificate for 127.0.0.1).
    let dir = std::env::temp_dir().join(format!("ringcast-bench-redis-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let c = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.signing_key.serialize_pem()).unwrap();
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let mut tls = redis_server(
        tls_port,
        &[
            "--port",
            "0",
            "--tls-port",
            &tls_port.to_string(),
            "--tls-cert-file",
            cert_s,
            "--tls-key-file",
            key_s,
            "--tls-ca-cert-file",
            cert_s,
            "--tls-auth-clients",
            "no",
        ],
    );
    let mem_out = Arc::new(Arrivals::default());
    let memory = MemoryEngine::new(
        mem_out.clone(),
        Limits {
            max_channels: 1000,
            max_history_bytes: 256 << 20,
            max_presence: 1000,
        },
    );
    let (red, redis_out) = redis_engine(format!("redis://127.0.0.1:{port}"), None);
    let (red_tls, tls_out) =
        redis_engine(format!("rediss://127.0.0.1:{tls_port}"), Some(cert.clone()));
    println!("{N} publishes of 100 B, one at a time, per row (µs unless said)");
    println!();
    println!(
        "| round | engine | call p50 | call p99 | wall per publish | publishes/s | to outlet p50 | to outlet p99 |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for round in 1..=3 {
        run("memory", &memory, &mem_out, round);
        run("redis", &red, &redis_out, round);
        run("redis over TLS", &red_tls, &tls_out, round);
    }
    drop((red, red_tls));
    for r in [&mut plain, &mut tls] {
        let _ = r.kill();
        let _ = r.wait();
    }
    let _ = std::fs::remove_dir_all(&dir);
}

//! Baseline for loadgen's efficiency claim: a plain tokio-tungstenite client doing loadgen's
//! broadcast work — N wss clients in one room, S of them sending RATE messages/s in total,
//! every client reading every message, decoding its timestamp and recording the latency in an
//! HdrHistogram. Prints its own CPU time per received message and the latency percentiles
//! (from the planned send time, as loadgen measures them).
//!
//! It does a little LESS work per message than loadgen (no checksum, no loss tracking), so the
//! ratio it gives is conservative. Senders are phased evenly over the interval like loadgen's.
//!
//! cargo run --release -p loadgen --example tungstenite_baseline -- \
//!     wss://127.0.0.1:8443/base certs/dev-cert.pem CLIENTS SENDERS RATE SECONDS [SERVER_PID]

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{Connector, connect_async_tls_with_config};

/// (user + system, user) CPU seconds of a process, from /proc (clock ticks of 1/100 s).
fn cpu_seconds(pid: &str) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let f: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..]
        .split_whitespace()
        .collect();
    let (user, system) = (f[11].parse::<f64>().unwrap(), f[12].parse::<f64>().unwrap());
    ((user + system) / 100.0, user / 100.0)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let a: Vec<String> = std::env::args().collect();
    if a.len() < 7 {
        eprintln!(
            "usage: tungstenite_baseline URL CA_PEM CLIENTS SENDERS RATE SECONDS [SERVER_PID]"
        );
        std::process::exit(2);
    }
    let (url, ca) = (a[1].clone(), a[2].clone());
    let clients: usize = a[3].parse().unwrap();
    let senders: usize = a[4].parse().unwrap();
    let rate: f64 = a[5].parse().unwrap();
    let secs: f64 = a[6].parse().unwrap();
    let server_pid = a.get(7).cloned();

    let cfg = Arc::new(ringcast::tls::client_config_trusting(ca.as_ref()).unwrap());
    let epoch = Instant::now();
    let received = Arc::new(AtomicU64::new(0));
    // One histogram per reader task behind an uncontended mutex (≈ 20 ns per message, noise
    // against the ≈ 10 µs a message costs), merged at the end.
    let mut hists = Vec::with_capacity(clients);

    let mut writers = Vec::new();
    for i in 0..clients {
        let (ws, _) = connect_async_tls_with_config(
            url.as_str(),
            None,
            true,
            Some(Connector::Rustls(cfg.clone())),
        )
        .await
        .expect("connect");
        let (w, mut r) = ws.split();
        if i < senders {
            writers.push(w);
        }
        let hist = Arc::new(std::sync::Mutex::new(
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap(),
        ));
        hists.push(hist.clone());
        let received = received.clone();
        tokio::spawn(async move {
            while let Some(Ok(m)) = r.next().await {
                if let Message::Binary(b) = m
                    && b.len() >= 16
                {
                    let planned = u64::from_le_bytes(b[8..16].try_into().unwrap());
                    let now = epoch.elapsed().as_nanos() as u64;
                    let latency = (now.saturating_sub(planned) / 1000).max(1);
                    let _ = hist.lock().unwrap().record(latency);
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    eprintln!("baseline: {clients} clients connected");
    let me0 = cpu_seconds("self");
    let sv0 = server_pid.as_deref().map(cpu_seconds);
    let rec0 = received.load(Ordering::Relaxed);
    let per_sender = Duration::from_secs_f64(senders as f64 / rate);
    let begin = tokio::time::Instant::now();
    let stop = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for (s, mut w) in writers.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            // Phases spread over the interval, as loadgen does: senders firing in lockstep would
            // let the server coalesce their messages into one send per connection, a
            // different (and cheaper) workload.
            let phase = per_sender.mul_f64(s as f64 / senders as f64);
            let mut tick = tokio::time::interval_at(begin + phase, per_sender);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
            let mut seq = 0u64;
            while Instant::now() < stop {
                // Stamped with the planned instant (what the interval was due at), like loadgen:
                // latency is then free of coordinated omission on both sides.
                let planned = tick.tick().await.into_std().duration_since(epoch);
                let mut p = vec![0u8; 100];
                p[0..8].copy_from_slice(&(s as u64).to_le_bytes());
                p[8..16].copy_from_slice(&(planned.as_nanos() as u64).to_le_bytes());
                p[16..24].copy_from_slice(&seq.to_le_bytes());
                seq += 1;
                if w.send(Message::binary(p)).await.is_err() {
                    break;
                }
            }
            seq
        }));
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let got = received.load(Ordering::Relaxed) - rec0;
    let (cpu1, user1) = cpu_seconds("self");
    let (cpu, user) = (cpu1 - me0.0, user1 - me0.1);
    let per = |s: f64| s * 1e6 / got.max(1) as f64;
    println!(
        "baseline: sent {sent} delivered {got} (expected {}), client CPU {cpu:.2} s = {:.2} µs per delivered message: {:.2} user space + {:.2} kernel",
        sent * clients as u64,
        per(cpu),
        per(user),
        per(cpu - user)
    );
    if let (Some(p), Some(s0)) = (server_pid.as_deref(), sv0) {
        let s = cpu_seconds(p).0 - s0.0;
        println!(
            "baseline: server CPU {s:.2} s = {:.2} µs per delivered message",
            s * 1e6 / got.max(1) as f64
        );
    }
    let mut all = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3).unwrap();
    for h in &hists {
        all.add(&*h.lock().unwrap()).unwrap();
    }
    let ms = |q: f64| all.value_at_quantile(q) as f64 / 1000.0;
    println!(
        "baseline: latency p50 {:.1} ms  p99 {:.1} ms  p99.9 {:.1} ms  max {:.1} ms (n={}, from the planned send time)",
        ms(0.5),
        ms(0.99),
        ms(0.999),
        all.max() as f64 / 1000.0,
        all.len()
    );
    std::process::exit(0);
}

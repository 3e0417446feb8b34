//! loadgen end to end: real runs of the loadgen binary against a real ringcast server started
//! in-process on 127.0.0.1:0, and the result tools on committed sample runs.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use ringcast::server::{ServerHandle, ServerOptions};

#[derive(Parser)]
struct Args {
    #[command(flatten)]
    opts: ServerOptions,
}

struct Server {
    handle: Option<ServerHandle>,
    dir: PathBuf,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            // Not from a panicking thread: compio aborts when its wakers are woken from one.
            std::thread::spawn(move || {
                h.shutdown();
                h.join();
            })
            .join()
            .expect("server shutdown");
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn server(name: &str) -> Server {
    server_with(name, &[])
}

fn server_with(name: &str, extra: &[&str]) -> Server {
    let dir = std::env::temp_dir().join(format!("loadgen-test-{name}-{}", std::process::id()));
    let d = dir.to_str().unwrap();
    let mut argv = vec![
        "ringcast",
        "--listen",
        "127.0.0.1:0",
        "--cert-dir",
        d,
        "--workers",
        "2",
        "--rate-limit",
        "0",
    ];
    if !extra.contains(&"--api-listen") {
        argv.extend_from_slice(&["--api-listen", "off"]);
    }
    argv.extend_from_slice(extra);
    let handle = ServerHandle::start(Args::parse_from(argv).opts).expect("server starts");
    let port = handle.local_addr.port();
    Server {
        handle: Some(handle),
        dir,
        port,
    }
}

fn loadgen(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("loadgen runs");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn summary(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

impl Server {
    /// `loadgen SUBCOMMAND` against this server with `clients` clients, results in `out`.
    fn run(&self, subcommand: &str, out: &Path, clients: &str, extra: &[&str]) -> (bool, String) {
        let url = format!("wss://127.0.0.1:{}/t", self.port);
        let ca = self.dir.join("dev-cert.pem");
        let mut args = vec![
            subcommand,
            "--url",
            &url,
            "--ca",
            ca.to_str().unwrap(),
            "--clients",
            clients,
        ];
        args.extend(["--out", out.to_str().unwrap(), "--workers", "2"]);
        args.extend_from_slice(extra);
        loadgen(&args)
    }
}

#[test]
fn broadcast_to_300_clients_delivers_everything() {
    let srv = server("bcast");
    let out = srv.dir.join("run");
    let (ok, log) = srv.run(
        "broadcast",
        &out,
        "300",
        &[
            "--senders",
            "3",
            "--rate",
            "60",
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--drain",
            "3s",
            "--timeline-step",
            "250ms",
        ],
    );
    assert!(ok, "{log}");
    let s = summary(&out);
    let c = &s["counts"];
    assert_eq!(c["connected"], 300, "{log}");
    // The timeline: four 250 ms steps of the 1 s window, together every measured latency; one
    // mean per receiver.
    let steps = s["latency_by_step_us"].as_array().expect("a timeline");
    assert_eq!(steps.len(), 4, "{steps:?}");
    let in_steps: u64 = steps.iter().map(|p| p["count"].as_u64().unwrap()).sum();
    assert_eq!(in_steps, s["latency_us"]["count"].as_u64().unwrap());
    assert!(
        steps.iter().all(|p| p["p99"].as_u64().unwrap() > 0),
        "{steps:?}"
    );
    assert_eq!(s["receiver_mean_latency_us"]["count"], 300, "{log}");
    assert!(log.contains("p99 by step"), "{log}");
    // The window's start in wall-clock time: after the run began, before it ended.
    let from_ms = s["measured_from_unix_ms"].as_u64().unwrap();
    let started_ms = s["started_unix"].as_u64().unwrap() * 1000;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        from_ms >= started_ms && from_ms < now_ms,
        "{from_ms} {started_ms} {now_ms}"
    );
    assert!(c["sent"].as_u64().unwrap() >= 70, "{c}");
    assert_eq!(c["delivered"], c["expected"], "{log}");
    assert_eq!(
        c["expected"].as_u64().unwrap(),
        c["sent"].as_u64().unwrap() * 300
    );
    for k in ["lost", "duplicated", "corrupted", "not_sent"] {
        assert_eq!(c[k], 0, "{k}: {log}");
    }
    assert!(s["latency_us"]["count"].as_u64().unwrap() > 0);
    assert!(out.join("latency.hgrm").exists() && out.join("latency.hdr").exists());
    assert!(log.contains("lost 0"), "{log}");
}

const SECRET: &str = "loadgen-test-secret-loadgen-test-secret";

/// A server with a token key whose channels without a namespace allow `publish` or not.
fn protocol_server(name: &str, publish: bool) -> Server {
    let dir = std::env::temp_dir().join(format!("loadgen-cfg-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        format!(
            "[client]\ncommand_rate_limit = 0\n[channel.without_namespace]\n\
             allow_subscribe_for_client = true\nallow_publish_for_client = {publish}\n"
        ),
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    server_with(name, &["--config", &cfg, "--token-hmac-secret", SECRET])
}

#[test]
fn protocol_mode_broadcasts_through_the_client_protocol() {
    let srv = protocol_server("proto", true);
    let out = srv.dir.join("run");
    let (ok, log) = srv.run(
        "broadcast",
        &out,
        "200",
        &[
            "--protocol",
            "centrifuge",
            "--token-hmac-secret",
            SECRET,
            "--senders",
            "4",
            "--rate",
            "80",
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--drain",
            "3s",
        ],
    );
    assert!(ok, "{log}");
    let s = summary(&out);
    assert_eq!(s["params"]["protocol"], "centrifuge");
    let c = &s["counts"];
    assert_eq!(c["connected"], 200, "{log}");
    assert!(c["sent"].as_u64().unwrap() >= 80, "{c}");
    assert_eq!(c["delivered"], c["expected"], "{log}");
    for k in ["lost", "duplicated", "corrupted", "foreign"] {
        assert_eq!(c[k], 0, "{k}: {log}");
    }
    // Raw rooms on the same keyed server: the token goes in the Authorization header.
    let out = srv.dir.join("raw");
    let (ok, log) = srv.run(
        "echo",
        &out,
        "20",
        &[
            "--token-hmac-secret",
            SECRET,
            "--rate",
            "10",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    );
    assert!(ok, "{log}");
    assert_eq!(summary(&out)["counts"]["lost"], 0, "{log}");
    // Without a token the keyed server refuses raw rooms (401) and protocol clients (3501).
    let out = srv.dir.join("anon");
    let (_, log) = srv.run("connect", &out, "5", &["--protocol", "centrifuge"]);
    let c = &summary(&out)["counts"];
    assert_eq!(c["connected"], 0, "{log}");
    let out = srv.dir.join("anon-raw");
    let (_, log) = srv.run("connect", &out, "5", &[]);
    assert_eq!(
        summary(&out)["counts"]["connect_failures"]["http 401"],
        5,
        "{log}"
    );
}

#[test]
fn refused_publishes_are_reported_as_errors_and_losses() {
    let srv = protocol_server("denied", false);
    let out = srv.dir.join("run");
    let (ok, log) = srv.run(
        "broadcast",
        &out,
        "10",
        &[
            "--protocol",
            "centrifuge",
            "--token-hmac-secret",
            SECRET,
            "--senders",
            "2",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
        ],
    );
    assert!(!ok, "losses make the run fail: {log}");
    let c = &summary(&out)["counts"];
    assert!(c["reply_errors"]["103"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["delivered"], 0, "{c}");
    assert!(log.contains("refused by the server"), "{log}");
}

#[test]
fn a_starved_receive_ring_is_reported_and_loses_nothing() {
    let srv = server("ring");
    let out = srv.dir.join("run");
    // Two receive buffers per worker for 100 clients each: every fan-out empties the ring.
    let (ok, log) = srv.run(
        "broadcast",
        &out,
        "200",
        &[
            "--senders",
            "4",
            "--rate",
            "100",
            "--duration",
            "1s",
            "--warmup",
            "200ms",
            "--drain",
            "5s",
            "--recv-buffers",
            "2",
        ],
    );
    assert!(ok, "{log}");
    let s = summary(&out);
    let c = &s["counts"];
    assert_eq!(s["params"]["recv_buffers"], 2);
    assert!(c["recv_ring_empty"].as_u64().unwrap() > 0, "{c}");
    assert_eq!(c["delivered"], c["expected"], "{log}");
    for k in ["lost", "duplicated", "corrupted"] {
        assert_eq!(c[k], 0, "{k}: {log}");
    }
    assert!(log.contains("receive buffer ring ran empty"), "{log}");
}

#[test]
fn deliberately_dropped_messages_are_counted_as_lost() {
    let srv = server("loss");
    let out = srv.dir.join("run");
    // Each client sends 20/s for 1.5 s (30 messages); every 5th is counted as sent but skipped.
    let (ok, log) = srv.run(
        "echo",
        &out,
        "10",
        &[
            "--rate",
            "20",
            "--duration",
            "1s",
            "--warmup",
            "500ms",
            "--drain",
            "2s",
            "--fault-skip-every",
            "5",
        ],
    );
    assert!(!ok, "a run with losses exits non-zero: {log}");
    let c = &summary(&out)["counts"];
    let sent = c["sent"].as_u64().unwrap();
    assert!(sent >= 250, "{c}");
    // Skipped: seq 4, 9, 14, … of each client.
    let lost = c["lost"].as_u64().unwrap();
    assert!(
        lost > 0 && lost == sent - c["delivered"].as_u64().unwrap(),
        "{c}"
    );
    assert!(
        (lost as f64 / sent as f64 - 0.2).abs() < 0.05,
        "about 1 in 5 lost: {c}"
    );
    assert_eq!(c["corrupted"], 0);
}

#[test]
fn connect_storm_and_idle_report_what_they_measure() {
    let srv = server("storm");
    let out = srv.dir.join("storm");
    let (ok, log) = srv.run("connect", &out, "200", &[]);
    assert!(ok, "{log}");
    let s = summary(&out);
    assert_eq!(s["counts"]["connected"], 200);
    assert!(s["handshakes_per_s"].as_f64().unwrap() > 0.0);
    assert_eq!(s["handshake_us"]["count"], 200);
    assert!(out.join("handshake.hgrm").exists());

    let pid = std::process::id().to_string();
    let idle_out = srv.dir.join("idle");
    let (ok, log) = srv.run(
        "idle",
        &idle_out,
        "50",
        // Paced so that the tenth is seen on the way (it is sampled between progress ticks).
        &[
            "--hold",
            "300ms",
            "--server-pid",
            &pid,
            "--connect-rate",
            "200",
        ],
    );
    assert!(ok, "{log}");
    assert!(log.contains("server memory per idle connection"), "{log}");
    let s = summary(&idle_out);
    assert!(s["server"]["rss_end_kib"].as_u64().unwrap() > 0);
    // The marginal figure: sampled once a tenth (5) were connected, before all 50.
    let from = s["idle_marginal"]["from_connected"].as_u64().unwrap();
    assert!((5..50).contains(&from), "{s}");
    assert!(
        s["idle_marginal"]["bytes_per_connection"].is_number(),
        "{s}"
    );
    assert!(
        log.contains(&format!("from {from} to 50 connected")),
        "{log}"
    );
}

#[test]
fn connection_failures_are_counted_by_reason() {
    // Nothing listens on this port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (ok, log) = loadgen(&[
        "connect",
        "--url",
        &format!("ws://127.0.0.1:{port}/x"),
        "--clients",
        "5",
    ]);
    assert!(!ok);
    assert!(
        log.contains("0 connected of 5") && log.contains("tcp: connection refused ×5"),
        "{log}"
    );
}

fn sample(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

#[test]
fn compare_and_plot_work_on_committed_samples() {
    let (ok, log) = loadgen(&[
        "compare",
        sample("a").to_str().unwrap(),
        sample("b").to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    let (ok2, table) = {
        let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args([
                "compare",
                sample("a").to_str().unwrap(),
                sample("b").to_str().unwrap(),
            ])
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    assert!(ok2);
    assert!(
        table.contains("| p99 µs |") && table.contains("(×"),
        "{table}"
    );
    let png = std::env::temp_dir().join(format!("loadgen-plot-{}.png", std::process::id()));
    let (ok, log) = loadgen(&[
        "plot",
        sample("a").to_str().unwrap(),
        sample("b").to_str().unwrap(),
        "-o",
        png.to_str().unwrap(),
    ]);
    assert!(ok, "{log}");
    let bytes = std::fs::read(&png).unwrap();
    assert_eq!(&bytes[1..4], b"PNG");
    assert!(bytes.len() > 10_000, "a real picture, not an empty canvas");
    std::fs::remove_file(png).unwrap();
}

#[test]
fn clients_spread_over_source_addresses() {
    let srv = server("src");
    let out = srv.dir.join("src");
    let (ok, log) = srv.run(
        "connect",
        &out,
        "40",
        &["--source-ips", "127.0.0.2-127.0.0.5"],
    );
    assert!(ok, "{log}");
    assert_eq!(summary(&out)["counts"]["connected"], 40);
    assert_eq!(summary(&out)["params"]["source_ips"], 4);
    // A source address that is not local fails with a reason, not a hang.
    let bad = srv.dir.join("bad");
    let (ok, log) = srv.run("connect", &bad, "3", &["--source-ips", "192.0.2.1"]);
    assert!(!ok);
    assert!(log.contains("tcp:") && log.contains("×3"), "{log}");
}

/// `--publish-api`: the same publications through the server API (pipelined HTTP), counted by
/// the same receivers; nobody publishes over the WebSocket (the namespace forbids it).
#[test]
fn publishes_through_the_server_api() {
    let dir = std::env::temp_dir().join(format!("loadgen-cfg-api-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("c.toml");
    std::fs::write(
        &cfg,
        "[client]\ncommand_rate_limit = 0\n[channel.without_namespace]\nallow_subscribe_for_client = true\n",
    )
    .unwrap();
    let cfg = cfg.to_str().unwrap().to_owned();
    let srv = server_with(
        "api",
        &[
            "--config",
            &cfg,
            "--token-hmac-secret",
            SECRET,
            "--api-listen",
            "127.0.0.1:0",
            "--api-key",
            "k",
        ],
    );
    let api = format!(
        "http://{}/api",
        srv.handle.as_ref().unwrap().api_addr.unwrap()
    );
    let out = srv.dir.join("run");
    let (ok, log) = srv.run(
        "broadcast",
        &out,
        "100",
        &[
            "--protocol",
            "centrifuge",
            "--token-hmac-secret",
            SECRET,
            "--rate",
            "200",
            "--duration",
            "1s",
            "--warmup",
            "300ms",
            "--drain",
            "3s",
            "--publish-api",
            &api,
            "--api-key",
            "k",
        ],
    );
    assert!(ok, "{log}");
    let s = summary(&out);
    assert_eq!(s["params"]["publish_via"], "api");
    let c = &s["counts"];
    assert!(c["sent"].as_u64().unwrap() >= 200, "{c}");
    assert_eq!(c["delivered"], c["expected"], "{log}");
    assert_eq!(c["lost"], 0, "{log}");
    // A wrong key: every publish refused, reported as errors and losses.
    let out = srv.dir.join("badkey");
    let (_, log) = srv.run(
        "broadcast",
        &out,
        "10",
        &[
            "--protocol",
            "centrifuge",
            "--token-hmac-secret",
            SECRET,
            "--rate",
            "50",
            "--duration",
            "500ms",
            "--warmup",
            "200ms",
            "--drain",
            "1s",
            "--publish-api",
            &api,
            "--api-key",
            "wrong",
        ],
    );
    let s = summary(&out);
    assert_eq!(s["counts"]["delivered"], 0, "{log}");
    assert!(
        log.contains("{101: "),
        "the refusals (101 unauthorized) are reported: {log}"
    );
}

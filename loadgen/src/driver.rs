//! Turns a command line into a run: TLS and target set-up, the phase clock, live progress,
//! and the summary written at the end.

use std::collections::BTreeMap;
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

use crate::cli::{Cli, Command, Conn, Traffic};
use crate::client::Target;
use crate::report::{self, Counts, IdleMarginal, Percentiles, ProcDelta, Summary};
use crate::run::{self, Mode, Plan, Shared, WorkerResult};
use crate::sys;

pub fn main(cli: Cli) -> Result<ExitCode, Box<dyn std::error::Error>> {
    match cli.command {
        Command::Compare { runs } => {
            if runs.is_empty() {
                return Err("compare needs at least one run directory".into());
            }
            let s = runs
                .iter()
                .map(|r| report::read_summary(r))
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", report::compare(&s));
            Ok(ExitCode::SUCCESS)
        }
        Command::Plot { runs, out } => {
            if runs.is_empty() {
                return Err("plot needs at least one run directory".into());
            }
            crate::plot::plot(&runs, &out)?;
            eprintln!("wrote {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Broadcast(b) => {
            let t = b.traffic.clone();
            let publish_api = match &b.publish_api {
                Some(url) if b.conn.protocol != run::Protocol::Centrifuge => {
                    return Err(format!("--publish-api {url} needs --protocol centrifuge").into());
                }
                Some(url) => Some(crate::api::ApiTarget::parse(url, b.api_key.clone())?),
                None => None,
            };
            let shape = Shape {
                senders: b.senders.max(1),
                rate: b.rate,
                rooms: b.rooms.max(1),
                publish_api,
                ..Shape::default()
            };
            load(Mode::Broadcast, &b.conn, Some(&t), shape)
        }
        Command::Echo(e) => {
            let t = e.traffic.clone();
            let shape = Shape {
                senders: e.conn.clients,
                rate: e.rate,
                ..Shape::default()
            };
            load(Mode::Echo, &e.conn, Some(&t), shape)
        }
        Command::Connect(c) => load(Mode::Connect, &c, None, Shape::default()),
        Command::Idle(i) => load(
            Mode::Idle,
            &i.conn,
            None,
            Shape {
                hold: i.hold,
                ..Shape::default()
            },
        ),
    }
}

/// Accepts any server certificate (still checks handshake signatures): `--insecure`.
#[derive(Debug)]
struct AnyCert(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn verify_tls13_signature(
        &self,
        m: &[u8],
        c: &CertificateDer<'_>,
        d: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(m, c, d, &self.0.signature_verification_algorithms)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Every server of the run (--url, then each --also-url) and the path they share.
fn targets(conn: &Conn) -> Result<(Vec<Target>, String), Box<dyn std::error::Error>> {
    let (first, path) = target(conn, &conn.url)?;
    let mut all = vec![first];
    for url in &conn.also_urls {
        let (t, p) = target(conn, url)?;
        if p != path {
            return Err(format!("--also-url {url}: its path must be --url's ({path})").into());
        }
        all.push(t);
    }
    Ok((all, path))
}

fn target(conn: &Conn, url: &str) -> Result<(Target, String), Box<dyn std::error::Error>> {
    let (tls, rest) = if let Some(r) = url.strip_prefix("wss://") {
        (true, r)
    } else if let Some(r) = url.strip_prefix("ws://") {
        (false, r)
    } else {
        return Err(format!("{url:?} must start with ws:// or wss://").into());
    };
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_string()), |(a, p)| (a, format!("/{p}")));
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.is_empty() && !h.ends_with(']') || h.starts_with('[') => {
            (h.trim_matches(['[', ']']).to_string(), p.parse::<u16>()?)
        }
        _ => (
            authority.trim_matches(['[', ']']).to_string(),
            if tls { 443 } else { 80 },
        ),
    };
    let addr: SocketAddr = (host.as_str(), port)
        .to_socket_addrs()?
        .min_by_key(|a| a.is_ipv6())
        .ok_or_else(|| format!("{host} does not resolve"))?;
    let tls = if tls {
        let cfg = if conn.insecure {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyCert(provider)))
                .with_no_client_auth()
        } else {
            let ca = conn
                .ca
                .as_ref()
                .ok_or("wss needs --ca PEM (the server's certs/dev-cert.pem) or --insecure")?;
            ringcast::tls::client_config_trusting(ca).map_err(|e| format!("--ca: {e}"))?
        };
        let name = ServerName::try_from(host.clone())?;
        Some((Arc::new(cfg), name))
    } else {
        None
    };
    let host_header = if port == 443 || port == 80 {
        host
    } else {
        format!("{host}:{port}")
    };
    Ok((
        Target {
            addr,
            host: host_header,
            tls,
            compression: conn.compression,
        },
        path,
    ))
}

/// Four receive buffers per client of a worker (rounded up to a power of two), at least 1024
/// and at most 16384: a client may have several reads completed before its worker gets to
/// them, and a fan-out reaches every client at once. Measured: 1,000 clients at 100k
/// deliveries/s ran two per client empty 94 times in 22 s; 10,000 clients at 1 M/s ran one per
/// client (8192) empty 7,700 times in 10 s and 16384 never. The buffers are allocated up front:
/// 16384 × 4 KiB = 64 MiB per worker at the cap.
fn default_recv_buffers(clients: usize, workers: usize) -> u16 {
    (clients.div_ceil(workers.max(1)) * 4)
        .next_power_of_two()
        .clamp(1024, 16384) as u16
}

/// Who sends how much where, and how.
struct Shape {
    senders: usize,
    rate: f64,
    rooms: usize,
    hold: Duration,
    /// Broadcast: senders publish through the server API.
    publish_api: Option<crate::api::ApiTarget>,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            senders: 0,
            rate: 0.0,
            rooms: 1,
            hold: Duration::ZERO,
            publish_api: None,
        }
    }
}

fn load(
    mode: Mode,
    conn: &Conn,
    traffic: Option<&Traffic>,
    shape: Shape,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let Shape {
        senders,
        rate,
        rooms,
        hold,
        publish_api,
    } = shape;
    let (soft, hard) = ringcast::host::raise_nofile_limit();
    let (soft, hard) = (soft.unwrap_or(u64::MAX), hard.unwrap_or(u64::MAX));
    let needed = conn.clients as u64 + 64;
    if soft < needed {
        eprintln!(
            "loadgen: the fd limit ({soft}, hard {hard}) caps this process below {} clients; raise the hard limit (ulimit -Hn)",
            conn.clients
        );
    }
    let (targets, path) = targets(conn)?;
    let workers = conn
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let t = traffic.cloned().unwrap_or(Traffic {
        size: 32,
        filler: crate::payload::Filler::Ramp,
        duration: Duration::ZERO,
        warmup: Duration::ZERO,
        drain: Duration::ZERO,
        timeline_step: Duration::from_secs(1),
        fault_skip_every: 0,
    });
    let plan = Plan {
        mode,
        protocol: conn.protocol,
        token_secret: conn.token_hmac_secret.clone(),
        targets,
        path,
        clients: conn.clients,
        senders: senders.min(conn.clients),
        rooms,
        rate,
        publish_api: publish_api.clone(),
        size: (t.size as usize).max(crate::payload::HEADER_LEN),
        filler: t.filler,
        warmup: t.warmup,
        duration: t.duration,
        drain: t.drain,
        timeline_step_ns: (t.timeline_step.as_nanos() as u64).max(1_000_000),
        connect_rate: conn.connect_rate,
        connect_concurrency: conn.connect_concurrency.max(1),
        source_ips: conn.source_ips.clone().map(|s| s.0).unwrap_or_default(),
        workers,
        recv_buffers: conn
            .recv_buffers
            .unwrap_or_else(|| default_recv_buffers(conn.clients, workers)),
        recv_buffer_len: conn.recv_buffer_size,
        send_queue_cap: 4 << 20,
        fault_skip_every: t.fault_skip_every,
    };
    let server_pids: Vec<String> = conn.server_pid.iter().map(|p| p.to_string()).collect();
    let server_sample = || sys::sample_sum(&server_pids);
    let server_before_connect = server_sample();
    let me_before_connect = sys::sample("self").unwrap_or_default();

    let shared = Arc::new(Shared::new(plan.clone()));
    let threads: Vec<_> = (0..workers)
        .map(|i| {
            let s = shared.clone();
            std::thread::Builder::new()
                .name(format!("loadgen-w{i}"))
                .spawn(move || run::worker(i, s))
                .expect("thread")
        })
        .collect();

    let t0 = Instant::now();
    let mut progress = Progress::new(shared.clone());
    // `idle`: the server sampled once a tenth of the clients are connected (IdleMarginal).
    let mut at_tenth: Option<(u64, sys::ProcSample)> = None;
    while shared.connected.load(Ordering::Acquire) + shared.failed.load(Ordering::Acquire)
        < plan.clients
    {
        let connected_now = shared.connected.load(Ordering::Acquire) as u64;
        if mode == Mode::Idle
            && at_tenth.is_none()
            && connected_now >= (plan.clients / 10).max(1) as u64
        {
            if let Some(sample) = server_sample() {
                // Connections may open while /proc is read: count the middle.
                let after = shared.connected.load(Ordering::Acquire) as u64;
                at_tenth = Some(((connected_now + after) / 2, sample));
            }
        }
        progress.tick(false);
        std::thread::sleep(Duration::from_millis(20));
    }
    let connect_wall = t0.elapsed();
    progress.tick(true);

    // CPU is counted over the part of the run that is measured: the storm itself for
    // `connect`, the hold for `idle` (memory from before the first connection), the sending
    // window plus drain for `broadcast`/`echo` (sampled again below).
    let (mut me_a, mut sv_a) = match mode {
        Mode::Connect => (me_before_connect, server_before_connect),
        Mode::Idle => (
            sys::sample("self").unwrap_or_default(),
            server_before_connect,
        ),
        _ => (me_before_connect, server_before_connect),
    };
    let mut measured = Duration::ZERO;
    match mode {
        Mode::Connect => {}
        Mode::Idle => {
            let until = Instant::now() + hold;
            while Instant::now() < until {
                progress.tick(false);
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Mode::Broadcast | Mode::Echo => {
            let start = shared.now_ns() + 50_000_000;
            let stop = start + (plan.warmup + plan.duration).as_nanos() as u64;
            shared.stop_ns.store(stop, Ordering::Release);
            me_a = sys::sample("self").unwrap_or_default();
            sv_a = server_sample();
            shared.start_ns.store(start, Ordering::Release);
            while shared.now_ns() < stop {
                progress.tick(false);
                std::thread::sleep(Duration::from_millis(20));
            }
            let drain_until = Instant::now() + plan.drain;
            while Instant::now() < drain_until
                && shared.delivered_total.load(Ordering::Acquire) < shared.expected()
            {
                progress.tick(false);
                std::thread::sleep(Duration::from_millis(20));
            }
            measured = plan.duration;
        }
    }
    let me_b = sys::sample("self").unwrap_or_default();
    let sv_b = server_sample();
    let expected = shared.expected();
    shared.finish.store(true, Ordering::Release);
    progress.tick(true);

    let mut total: Option<WorkerResult> = None;
    for t in threads {
        let r = t.join().map_err(|_| "a worker thread panicked")?;
        match &mut total {
            Some(acc) => acc.merge(r),
            None => total = Some(r),
        }
    }
    let r = total.expect("at least one worker");
    let connected = shared.connected.load(Ordering::Acquire) as u64;
    let delivered = r.delivered;
    let name = conn.out.as_ref().and_then(|p| p.file_name()).map_or_else(
        || format!("{mode:?}").to_lowercase(),
        |n| n.to_string_lossy().into_owned(),
    );
    let per_delivered = if matches!(mode, Mode::Idle | Mode::Connect) {
        0
    } else {
        delivered
    };
    let summary = Summary {
        name,
        mode: format!("{mode:?}").to_lowercase(),
        command: std::env::args().collect::<Vec<_>>().join(" "),
        params: serde_json::json!({
            "url": conn.url, "also_urls": conn.also_urls, "protocol": plan.protocol, "publish_via": if publish_api.is_some() { "api" } else { "websocket" }, "clients": plan.clients, "senders": plan.senders, "rooms": plan.rooms,
            "rate": plan.rate, "rate_unit": if mode == Mode::Echo { "msg/s per client" } else { "msg/s total" },
            "size": plan.size, "warmup_s": sys::secs(plan.warmup), "duration_s": sys::secs(plan.duration),
            "drain_s": sys::secs(plan.drain), "timeline_step_s": plan.timeline_step_ns as f64 / 1e9, "hold_s": sys::secs(hold), "workers": workers,
            "connect_rate": plan.connect_rate, "connect_concurrency": plan.connect_concurrency,
            "recv_buffers": plan.recv_buffers, "recv_buffer_len": plan.recv_buffer_len,
            "source_ips": plan.source_ips.len(), "tls": plan.targets[0].tls.is_some(), "servers": plan.targets.len(),
        }),
        versions: BTreeMap::from([
            ("loadgen".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("rustls".to_string(), "0.23".to_string()),
        ]),
        machine: sys::machine(),
        started_unix: shared.epoch_unix_ns / 1_000_000_000,
        measured_from_unix_ms: match shared.start_ns.load(Ordering::Acquire) {
            0 => 0,
            start => (shared.epoch_unix_ns + start + plan.warmup.as_nanos() as u64) / 1_000_000,
        },
        measured_s: sys::secs(measured),
        counts: Counts {
            clients: plan.clients as u64,
            connected,
            connect_failures: r.failures.clone(),
            sent: shared.sent_total.load(Ordering::Acquire),
            not_sent: r.not_sent,
            recv_ring_empty: r.ring_empty,
            compressed: r.compressed,
            expected,
            delivered,
            lost: r.lost,
            duplicated: r.duplicates,
            corrupted: r.corrupted,
            out_of_order: r.late,
            foreign: r.foreign,
            server_closes: r.server_closes.clone(),
            reply_errors: r.reply_errors.clone(),
        },
        throughput: if measured.is_zero() {
            0.0
        } else {
            r.latency.len() as f64 / sys::secs(measured)
        },
        latency_us: Percentiles::of(&r.latency),
        latency_by_step_us: r.timeline.iter().map(Percentiles::of).collect(),
        receiver_mean_latency_us: Percentiles::of(&r.receiver_means),
        schedule_lag_us: Percentiles::of(&r.schedule_lag),
        handshake_us: Percentiles::of(&r.handshake),
        connect_wall_s: sys::secs(connect_wall),
        handshakes_per_s: connected as f64 / sys::secs(connect_wall).max(1e-9),
        idle_marginal: match (at_tenth, sv_b) {
            (Some((from, a)), Some(b)) if connected > from => Some(IdleMarginal {
                from_connected: from,
                rss_from_kib: a.rss_kib,
                bytes_per_connection: b.rss_kib.saturating_sub(a.rss_kib) as f64 * 1024.0
                    / (connected - from) as f64,
            }),
            _ => None,
        },
        loadgen: ProcDelta::between(me_a, me_b, per_delivered),
        server: match (sv_a, sv_b) {
            (Some(a), Some(b)) => Some(ProcDelta::between(a, b, per_delivered)),
            _ => None,
        },
    };
    eprint!("{}", report::table(&summary));
    for (reason, example) in &r.failure_examples {
        eprintln!("  e.g. {reason}: {example}");
    }
    if mode == Mode::Idle
        && let Some(sv) = &summary.server
        && connected > 0
    {
        let per =
            (sv.rss_end_kib.saturating_sub(sv.rss_start_kib)) as f64 * 1024.0 / connected as f64;
        eprintln!(
            "server memory per idle connection: {per:.0} bytes (RSS growth / {connected} connections)"
        );
        if let Some(m) = &summary.idle_marginal {
            eprintln!(
                "  {:.0} bytes per connection from {} to {connected} connected (without what the server allocates once)",
                m.bytes_per_connection, m.from_connected
            );
        }
    }
    if let Some(dir) = &conn.out {
        report::write_outputs(dir, &summary, &r.latency, &r.handshake)?;
        eprintln!("wrote {}", dir.display());
    }
    let clean =
        summary.counts.lost == 0 && summary.counts.corrupted == 0 && summary.counts.duplicated == 0;
    Ok(if clean && connected == plan.clients as u64 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One status line per second on stderr.
struct Progress {
    shared: Arc<Shared>,
    t0: Instant,
    last: Instant,
    last_sent: u64,
    last_delivered: u64,
}

impl Progress {
    fn new(shared: Arc<Shared>) -> Self {
        let now = Instant::now();
        Self {
            shared,
            t0: now,
            last: now,
            last_sent: 0,
            last_delivered: 0,
        }
    }

    fn tick(&mut self, force: bool) {
        let dt = self.last.elapsed();
        if !force && dt < Duration::from_secs(1) {
            return;
        }
        let s = &self.shared;
        let sent = s.sent_total.load(Ordering::Relaxed);
        let del = s.delivered_total.load(Ordering::Relaxed);
        let secs = dt.as_secs_f64().max(1e-3);
        eprintln!(
            "[{:6.1}s] connected {}/{} failed {} | sent {:.0}/s delivered {:.0}/s | errors {}",
            self.t0.elapsed().as_secs_f64(),
            s.connected.load(Ordering::Relaxed),
            s.plan.clients,
            s.failed.load(Ordering::Relaxed),
            (sent - self.last_sent) as f64 / secs,
            (del - self.last_delivered) as f64 / secs,
            s.errors_total.load(Ordering::Relaxed),
        );
        self.last = Instant::now();
        self.last_sent = sent;
        self.last_delivered = del;
    }
}

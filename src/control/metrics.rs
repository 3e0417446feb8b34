//! `/metrics`: a snapshot of the server's counters in the OpenMetrics text format
//! (prometheus-client's encoder). Everything is read at scrape time from relaxed atomics the
//! workers and the engine keep (see `server::counters`); nothing here runs on the data path.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::server::ServerShared;
use crate::server::counters::{DurationHistogram, HistogramSnapshot, WorkerCounters};

type Labels = Vec<(&'static str, String)>;

/// One metric family's values at scrape time.
#[derive(Debug)]
enum Family {
    Counter(Vec<(Labels, u64)>),
    /// A counter of seconds.
    Seconds(Vec<(Labels, f64)>),
    Gauge(Vec<(Labels, i64)>),
    Histogram {
        sum: f64,
        count: u64,
        buckets: Vec<(f64, u64)>,
    },
}

/// Every family of one scrape.
#[derive(Debug, Default)]
struct Snapshot(Vec<(&'static str, &'static str, Family)>);

impl Snapshot {
    fn counter(&mut self, name: &'static str, help: &'static str, v: u64) {
        self.0
            .push((name, help, Family::Counter(vec![(Vec::new(), v)])));
    }
    fn counters(&mut self, name: &'static str, help: &'static str, v: Vec<(Labels, u64)>) {
        self.0.push((name, help, Family::Counter(v)));
    }
    fn seconds(&mut self, name: &'static str, help: &'static str, nanos: u64) {
        self.seconds_by(name, help, vec![(Vec::new(), nanos as f64 / 1e9)]);
    }
    fn seconds_by(&mut self, name: &'static str, help: &'static str, v: Vec<(Labels, f64)>) {
        self.0.push((name, help, Family::Seconds(v)));
    }
    fn gauge(&mut self, name: &'static str, help: &'static str, v: i64) {
        self.0
            .push((name, help, Family::Gauge(vec![(Vec::new(), v)])));
    }
    fn histogram(&mut self, name: &'static str, help: &'static str, h: HistogramSnapshot) {
        let (sum, count, buckets) = h;
        self.0.push((
            name,
            help,
            Family::Histogram {
                sum,
                count,
                buckets,
            },
        ));
    }

    fn gauges(&mut self, name: &'static str, help: &'static str, v: Vec<(Labels, i64)>) {
        self.0.push((name, help, Family::Gauge(v)));
    }
}

impl Collector for Snapshot {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, family) in &self.0 {
            match family {
                Family::Counter(values) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    for (labels, v) in values {
                        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
                Family::Seconds(values) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
                    for (labels, v) in values {
                        ConstCounter::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
                Family::Gauge(values) => {
                    let mut m = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
                    for (labels, v) in values {
                        ConstGauge::new(*v).encode(m.encode_family(labels)?)?;
                    }
                }
                Family::Histogram {
                    sum,
                    count,
                    buckets,
                } => {
                    let mut m =
                        encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
                    m.encode_histogram::<NoLabelSet>(*sum, *count, buckets, None)?;
                }
            }
        }
        Ok(())
    }
}

/// API calls by method and outcome, kept by the control plane's thread.
#[derive(Debug, Default)]
pub struct ApiCounters {
    /// (method, status: "ok" or the error code) → calls.
    pub calls: BTreeMap<(String, String), u64>,
    pub unauthorized: u64,
    pub too_large: u64,
}

/// The outbox consumer's figures.
#[derive(Debug, Default, Clone)]
pub struct OutboxFigures {
    pub applied: u64,
    pub failed: u64,
    /// Seconds between the oldest unprocessed row's insert and the last poll.
    pub lag_seconds: f64,
    pub reconnects: u64,
}

fn sum(shared: &ServerShared, f: impl Fn(&WorkerCounters) -> u64) -> u64 {
    shared.counters.iter().map(f).sum()
}

/// One value per worker, labelled `worker` = its index; workers without a value are left out.
fn by_worker<T>(
    c: &[WorkerCounters],
    f: impl Fn(&WorkerCounters) -> Option<T>,
) -> Vec<(Labels, T)> {
    c.iter()
        .enumerate()
        .filter_map(|(i, w)| Some((vec![("worker", i.to_string())], f(w)?)))
        .collect()
}

fn load(c: &std::sync::atomic::AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// The text of one scrape.
pub fn render(shared: &ServerShared, api: &ApiCounters, outbox: Option<&OutboxFigures>) -> String {
    let mut s = Snapshot::default();
    let c = &shared.counters;
    let open = |opened: fn(&WorkerCounters) -> u64, closed: fn(&WorkerCounters) -> u64| {
        c.iter()
            .map(|w| opened(w) as i64 - closed(w) as i64)
            .sum::<i64>()
    };
    s.gauges(
        "ringcast_connections",
        "Open upgraded connections by transport.",
        vec![
            (
                vec![("transport", "raw".into())],
                open(|w| load(&w.raw_opened), |w| load(&w.raw_closed)),
            ),
            (
                vec![("transport", "protocol".into())],
                open(|w| load(&w.protocol_opened), |w| load(&w.protocol_closed)),
            ),
        ],
    );
    s.gauges(
        "ringcast_worker_connections",
        "Open upgraded connections by worker (how SO_REUSEPORT spread them).",
        by_worker(c, |w| {
            let opened = load(&w.raw_opened) + load(&w.protocol_opened);
            let closed = load(&w.raw_closed) + load(&w.protocol_closed);
            Some(opened as i64 - closed as i64)
        }),
    );
    s.seconds_by(
        "ringcast_worker_cpu_seconds",
        "CPU time of each worker thread, user and system: a worker that gets less than the others (its core shared with busier threads) serves its connections later.",
        by_worker(c, |w| {
            crate::host::thread_cpu_time(w.thread_id.load(Ordering::Relaxed))
                .map(|cpu| cpu.as_secs_f64())
        }),
    );
    s.gauge(
        "ringcast_sockets",
        "Open TCP connections, upgraded or not.",
        shared.connections.load(Ordering::Relaxed) as i64,
    );
    let st = &shared.stats;
    s.counter(
        "ringcast_accepted",
        "TCP connections accepted.",
        load(&st.accepted),
    );
    s.counters(
        "ringcast_handshake_failures",
        "Connections that did not become WebSockets, by reason.",
        vec![
            (
                vec![("reason", "refused".into())],
                load(&st.handshakes_refused),
            ),
            (
                vec![("reason", "timeout".into())],
                load(&st.handshake_timeouts),
            ),
            (vec![("reason", "tls".into())], load(&st.tls_errors)),
            (
                vec![("reason", "server_full".into())],
                load(&st.rejected_full) + load(&st.dropped_full),
            ),
        ],
    );
    let auth = &shared.session_env.auth_failures;
    s.counters(
        "ringcast_token_failures",
        "Connection tokens refused, by reason.",
        vec![
            (vec![("reason", "expired".into())], load(&auth.expired)),
            (vec![("reason", "invalid".into())], load(&auth.invalid)),
            (vec![("reason", "missing".into())], load(&auth.missing)),
        ],
    );
    s.counter(
        "ringcast_messages_in",
        "WebSocket messages received.",
        load(&st.messages_in),
    );
    s.counter(
        "ringcast_frames_out",
        "Frames queued to connections (deliveries, replies, control frames).",
        sum(shared, |w| load(&w.frames_out)),
    );
    s.counter(
        "ringcast_bytes_in",
        "Bytes read from sockets.",
        sum(shared, |w| load(&w.bytes_in)),
    );
    s.counter(
        "ringcast_bytes_out",
        "Bytes written to sockets, TLS included.",
        sum(shared, |w| load(&w.bytes_out)),
    );
    s.counter(
        "ringcast_sends",
        "Socket sends; frames_out ÷ sends is how many frames a send coalesces.",
        sum(shared, |w| load(&w.sends)),
    );
    let inbox_drops: u64 = shared.inboxes.iter().map(|i| load(&i.dropped)).sum();
    s.counters(
        "ringcast_drops",
        "Messages not delivered, by cause.",
        vec![
            (vec![("cause", "inbox_full".into())], inbox_drops),
            (
                vec![("cause", "slow_consumer".into())],
                load(&st.slow_consumers),
            ),
            (
                vec![("cause", "rate_limited".into())],
                load(&st.rate_limited),
            ),
        ],
    );
    s.gauge(
        "ringcast_subscriptions",
        "Client protocol subscriptions.",
        open(|w| load(&w.subs_added), |w| load(&w.subs_removed)),
    );
    s.gauge(
        "ringcast_channels",
        "Client protocol channels with subscribers.",
        shared.channels.count() as i64,
    );
    s.gauge(
        "ringcast_rooms",
        "Raw rooms with members.",
        shared.rooms.count() as i64,
    );
    let engine = shared.engine.report();
    if let Some(b) = engine.history_bytes {
        s.gauge(
            "ringcast_history_bytes",
            "Bytes of publications held in history (memory engine).",
            b as i64,
        );
    }
    if let Some(n) = engine.presence_entries {
        s.gauge(
            "ringcast_presence_entries",
            "Presence entries: all channels (memory engine), this node's clients (Redis engine).",
            n as i64,
        );
    }
    s.counters(
        "ringcast_engine_bounds_hit",
        "Engine bounds hit, by bound (history shed, channels refused, presence refused).",
        engine
            .bounds_hit
            .iter()
            .map(|(bound, n)| (vec![("bound", (*bound).into())], *n))
            .collect(),
    );
    if let Some(n) = engine.backend_errors {
        s.counter(
            "ringcast_engine_backend_errors",
            "Redis engine calls that failed (each failed its command with error 100, or lost a \
             join/leave push or a presence refresh), and subscriber connection breaks.",
            n,
        );
    }
    if let Some(n) = engine.backend_connects {
        s.counter(
            "ringcast_engine_backend_connects",
            "Times the node's Redis subscriber connection was made (1 + reconnects).",
            n,
        );
    }
    if let Some(up) = engine.backend_available {
        s.gauge(
            "ringcast_engine_backend_available",
            "1 while Redis answers; 0 after a call found it unreachable or silent, until an \
             attempt (one a second) finds it again — meanwhile calls fail at once.",
            i64::from(up),
        );
    }
    if let Some(n) = engine.backend_refused {
        s.counter(
            "ringcast_engine_backend_refused",
            "Redis engine calls failed at once (error 100) while Redis was taken as unavailable.",
            n,
        );
    }
    if shared.engine.clustered() {
        let c = &shared.cluster;
        s.counters(
            "ringcast_cluster_notices",
            "Control channel notices (session commands, chat changes, node figures): sent to \
             the other nodes, received from them, failed (not sent, or not understood).",
            [
                ("sent", &c.sent),
                ("received", &c.received),
                ("failed", &c.failed),
            ]
            .into_iter()
            .map(|(r, n)| (vec![("result", r.into())], n.load(Ordering::Relaxed)))
            .collect(),
        );
        s.gauge(
            "ringcast_cluster_nodes",
            "Other nodes heard from within the last 10 s (their figures are in the API's info).",
            c.others().len() as i64,
        );
    }
    s.histogram(
        "ringcast_send_wait_seconds",
        "How long a connection's oldest unsent frame waited for its send to start: behind the \
         send in flight, then for the worker's writer (off by at most one pass of the writer).",
        DurationHistogram::snapshot_all(shared.counters.iter().map(|w| &w.send_wait)),
    );
    s.histogram(
        "ringcast_send_flight_seconds",
        "How long socket sends stayed in the kernel, submission to completion (a short send's \
         pieces each): a client that does not read keeps its sends here.",
        DurationHistogram::snapshot_all(shared.counters.iter().map(|w| &w.send_flight)),
    );
    s.histogram(
        "ringcast_publish_enqueue_seconds",
        "Client publish: from the command to its frame in every subscriber worker's inbox.",
        shared.publish_latency.snapshot(),
    );
    s.counters(
        "ringcast_api_calls",
        "Server API calls by method and result (ok or the error code).",
        api.calls
            .iter()
            .map(|((m, r), n)| (vec![("method", m.clone()), ("result", r.clone())], *n))
            .collect(),
    );
    s.counters(
        "ringcast_api_refused",
        "Server API requests refused before a method ran.",
        vec![
            (vec![("reason", "unauthorized".into())], api.unauthorized),
            (vec![("reason", "too_large".into())], api.too_large),
        ],
    );
    if let Some(o) = outbox {
        s.counter("ringcast_outbox_applied", "Outbox rows applied.", o.applied);
        s.counter(
            "ringcast_outbox_failed",
            "Outbox rows whose command failed.",
            o.failed,
        );
        s.counter(
            "ringcast_outbox_reconnects",
            "Outbox database reconnects.",
            o.reconnects,
        );
        s.0.push((
            "ringcast_outbox_lag_seconds",
            "Age of the oldest unprocessed outbox row at the last poll.",
            Family::Gauge(vec![(Vec::new(), o.lag_seconds.round() as i64)]),
        ));
    }
    s.counters(
        "ringcast_file_answers",
        "/files/ answers by HTTP status.",
        crate::server::counters::FILE_STATUSES
            .iter()
            .map(|st| st.to_string())
            .chain(std::iter::once("other".to_owned()))
            .enumerate()
            .map(|(i, status)| {
                (
                    vec![("status", status)],
                    sum(shared, |w| load(&w.file_answers[i])),
                )
            })
            .collect(),
    );
    s.counter(
        "ringcast_file_bytes",
        "File bytes sent by /files/.",
        sum(shared, |w| load(&w.file_bytes)),
    );
    s.counter(
        "ringcast_deflate_messages_compressed",
        "Messages compressed with permessage-deflate (once per worker and window size for a broadcast, not per recipient).",
        sum(shared, |w| load(&w.compression.compressed)),
    );
    s.counter(
        "ringcast_deflate_messages_skipped",
        "Data frames sent plain to compressing connections: under --compression-min-size, or no gain.",
        sum(shared, |w| load(&w.compression.skipped)),
    );
    s.counter(
        "ringcast_deflate_bytes_before",
        "Payload bytes of compressed messages before compression.",
        sum(shared, |w| load(&w.compression.bytes_before)),
    );
    s.counter(
        "ringcast_deflate_bytes_after",
        "Payload bytes of compressed messages after compression.",
        sum(shared, |w| load(&w.compression.bytes_after)),
    );
    s.seconds(
        "ringcast_deflate_compress_seconds",
        "Time spent compressing.",
        sum(shared, |w| load(&w.compression.compress_ns)),
    );
    s.counter(
        "ringcast_deflate_messages_inflated",
        "Compressed messages received and inflated.",
        sum(shared, |w| load(&w.compression.inflated)),
    );
    s.seconds(
        "ringcast_deflate_inflate_seconds",
        "Time spent inflating received messages (for messages inflated as they arrive: the decoding calls that inflated).",
        sum(shared, |w| load(&w.compression.inflate_ns)),
    );
    s.counter(
        "ringcast_deflate_inflate_pool_exhausted",
        "Compressed messages received whole before inflating because --max-inflating connections of the worker were already in the middle of one.",
        sum(shared, |w| load(&w.compression.inflate_pool_exhausted)),
    );
    if shared.app.chat.enabled() {
        let f = shared
            .session_env
            .chat
            .lock()
            .figures(crate::session::Now::system().unix_ms);
        s.gauges(
            "ringcast_chat_sanctions",
            "Live chat sanctions by kind.",
            vec![
                (vec![("kind", "mute".into())], f.mutes as i64),
                (vec![("kind", "ban".into())], f.bans as i64),
            ],
        );
        s.counters(
            "ringcast_chat_moderation_actions",
            "Chat moderation actions recorded, by action (auto-moderation included).",
            f.actions
                .iter()
                .map(|(a, n)| (vec![("action", (*a).into())], *n))
                .collect(),
        );
        s.counters(
            "ringcast_chat_bound_hits",
            "Times a chat bound was hit (a sanction refused, a history, reactions or a tracked user forgotten).",
            f.bounds
                .iter()
                .map(|(b, n)| (vec![("bound", (*b).into())], *n))
                .collect(),
        );
    }
    s.gauge(
        "ringcast_start_time_seconds",
        "Unix time the server started.",
        shared.started as i64,
    );
    let mut registry = Registry::default();
    registry.register_collector(Box::new(s));
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &registry)
        .expect("writing to a String cannot fail");
    out
}

//! A run: worker threads (one compio runtime each) own a share of the clients; the main thread
//! paces the phases (connect → warm-up → measure → drain → close) through atomics and prints
//! progress.
//!
//! Open loop: each sender's k-th message is planned at `start + phase + k·interval`; it is sent
//! at that instant (or as soon after as the loadgen can: that delay is the schedule lag, reported
//! so a saturated loadgen shows), and its latency runs from the **planned** instant, not the
//! actual send, so a stalled server cannot hide its stalls (no coordinated omission).

use std::cell::RefCell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::net::IpAddr;
use std::num::NonZero;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use compio::driver::ProactorBuilder;
use compio::runtime::RuntimeBuilder;
use hdrhistogram::Histogram;

use ringcast::rt::yield_now;

use crate::centrifuge;
use crate::client::{Client, Target};
use crate::payload::{self, DecodeError, Seen, SeqTracker, Stamp};

/// What the clients do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// `senders` of the clients send `rate` messages/s in total; everyone in the room receives.
    Broadcast,
    /// Every client sends `rate` messages/s to a room of its own and times its own echo.
    Echo,
    /// Connect everyone, report handshake times, disconnect.
    Connect,
    /// Connect everyone and hold the connections for `hold`.
    Idle,
}

/// What the clients speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Raw rooms: the path names the room, payloads are Binary frames.
    Raw,
    /// The Centrifugo client protocol v2 (JSON): connect, subscribe, publish commands.
    Centrifuge,
}

#[derive(Clone)]
pub struct Plan {
    pub mode: Mode,
    pub protocol: Protocol,
    /// Centrifuge protocol: secret to mint connection tokens (none: anonymous).
    pub token_secret: Option<String>,
    /// The servers; client i connects to `targets[i % len]`.
    pub targets: Vec<Target>,
    pub path: String,
    pub clients: usize,
    pub senders: usize,
    pub rooms: usize,
    /// Broadcast: total messages/s over all senders. Echo: messages/s per client.
    pub rate: f64,
    pub size: usize,
    pub filler: crate::payload::Filler,
    pub warmup: Duration,
    pub duration: Duration,
    pub drain: Duration,
    /// Width of a step of the latency timeline (at least 1 ms).
    pub timeline_step_ns: u64,
    pub connect_rate: Option<f64>,
    pub connect_concurrency: usize,
    pub source_ips: Vec<IpAddr>,
    pub workers: usize,
    /// Each worker's io_uring buffer ring: buffers (a power of two) and bytes per buffer.
    pub recv_buffers: u16,
    pub recv_buffer_len: usize,
    /// Broadcast: publish through the server API instead of the senders' WebSockets.
    pub publish_api: Option<crate::api::ApiTarget>,
    /// Frames a client may have waiting to be written before sends are skipped (counted).
    pub send_queue_cap: usize,
    /// Test hook: every Nth message counts as sent but is not sent (0: off).
    pub fault_skip_every: u64,
}

impl Plan {
    pub fn is_sender(&self, client: usize) -> bool {
        match self.mode {
            Mode::Broadcast => client < self.senders,
            Mode::Echo => true,
            _ => false,
        }
    }

    pub fn room_of(&self, client: usize) -> usize {
        match self.mode {
            Mode::Echo => client,
            _ => client % self.rooms.max(1),
        }
    }

    /// The path a client connects to: its room, or the protocol's endpoint.
    pub fn connect_path(&self, client: usize) -> String {
        match self.protocol {
            Protocol::Raw => self.path_of(client),
            Protocol::Centrifuge => "/connection/websocket".into(),
        }
    }

    /// The channel of a client in protocol mode: its room's name.
    pub fn channel_of(&self, client: usize) -> String {
        self.path_of(client).trim_start_matches('/').to_owned()
    }

    pub fn path_of(&self, client: usize) -> String {
        let base = self.path.trim_end_matches('/');
        match self.mode {
            Mode::Echo => format!("{base}-{client}"),
            _ if self.rooms > 1 => format!("{base}-{}", self.room_of(client)),
            _ => base.to_string(),
        }
    }

    /// Nanoseconds between two messages of one sender.
    fn interval_ns(&self) -> u64 {
        let per_sender = match self.mode {
            Mode::Broadcast => self.rate / self.senders.max(1) as f64,
            _ => self.rate,
        };
        (1e9 / per_sender.max(1e-9)) as u64
    }

    fn phase_ns(&self, sender: usize) -> u64 {
        let n = match self.mode {
            Mode::Broadcast => self.senders,
            _ => self.clients,
        }
        .max(1) as u64;
        self.interval_ns() * (sender as u64 % n) / n
    }

    /// Trackers a receiver keeps: one per sender of its room.
    fn trackers_for(&self, client: usize) -> usize {
        match self.mode {
            Mode::Echo => 1,
            Mode::Broadcast => {
                let r = self.room_of(client);
                (0..self.senders)
                    .filter(|s| s % self.rooms.max(1) == r)
                    .count()
            }
            _ => 0,
        }
    }

    /// Tracker slot of a message from `sender` at a receiver in the same room (None: not ours).
    fn slot(&self, receiver: usize, sender: usize) -> Option<usize> {
        match self.mode {
            Mode::Echo => (sender == receiver).then_some(0),
            Mode::Broadcast => {
                let rooms = self.rooms.max(1);
                (sender < self.senders && sender % rooms == receiver % rooms)
                    .then_some(sender / rooms)
            }
            _ => None,
        }
    }
}

/// Counters the main thread watches (progress) and phases it sets.
pub struct Shared {
    pub plan: Plan,
    pub epoch: Instant,
    /// `epoch` as Unix time in ns (to place the measured window in wall-clock time).
    pub epoch_unix_ns: u64,
    pub connected: AtomicUsize,
    pub failed: AtomicUsize,
    pub client_ok: Vec<AtomicBool>,
    /// Messages sent per client (index = client id; only senders count).
    pub sent: Vec<AtomicU64>,
    pub sent_total: AtomicU64,
    pub delivered_total: AtomicU64,
    pub errors_total: AtomicU64,
    /// ns since `epoch`; 0 = not set yet.
    pub start_ns: AtomicU64,
    pub stop_ns: AtomicU64,
    pub finish: AtomicBool,
}

impl Shared {
    pub fn new(plan: Plan) -> Self {
        let n = plan.clients;
        Self {
            epoch: Instant::now(),
            epoch_unix_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            connected: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            client_ok: (0..n).map(|_| AtomicBool::new(false)).collect(),
            sent: (0..n).map(|_| AtomicU64::new(0)).collect(),
            sent_total: AtomicU64::new(0),
            delivered_total: AtomicU64::new(0),
            errors_total: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            stop_ns: AtomicU64::new(0),
            finish: AtomicBool::new(false),
            plan,
        }
    }

    pub fn now_ns(&self) -> u64 {
        self.epoch.elapsed().as_nanos() as u64
    }

    /// Deliveries expected from what was sent (for the drain).
    pub fn expected(&self) -> u64 {
        let p = &self.plan;
        match p.mode {
            Mode::Echo => self.sent_total.load(Ordering::Acquire),
            Mode::Broadcast => {
                let rooms = p.rooms.max(1);
                let mut members = vec![0u64; rooms];
                for (i, ok) in self.client_ok.iter().enumerate() {
                    if ok.load(Ordering::Acquire) {
                        members[i % rooms] += 1;
                    }
                }
                (0..p.senders)
                    .map(|s| self.sent[s].load(Ordering::Acquire) * members[s % rooms])
                    .sum()
            }
            _ => 0,
        }
    }
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds")
}

/// A histogram of the timeline or of per-receiver means: two significant digits are enough.
fn coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 2).expect("valid bounds")
}

/// Steps a latency timeline holds at most (later messages count in the last).
const TIMELINE_STEPS: usize = 600;

/// How long a run waits, after sending Close on every connection, for the servers' answers
/// (counted as "server Close codes seen"; a server busy with 10,000 closes answers part of them
/// within it — the rest are not counted, not an error).
pub const CLOSE_GRACE: Duration = Duration::from_millis(200);

/// What one worker measured.
pub struct WorkerResult {
    /// Delivery latency, µs from the planned send (messages planned in the measured window).
    pub latency: Histogram<u64>,
    /// The same latencies by the step of the measured window they were planned in (`--timeline-step`):
    /// whether a tail is spread over the run or comes from a few moments.
    pub timeline: Vec<Histogram<u64>>,
    /// Each receiver's mean latency, µs (receivers that got a measured message): whether a tail
    /// is spread over all connections or comes from a few that are served late every time.
    pub receiver_means: Histogram<u64>,
    /// How late the loadgen sent, µs after the planned instant.
    pub schedule_lag: Histogram<u64>,
    /// TCP connect → 101 received, µs.
    pub handshake: Histogram<u64>,
    pub delivered: u64,
    pub duplicates: u64,
    pub late: u64,
    pub corrupted: u64,
    pub foreign: u64,
    pub lost: u64,
    pub not_sent: u64,
    /// Reads that found the buffer ring empty (see `client::ring_empty_events`).
    pub ring_empty: u64,
    /// Messages that arrived compressed (permessage-deflate).
    pub compressed: u64,
    /// Protocol mode: error replies to publish commands, by code.
    pub reply_errors: BTreeMap<u32, u64>,
    pub failures: BTreeMap<String, u64>,
    /// The first error message seen for each failure reason.
    pub failure_examples: BTreeMap<String, String>,
    pub server_closes: BTreeMap<u16, u64>,
}

impl WorkerResult {
    fn new() -> Self {
        Self {
            latency: histogram(),
            timeline: Vec::new(),
            receiver_means: coarse_histogram(),
            schedule_lag: histogram(),
            handshake: histogram(),
            delivered: 0,
            duplicates: 0,
            late: 0,
            corrupted: 0,
            foreign: 0,
            lost: 0,
            not_sent: 0,
            ring_empty: 0,
            compressed: 0,
            reply_errors: BTreeMap::new(),
            failures: BTreeMap::new(),
            failure_examples: BTreeMap::new(),
            server_closes: BTreeMap::new(),
        }
    }

    pub fn merge(&mut self, o: WorkerResult) {
        self.latency.add(&o.latency).expect("same bounds");
        for (i, h) in o.timeline.into_iter().enumerate() {
            match self.timeline.get_mut(i) {
                Some(mine) => mine.add(&h).expect("same bounds"),
                None => self.timeline.push(h),
            }
        }
        self.receiver_means
            .add(&o.receiver_means)
            .expect("same bounds");
        self.schedule_lag.add(&o.schedule_lag).expect("same bounds");
        self.handshake.add(&o.handshake).expect("same bounds");
        self.delivered += o.delivered;
        self.duplicates += o.duplicates;
        self.late += o.late;
        self.corrupted += o.corrupted;
        self.foreign += o.foreign;
        self.lost += o.lost;
        self.not_sent += o.not_sent;
        self.ring_empty += o.ring_empty;
        self.compressed += o.compressed;
        for (k, v) in o.reply_errors {
            *self.reply_errors.entry(k).or_default() += v;
        }
        for (k, v) in o.failures {
            *self.failures.entry(k).or_default() += v;
        }
        for (k, v) in o.failure_examples {
            self.failure_examples.entry(k).or_insert(v);
        }
        for (k, v) in o.server_closes {
            *self.server_closes.entry(k).or_default() += v;
        }
    }
}

/// A worker's connected clients, by client id.
type Clients = Rc<RefCell<Vec<(usize, Rc<Client>)>>>;
/// A worker's receivers (one per connected client).
type Receivers = Rc<RefCell<Vec<Rc<RefCell<Receiver>>>>>;

struct Receiver {
    id: usize,
    trackers: Vec<SeqTracker>,
    /// Sum and count of this receiver's measured latencies, µs.
    latency_sum: u64,
    measured: u64,
}

/// Runs the worker for clients `index, index + workers, …`.
pub fn worker(index: usize, shared: Arc<Shared>) -> WorkerResult {
    let plan = &shared.plan;
    let mut proactor = ProactorBuilder::new();
    proactor
        .buffer_pool_size(NonZero::new(plan.recv_buffers).expect("a power of two"))
        .buffer_pool_buffer_len(plan.recv_buffer_len)
        // Room for a completion per receive buffer and then some: a burst that overflows the
        // completion queue takes the kernel's slow overflow path.
        .cqsize((u32::from(plan.recv_buffers) * 2).max(2048));
    let rt = RuntimeBuilder::new()
        .with_proactor(proactor)
        .build()
        .expect("compio runtime");
    let result = Rc::new(RefCell::new(WorkerResult::new()));
    let mine: Vec<usize> = (index..plan.clients).step_by(plan.workers).collect();
    rt.block_on(async {
        let clients: Clients = Rc::default();
        let receivers: Receivers = Rc::default();
        connect_all(&shared, &mine, index, &clients, &receivers, &result).await;
        // Deliveries are counted per worker and published every 20 ms (progress line, drain):
        // one shared atomic bumped per delivery by every worker would bounce between cores.
        let published = Rc::new(std::cell::Cell::new(0u64));
        {
            let (shared, result, published) = (shared.clone(), result.clone(), published.clone());
            compio::runtime::spawn(async move {
                while !shared.finish.load(Ordering::Acquire) {
                    compio::time::sleep(Duration::from_millis(20)).await;
                    publish_deliveries(&shared, &result, &published);
                }
            })
            .detach();
        }
        wait_until(|| {
            shared.start_ns.load(Ordering::Acquire) != 0 || shared.finish.load(Ordering::Acquire)
        })
        .await;
        if matches!(plan.mode, Mode::Broadcast | Mode::Echo)
            && !shared.finish.load(Ordering::Acquire)
        {
            let senders: Vec<(usize, Rc<Client>)> = clients
                .borrow()
                .iter()
                .filter(|(id, _)| plan.is_sender(*id))
                .cloned()
                .collect();
            let answers = schedule(&shared, senders, &result).await;
            wait_until(|| shared.finish.load(Ordering::Acquire)).await;
            if let Some(a) = answers {
                let mut r = result.borrow_mut();
                for (code, n) in &a.borrow().errors {
                    *r.reply_errors.entry(*code).or_default() += n;
                }
            }
        }
        wait_until(|| shared.finish.load(Ordering::Acquire)).await;
        publish_deliveries(&shared, &result, &published);
        for (_, c) in clients.borrow().iter() {
            c.close();
        }
        compio::time::sleep(CLOSE_GRACE).await;
        // Loss: what each sender sent, minus what each receiver saw of it.
        let mut r = result.borrow_mut();
        for rc in receivers.borrow().iter() {
            let rec = rc.borrow();
            if let Some(mean) = rec.latency_sum.checked_div(rec.measured) {
                let _ = r.receiver_means.record(mean.max(1));
            }
            for s in 0..plan.clients {
                if let Some(slot) = plan.slot(rec.id, s) {
                    let sent = shared.sent[s].load(Ordering::Acquire);
                    r.lost += sent.saturating_sub(rec.trackers[slot].unique);
                }
            }
        }
    });
    // Reader tasks of clients the server has not closed yet may still hold `result`.
    let mut r = std::mem::replace(&mut *result.borrow_mut(), WorkerResult::new());
    drop(rt);
    r.ring_empty = crate::client::ring_empty_events();
    r.compressed = crate::client::compressed_messages();
    r
}

/// Adds this worker's deliveries since the last call to the shared total.
fn publish_deliveries(
    shared: &Shared,
    result: &RefCell<WorkerResult>,
    published: &std::cell::Cell<u64>,
) {
    let now = result.borrow().delivered;
    shared
        .delivered_total
        .fetch_add(now - published.get(), Ordering::Relaxed);
    published.set(now);
}

async fn wait_until(cond: impl Fn() -> bool) {
    while !cond() {
        compio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn connect_all(
    shared: &Arc<Shared>,
    mine: &[usize],
    index: usize,
    clients: &Clients,
    receivers: &Receivers,
    result: &Rc<RefCell<WorkerResult>>,
) {
    let plan = &shared.plan;
    let in_flight = Rc::new(std::cell::Cell::new(0usize));
    // This worker's share of the connect rate.
    let pace = plan
        .connect_rate
        .map(|r| Duration::from_secs_f64(plan.workers as f64 / r.max(1e-9)));
    let mut next = Instant::now();
    let mut handles = Vec::new();
    for &id in mine {
        if shared.finish.load(Ordering::Acquire) {
            break;
        }
        if let Some(p) = pace {
            compio::time::sleep_until(next).await;
            next += p;
        }
        while in_flight.get() >= plan.connect_concurrency {
            compio::time::sleep(Duration::from_micros(200)).await;
        }
        in_flight.set(in_flight.get() + 1);
        let (shared, clients, receivers, result, in_flight) = (
            shared.clone(),
            clients.clone(),
            receivers.clone(),
            result.clone(),
            in_flight.clone(),
        );
        handles.push(compio::runtime::spawn(async move {
            let plan = &shared.plan;
            let source =
                (!plan.source_ips.is_empty()).then(|| plan.source_ips[id % plan.source_ips.len()]);
            // Raw rooms on a server with token keys need the token at the upgrade.
            let token = plan
                .token_secret
                .as_deref()
                .map(|s| centrifuge::token(s, id));
            let bearer = token.as_deref().filter(|_| plan.protocol == Protocol::Raw);
            let t0 = Instant::now();
            let outcome = Client::connect(
                &plan.targets[id % plan.targets.len()],
                source,
                &plan.connect_path(id),
                (id as u64) << 16 | index as u64,
                bearer,
            )
            .await;
            in_flight.set(in_flight.get() - 1);
            match outcome {
                Ok((client, early)) => {
                    let rec = Rc::new(RefCell::new(Receiver {
                        id,
                        trackers: vec![SeqTracker::default(); plan.trackers_for(id)],
                        latency_sum: 0,
                        measured: 0,
                    }));
                    compio::runtime::spawn(client.clone().write_loop()).detach();
                    let proto = (plan.protocol == Protocol::Centrifuge)
                        .then(|| Rc::new(centrifuge::Session::default()));
                    if proto.is_some() {
                        let hello = centrifuge::hello(token.as_deref(), &plan.channel_of(id));
                        client.queue_text(hello.as_bytes(), usize::MAX);
                    }
                    {
                        let (s2, r2, rec, client, proto) = (
                            shared.clone(),
                            result.clone(),
                            rec.clone(),
                            client.clone(),
                            proto.clone(),
                        );
                        compio::runtime::spawn(async move {
                            let pong = client.clone();
                            let code = client
                                .read_loop(early, |p| match &proto {
                                    None => on_message(&s2, &r2, &rec, p),
                                    Some(proto) => proto.on_frame(p, |i| match i {
                                        centrifuge::Incoming::Publication(p) => {
                                            on_message(&s2, &r2, &rec, p)
                                        }
                                        centrifuge::Incoming::Ping => {
                                            pong.queue_text(b"{}", usize::MAX);
                                        }
                                        centrifuge::Incoming::PublishError(c) => {
                                            *r2.borrow_mut().reply_errors.entry(c).or_default() +=
                                                1;
                                        }
                                        centrifuge::Incoming::Garbage => {
                                            r2.borrow_mut().foreign += 1;
                                        }
                                    }),
                                })
                                .await;
                            if let Some(c) = code {
                                *r2.borrow_mut().server_closes.entry(c).or_default() += 1;
                            }
                        })
                        .detach();
                    }
                    if let Some(proto) = &proto {
                        // Ready once the server confirmed the subscription.
                        let deadline = Instant::now() + Duration::from_secs(10);
                        while proto.state() == centrifuge::State::Pending
                            && Instant::now() < deadline
                            && !client.is_closed()
                        {
                            compio::time::sleep(Duration::from_millis(2)).await;
                        }
                        let reason = match proto.state() {
                            centrifuge::State::Subscribed => None,
                            centrifuge::State::Refused(code) => {
                                Some(format!("protocol error {code}"))
                            }
                            centrifuge::State::Pending if client.is_closed() => {
                                Some("closed before subscribing".to_owned())
                            }
                            centrifuge::State::Pending => {
                                Some("no subscribe reply in 10 s".to_owned())
                            }
                        };
                        if let Some(reason) = reason {
                            client.close();
                            shared.failed.fetch_add(1, Ordering::AcqRel);
                            let mut r = result.borrow_mut();
                            r.failure_examples
                                .entry(reason.clone())
                                .or_insert_with(|| reason.clone());
                            *r.failures.entry(reason).or_default() += 1;
                            return;
                        }
                    }
                    let _ = result
                        .borrow_mut()
                        .handshake
                        .record((t0.elapsed().as_micros() as u64).max(1));
                    shared.client_ok[id].store(true, Ordering::Release);
                    shared.connected.fetch_add(1, Ordering::AcqRel);
                    receivers.borrow_mut().push(rec);
                    clients.borrow_mut().push((id, client));
                }
                Err(e) => {
                    shared.failed.fetch_add(1, Ordering::AcqRel);
                    let mut r = result.borrow_mut();
                    let reason = e.reason();
                    r.failure_examples
                        .entry(reason.clone())
                        .or_insert_with(|| e.to_string());
                    *r.failures.entry(reason).or_default() += 1;
                }
            }
        }));
    }
    for h in handles {
        let _ = h.await;
    }
}

fn on_message(shared: &Shared, result: &RefCell<WorkerResult>, rec: &RefCell<Receiver>, p: &[u8]) {
    let mut r = result.borrow_mut();
    let stamp = match payload::decode(p) {
        Ok(s) => s,
        Err(DecodeError::Corrupted) => {
            r.corrupted += 1;
            shared.errors_total.fetch_add(1, Ordering::Relaxed);
            return;
        }
        Err(DecodeError::Foreign) => {
            r.foreign += 1;
            return;
        }
    };
    let mut rec = rec.borrow_mut();
    let Some(slot) = shared.plan.slot(rec.id, stamp.sender as usize) else {
        r.foreign += 1;
        return;
    };
    match rec.trackers[slot].observe(stamp.seq) {
        Seen::Duplicate => {
            r.duplicates += 1;
            return;
        }
        Seen::Late => r.late += 1,
        Seen::InOrder => {}
    }
    r.delivered += 1;
    let measure_from =
        shared.start_ns.load(Ordering::Relaxed) + shared.plan.warmup.as_nanos() as u64;
    if stamp.planned_ns >= measure_from && stamp.planned_ns < shared.stop_ns.load(Ordering::Relaxed)
    {
        let latency_us = shared.now_ns().saturating_sub(stamp.planned_ns) / 1000;
        let _ = r.latency.record(latency_us.max(1));
        rec.latency_sum += latency_us;
        rec.measured += 1;
        let step = (((stamp.planned_ns - measure_from) / shared.plan.timeline_step_ns) as usize)
            .min(TIMELINE_STEPS - 1);
        while r.timeline.len() <= step {
            r.timeline.push(coarse_histogram());
        }
        let _ = r.timeline[step].record(latency_us.max(1));
    }
}

/// The open-loop sender: a heap of each local sender's next planned instant. Returns the API
/// connection's answers when publishing through the server API.
async fn schedule(
    shared: &Shared,
    senders: Vec<(usize, Rc<Client>)>,
    result: &RefCell<WorkerResult>,
) -> Option<Rc<RefCell<crate::api::Answers>>> {
    let plan = &shared.plan;
    let mut api = match (&plan.publish_api, senders.is_empty()) {
        (Some(target), false) => match crate::api::ApiConn::connect(target).await {
            Ok(c) => Some(c),
            Err(e) => {
                let mut r = result.borrow_mut();
                *r.failures.entry("api connect".into()).or_default() += 1;
                r.failure_examples
                    .entry("api connect".into())
                    .or_insert_with(|| format!("{}: {e}", target.addr));
                return None;
            }
        },
        _ => None,
    };
    let start = shared.start_ns.load(Ordering::Acquire);
    let stop = shared.stop_ns.load(Ordering::Acquire);
    let interval = plan.interval_ns();
    let mut heap: BinaryHeap<Reverse<(u64, usize, u64)>> = senders
        .iter()
        .enumerate()
        .map(|(i, (id, _))| Reverse((start + plan.phase_ns(*id), i, 0)))
        .collect();
    let mut buf = Vec::with_capacity(plan.size.max(payload::HEADER_LEN));
    let mut command = Vec::new();
    let channels: Vec<String> = senders.iter().map(|(id, _)| plan.channel_of(*id)).collect();
    let mut since_yield = 0u32;
    while let Some(Reverse((planned, i, seq))) = heap.pop() {
        if planned >= stop || shared.finish.load(Ordering::Relaxed) {
            continue;
        }
        let now = shared.now_ns();
        if planned > now {
            compio::time::sleep_until(shared.epoch + Duration::from_nanos(planned)).await;
            since_yield = 0;
        } else {
            since_yield += 1;
            if since_yield >= 64 {
                // Behind schedule: let the readers run too.
                since_yield = 0;
                yield_now().await;
            }
        }
        let (id, client) = &senders[i];
        payload::encode(
            Stamp {
                sender: *id as u32,
                seq,
                planned_ns: planned,
            },
            plan.size,
            plan.filler,
            &mut buf,
        );
        let lag_us = shared.now_ns().saturating_sub(planned) / 1000;
        let skip =
            plan.fault_skip_every > 0 && seq % plan.fault_skip_every == plan.fault_skip_every - 1;
        let queued = skip
            || match (plan.protocol, api.as_mut()) {
                (Protocol::Centrifuge, Some(api)) => {
                    api.publish(&channels[i], &buf, &mut command).await
                }
                (Protocol::Raw, _) => client.queue_binary(&buf, plan.send_queue_cap),
                (Protocol::Centrifuge, None) => {
                    centrifuge::publish(centrifuge::next_id(seq), &channels[i], &buf, &mut command);
                    client.queue_text(&command, plan.send_queue_cap)
                }
            };
        let mut r = result.borrow_mut();
        if queued {
            shared.sent[*id].fetch_add(1, Ordering::Relaxed);
            shared.sent_total.fetch_add(1, Ordering::Relaxed);
            let _ = r.schedule_lag.record(lag_us.max(1));
        } else {
            r.not_sent += 1;
        }
        drop(r);
        heap.push(Reverse((planned + interval, i, seq + 1)));
    }
    api.map(|a| a.answers)
}

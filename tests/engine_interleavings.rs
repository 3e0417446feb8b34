//! The order and recovery rules under random interleavings, without sockets.
//!
//! A simulated server of 2–4 "workers" built from the runtime's own pieces — the channel
//! directory ([`RoomDirectory`]), the bounded cross-core inboxes ([`Inbox`]), the engine's
//! outlet path ([`publish_channel`]), per-worker subscriber lists with positions
//! ([`LocalRooms`], [`Admit`]) — and real client sessions over the real memory engine. Only
//! the sockets and the scheduling are simulated: proptest picks which client publishes,
//! subscribes (recovering from what it last saw, as the SDKs do), disconnects, reconnects on
//! another worker, and how far each worker drains its inbox in between. Inboxes are small, so
//! deliveries are dropped and positions must catch it.
//!
//! Checked for every client: the offsets it is shown are exactly the channel's order —
//! contiguous, no gap, no duplicate — from the moment it subscribed, across every
//! resubscription the server reported as `recovered`; a new segment starts only where the
//! server said `recovered` false; and at the end every subscribed client has everything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
use proptest::prelude::*;
use serde_json::Value;
use serde_json::value::RawValue;

use ringcast::client_protocol::codes::ClientError;
use ringcast::client_protocol::reply::ClientInfo;
use ringcast::config::{AppConfig, AppFlags};
use ringcast::engine::memory::{Limits, MemoryEngine};
use ringcast::engine::{
    Broker, HistoryOptions, HistoryQuery, PresenceEntry, PresenceManager, Stored, StreamPosition,
};
use ringcast::server::inbox::Inbox;
use ringcast::server::rooms::{Admit, LocalRooms, Membership, RoomDirectory};
use ringcast::server::worker::publish_channel;
use ringcast::session::{ClientSession, Host, Now, SessionEnv};

const SECRET: &str = "interleavings-secret";
const CHANNEL: &str = "sim:room";

/// The engine's outlet, wired like the server's: directory + inboxes.
struct Wires {
    directory: RoomDirectory,
    inboxes: Vec<Inbox>,
}

impl ringcast::engine::Outlet for Wires {
    fn frame(&self, push: &[u8]) -> bytes::Bytes {
        bytes::Bytes::copy_from_slice(push)
    }
    fn deliver(&self, channel: &str, offset: u64, frame: bytes::Bytes) {
        publish_channel(&self.directory, &self.inboxes, channel, offset, frame);
    }
}

struct World {
    wires: Arc<Wires>,
    engine: MemoryEngine,
    /// Per worker: its subscriber lists; a member's `conn` is the client's index.
    locals: Vec<LocalRooms>,
    memberships: HashMap<usize, Membership>,
}

/// The host one client's session sees: its worker's lists, the shared engine.
struct SimHost<'a> {
    world: &'a mut World,
    worker: usize,
    client: usize,
}

impl Host for SimHost<'_> {
    fn join(&mut self, channel: &str) -> Result<(), ClientError> {
        let w = &mut self.world;
        let m = w.locals[self.worker]
            .join(&w.wires.directory, self.worker, channel, self.client)
            .map_err(|e| ClientError::LIMIT_EXCEEDED.with_detail(e))?;
        w.memberships.insert(self.client, m);
        Ok(())
    }
    fn set_position(&mut self, _channel: &str, offset: u64) {
        let m = &self.world.memberships[&self.client];
        self.world.locals[self.worker].set_position(m, offset);
    }
    fn leave(&mut self, _channel: &str) {
        if let Some(m) = self.world.memberships.remove(&self.client) {
            self.world.locals[self.worker].leave(&self.world.wires.directory, self.worker, &m);
        }
    }
    fn publish(
        &mut self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, ClientError> {
        self.world
            .engine
            .publish(channel, data, info, history, now)
            .map_err(|e| ClientError::INTERNAL.with_detail(e))
    }
    fn history(
        &mut self,
        channel: &str,
        query: HistoryQuery,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), ClientError> {
        self.world
            .engine
            .history(channel, query, history, now)
            .map_err(|e| ClientError::NOT_AVAILABLE.with_detail(e))
    }
    fn presence_event(&mut self, channel: &str, join: bool, info: &ClientInfo<'_>) {
        self.world
            .engine
            .publish_presence_event(channel, join, info)
    }
    fn presence_add(&mut self, channel: &str, entry: PresenceEntry) -> bool {
        self.world.engine.add_presence(channel, entry)
    }
    fn presence_remove(&mut self, channel: &str, client: &str) {
        self.world.engine.remove_presence(channel, client)
    }
    fn presence(&mut self, channel: &str) -> Vec<PresenceEntry> {
        self.world.engine.presence(channel)
    }
    fn presence_stats(&mut self, channel: &str) -> (usize, usize) {
        self.world.engine.presence_stats(channel)
    }
    fn user_connected(&mut self, _user: &str) -> bool {
        true
    }
    fn to_sessions(&mut self, _cmd: ringcast::api::SessionCommand) -> bool {
        true
    }
    fn user_disconnected(&mut self, _user: &str) {}
}

/// What a client (an SDK) remembers and what it was shown.
struct Client {
    worker: usize,
    session: Option<ClientSession>,
    subscribed: bool,
    /// Channel epoch and the last offset shown, for `recover`.
    epoch: Option<String>,
    /// The next offset this client must be shown (0: not yet subscribed once).
    next: u64,
    /// Every offset shown, in order.
    shown: Vec<u64>,
    /// Resubscriptions answered `recovered` true / false.
    recovered: usize,
    not_recovered: usize,
}

impl Client {
    fn show(&mut self, offset: u64, how: &str) {
        assert_eq!(
            offset, self.next,
            "{how}: shown offset {offset}, expected {} (shown so far {:?})",
            self.next, self.shown
        );
        self.shown.push(offset);
        self.next += 1;
    }
}

#[derive(Debug, Clone)]
enum Op {
    Publish(usize),
    Subscribe(usize),
    Disconnect(usize),
    /// Reconnect a disconnected client on this worker (mod the worker count).
    Connect(usize, usize),
    /// Worker drains up to this many inbox entries.
    Drain(usize, usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..6usize).prop_map(Op::Publish),
        3 => (0..6usize).prop_map(Op::Subscribe),
        1 => (0..6usize).prop_map(Op::Disconnect),
        1 => (0..6usize, 0..4usize).prop_map(|(c, w)| Op::Connect(c, w)),
        5 => (0..4usize, 1..6usize).prop_map(|(w, n)| Op::Drain(w, n)),
    ]
}

fn env(history_size: usize) -> Arc<SessionEnv> {
    // A file per call: tests run in parallel, and a shared path could be read half-written.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("ringcast-interleavings-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("h{history_size}-{n}.toml"));
    let config = format!(
        r#"
[client]
command_rate_limit = 0
[[channel.namespaces]]
name = "sim"
allow_subscribe_for_client = true
allow_publish_for_subscriber = true
history_size = {history_size}
history_ttl = "300s"
force_recovery = true
force_positioning = true
"#
    );
    std::fs::write(&path, config).unwrap();
    let flags = AppFlags {
        config: Some(path),
        token_hmac_secret: Some(SECRET.into()),
        ..AppFlags::default()
    };
    Arc::new(SessionEnv::new(Arc::new(AppConfig::build(&flags).unwrap())))
}

fn now() -> Now {
    Now {
        at: Instant::now(),
        unix: 1_800_000_000,
        unix_ms: 1_800_000_000_000,
    }
}

struct Sim {
    env: Arc<SessionEnv>,
    world: World,
    clients: Vec<Client>,
    workers: usize,
    connects: usize,
}

impl Sim {
    fn new(workers: usize, clients: usize, inbox: usize, history_size: usize) -> Self {
        let wires = Arc::new(Wires {
            directory: RoomDirectory::new(100),
            inboxes: (0..workers).map(|_| Inbox::new(inbox)).collect(),
        });
        let engine = MemoryEngine::new(
            wires.clone(),
            Limits {
                max_channels: 100,
                max_history_bytes: 1 << 24,
                max_presence: 1000,
            },
        );
        let mut sim = Self {
            env: env(history_size),
            world: World {
                wires,
                engine,
                locals: (0..workers).map(|_| LocalRooms::default()).collect(),
                memberships: HashMap::new(),
            },
            clients: Vec::new(),
            workers,
            connects: 0,
        };
        for c in 0..clients {
            sim.clients.push(Client {
                worker: c % workers,
                session: None,
                subscribed: false,
                epoch: None,
                next: 0,
                shown: Vec::new(),
                recovered: 0,
                not_recovered: 0,
            });
            sim.connect(c, c % workers);
        }
        sim
    }

    /// Runs one session call for client `c` and returns the lines it sent.
    fn call(
        &mut self,
        c: usize,
        f: impl FnOnce(&mut ClientSession, &mut SimHost<'_>),
    ) -> Vec<Value> {
        let client = &mut self.clients[c];
        let Some(session) = client.session.as_mut() else {
            return Vec::new();
        };
        let mut host = SimHost {
            world: &mut self.world,
            worker: client.worker,
            client: c,
        };
        f(session, &mut host);
        let out = session.take_output().unwrap_or_default();
        assert!(session.disconnect().is_none(), "{:?}", session.disconnect());
        String::from_utf8(out)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    fn connect(&mut self, c: usize, worker: usize) {
        if self.clients[c].session.is_some() {
            return;
        }
        self.connects += 1;
        let claims = serde_json::json!({"sub": format!("u{c}"), "exp": now().unix + 3600});
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        let id = format!("client-{}", self.connects);
        let client = &mut self.clients[c];
        client.worker = worker % self.workers;
        client.session = Some(ClientSession::new(self.env.clone(), id, None, now()));
        let frame = format!(r#"{{"id":1,"connect":{{"token":"{token}"}}}}"#);
        let out = self.call(c, |s, h| s.handle_frame(frame.as_bytes(), now(), h));
        assert!(out[0]["connect"]["client"].is_string(), "{out:?}");
    }

    fn subscribe(&mut self, c: usize) {
        let client = &self.clients[c];
        if client.session.is_none() || client.subscribed {
            return;
        }
        let frame = match (&client.epoch, client.next) {
            (Some(epoch), next) if next > 0 => format!(
                r#"{{"id":2,"subscribe":{{"channel":"{CHANNEL}","recover":true,"epoch":"{epoch}","offset":{}}}}}"#,
                next - 1
            ),
            _ => format!(r#"{{"id":2,"subscribe":{{"channel":"{CHANNEL}"}}}}"#),
        };
        let out = self.call(c, |s, h| s.handle_frame(frame.as_bytes(), now(), h));
        let r = &out[0]["subscribe"];
        assert!(r.is_object(), "{out:?}");
        let top = r["offset"].as_u64().unwrap_or(0);
        let client = &mut self.clients[c];
        client.subscribed = true;
        client.epoch = Some(r["epoch"].as_str().unwrap().to_owned());
        if r["was_recovering"] == true {
            if r["recovered"] == true {
                client.recovered += 1;
                for p in r["publications"].as_array().into_iter().flatten() {
                    client.show(p["offset"].as_u64().unwrap(), "recovered");
                }
                assert_eq!(client.next, top + 1, "recovered up to the reply's offset");
                return;
            }
            client.not_recovered += 1;
        }
        // A fresh stream (first subscribe, or the server said it could not fill the gap).
        client.next = top + 1;
    }

    fn publish(&mut self, c: usize) {
        if !self.clients[c].subscribed {
            return;
        }
        let frame = format!(r#"{{"id":3,"publish":{{"channel":"{CHANNEL}","data":{{"c":{c}}}}}}}"#);
        let out = self.call(c, |s, h| s.handle_frame(frame.as_bytes(), now(), h));
        assert!(out[0].get("error").is_none(), "{out:?}");
    }

    fn disconnect(&mut self, c: usize) {
        self.call(c, |s, h| s.on_closed(h));
        let client = &mut self.clients[c];
        client.session = None;
        client.subscribed = false;
    }

    /// Worker `w` fans out up to `n` entries of its inbox, as `Worker::fan_out_channel` does.
    fn drain(&mut self, w: usize, n: usize) {
        for _ in 0..n {
            let Some(d) = self.world.wires.inboxes[w].pop() else {
                break;
            };
            let push: Value = serde_json::from_slice(&d.frame).unwrap();
            assert_eq!(push["push"]["pub"]["offset"].as_u64(), Some(d.offset));
            let mut shown = Vec::new();
            let mut gapped = Vec::new();
            if let Some(local) = self.world.locals[w].get(&d.room) {
                for (_, m) in local.members.iter() {
                    match m.admit(d.offset) {
                        Admit::Deliver => shown.push(m.conn),
                        Admit::Skip => {}
                        Admit::Gap { .. } => gapped.push(m.conn),
                    }
                }
            }
            for c in shown {
                self.clients[c].show(d.offset, "live");
            }
            for c in gapped {
                self.tell_gap(c);
            }
        }
        // As the worker does after each drain: publications the inbox dropped.
        if let Some(lost) = self.world.wires.inboxes[w].take_lost() {
            let mut gapped = Vec::new();
            self.world.locals[w].apply_lost(&lost, |_, c| gapped.push(c));
            for c in gapped {
                self.tell_gap(c);
            }
        }
    }

    fn tell_gap(&mut self, c: usize) {
        let out = self.call(c, |s, h| s.on_insufficient_state(CHANNEL, h));
        assert_eq!(out[0]["push"]["unsubscribe"]["code"], 2500, "{out:?}");
        self.clients[c].subscribed = false;
    }

    fn run(&mut self, op: &Op) {
        match *op {
            Op::Publish(c) => self.publish(c % self.clients.len()),
            Op::Subscribe(c) => self.subscribe(c % self.clients.len()),
            Op::Disconnect(c) => self.disconnect(c % self.clients.len()),
            Op::Connect(c, w) => self.connect(c % self.clients.len(), w),
            Op::Drain(w, n) => self.drain(w % self.workers, n),
        }
    }

    /// Everyone back, everything drained: every client must stand at the channel's top.
    fn settle(&mut self) {
        for c in 0..self.clients.len() {
            self.connect(c, c);
        }
        for _ in 0..3 {
            for w in 0..self.workers {
                self.drain(w, usize::MAX);
            }
            for c in 0..self.clients.len() {
                self.subscribe(c);
            }
        }
        for w in 0..self.workers {
            self.drain(w, usize::MAX);
        }
        let top = self
            .world
            .engine
            .history(
                CHANNEL,
                HistoryQuery {
                    since: None,
                    limit: 0,
                    reverse: false,
                },
                HistoryOptions {
                    size: 1,
                    ttl: std::time::Duration::from_secs(300),
                    meta_ttl: std::time::Duration::ZERO,
                },
                now().at,
            )
            .map(|(_, p)| p.offset)
            .unwrap_or(0);
        for (i, c) in self.clients.iter().enumerate() {
            assert!(c.subscribed, "client {i} is subscribed at the end");
            assert_eq!(c.next, top + 1, "client {i} has everything up to {top}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn every_subscriber_sees_one_contiguous_order(
        workers in 2..=4usize,
        clients in 2..=6usize,
        inbox in 2..=12usize,
        history_size in prop_oneof![Just(4usize), Just(1000usize)],
        ops in prop::collection::vec(op(), 1..250),
    ) {
        let mut sim = Sim::new(workers, clients, inbox, history_size);
        for c in 0..clients {
            sim.subscribe(c);
        }
        for op in &ops {
            sim.run(op);
        }
        sim.settle();
        if history_size == 1000 {
            // History holds everything: no resubscription may ever lose the stream.
            for c in &sim.clients {
                prop_assert_eq!(c.not_recovered, 0);
            }
        }
    }
}

/// The property test must be able to see what it claims: with tiny inboxes and a burst of
/// publishes, gaps happen and are recovered.
#[test]
fn drops_happen_and_are_recovered() {
    let mut sim = Sim::new(2, 3, 2, 1000);
    for c in 0..3 {
        sim.subscribe(c);
    }
    for _ in 0..20 {
        sim.publish(0);
    }
    assert!(
        sim.world
            .wires
            .inboxes
            .iter()
            .any(|i| i.dropped.load(std::sync::atomic::Ordering::Relaxed) > 0)
    );
    sim.settle();
    assert!(
        sim.clients.iter().all(|c| c.recovered > 0),
        "every client was gapped and recovered"
    );
    assert!(
        sim.clients
            .iter()
            .all(|c| c.shown == (1..=20).collect::<Vec<_>>())
    );
}

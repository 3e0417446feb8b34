//! The Redis engine: several ringcast nodes share channels, history and presence through one
//! Redis (a real server, 6.2 or newer), with Centrifugo's layout of keys.
//!
//! - **Publish** is one Lua script, atomic in Redis: the channel's next offset (`HINCRBY` of
//!   the meta hash, epoch kept there), the publication appended to the channel's stream
//!   (`XADD` with the offset as entry id, `MAXLEN` the history size, the stream expiring after
//!   the history TTL) and `PUBLISH` to every node listening. Channels without history are a
//!   plain `PUBLISH`. The publishing node delivers to its own subscribers from the PUB/SUB echo
//!   like every other node, so all nodes see one order per channel: Redis'.
//! - **Subscribe**: a node listens to a channel while it has subscribers of it
//!   ([`pubsub`]); the first subscriber waits for Redis to confirm, then reads the position.
//! - **History and recovery**: `XRANGE`/`XREVRANGE` by offset, with the position, in one
//!   script.
//! - **Presence**: a hash of entries and a sorted set of expiry times per channel; each node
//!   refreshes the entries of its own clients every third of the presence TTL, so the entries
//!   of a node that died expire; expired ones are dropped when read.
//!
//! - **Connections**: [`address`] parses `redis://` / `rediss://` (TLS) with a password;
//!   [`conn`] is the command connection (ringcast's own RESP client: login, deadline, an
//!   interrupted read resumed); `link` splits the subscriber connection between its reader
//!   thread and the workers that write SUBSCRIBE; [`resp`] is the wire format.
//!
//! Calls are synchronous on the calling thread (a worker, or the control thread for the
//! server API): each costs that thread one round trip to Redis. Connections come from a pool
//! holding at most one per thread that calls at once. A failed call is an
//! [`EngineError::Unavailable`] for that command (error 100 to the client), counted and
//! logged; nothing is retried behind the client's back. After a call found Redis unreachable
//! or silent, calls fail at once until an attempt a second later finds it again ([`breaker`]):
//! a hung Redis costs a worker one timeout, not one per call.
//!
//! Must not: know about WebSocket or workers (the outlet does the delivery).

pub mod address;
mod breaker;
pub mod conn;
mod link;
pub mod message;
pub mod pubsub;
pub mod resp;
mod scripts;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tracing::{info, warn};

use super::{
    Broker, EngineError, EngineReport, HistoryOptions, HistoryQuery, Outlet, PresenceEntry,
    PresenceManager, Stored, StreamPosition,
};
use crate::client_protocol::reply::{ClientInfo, Publication, write_publication_push};
use conn::{Conn, ConnError};
use pubsub::Subscriber;
use resp::{Arg, Value};

/// How the engine reaches Redis.
#[derive(Debug, Clone)]
pub struct RedisOptions {
    /// `redis://host:port` (or `host:port`).
    pub address: String,
    /// Prefix of every key and PUB/SUB channel (nodes sharing channels use the same).
    pub prefix: String,
    /// How long a presence entry lives without its node refreshing it.
    pub presence_ttl: Duration,
    /// Presence entries per channel at most (more are refused, counted, logged).
    pub max_presence_per_channel: usize,
    /// How long one call may take before it fails.
    pub timeout: Duration,
    /// With `rediss://`: the PEM file of the CA(s) that signed Redis' certificate.
    pub tls_ca_file: Option<std::path::PathBuf>,
}

/// Why the Redis engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum RedisStartError {
    #[error("engine.redis.address {0}")]
    Address(#[from] address::AddressError),
    #[error("engine.redis.tls_ca_file: {0}")]
    Tls(String),
    #[error("Redis at {0} did not confirm this node's subscription to the nodes' control channel")]
    Control(String),
    #[error("cannot reach Redis at {address}: {source}")]
    Connect { address: String, source: ConnError },
}

/// A presence entry as stored in Redis.
#[derive(serde::Serialize, serde::Deserialize)]
struct StoredPresence<'a> {
    #[serde(borrow)]
    client: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    user: std::borrow::Cow<'a, str>,
    #[serde(borrow, skip_serializing_if = "Option::is_none", default)]
    conn_info: Option<std::borrow::Cow<'a, str>>,
}

/// This node's presence entries: (channel, client) → the stored entry, refreshed in Redis.
type PresenceKey = (Arc<str>, Arc<str>);
type LocalPresence = HashMap<PresenceKey, String>;

pub struct RedisEngine {
    address: address::RedisAddress,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The address without its password, for logs.
    shown: String,
    pool: Mutex<Vec<Conn>>,
    opts: RedisOptions,
    scripts: scripts::Scripts,
    subscriber: Arc<Subscriber>,
    local_presence: Arc<Mutex<LocalPresence>>,
    refresher: Option<std::thread::JoinHandle<()>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    errors: Arc<AtomicU64>,
    presence_refused: AtomicU64,
    breaker: Arc<Mutex<breaker::Breaker>>,
}

/// A channel's presence hash and expiry set.
fn presence_keys(prefix: &str, channel: &str) -> (String, String) {
    (
        format!("{prefix}.presence.data.{channel}"),
        format!("{prefix}.presence.expire.{channel}"),
    )
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn secs(d: Duration) -> u64 {
    d.as_secs().max(1)
}

/// A first connection to Redis: the address parsed, the TLS configuration made, logged in and
/// answering `PING`.
struct First {
    address: address::RedisAddress,
    shown: String,
    tls: Option<Arc<rustls::ClientConfig>>,
    conn: Conn,
}

fn connect_first(opts: &RedisOptions) -> Result<First, RedisStartError> {
    let address = address::RedisAddress::parse(&opts.address)?;
    let shown = address.shown();
    let unreachable = |source| RedisStartError::Connect {
        address: shown.clone(),
        source,
    };
    let tls = match (&opts.tls_ca_file, address.tls) {
        (Some(ca), true) => Some(Arc::new(
            crate::tls::client_config_trusting(ca)
                .map_err(|e| RedisStartError::Tls(e.to_string()))?,
        )),
        _ => None,
    };
    let mut conn = Conn::connect(&address, tls.as_ref(), opts.timeout).map_err(unreachable)?;
    conn.query(&[b"PING"]).map_err(unreachable)?;
    Ok(First {
        address,
        shown,
        tls,
        conn,
    })
}

/// Whether Redis at `opts.address` answers (`ringcast check`): the address as shown, or why not.
pub fn probe(opts: &RedisOptions) -> Result<String, RedisStartError> {
    connect_first(opts).map(|f| f.shown)
}

impl RedisEngine {
    /// Connects (one call to check Redis answers) and starts the node's subscriber.
    pub fn start(outlet: Arc<dyn Outlet>, opts: RedisOptions) -> Result<Self, RedisStartError> {
        let First {
            address,
            shown,
            tls,
            conn: first,
        } = connect_first(&opts)?;
        let breaker = Arc::new(Mutex::new(breaker::Breaker::new(
            opts.timeout,
            Instant::now(),
        )));
        // The subscriber connecting again is Redis answering again.
        let on_connect = {
            let (breaker, shown) = (breaker.clone(), shown.clone());
            Box::new(move || answered(&breaker, &shown))
        };
        let subscriber = Subscriber::start(
            &address,
            tls.clone(),
            format!("{}.client.", opts.prefix),
            format!("{}.control", opts.prefix),
            outlet,
            on_connect,
        );
        if !subscriber.control_confirmed() {
            subscriber.stop();
            return Err(RedisStartError::Control(shown));
        }
        let local_presence: Arc<Mutex<LocalPresence>> = Arc::default();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let errors = Arc::new(AtomicU64::new(0));
        let refresher = {
            let (address, tls, opts, presence, stop, errors) = (
                address.clone(),
                tls.clone(),
                opts.clone(),
                local_presence.clone(),
                stop.clone(),
                errors.clone(),
            );
            std::thread::Builder::new()
                .name("ringcast-redis-presence".into())
                .spawn(move || refresh_presence(address, tls, opts, presence, stop, errors))
                .expect("spawning the presence refresher")
        };
        Ok(Self {
            breaker,
            address,
            tls,
            shown,
            pool: Mutex::new(vec![first]),
            scripts: scripts::Scripts::new(),
            opts,
            subscriber,
            local_presence,
            refresher: Some(refresher),
            stop,
            errors,
            presence_refused: AtomicU64::new(0),
        })
    }

    /// Runs `f` on a pooled connection, unless Redis is taken as unavailable ([`breaker`]); a
    /// failure is counted and drops the connection unless it was only an error reply.
    fn call<T>(
        &self,
        what: &str,
        f: impl FnOnce(&mut Conn) -> Result<T, ConnError>,
    ) -> Result<T, EngineError> {
        self.admit(what)?;
        let pooled = lock(&self.pool).pop();
        let mut con = match pooled {
            Some(c) => c,
            None => Conn::connect(&self.address, self.tls.as_ref(), self.opts.timeout)
                .map_err(|e| self.failed(what, e))?,
        };
        match f(&mut con) {
            Ok(r) => {
                lock(&self.pool).push(con);
                self.answered();
                Ok(r)
            }
            Err(e) => {
                if e.connection_usable() {
                    lock(&self.pool).push(con);
                    self.answered();
                }
                Err(self.failed(what, e))
            }
        }
    }

    /// Whether to call Redis now: an error naming the outage when not.
    fn admit(&self, what: &str) -> Result<(), EngineError> {
        match lock(&self.breaker).admit(Instant::now()) {
            breaker::Admit::Call | breaker::Admit::Try => Ok(()),
            breaker::Admit::Refuse { for_, again_in } => Err(EngineError::Unavailable(format!(
                "{what}: Redis at {} has not answered for {} ms; the node tries again in {} ms",
                self.shown,
                for_.as_millis(),
                again_in.as_millis().max(1)
            ))),
        }
    }

    /// Redis answered a call (an error reply included).
    fn answered(&self) {
        answered(&self.breaker, &self.shown);
    }

    fn failed(&self, what: &str, e: ConnError) -> EngineError {
        self.errors.fetch_add(1, Ordering::Relaxed);
        warn!(redis = %self.shown, "Redis engine: {what} failed: {e}");
        if !e.connection_usable() && lock(&self.breaker).failed(Instant::now()) {
            warn!(
                redis = %self.shown,
                "Redis engine: Redis taken as unavailable; calls fail at once until an attempt \
                 (one every {:?}) finds it again",
                breaker::RETRY_AFTER
            );
        }
        EngineError::Unavailable(format!("{what}: {e}"))
    }

    fn key(&self, kind: &str, channel: &str) -> String {
        format!("{}.{kind}.{channel}", self.opts.prefix)
    }

    /// `PUBLISH` of a push without offset ([`message`]'s `e<push>`) to the channel's nodes.
    fn publish_event(&self, channel: &str, push: &[u8]) -> Result<(), EngineError> {
        self.call("PUBLISH", |c| {
            publish_event_on(c, &self.opts.prefix, channel, push)
        })
    }
}

/// `PUBLISH <prefix>.client.<channel> e<push>`, written in place.
fn publish_event_on(
    c: &mut Conn,
    prefix: &str,
    channel: &str,
    push: &[u8],
) -> Result<(), ConnError> {
    c.query_in_place(
        |out| {
            resp::push_command(out, 3);
            resp::push_arg(out, Arg::Bytes(b"PUBLISH"));
            resp::push_arg(
                out,
                Arg::Parts(&[prefix.as_bytes(), b".client.", channel.as_bytes()]),
            );
            resp::push_arg(out, Arg::Parts(&[message::EVENT, push]));
        },
        |_| Some(()),
    )
}

/// A channel's epoch in case it has none yet (the publish script keeps the first): 8 random
/// letters from a generator per thread, seeded from the OS once (no syscall, no allocation
/// per publish). Not a secret: only different per stream lifetime.
fn candidate_epoch() -> [u8; 8] {
    thread_local!(static STATE: std::cell::Cell<u64> = std::cell::Cell::new({
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        u64::from_le_bytes(seed) | 1
    }));
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut x = STATE.with(|s| {
        // xorshift64*
        let mut x = s.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        s.set(x);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    });
    let mut out = [0u8; 8];
    for b in &mut out {
        *b = LETTERS[(x % LETTERS.len() as u64) as usize];
        x /= LETTERS.len() as u64;
    }
    out
}

impl Drop for RedisEngine {
    fn drop(&mut self) {
        self.subscriber.stop();
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.refresher.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

/// Re-adds this node's presence entries every third of the TTL until `stop`.
fn refresh_presence(
    address: address::RedisAddress,
    tls: Option<Arc<rustls::ClientConfig>>,
    opts: RedisOptions,
    presence: Arc<Mutex<LocalPresence>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    errors: Arc<AtomicU64>,
) {
    let every = (opts.presence_ttl / 3).max(Duration::from_millis(100));
    let ttl = secs(opts.presence_ttl).to_string();
    let mut con: Option<Conn> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::park_timeout(every);
        if stop.load(Ordering::Acquire) {
            return;
        }
        let entries: Vec<(PresenceKey, String)> = lock(&presence)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if entries.is_empty() {
            continue;
        }
        let mut c = match con.take() {
            Some(c) => c,
            None => match Conn::connect(&address, tls.as_ref(), opts.timeout) {
                Ok(c) => c,
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    warn!("Redis engine: presence refresh cannot connect: {e}");
                    continue;
                }
            },
        };
        let expire_at = (unix_now() + secs(opts.presence_ttl)).to_string();
        let keys: Vec<(String, String)> = entries
            .iter()
            .map(|((channel, _), _)| presence_keys(&opts.prefix, channel))
            .collect();
        let mut cmds: Vec<Vec<&[u8]>> = Vec::with_capacity(entries.len() * 4);
        for (((_, client_id), stored), (data, expire)) in entries.iter().zip(&keys) {
            let id = client_id.as_bytes();
            cmds.push(vec![b"HSET", data.as_bytes(), id, stored.as_bytes()]);
            cmds.push(vec![b"ZADD", expire.as_bytes(), expire_at.as_bytes(), id]);
            cmds.push(vec![b"EXPIRE", data.as_bytes(), ttl.as_bytes()]);
            cmds.push(vec![b"EXPIRE", expire.as_bytes(), ttl.as_bytes()]);
        }
        if let Err(e) = c.pipeline(&cmds) {
            errors.fetch_add(1, Ordering::Relaxed);
            warn!("Redis engine: presence refresh failed: {e}");
            continue;
        }
        // An entry removed while the refresh was on its way was just written back: remove it
        // again, or it would show for a whole TTL after its client left.
        let gone: Vec<(PresenceKey, (String, String))> = {
            let now_held = lock(&presence);
            entries
                .into_iter()
                .map(|(k, _)| k)
                .zip(keys)
                .filter(|(k, _)| !now_held.contains_key(k))
                .collect()
        };
        if gone.is_empty() {
            con = Some(c);
            continue;
        }
        let mut cmds: Vec<Vec<&[u8]>> = Vec::with_capacity(gone.len() * 2);
        for ((_, client_id), (data, expire)) in &gone {
            cmds.push(vec![b"HDEL", data.as_bytes(), client_id.as_bytes()]);
            cmds.push(vec![b"ZREM", expire.as_bytes(), client_id.as_bytes()]);
        }
        match c.pipeline(&cmds) {
            Ok(_) => con = Some(c),
            Err(e) => {
                errors.fetch_add(1, Ordering::Relaxed);
                warn!("Redis engine: presence refresh failed: {e}");
            }
        }
    }
}

/// Redis answered (a call, or the subscriber connecting): calls go through again.
fn answered(breaker: &Mutex<breaker::Breaker>, shown: &str) {
    if lock(breaker).succeeded(Instant::now()) {
        info!(redis = %shown, "Redis engine: Redis answers again");
    }
}

fn unix_now() -> u64 {
    crate::session::Now::system().unix
}

impl Broker for RedisEngine {
    fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        opts: HistoryOptions,
        _now: Instant,
    ) -> Result<Option<StreamPosition>, EngineError> {
        let publication = Publication {
            data,
            info,
            offset: 0,
        };
        let (prefix, ch) = (self.opts.prefix.as_bytes(), channel.as_bytes());
        if !opts.enabled() {
            self.call("publish", |c| {
                let mut push = c.take_scratch();
                write_publication_push(&mut push, channel, &publication);
                let r = publish_event_on(c, &self.opts.prefix, channel, &push);
                c.put_scratch(push);
                r
            })?;
            return Ok(None);
        }
        let candidate = candidate_epoch();
        let (size, ttl, meta_ttl) = (
            opts.size as u64,
            secs(opts.ttl),
            secs(opts.meta_ttl_or_default()),
        );
        let (offset, epoch) = self.call("publish", |c| {
            let mut body = c.take_scratch();
            serde_json::to_writer(&mut body, &publication)
                .expect("serialising to a Vec cannot fail");
            let keys = [
                Arg::Parts(&[prefix, b".stream.", ch]),
                Arg::Parts(&[prefix, b".stream.meta.", ch]),
                Arg::Parts(&[prefix, b".client.", ch]),
            ];
            let args = [
                Arg::Bytes(&body),
                Arg::Number(size),
                Arg::Number(ttl),
                Arg::Number(meta_ttl),
                Arg::Bytes(&candidate),
            ];
            let r = self.scripts.publish.run_in_place(
                c,
                keys.into_iter(),
                args.into_iter(),
                scripts::publish_reply,
            );
            c.put_scratch(body);
            let (offset, epoch, len) = r?;
            let epoch = c
                .interned(&epoch[..len])
                .ok_or(ConnError::Unexpected("the publish script"))?;
            Ok((offset, epoch))
        })?;
        Ok(Some(StreamPosition { offset, epoch }))
    }

    fn publish_presence_event(&self, channel: &str, join: bool, info: &ClientInfo<'_>) {
        // Logged and counted by `call`; a lost join or leave push is not the client's error.
        let _ = self.publish_event(channel, &super::presence_event_push(channel, join, info));
    }

    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
        opts: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), EngineError> {
        if !opts.enabled() {
            return Err(EngineError::NoHistory);
        }
        let (prefix, ch) = (self.opts.prefix.as_bytes(), channel.as_bytes());
        let candidate = candidate_epoch();
        let keys = [
            Arg::Parts(&[prefix, b".stream.", ch]),
            Arg::Parts(&[prefix, b".stream.meta.", ch]),
        ];
        let args = [
            query.since.map_or(Arg::Bytes(b""), Arg::Number),
            Arg::Number(query.limit.min(opts.size) as u64),
            Arg::Bytes(if query.reverse { b"1" } else { b"0" }),
            Arg::Number(secs(opts.meta_ttl_or_default())),
            Arg::Bytes(&candidate),
        ];
        self.call("history", |c| {
            let v = self.scripts.history.run_in_place(
                c,
                keys.into_iter(),
                args.into_iter(),
                resp::whole_value,
            )?;
            scripts::history_result(v, now).ok_or(ConnError::Unexpected("the history script"))
        })
    }

    fn remove_history(&self, channel: &str) {
        let stream = self.key("stream", channel);
        let _ = self.call("history removal", |c| {
            c.query(&[b"DEL", stream.as_bytes()]).map(drop)
        });
    }

    fn node_subscribe(&self, channel: &str) -> Result<(), EngineError> {
        self.admit("subscribe")?;
        match self.subscriber.subscribe(channel) {
            Ok(()) => {
                self.answered();
                Ok(())
            }
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                if lock(&self.breaker).failed(Instant::now()) {
                    warn!(
                        redis = %self.shown,
                        "Redis engine: Redis taken as unavailable (a subscription was not \
                         confirmed); calls fail at once until an attempt finds it again"
                    );
                }
                Err(e)
            }
        }
    }

    fn node_unsubscribe(&self, channel: &str) {
        self.subscriber.unsubscribe(channel)
    }

    fn clustered(&self) -> bool {
        true
    }

    fn tell_nodes(&self, msg: &[u8]) -> Result<(), EngineError> {
        let name = format!("{}.control", self.opts.prefix);
        self.call("PUBLISH control", |c| {
            c.query(&[b"PUBLISH", name.as_bytes(), msg]).map(drop)
        })
    }

    fn keep(&self, set: &str, key: &str, value: Option<&[u8]>) -> Result<(), EngineError> {
        let name = self.key("kept", set);
        self.call("keep", |c| match value {
            Some(v) => c
                .query(&[b"HSET", name.as_bytes(), key.as_bytes(), v])
                .map(drop),
            None => c
                .query(&[b"HDEL", name.as_bytes(), key.as_bytes()])
                .map(drop),
        })
    }

    fn kept(&self, set: &str) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        let name = self.key("kept", set);
        self.call("kept", |c| {
            let v = c.query(&[b"HGETALL", name.as_bytes()])?;
            scripts::pairs(v).ok_or(ConnError::Unexpected("HGETALL"))
        })
    }

    fn forget_if(&self, set: &str, key: &str, value: &[u8]) -> Result<(), EngineError> {
        let name = self.key("kept", set);
        self.call("forget", |c| {
            self.scripts
                .forget_if
                .run(c, &[name.as_bytes()], &[key.as_bytes(), value])
                .map(drop)
        })
    }

    fn report(&self) -> EngineReport {
        let breaker = lock(&self.breaker);
        EngineReport {
            history_bytes: None,
            presence_entries: Some(lock(&self.local_presence).len() as u64),
            bounds_hit: vec![("presence", self.presence_refused.load(Ordering::Relaxed))],
            backend_errors: Some(
                self.errors.load(Ordering::Relaxed)
                    + self.subscriber.errors.load(Ordering::Relaxed),
            ),
            backend_connects: Some(self.subscriber.connects.load(Ordering::Relaxed)),
            backend_available: Some(breaker.available()),
            backend_refused: Some(breaker.refused),
        }
    }
}

impl PresenceManager for RedisEngine {
    fn add_presence(&self, channel: &str, entry: PresenceEntry) -> bool {
        let stored = serde_json::to_string(&StoredPresence {
            client: (&*entry.client).into(),
            user: (&*entry.user).into(),
            conn_info: entry.conn_info.as_deref().map(Into::into),
        })
        .expect("serialising to a String cannot fail");
        let (data, expire) = presence_keys(&self.opts.prefix, channel);
        let ttl = secs(self.opts.presence_ttl);
        let (expire_at, ttl, max, now) = (
            (unix_now() + ttl).to_string(),
            ttl.to_string(),
            self.opts.max_presence_per_channel.to_string(),
            unix_now().to_string(),
        );
        let r = self.call("presence add", |c| {
            let v = self.scripts.presence_add.run(
                c,
                &[data.as_bytes(), expire.as_bytes()],
                &[
                    entry.client.as_bytes(),
                    stored.as_bytes(),
                    expire_at.as_bytes(),
                    ttl.as_bytes(),
                    max.as_bytes(),
                    now.as_bytes(),
                ],
            )?;
            match v {
                Value::Int(n) => Ok(n),
                _ => Err(ConnError::Unexpected("the presence script")),
            }
        });
        match r {
            Ok(1) => {
                lock(&self.local_presence).insert((channel.into(), entry.client), stored);
                true
            }
            Ok(_) => {
                self.presence_refused.fetch_add(1, Ordering::Relaxed);
                warn!(
                    channel,
                    limit = self.opts.max_presence_per_channel,
                    "presence bound reached (per channel, Redis engine): entry not added"
                );
                false
            }
            Err(_) => false,
        }
    }

    fn remove_presence(&self, channel: &str, client: &str) {
        lock(&self.local_presence).remove(&(Arc::from(channel), Arc::from(client)));
        let (data, expire) = presence_keys(&self.opts.prefix, channel);
        let _ = self.call("presence removal", |c| {
            c.pipeline(&[
                vec![b"HDEL", data.as_bytes(), client.as_bytes()],
                vec![b"ZREM", expire.as_bytes(), client.as_bytes()],
            ])
            .map(drop)
        });
    }

    fn presence(&self, channel: &str) -> Vec<PresenceEntry> {
        let (data, expire) = presence_keys(&self.opts.prefix, channel);
        let now = unix_now().to_string();
        let r = self.call("presence", |c| {
            let v = self.scripts.presence_get.run(
                c,
                &[data.as_bytes(), expire.as_bytes()],
                &[now.as_bytes()],
            )?;
            scripts::bulks(v).ok_or(ConnError::Unexpected("the presence script"))
        });
        r.unwrap_or_default()
            .iter()
            .filter_map(|raw| {
                let p: StoredPresence = serde_json::from_slice(raw).ok()?;
                Some(PresenceEntry {
                    client: p.client.into(),
                    user: p.user.into(),
                    conn_info: p.conn_info.map(Into::into),
                })
            })
            .collect()
    }

    fn presence_stats(&self, channel: &str) -> (usize, usize) {
        let entries = self.presence(channel);
        let users: std::collections::HashSet<&str> = entries.iter().map(|e| &*e.user).collect();
        (entries.len(), users.len())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn candidate_epochs_are_letters_and_differ() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..10_000 {
            let e = super::candidate_epoch();
            assert!(e.iter().all(u8::is_ascii_alphabetic), "{e:?}");
            seen.insert(e);
        }
        assert_eq!(seen.len(), 10_000, "52^8 values: no repeats in 10,000");
    }
}

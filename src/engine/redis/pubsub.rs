//! The node's subscriber connection to Redis: which channels this node listens to, and the
//! thread that reads what Redis publishes into them and hands it to the outlet.
//!
//! A channel is subscribed while at least one worker has a subscriber of it
//! ([`Subscriber::subscribe`] counts workers); the call returns once Redis confirmed the
//! SUBSCRIBE, so a history position read after it can never miss a publication. Everything a
//! channel gets arrives on this one connection, read by one thread, so the outlet sees each
//! channel's publications in Redis' order, which is offset order.
//!
//! When the connection breaks, the reader connects again and subscribes every channel with
//! subscribers anew. Publications sent meanwhile are lost for this node: subscribers of
//! channels with history see the offset jump at the next publication and recover (the
//! session's gap handling); channels without history lose them silently, as in Centrifugo.
//!
//! Must not: call Redis for anything but SUBSCRIBE/UNSUBSCRIBE; block the reader on a worker.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::address::RedisAddress;
use super::conn::Conn;
use super::link::{LinkReader, LinkWriter};
use super::resp;
use crate::engine::{EngineError, Outlet};

/// How long a first subscriber waits for Redis to confirm the node's subscription.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(3);
/// How long connecting (and logging in) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// Channels per SUBSCRIBE when subscribing everything again after a reconnect.
const RESUBSCRIBE_BATCH: usize = 256;
/// The reader's buffer: grows to hold one message, bounded by [`resp::MAX_BULK`].
const READ_CHUNK: usize = 64 << 10;

#[derive(Default)]
struct Channel {
    /// Workers with subscribers of the channel.
    workers: u32,
    /// SUBSCRIBE/UNSUBSCRIBE commands sent for it and not yet confirmed.
    pending: u32,
}

#[derive(Default)]
struct State {
    /// By Redis channel name.
    channels: HashMap<String, Channel>,
    /// Redis channel names of commands awaiting confirmation, in the order sent (Redis
    /// confirms in that order, one reply per channel).
    pending: VecDeque<String>,
    /// The connection's write half, while connected.
    writer: Option<LinkWriter>,
}

/// What the reader thread needs, shared with the engine.
pub struct Subscriber {
    state: Mutex<State>,
    changed: Condvar,
    address: RedisAddress,
    tls: Option<Arc<rustls::ClientConfig>>,
    /// The address as logs show it (no password).
    target: String,
    /// Redis channel names are `<channel_prefix><channel>`.
    channel_prefix: String,
    /// The nodes' control channel, subscribed for the node's whole life.
    control_name: String,
    outlet: Arc<dyn Outlet>,
    /// Called at every connection made (Redis answers), before it is counted.
    on_connect: Box<dyn Fn() + Send + Sync>,
    stop: AtomicBool,
    pub connects: AtomicU64,
    pub errors: AtomicU64,
}

fn lock(m: &Mutex<State>) -> MutexGuard<'_, State> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Subscriber {
    /// Starts the reader thread. `control_name`: the Redis channel whose messages go to
    /// [`Outlet::control`]; `on_connect` is called at each connection made.
    pub fn start(
        address: &RedisAddress,
        tls: Option<Arc<rustls::ClientConfig>>,
        channel_prefix: String,
        control_name: String,
        outlet: Arc<dyn Outlet>,
        on_connect: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<Self> {
        let mut state = State::default();
        // Counted as a worker that never leaves: subscribed at every (re)connect.
        state.channels.insert(
            control_name.clone(),
            Channel {
                workers: 1,
                pending: 0,
            },
        );
        let s = Arc::new(Self {
            state: Mutex::new(state),
            changed: Condvar::new(),
            address: address.clone(),
            tls,
            target: address.shown(),
            channel_prefix,
            control_name,
            outlet,
            on_connect,
            stop: AtomicBool::new(false),
            connects: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        });
        let reader = s.clone();
        std::thread::Builder::new()
            .name("ringcast-redis-sub".into())
            .spawn(move || reader.run())
            .expect("spawning the Redis subscriber thread");
        s
    }

    /// Ends the reader thread (it holds an `Arc` of this, so the engine calls it on drop).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        if let Some(w) = &lock(&self.state).writer {
            w.shutdown();
        }
    }

    /// One more worker has subscribers of `channel`: returns once the node's subscription is
    /// confirmed by Redis.
    pub fn subscribe(&self, channel: &str) -> Result<(), EngineError> {
        let name = format!("{}{channel}", self.channel_prefix);
        let mut st = lock(&self.state);
        let c = st.channels.entry(name.clone()).or_default();
        c.workers += 1;
        if c.workers == 1 && st.writer.is_some() {
            send(&mut st, b"SUBSCRIBE", name.clone());
        }
        if self.confirmed(st, &name) {
            return Ok(());
        }
        self.unsubscribe(channel);
        Err(EngineError::Unavailable(format!(
            "Redis at {} did not confirm the subscription to {channel:?} within {CONFIRM_TIMEOUT:?}",
            self.target
        )))
    }

    /// Waits up to `CONFIRM_TIMEOUT` (3 s) for the node's subscription to the control channel:
    /// from then on, no other node's notice is missed. False if Redis did not confirm.
    pub fn control_confirmed(&self) -> bool {
        self.confirmed(lock(&self.state), &self.control_name)
    }

    /// Waits up to [`CONFIRM_TIMEOUT`] until Redis confirmed every command sent for the Redis
    /// channel `name` on a live connection.
    fn confirmed(&self, mut st: MutexGuard<'_, State>, name: &str) -> bool {
        let deadline = Instant::now() + CONFIRM_TIMEOUT;
        loop {
            if st.writer.is_some() && st.channels.get(name).is_some_and(|c| c.pending == 0) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            st = self
                .changed
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A worker lost its last subscriber of `channel`.
    pub fn unsubscribe(&self, channel: &str) {
        let name = format!("{}{channel}", self.channel_prefix);
        let mut st = lock(&self.state);
        let Some(c) = st.channels.get_mut(&name) else {
            return;
        };
        c.workers = c.workers.saturating_sub(1);
        if c.workers > 0 {
            return;
        }
        let idle = c.pending == 0;
        if st.writer.is_some() {
            send(&mut st, b"UNSUBSCRIBE", name);
        } else if idle {
            st.channels.remove(&name);
        }
    }

    fn run(self: Arc<Self>) {
        let mut backoff = Duration::from_millis(50);
        while !self.stop.load(Ordering::Acquire) {
            match self.session() {
                Ok(()) => return,
                Err(e) => {
                    if self.stop.load(Ordering::Acquire) {
                        return;
                    }
                    self.errors.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        redis = %self.target,
                        "Redis subscriber connection: {e}; connecting again in {backoff:?} \
                         (publications meanwhile do not reach this node)"
                    );
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
        }
    }

    /// One connection's life: connect, subscribe what has subscribers, read until it breaks.
    /// `Ok` only when stopped.
    fn session(&self) -> Result<(), String> {
        let wire = Conn::connect(&self.address, self.tls.as_ref(), CONNECT_TIMEOUT)
            .map_err(|e| e.to_string())?
            .into_wire();
        let (mut sock, writer) = super::link::split(wire).map_err(|e| e.to_string())?;
        {
            let mut st = lock(&self.state);
            st.pending.clear();
            st.channels.retain(|_, c| c.workers > 0);
            let names: Vec<String> = st.channels.keys().cloned().collect();
            for c in st.channels.values_mut() {
                c.pending = 0;
            }
            st.writer = Some(writer);
            for batch in names.chunks(RESUBSCRIBE_BATCH) {
                send_many(&mut st, b"SUBSCRIBE", batch);
            }
            self.changed.notify_all();
        }
        (self.on_connect)();
        self.connects.fetch_add(1, Ordering::Relaxed);
        info!(redis = %self.target, "Redis subscriber connected");
        let r = self.read_loop(&mut sock);
        // Whatever Redis publishes until the next connection is lost for this node.
        self.outlet.lost_all();
        let mut st = lock(&self.state);
        st.writer = None;
        st.pending.clear();
        st.channels.retain(|_, c| c.workers > 0);
        for c in st.channels.values_mut() {
            c.pending = 0;
        }
        self.changed.notify_all();
        if self.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        r
    }

    fn read_loop(&self, sock: &mut LinkReader) -> Result<(), String> {
        let mut buf: Vec<u8> = Vec::with_capacity(READ_CHUNK);
        let mut chunk = vec![0u8; READ_CHUNK];
        let mut scratch = Vec::new();
        loop {
            let n = match sock.read(&mut chunk) {
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                r => r.map_err(|e| format!("read: {e}"))?,
            };
            if n == 0 {
                return Err("Redis closed the connection".into());
            }
            buf.extend_from_slice(&chunk[..n]);
            let mut at = 0;
            while let Some(used) = resp::value_len(&buf[at..]).map_err(|e| e.to_string())? {
                self.on_value(&buf[at..at + used], &mut scratch);
                at += used;
            }
            buf.drain(..at);
        }
    }

    /// One whole value from Redis, read in place; `scratch` for building a push.
    fn on_value(&self, value: &[u8], scratch: &mut Vec<u8>) {
        if let Some(error) = value.strip_prefix(b"-") {
            warn!(redis = %self.target, "Redis subscriber got an error: {}", String::from_utf8_lossy(error).trim_end());
            return;
        }
        let Some([Some(kind), Some(name), third]) = resp::leading_bulks(value) else {
            return;
        };
        match kind {
            b"message" => {
                if let Some(payload) = third {
                    self.on_message(name, payload, scratch);
                }
            }
            b"subscribe" | b"unsubscribe" => {
                let Ok(name) = std::str::from_utf8(name) else {
                    return;
                };
                let mut st = lock(&self.state);
                if st.pending.front().is_some_and(|p| p == name) {
                    st.pending.pop_front();
                }
                if let Some(c) = st.channels.get_mut(name) {
                    c.pending = c.pending.saturating_sub(1);
                    if c.workers == 0 && c.pending == 0 {
                        st.channels.remove(name);
                    }
                }
                self.changed.notify_all();
            }
            _ => {}
        }
    }

    fn on_message(&self, name: &[u8], payload: &[u8], scratch: &mut Vec<u8>) {
        if name == self.control_name.as_bytes() {
            self.outlet.control(payload);
            return;
        }
        let Some(channel) = name
            .strip_prefix(self.channel_prefix.as_bytes())
            .and_then(|c| std::str::from_utf8(c).ok())
        else {
            return;
        };
        match super::message::decode(channel, payload, scratch) {
            Ok((offset, push)) => self
                .outlet
                .deliver(channel, offset, self.outlet.frame(push)),
            Err(e) => {
                self.errors.fetch_add(1, Ordering::Relaxed);
                warn!(channel, "Redis message not understood, dropped: {e}");
            }
        }
    }
}

fn send(st: &mut State, cmd: &[u8], name: String) {
    send_many(st, cmd, std::slice::from_ref(&name));
}

/// Writes `cmd` for `names` and records them as pending; a failed write leaves the reader to
/// find the broken connection and subscribe everything again.
fn send_many(st: &mut State, cmd: &[u8], names: &[String]) {
    if names.is_empty() {
        return;
    }
    let mut args: Vec<&[u8]> = vec![cmd];
    args.extend(names.iter().map(|n| n.as_bytes()));
    let mut out = Vec::new();
    resp::command(&mut out, &args);
    let ok = st
        .writer
        .as_mut()
        .is_some_and(|w| w.write_all(&out).is_ok());
    if !ok {
        if let Some(w) = st.writer.take() {
            w.shutdown();
        }
        return;
    }
    for n in names {
        st.pending.push_back(n.clone());
        if let Some(c) = st.channels.get_mut(n) {
            c.pending += 1;
        }
    }
}

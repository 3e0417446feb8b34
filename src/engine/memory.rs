//! The in-process engine: per-channel state behind a lock of its own (offset, epoch, history),
//! presence in one map. Bounded: channels with history (`max_channels`, refused beyond), bytes
//! of history (`max_history_bytes`: the least recently published channels lose their history
//! first, counted), presence entries (`max_presence`, refused beyond).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tracing::warn;

use super::history::{History, Stored};
use super::{
    Broker, EngineError, HistoryOptions, HistoryQuery, Outlet, PresenceEntry, PresenceManager,
    StreamPosition,
};
use crate::client_protocol::reply::{ClientInfo, Publication, publication_push_with_range};

/// The limits of a memory engine.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_channels: usize,
    pub max_history_bytes: usize,
    pub max_presence: usize,
}

/// What the engine counted (exported as metrics later).
#[derive(Debug, Default)]
pub struct EngineStats {
    /// Channels whose history was dropped to stay under the history memory bound.
    pub history_shed: AtomicU64,
    /// Publishes refused: too many channels with history.
    pub channels_refused: AtomicU64,
    /// Presence entries refused: the presence bound.
    pub presence_refused: AtomicU64,
}

struct ChannelState {
    epoch: Arc<str>,
    top: u64,
    history: History,
    touched: Instant,
    meta_ttl: Duration,
}

/// One channel's presence: client id → entry.
type Members = HashMap<Arc<str>, PresenceEntry>;

pub struct MemoryEngine {
    outlet: Arc<dyn Outlet>,
    limits: Limits,
    channels: Mutex<HashMap<Arc<str>, Arc<Mutex<ChannelState>>>>,
    history_bytes: AtomicUsize,
    presence: Mutex<HashMap<Arc<str>, Members>>,
    presence_entries: AtomicUsize,
    pub stats: EngineStats,
}

/// 8 random letters, as Centrifugo's epochs.
pub(super) fn new_epoch() -> Arc<str> {
    let mut b = [0u8; 8];
    let _ = getrandom::fill(&mut b);
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
    b.iter()
        .map(|x| LETTERS[*x as usize % LETTERS.len()] as char)
        .collect::<String>()
        .into()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding an engine lock leaves consistent data (no multi-step invariants
    // are broken mid-way): keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl MemoryEngine {
    pub fn new(outlet: Arc<dyn Outlet>, limits: Limits) -> Self {
        Self {
            outlet,
            limits,
            channels: Mutex::new(HashMap::new()),
            history_bytes: AtomicUsize::new(0),
            presence: Mutex::new(HashMap::new()),
            presence_entries: AtomicUsize::new(0),
            stats: EngineStats::default(),
        }
    }

    /// Presence entries, all channels.
    pub fn presence_entries(&self) -> usize {
        self.presence_entries.load(Ordering::Relaxed)
    }

    /// Bytes of publications held in history, all channels.
    pub fn history_bytes(&self) -> usize {
        self.history_bytes.load(Ordering::Relaxed)
    }

    fn channel(
        &self,
        name: &str,
        opts: HistoryOptions,
        now: Instant,
    ) -> Result<Arc<Mutex<ChannelState>>, EngineError> {
        let mut map = lock(&self.channels);
        if let Some(c) = map.get(name) {
            return Ok(c.clone());
        }
        if map.len() >= self.limits.max_channels {
            // Drop channels whose meta TTL ran out with nothing in history.
            map.retain(|_, c| {
                let s = lock(c);
                !(s.history.is_empty() && now.saturating_duration_since(s.touched) >= s.meta_ttl)
            });
            if map.len() >= self.limits.max_channels {
                self.stats.channels_refused.fetch_add(1, Ordering::Relaxed);
                warn!(
                    channel = name,
                    limit = self.limits.max_channels,
                    "channel engine: too many channels with history, publish refused"
                );
                return Err(EngineError::TooManyChannels(self.limits.max_channels));
            }
        }
        let meta_ttl = opts.meta_ttl_or_default();
        let c = Arc::new(Mutex::new(ChannelState {
            epoch: new_epoch(),
            top: 0,
            history: History::default(),
            touched: now,
            meta_ttl,
        }));
        map.insert(name.into(), c.clone());
        Ok(c)
    }

    fn account(&self, before: usize, after: usize) {
        if after >= before {
            self.history_bytes
                .fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.history_bytes
                .fetch_sub(before - after, Ordering::Relaxed);
        }
    }

    /// Over the history memory bound: the least recently published channels lose their
    /// history (epoch and offsets stay, so their subscribers learn they cannot recover).
    fn shed(&self) {
        while self.history_bytes() > self.limits.max_history_bytes {
            let victim = {
                let map = lock(&self.channels);
                map.iter()
                    .filter_map(|(k, c)| {
                        let s = c.try_lock().ok()?;
                        (!s.history.is_empty()).then(|| (s.touched, k.clone(), c.clone()))
                    })
                    .min_by_key(|(t, _, _)| *t)
            };
            let Some((_, name, c)) = victim else { return };
            let mut s = lock(&c);
            let before = s.history.bytes();
            s.history.clear();
            drop(s);
            self.account(before, 0);
            self.stats.history_shed.fetch_add(1, Ordering::Relaxed);
            warn!(
                channel = %name,
                bytes = before,
                limit = self.limits.max_history_bytes,
                "history memory bound reached: dropped the history of the least recently published channel"
            );
        }
    }
}

impl Broker for MemoryEngine {
    fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        opts: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, EngineError> {
        if !opts.enabled() {
            let (json, _) = publication_push_with_range(
                channel,
                &Publication {
                    data,
                    info,
                    offset: 0,
                },
            );
            self.outlet.deliver(channel, 0, self.outlet.frame(&json));
            return Ok(None);
        }
        let c = self.channel(channel, opts, now)?;
        let mut s = lock(&c);
        let before = s.history.bytes();
        s.history.expire(now, opts.ttl);
        let offset = s.top + 1;
        let (json, range) =
            publication_push_with_range(channel, &Publication { data, info, offset });
        let frame = self.outlet.frame(&json);
        // A compact copy of the publication object: keeping a slice of the frame instead
        // would keep the whole frame (and a shared-buffer header) alive per stored message
        // (measured: 296 vs 176 B per 100-byte publication, benches/history_memory.rs).
        let stored = Stored {
            offset,
            publication: bytes::Bytes::copy_from_slice(&json[range]),
            at: now,
        };
        s.top = offset;
        s.touched = now;
        s.meta_ttl = opts.meta_ttl_or_default();
        s.history.push(stored, opts.size, opts.ttl);
        let after = s.history.bytes();
        // Still under the channel's lock: deliveries leave in offset order.
        self.outlet.deliver(channel, offset, frame);
        let epoch = s.epoch.clone();
        drop(s);
        self.account(before, after);
        if self.history_bytes() > self.limits.max_history_bytes {
            self.shed();
        }
        Ok(Some(StreamPosition { offset, epoch }))
    }

    fn publish_presence_event(&self, channel: &str, join: bool, info: &ClientInfo<'_>) {
        let push = super::presence_event_push(channel, join, info);
        self.outlet.deliver(channel, 0, self.outlet.frame(&push));
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
        let c = self.channel(channel, opts, now)?;
        let mut s = lock(&c);
        let before = s.history.bytes();
        s.history.expire(now, opts.ttl);
        let after = s.history.bytes();
        let items = if query.limit == 0 {
            Vec::new()
        } else {
            s.history.query(query.since, query.limit, query.reverse)
        };
        let pos = StreamPosition {
            offset: s.top,
            epoch: s.epoch.clone(),
        };
        drop(s);
        self.account(before, after);
        Ok((items, pos))
    }

    fn remove_history(&self, channel: &str) {
        let c = lock(&self.channels).get(channel).cloned();
        if let Some(c) = c {
            let mut s = lock(&c);
            let before = s.history.bytes();
            s.history.clear();
            drop(s);
            self.account(before, 0);
        }
    }

    fn report(&self) -> super::EngineReport {
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        super::EngineReport {
            history_bytes: Some(self.history_bytes() as u64),
            presence_entries: Some(self.presence_entries() as u64),
            bounds_hit: vec![
                ("history_memory", load(&self.stats.history_shed)),
                ("history_channels", load(&self.stats.channels_refused)),
                ("presence", load(&self.stats.presence_refused)),
            ],
            ..Default::default()
        }
    }
}

impl PresenceManager for MemoryEngine {
    fn add_presence(&self, channel: &str, entry: PresenceEntry) -> bool {
        let mut map = lock(&self.presence);
        let members = map.entry(channel.into()).or_default();
        if !members.contains_key(&entry.client) {
            if self.presence_entries.load(Ordering::Relaxed) >= self.limits.max_presence {
                self.stats.presence_refused.fetch_add(1, Ordering::Relaxed);
                warn!(
                    channel,
                    limit = self.limits.max_presence,
                    "presence bound reached: entry not added"
                );
                if members.is_empty() {
                    map.remove(channel);
                }
                return false;
            }
            self.presence_entries.fetch_add(1, Ordering::Relaxed);
        }
        members.insert(entry.client.clone(), entry);
        true
    }

    fn remove_presence(&self, channel: &str, client: &str) {
        let mut map = lock(&self.presence);
        if let Some(members) = map.get_mut(channel) {
            if members.remove(client).is_some() {
                self.presence_entries.fetch_sub(1, Ordering::Relaxed);
            }
            if members.is_empty() {
                map.remove(channel);
            }
        }
    }

    fn presence(&self, channel: &str) -> Vec<PresenceEntry> {
        lock(&self.presence)
            .get(channel)
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    fn presence_stats(&self, channel: &str) -> (usize, usize) {
        let map = lock(&self.presence);
        let Some(m) = map.get(channel) else {
            return (0, 0);
        };
        let users: std::collections::HashSet<&str> = m.values().map(|e| &*e.user).collect();
        (m.len(), users.len())
    }
}

#[cfg(test)]
mod tests;

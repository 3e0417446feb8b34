//! The channel engine: one order per channel, offsets, epochs, history, presence — behind the
//! [`Broker`] and [`PresenceManager`] traits (modelled on Centrifugo's), so a Redis engine can
//! replace the [`memory`] one without the session or the runtime knowing which runs.
//!
//! # The ordering contract (every implementation keeps it)
//! `Broker::publish` assigns a channel's next offset, stores the publication in the channel's
//! history and hands the encoded push to the [`Outlet`] **as one atomic step per channel**:
//! the outlet is called in offset order for each channel. The runtime's outlet puts the frame
//! into the FIFO inbox of every worker with subscribers, the publisher's own included, so every
//! subscriber on every worker sees a channel's publications in offset order, contiguous from 1.
//! A worker drops a frame whose offset a subscriber already has (recovery overlap) and tells
//! the session about a gap (an inbox that dropped a frame) instead of skipping silently.
//!
//! Channels without history get no offsets and no epoch (offset 0 on the wire is "none"), as in
//! Centrifugo; their publications still reach every worker in one order.
//!
//! | module | owns |
//! |---|---|
//! | [`history`] | one channel's stream: size, TTL, queries by offset |
//! | [`memory`] | the in-process engine: per-channel locks, history memory bound, presence |
//! | [`redis`] | the Redis engine: several ringcast nodes share channels, history and presence |

pub mod history;
pub mod memory;
pub mod redis;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::value::RawValue;

use crate::client_protocol::reply::ClientInfo;

pub use history::Stored;

/// A position in a channel's stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamPosition {
    pub offset: u64,
    /// Random per channel per engine lifetime: a restart makes old offsets meaningless.
    pub epoch: Arc<str>,
}

/// How long a channel's epoch and top offset outlive its last publication by default.
const DEFAULT_META_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

/// A channel's history settings (from its namespace).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HistoryOptions {
    pub size: usize,
    pub ttl: Duration,
    /// How long the channel's epoch and top offset outlive its last publication.
    pub meta_ttl: Duration,
}

impl HistoryOptions {
    /// History is on when both size and TTL are set (Centrifugo's rule).
    pub fn enabled(&self) -> bool {
        self.size > 0 && !self.ttl.is_zero()
    }

    /// `meta_ttl`, or 30 days when unset.
    pub fn meta_ttl_or_default(&self) -> Duration {
        if self.meta_ttl.is_zero() {
            DEFAULT_META_TTL
        } else {
            self.meta_ttl
        }
    }
}

/// A history read.
#[derive(Debug, Clone, Copy, Default)]
pub struct HistoryQuery {
    /// Publications after this offset (before it with `reverse`); `None`: from the start
    /// (or the end, with `reverse`).
    pub since: Option<u64>,
    pub limit: usize,
    pub reverse: bool,
}

/// Why the engine could not do what was asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EngineError {
    #[error("the channel has no history (history_size and history_ttl are not set)")]
    NoHistory,
    #[error("the engine holds the most channels with history it may ({0})")]
    TooManyChannels(usize),
    /// The engine's backend (Redis) did not answer or refused: the operation did not happen.
    #[error("the channel engine is unavailable: {0}")]
    Unavailable(String),
}

/// What a client (or the server API) is told: 108 for a channel without history, 106 for
/// the channel bound.
impl From<EngineError> for crate::client_protocol::codes::ClientError {
    fn from(e: EngineError) -> Self {
        use crate::client_protocol::codes::ClientError;
        match e {
            EngineError::NoHistory => ClientError::NOT_AVAILABLE.with_detail(e),
            EngineError::TooManyChannels(_) => ClientError::LIMIT_EXCEEDED.with_detail(e),
            EngineError::Unavailable(_) => ClientError::INTERNAL.with_detail(e),
        }
    }
}

/// The `join` or `leave` push of `info` into `channel`.
pub fn presence_event_push(channel: &str, join: bool, info: &ClientInfo<'_>) -> Vec<u8> {
    #[derive(serde::Serialize)]
    struct Body<'a> {
        info: &'a ClientInfo<'a>,
    }
    let mut b = crate::client_protocol::reply::Batch::default();
    b.push(channel, if join { "join" } else { "leave" }, &Body { info });
    b.take()
}

/// Where published frames go: the runtime's side of the engine.
pub trait Outlet: Send + Sync {
    /// Wraps an encoded push into what subscribers receive (a WebSocket text frame).
    fn frame(&self, push: &[u8]) -> Bytes;
    /// Hands `frame` to every worker with subscribers of `channel`. Called in offset order per
    /// channel (0 = a frame without offset: join, leave, publications without history).
    fn deliver(&self, channel: &str, offset: u64, frame: Bytes);
    /// Publications of any channel may have been missed (the engine's backend connection
    /// broke): every subscriber positioned in a stream must be told it cannot continue.
    fn lost_all(&self) {}
    /// A message another node sent to every node ([`Broker::tell_nodes`]; this node's own
    /// come back too, and the receiver must recognise them).
    fn control(&self, _msg: &[u8]) {}
}

/// Publications and history (Centrifugo's `Broker`).
pub trait Broker: Send + Sync {
    /// Publishes `data` into `channel`; returns its position (offset 0 and no epoch without
    /// history). Atomic per channel with the outlet call (see the module doc).
    fn publish(
        &self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, EngineError>;

    /// A `join` or `leave` push (never stored, no offset).
    fn publish_presence_event(&self, channel: &str, join: bool, info: &ClientInfo<'_>);

    /// Publications of `channel` and its current position (the position even when
    /// `query.limit` is 0).
    fn history(
        &self,
        channel: &str,
        query: HistoryQuery,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), EngineError>;

    fn remove_history(&self, channel: &str);

    /// This node got a subscriber of `channel` on one more worker (called once per worker that
    /// gains its first one): from when this returns, every publication into `channel` reaches
    /// the outlet. The memory engine has nothing to do; the Redis engine subscribes the node.
    fn node_subscribe(&self, _channel: &str) -> Result<(), EngineError> {
        Ok(())
    }

    /// A worker lost its last subscriber of `channel` (the pair of [`Broker::node_subscribe`]).
    fn node_unsubscribe(&self, _channel: &str) {}

    /// Whether other nodes may share this engine (the control channel reaches them).
    fn clustered(&self) -> bool {
        false
    }

    /// Sends `msg` to every node sharing the engine, this one included (it arrives at each
    /// node's [`Outlet::control`]). The memory engine has no other nodes: nothing to do.
    fn tell_nodes(&self, _msg: &[u8]) -> Result<(), EngineError> {
        Ok(())
    }

    /// Keeps (`Some`) or forgets (`None`) `key` of the small named `set` in the engine's
    /// backend, for nodes started later (chat's live sanctions). The memory engine keeps
    /// nothing: its state ends with the process.
    fn keep(&self, _set: &str, _key: &str, _value: Option<&[u8]>) -> Result<(), EngineError> {
        Ok(())
    }

    /// Everything kept in `set`: (key, value).
    fn kept(&self, _set: &str) -> Result<Vec<(String, Vec<u8>)>, EngineError> {
        Ok(Vec::new())
    }

    /// Forgets `key` of `set` if it still holds `value` (a stale entry another node may be
    /// replacing at the same moment).
    fn forget_if(&self, _set: &str, _key: &str, _value: &[u8]) -> Result<(), EngineError> {
        Ok(())
    }

    /// Figures for metrics.
    fn report(&self) -> EngineReport {
        EngineReport::default()
    }
}

/// What an engine reports for metrics (`None`: not kept by this engine).
#[derive(Debug, Default, Clone)]
pub struct EngineReport {
    pub history_bytes: Option<u64>,
    pub presence_entries: Option<u64>,
    /// Bounds hit: (bound, times).
    pub bounds_hit: Vec<(&'static str, u64)>,
    /// Backend calls that failed (Redis).
    pub backend_errors: Option<u64>,
    /// Times the node's subscriber connection to the backend was (re)established.
    pub backend_connects: Option<u64>,
    /// Whether the backend is taken as available (calls are made).
    pub backend_available: Option<bool>,
    /// Calls refused without trying while the backend was taken as unavailable.
    pub backend_refused: Option<u64>,
}

/// One member of a channel's presence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceEntry {
    pub client: Arc<str>,
    pub user: Arc<str>,
    /// The token's `info` (raw JSON), if any.
    pub conn_info: Option<Arc<str>>,
}

/// Who is in a channel (Centrifugo's `PresenceManager`).
pub trait PresenceManager: Send + Sync {
    /// Adds (or refreshes) a client; false when the presence bound is reached.
    fn add_presence(&self, channel: &str, entry: PresenceEntry) -> bool;
    fn remove_presence(&self, channel: &str, client: &str);
    fn presence(&self, channel: &str) -> Vec<PresenceEntry>;
    /// (clients, distinct users).
    fn presence_stats(&self, channel: &str) -> (usize, usize);
}

/// An engine: both halves.
pub trait Engine: Broker + PresenceManager {}
impl<T: Broker + PresenceManager> Engine for T {}

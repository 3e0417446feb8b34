//! This node's side of the engine's control channel (with an engine several nodes share): it
//! sends [`Notice`]s — session commands, chat changes, its figures — and applies the ones other
//! nodes send. With the memory engine there are no other nodes and nothing is sent.
//!
//! Must not: block on anything but the engine's one call to send; apply its own notices twice
//! (they come back through the channel and are skipped by the sender's uid).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::warn;

use super::ServerShared;
use crate::api::SessionCommand;
use crate::chat::replica::{ChatChange, SANCTIONS_SET, STATUSES_SET, kept_change};
use crate::cluster::{self, Nodes, Notice};
use crate::engine::EngineError;

/// Channels and their subscribed connections, as one node reports them.
pub type ChannelCounts = std::collections::BTreeMap<String, u32>;

/// Asks for this node's channels: (ask id, asking node); answered by the control plane.
pub type Asks = tokio::sync::mpsc::Sender<(u64, String)>;

/// Most asks for channels waiting for the control plane (more are dropped, logged).
pub const MAX_ASKS: usize = 64;

/// This node among others: its uid, who else is there, and counters for `/metrics`.
pub struct Cluster {
    /// 16 hex digits, new at every start (the API's `info` names the node by it).
    pub uid: String,
    pub nodes: Mutex<Nodes>,
    /// Where other nodes' asks for channels go (set by the control plane, when it runs).
    pub asks: std::sync::OnceLock<Asks>,
    /// This node's own asks waiting for answers: ask id → where the answers go.
    pub waiting: Mutex<HashMap<u64, tokio::sync::mpsc::UnboundedSender<ChannelCounts>>>,
    pub sent: AtomicU64,
    pub received: AtomicU64,
    /// Notices not sent (engine unavailable) or not understood.
    pub failed: AtomicU64,
}

impl Cluster {
    pub fn new() -> Self {
        let mut r = [0u8; 8];
        let _ = getrandom::fill(&mut r);
        Self {
            uid: r.iter().map(|b| format!("{b:02x}")).collect(),
            nodes: Mutex::default(),
            asks: std::sync::OnceLock::new(),
            waiting: Mutex::default(),
            sent: AtomicU64::new(0),
            received: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// The other nodes heard from lately.
    pub fn others(&self) -> Vec<cluster::NodeFigures> {
        self.nodes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .live(Instant::now())
    }
}

impl Default for Cluster {
    fn default() -> Self {
        Self::new()
    }
}

impl ServerShared {
    /// Hands a session command to every worker of this node and, with a shared engine, to
    /// every other node (the user may be connected anywhere); false when some worker's
    /// control queue here was full or the other nodes could not be told (logged).
    pub fn to_sessions(&self, cmd: SessionCommand) -> bool {
        let notice = self
            .engine
            .clustered()
            .then(|| Notice::Session(cmd.clone()));
        let all = self.to_local_sessions(cmd);
        let told = notice.is_none_or(|n| self.tell_nodes(&n));
        all && told
    }

    /// Hands a session command to every worker of this node.
    pub fn to_local_sessions(&self, cmd: SessionCommand) -> bool {
        let cmd = Arc::new(cmd);
        let mut all = true;
        for (w, inbox) in self.inboxes.iter().enumerate() {
            if !inbox.send_control(super::inbox::Control::Session(cmd.clone())) {
                warn!(
                    worker = w,
                    "control queue of worker {w} is full: session command not delivered there"
                );
                all = false;
            }
        }
        all
    }

    /// Sends `notice` to the other nodes (nothing to do without a shared engine); false when
    /// it could not be sent: counted and logged, the other nodes miss it.
    pub fn tell_nodes(&self, notice: &Notice) -> bool {
        if !self.engine.clustered() {
            return true;
        }
        let msg = cluster::encode(&self.cluster.uid, notice);
        match self.engine.tell_nodes(&msg) {
            Ok(()) => {
                self.cluster.sent.fetch_add(1, Ordering::Relaxed);
                true
            }
            Err(e) => {
                self.cluster.failed.fetch_add(1, Ordering::Relaxed);
                warn!(
                    kind = notice.kind(),
                    "other nodes not told (they miss this {} notice): {e}",
                    notice.kind()
                );
                false
            }
        }
    }

    /// A chat change this node made: a mute or ban kept in the engine (an unmute or unban
    /// forgotten there) for nodes that start later, and the change told to the other nodes;
    /// false when either failed (logged).
    pub fn share_chat_change(&self, change: &ChatChange) -> bool {
        let kept = kept_change(change).is_none_or(|(set, key, value)| {
            self.engine
                .keep(set, &key, value.as_deref())
                .inspect_err(|e| warn!(set, %key, "not kept for nodes that start later: {e}"))
                .is_ok()
        });
        self.tell_nodes(&Notice::Chat(change.clone())) && kept
    }

    /// At start: installs the live sanctions and the statuses kept in the engine, forgets the
    /// ended (or unreadable) ones there. Returns how many of each were installed.
    pub fn restore_chat(&self, now_ms: u64) -> Result<(usize, usize), EngineError> {
        let sanctions = self.engine.kept(SANCTIONS_SET)?;
        let statuses = self.engine.kept(STATUSES_SET)?;
        let mut chat = self.session_env.chat.lock();
        let (banned, stale_sanctions) = chat.restore_sanctions(sanctions, now_ms);
        let (set, stale_statuses) = chat.restore_statuses(statuses);
        drop(chat);
        for (which, stale) in [
            (SANCTIONS_SET, stale_sanctions),
            (STATUSES_SET, stale_statuses),
        ] {
            for (key, value) in stale {
                self.engine.forget_if(which, &key, &value)?;
            }
        }
        Ok((banned, set))
    }

    /// A message from the control channel: applies another node's notice.
    pub fn on_control(&self, msg: &[u8]) {
        let (from, notice) = match cluster::decode(msg) {
            Ok(m) => m,
            Err(e) => {
                self.cluster.failed.fetch_add(1, Ordering::Relaxed);
                warn!("control channel: dropped a message: {e}");
                return;
            }
        };
        if from == self.cluster.uid {
            return;
        }
        self.cluster.received.fetch_add(1, Ordering::Relaxed);
        match notice {
            Notice::Session(cmd) => {
                self.to_local_sessions(cmd);
            }
            Notice::Chat(change) => self
                .session_env
                .chat
                .lock()
                .apply_remote(change, self.app.chat.max_reaction_emoji),
            Notice::Node(figures) => self
                .cluster
                .nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .saw(figures, Instant::now()),
            Notice::NodeGone => self
                .cluster
                .nodes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .forget(&from),
            Notice::ChannelsAsk { id } => match self.cluster.asks.get() {
                Some(asks) => {
                    if asks.try_send((id, from)).is_err() {
                        warn!(
                            "{MAX_ASKS} asks for channels waiting: one from another node dropped"
                        );
                    }
                }
                None => warn!(
                    "another node asked for channels; this node's API is off, so it cannot answer"
                ),
            },
            Notice::ChannelsTell { id, to, channels } => {
                if to == self.cluster.uid
                    && let Some(tx) = self
                        .cluster
                        .waiting
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get(&id)
                {
                    let _ = tx.send(channels);
                }
            }
        }
    }
}

//! The server API (Centrifugo's HTTP API, `POST /api/<method>`), sans-io: a method name and a
//! JSON body in, a status and a JSON body out, against an [`ApiHost`] (the engine and a way to
//! reach every worker's sessions). The control plane (`crate::control`) moves the bytes; the
//! PostgreSQL outbox feeds rows through the same [`Api::call`].
//!
//! Must not: do I/O, read the clock, or know about HTTP beyond the status it suggests.
//!
//! | module | owns |
//! |---|---|
//! | [`request`] | the request bodies (borrowed, `data` a raw JSON slice) |
//! | [`execute`] | method → engine call or session command → result body |
//! | [`idempotency`] | remembered publish results by idempotency key (bounded, with a TTL) |
//! | [`rpc`] | `rpc`: chat moderation for backends (`mod.*`, `mod.history`) |

pub mod execute;
pub mod idempotency;
pub mod request;
pub mod rpc;

use std::collections::BTreeMap;

use crate::client_protocol::Disconnect;
use crate::engine::Engine;

pub use execute::{Api, Outcome};

/// The API's methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Publish,
    Broadcast,
    Subscribe,
    Unsubscribe,
    Disconnect,
    Refresh,
    Presence,
    PresenceStats,
    History,
    HistoryRemove,
    Channels,
    Info,
    Rpc,
    Batch,
}

impl Method {
    pub const ALL: [Method; 14] = [
        Method::Publish,
        Method::Broadcast,
        Method::Subscribe,
        Method::Unsubscribe,
        Method::Disconnect,
        Method::Refresh,
        Method::Presence,
        Method::PresenceStats,
        Method::History,
        Method::HistoryRemove,
        Method::Channels,
        Method::Info,
        Method::Rpc,
        Method::Batch,
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|m| m.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            Method::Publish => "publish",
            Method::Broadcast => "broadcast",
            Method::Subscribe => "subscribe",
            Method::Unsubscribe => "unsubscribe",
            Method::Disconnect => "disconnect",
            Method::Refresh => "refresh",
            Method::Presence => "presence",
            Method::PresenceStats => "presence_stats",
            Method::History => "history",
            Method::HistoryRemove => "history_remove",
            Method::Channels => "channels",
            Method::Info => "info",
            Method::Rpc => "rpc",
            Method::Batch => "batch",
        }
    }

    /// Needs a [`Survey`] of the workers before it can answer.
    pub fn needs_survey(self) -> bool {
        matches!(self, Method::Channels | Method::Info)
    }
}

/// Which sessions of a user a command is for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sessions {
    pub user: String,
    /// Only this client id (None: every connection of the user).
    pub client: Option<String>,
    /// Client ids left alone (`disconnect`'s whitelist).
    pub except: Vec<String>,
}

impl Sessions {
    pub fn matches(&self, user: &str, client: &str) -> bool {
        user == self.user
            && self.client.as_deref().is_none_or(|c| c == client)
            && !self.except.iter().any(|e| e == client)
    }
}

/// What the API asks of sessions, delivered to every worker (the user may be connected to
/// any of them, several times; with a shared engine, on any node).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionCommand {
    Disconnect(Sessions, Disconnect),
    Unsubscribe(Sessions, String),
    Subscribe(Sessions, String),
    Refresh {
        to: Sessions,
        expired: bool,
        expire_at: Option<u64>,
    },
    /// A chat status change of the user, for their other connections.
    Status(Sessions, crate::chat::Status),
}

impl SessionCommand {
    pub fn sessions(&self) -> &Sessions {
        match self {
            SessionCommand::Disconnect(s, _)
            | SessionCommand::Unsubscribe(s, _)
            | SessionCommand::Subscribe(s, _)
            | SessionCommand::Refresh { to: s, .. }
            | SessionCommand::Status(s, _) => s,
        }
    }
}

/// What the workers report for `channels` and `info`, summed over workers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Survey {
    /// Channel → subscribed connections.
    pub channels: BTreeMap<String, u32>,
    /// Client protocol connections (connected sessions).
    pub clients: u64,
    /// Subscriptions.
    pub subs: u64,
    /// Distinct users with a connection (server-wide: set by whoever assembles the survey).
    pub users: u64,
    /// The other nodes' channels (Redis engine), summed: `channels` lists them too.
    pub elsewhere: BTreeMap<String, u32>,
}

impl Survey {
    /// Adds one worker's report.
    pub fn merge(&mut self, other: Survey) {
        for (c, n) in other.channels {
            *self.channels.entry(c).or_default() += n;
        }
        self.clients += other.clients;
        self.subs += other.subs;
    }
}

/// This node, for `info`.
#[derive(Debug, Clone)]
pub struct Node {
    pub uid: String,
    pub name: String,
    pub version: &'static str,
    /// Unix seconds the node started.
    pub started: u64,
}

impl Node {
    /// This node's figures for `info`, from a survey of its workers.
    pub fn figures(&self, survey: &Survey) -> crate::cluster::NodeFigures {
        crate::cluster::NodeFigures {
            uid: self.uid.clone(),
            name: self.name.clone(),
            version: self.version.to_owned(),
            started: self.started,
            num_clients: survey.clients,
            num_users: survey.users,
            num_channels: survey.channels.len() as u64,
            num_subs: survey.subs,
        }
    }
}

/// What the API needs from the server.
pub trait ApiHost {
    fn engine(&self) -> &dyn Engine;
    /// Hands a command to every worker; false when some worker's command queue was full.
    fn to_sessions(&self, cmd: SessionCommand) -> bool;
    /// Chat's shared state (sanctions), where the server has it.
    fn chat(&self) -> Option<&crate::chat::Chat> {
        None
    }
    /// The other nodes sharing the engine, as they last reported (for `info`).
    fn other_nodes(&self) -> Vec<crate::cluster::NodeFigures> {
        Vec::new()
    }
}

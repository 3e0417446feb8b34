//! One client protocol connection as a sans-io state machine.
//!
//! # Call order
//! - [`ClientSession::new`] at the upgrade (with a token the upgrade request carried, if any);
//! - [`ClientSession::handle_frame`] for each text frame, [`ClientSession::handle_binary`] for a
//!   binary one, [`ClientSession::handle_timeout`] when [`ClientSession::poll_timeout`] passes;
//! - after each of those: [`ClientSession::take_output`] (one text frame of replies and pushes,
//!   newline-delimited) and [`ClientSession::disconnect`] (close with this code, then stop
//!   calling in);
//! - [`ClientSession::on_closed`] once when the connection ends, whatever ended it.
//!
//! Time comes in as [`Now`] and must not go backwards. Everything outside this connection
//! (subscriber lists, publishing, the per-user connection count) goes through [`Host`], so the
//! runtime and the tests each provide their own.
//!
//! | module | owns |
//! |---|---|
//! | [`connect`] | `connect` and `refresh`: tokens, anonymous access, server-side subscriptions |
//! | [`subscribe`] | `subscribe`, `unsubscribe`, `sub_refresh` |
//! | [`publish`] | `publish`, `rpc`, `send` |
//! | `engine_commands` | `history`, `presence`, `presence_stats` |
//! | `channel` | entering and leaving a channel: positions, recovery, presence, join/leave |
//! | [`rpc`] | the table of `rpc` methods |
//! | `server_commands` | what the server API does to a session: disconnect, (un)subscribe, refresh |
//! | [`timers`] | stale, ping/pong, expiry |
//! | `chat` | chat rooms: bans, mutes, auto-moderation, mentions, DMs, reactions, statuses |

mod channel;
mod chat;
mod connect;
mod engine_commands;
mod publish;
pub mod rpc;
mod server_commands;
mod subs;
mod subscribe;
#[cfg(test)]
mod tests;
mod timers;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tracing::debug;

use crate::auth::Role;
use crate::client_protocol::batch::{Parsed, decode_commands};
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::reply::{Batch, ClientInfo};
use crate::client_protocol::{Disconnect, Request};
use crate::config::AppConfig;
use crate::engine::{HistoryQuery, PresenceEntry, Stored, StreamPosition};

pub use crate::engine::HistoryOptions;
use crate::server::rate::TokenBucket;

pub use channel::history_options;
pub use rpc::{RpcContext, RpcTable};
pub use subscribe::raw_publications;

/// Most commands in one frame (bounded: a frame of 10,000 commands is refused with 3501).
pub const MAX_COMMANDS_PER_FRAME: usize = 256;
/// Commands refused for the rate limit (111) in a row before the connection is closed (3013).
const RATE_STRIKES: u32 = 10;

/// The time, twice: monotonic for timers, unix seconds for token expiry.
#[derive(Debug, Clone, Copy)]
pub struct Now {
    pub at: Instant,
    pub unix: u64,
    /// Unix milliseconds (chat: sanctions, flood windows).
    pub unix_ms: u64,
}

impl Now {
    pub fn system() -> Self {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            at: Instant::now(),
            unix: since_epoch.as_secs(),
            unix_ms: since_epoch.as_millis() as u64,
        }
    }

    /// The instant `unix_time` corresponds to (never before now).
    fn instant_of(&self, unix_time: u64) -> Instant {
        self.at + Duration::from_secs(unix_time.saturating_sub(self.unix))
    }
}

/// What a session needs from the world around it: this worker's subscriber lists and the
/// channel engine. The runtime implements it over the real engine; tests over fakes.
pub trait Host {
    /// Makes this connection a subscriber of `channel` on its worker: live publications start
    /// arriving (they are not read until the current call returns).
    fn join(&mut self, channel: &str) -> Result<(), ClientError>;
    /// From now on deliver only publications with offsets after `offset` (earlier ones are
    /// duplicates of what the session already sent); a gap is reported back to the session.
    fn set_position(&mut self, channel: &str, offset: u64);
    fn leave(&mut self, channel: &str);
    /// Publishes into `channel`: every subscriber, on every worker, in one order.
    fn publish(
        &mut self,
        channel: &str,
        data: &RawValue,
        info: Option<&ClientInfo<'_>>,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<Option<StreamPosition>, ClientError>;
    fn history(
        &mut self,
        channel: &str,
        query: HistoryQuery,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), ClientError>;
    /// A `join` (or `leave`) push to the channel's subscribers.
    fn presence_event(&mut self, channel: &str, join: bool, info: &ClientInfo<'_>);
    /// False when the presence bound is reached.
    fn presence_add(&mut self, channel: &str, entry: PresenceEntry) -> bool;
    fn presence_remove(&mut self, channel: &str, client: &str);
    fn presence(&mut self, channel: &str) -> Vec<PresenceEntry>;
    /// (clients, users).
    fn presence_stats(&mut self, channel: &str) -> (usize, usize);
    /// Count a connection of `user` against the per-user cap; false when it is full.
    fn user_connected(&mut self, user: &str) -> bool;
    fn user_disconnected(&mut self, user: &str);
    /// Hands a command to the sessions it names, on every worker (this one included, in a
    /// later turn); false when some worker's queue was full.
    fn to_sessions(&mut self, cmd: crate::api::SessionCommand) -> bool;
}

/// Refused connection tokens, by reason (for `/metrics`).
#[derive(Debug, Default)]
pub struct AuthFailures {
    pub expired: std::sync::atomic::AtomicU64,
    pub invalid: std::sync::atomic::AtomicU64,
    pub missing: std::sync::atomic::AtomicU64,
}

impl AuthFailures {
    fn count(c: &std::sync::atomic::AtomicU64) {
        c.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// What every session of a server shares.
pub struct SessionEnv {
    pub cfg: Arc<AppConfig>,
    pub auth_failures: AuthFailures,
    pub rpc: RpcTable,
    /// Chat's shared state (sanctions, reactions, statuses); rules are in `cfg.chat`.
    pub chat: crate::chat::Chat,
    /// The version the connect reply announces.
    pub version: &'static str,
}

impl SessionEnv {
    pub fn new(cfg: Arc<AppConfig>) -> Self {
        Self {
            chat: crate::chat::Chat::new(&cfg.chat),
            cfg,
            auth_failures: AuthFailures::default(),
            rpc: RpcTable::default(),
            version: env!("CARGO_PKG_VERSION"),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Upgraded; waiting for `connect` until the deadline.
    Connecting {
        deadline: Instant,
    },
    Connected,
    /// A disconnect was decided; nothing more is handled.
    Closed,
}

/// One subscription of the connection.
#[derive(Debug, Clone)]
struct Sub {
    server_side: bool,
    /// This connection is in the channel's presence (remove it when leaving).
    presence: bool,
    /// The channel's namespace keeps presence (an invisible connection is not in it).
    ns_presence: bool,
    /// The channel sends join/leave pushes (send a leave when leaving).
    join_leave: bool,
    /// When the subscription ends unless refreshed (sub token `exp` + grace).
    close_at: Option<Instant>,
}

/// One connection's protocol state.
pub struct ClientSession {
    env: Arc<SessionEnv>,
    client_id: String,
    state: State,
    /// Token from the upgrade request (header, cookie or query), used when `connect` has none.
    upgrade_token: Option<String>,
    user: String,
    role: Role,
    /// The token's `info` claim.
    token_info: Option<Box<RawValue>>,
    /// `conn_info` of this connection's publications and presence: the token's `info`, with
    /// the chat status when it is not online.
    conn_info: Option<Box<RawValue>>,
    /// The chat status (online unless set).
    status: crate::chat::Status,
    /// Counted against the per-user cap (released on close).
    counted: bool,
    /// Closes with 3005 at this time unless refreshed (token exp + expired_close_delay).
    expire_close_at: Option<Instant>,
    subs: subs::Subs,
    next_ping: Option<Instant>,
    pong_deadline: Option<Instant>,
    bucket: Option<TokenBucket>,
    rate_strikes: u32,
    out: Batch,
    disconnect: Option<Disconnect>,
}

impl ClientSession {
    pub fn new(
        env: Arc<SessionEnv>,
        client_id: String,
        upgrade_token: Option<String>,
        now: Now,
    ) -> Self {
        let c = env.cfg.client();
        let deadline = now.at + c.stale_close_delay.0;
        let rate = c.command_rate_limit;
        let bucket = (rate > 0).then(|| TokenBucket::new(2.0 * rate as f64, rate as f64, now.at));
        Self {
            env,
            client_id,
            state: State::Connecting { deadline },
            upgrade_token,
            user: String::new(),
            role: Role::Guest,
            token_info: None,
            conn_info: None,
            status: crate::chat::Status::Online,
            counted: false,
            expire_close_at: None,
            subs: subs::Subs::default(),
            next_ping: None,
            pong_deadline: None,
            bucket,
            rate_strikes: 0,
            out: Batch::default(),
            disconnect: None,
        }
    }

    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// The user of a connected session ("" = anonymous).
    pub fn user(&self) -> &str {
        &self.user
    }

    pub fn role(&self) -> Role {
        self.role
    }

    pub fn is_connected(&self) -> bool {
        self.state == State::Connected
    }

    pub fn subscriptions(&self) -> impl Iterator<Item = &str> {
        self.subs.keys()
    }

    /// Replies and pushes produced since the last call: one text frame's payload.
    pub fn take_output(&mut self) -> Option<Vec<u8>> {
        (!self.out.is_empty()).then(|| self.out.take())
    }

    /// Set once the session decided to close the connection.
    pub fn disconnect(&self) -> Option<&Disconnect> {
        self.disconnect.as_ref()
    }

    /// This connection as the publisher of a publication (None before `connect`).
    fn publisher(&self) -> Option<ClientInfo<'_>> {
        self.is_connected().then(|| ClientInfo {
            user: &self.user,
            client: &self.client_id,
            conn_info: self.conn_info.as_deref(),
            chan_info: None,
        })
    }

    /// Ends the session with `d` (the first decision wins).
    fn close(&mut self, d: Disconnect) {
        if self.disconnect.is_none() {
            debug!(client = %self.client_id, user = %self.user, code = d.code, reason = %d.reason, "disconnect");
            self.disconnect = Some(d);
        }
        self.state = State::Closed;
    }

    /// A binary frame: not part of the JSON protocol.
    pub fn handle_binary(&mut self) {
        self.close(Disconnect::INAPPROPRIATE_PROTOCOL.with_detail(
            "binary frames are not part of centrifuge-json (protobuf is not supported)",
        ));
    }

    /// One text frame of newline-delimited commands.
    pub fn handle_frame(&mut self, frame: &[u8], now: Now, host: &mut dyn Host) {
        if self.state == State::Closed {
            return;
        }
        let limit = self.env.cfg.file.websocket.message_size_limit;
        if frame.len() as u64 > limit {
            self.close(Disconnect::BAD_REQUEST.with_detail(format_args!(
                "message of {} bytes over the limit of {limit}",
                frame.len()
            )));
            return;
        }
        let commands = match decode_commands(frame, MAX_COMMANDS_PER_FRAME) {
            Ok(c) => c,
            Err(e) => {
                self.close(Disconnect::BAD_REQUEST.with_detail(e));
                return;
            }
        };
        for parsed in &commands {
            if self.state == State::Closed {
                break;
            }
            self.handle_command(parsed, now, host);
        }
    }

    fn handle_command(&mut self, p: &Parsed<'_>, now: Now, host: &mut dyn Host) {
        let cmd = &p.command;
        let id = cmd.id;
        let request = cmd.request();
        let is_pong = id == 0 && matches!(request, Request::None);
        if !is_pong && !self.take_token(id, now) {
            return;
        }
        if id == 0 && !matches!(request, Request::None | Request::Send(_)) {
            self.close(
                Disconnect::BAD_REQUEST.with_detail("command id 0 is only for send and the pong"),
            );
            return;
        }
        if let State::Connecting { .. } = self.state
            && !matches!(request, Request::Connect(_))
        {
            self.close(Disconnect::BAD_REQUEST.with_detail("the first command must be connect"));
            return;
        }
        match request {
            Request::Connect(r) => self.on_connect(id, r, now, host),
            Request::Refresh(r) => self.on_refresh(id, r, now),
            Request::Subscribe(r) => self.on_subscribe(id, r, now, host),
            Request::Unsubscribe(r) => self.on_unsubscribe(id, r, host),
            Request::SubRefresh(r) => self.on_sub_refresh(id, r, now),
            Request::Publish(r) => self.on_publish(id, r, now, host),
            Request::Presence(r) => self.on_presence(id, r, false, host),
            Request::PresenceStats(r) => self.on_presence(id, r, true, host),
            Request::History(r) => self.on_history(id, r, now, host),
            Request::Rpc(r) => self.on_rpc(id, r, now, host),
            Request::Send(r) => self.on_send(r),
            Request::Ping => self.reply_empty(id, "ping"),
            Request::None if is_pong => self.pong_deadline = None,
            Request::None => {
                let e = if p.has_keys_besides_id() {
                    ClientError::METHOD_NOT_FOUND.with_detail("unknown command")
                } else {
                    ClientError::BAD_REQUEST.with_detail("the command has no request object")
                };
                self.out.error(id, &e);
            }
        }
    }

    /// The command rate limit: 111 while over it, 3013 after [`RATE_STRIKES`] in a row.
    fn take_token(&mut self, id: u32, now: Now) -> bool {
        let Some(b) = &mut self.bucket else {
            return true;
        };
        if b.try_take(now.at) {
            self.rate_strikes = 0;
            return true;
        }
        self.rate_strikes += 1;
        if self.rate_strikes > RATE_STRIKES {
            self.close(Disconnect::TOO_MANY_REQUESTS.with_detail(format_args!(
                "over {} commands/s",
                self.env.cfg.client().command_rate_limit
            )));
        } else if id != 0 {
            self.out.error(id, &ClientError::TOO_MANY_REQUESTS);
        }
        false
    }

    fn reply_empty(&mut self, id: u32, key: &str) {
        self.out
            .reply(id, key, &crate::client_protocol::reply::EmptyResult {});
    }

    /// The connection ended: leave every channel, give back the user's connection slot.
    pub fn on_closed(&mut self, host: &mut dyn Host) {
        let subs: Vec<(Box<str>, Sub)> = self.subs.drain().collect();
        for (ch, sub) in subs {
            self.leave_channel(&ch, &sub, host);
        }
        if self.counted {
            self.counted = false;
            host.user_disconnected(&self.user);
        }
        self.state = State::Closed;
    }
}

//! What an upgraded connection runs: a raw room, or a client protocol session. Chosen by path at
//! the upgrade ([`admit`]); this module drives the session for the connection glue in `conn`
//! and is the session's [`Host`] on this worker. Protocol decisions stay in
//! [`crate::session`]; here only bytes, subscriber lists and inboxes.

use std::time::Instant;

use serde_json::value::RawValue;
use tracing::{info, warn};

use super::admission::{TokenSource, client_ip, origin_allowed, query_param, upgrade_token};
use super::conn::{Conn, ConnEvent};
use super::counters::WorkerCounters;
use super::rooms::{Membership, room_from_path};
use super::worker::Worker;
use crate::api::SessionCommand;
use crate::auth::TokenError;
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::reply::ClientInfo;
use crate::client_protocol::{self as cp, Disconnect};
use crate::engine::{HistoryOptions, HistoryQuery, PresenceEntry, Stored, StreamPosition};
use crate::proto::encode::server_frame;
use crate::proto::handshake::{Request, Status, error_response};
use crate::proto::{CloseCode, OpCode};
use crate::session::{ClientSession, Host, Now};

const AUDIT: &str = "ringcast::audit";

/// A raw room connection: where it is and whether it may publish.
pub struct RawRoom {
    pub membership: Membership,
    pub can_publish: bool,
}

/// A client protocol connection: its session and its places in this worker's channel lists.
pub struct ClientApp {
    pub session: ClientSession,
    /// Places in this worker's channel lists (`Membership::room` is the channel): a short list,
    /// searched linearly (at most `client.channel_limit`), cheaper per connection than a map.
    subs: Vec<Membership>,
    /// In the worker's session index (once connected), so API commands find it.
    indexed: bool,
}

/// The upgrade's outcome.
pub enum Admitted {
    Room(RawRoom),
    Client {
        app: Box<ClientApp>,
        /// The subprotocol to name in the 101.
        protocol: Option<&'static str>,
        /// Close right after the upgrade (the protobuf flavour: 3506).
        close: Option<Disconnect>,
    },
}

/// Decides what the upgrade request gets: an [`Admitted`] or the HTTP refusal to send.
pub fn admit(
    worker: &Worker,
    conn_id: usize,
    req: &Request<'_>,
    peer: std::net::IpAddr,
    now: Instant,
) -> Result<Admitted, Vec<u8>> {
    let shared = &worker.shared;
    let cfg = &shared.app;
    let peer = client_ip(peer, req.forwarded_for, &cfg.trusted_proxies);
    let client = cfg.client();
    if !origin_allowed(req.origin, req.host, &client.allowed_origins) {
        let origin = req.origin.unwrap_or_default();
        info!(target: AUDIT, %peer, origin, "upgrade refused: origin not allowed");
        return Err(error_response(
            Status::FORBIDDEN,
            &format!("origin {origin} is not allowed (client.allowed_origins / --allowed-origins)"),
        ));
    }
    if let Err(secs) = shared.connect_limiter.check(peer, now) {
        info!(target: AUDIT, %peer, "upgrade refused: connect rate limit");
        let msg = format!(
            "too many new connections from {peer}: at most {}/s; retry in {secs} s",
            client.connect_rate_limit
        );
        let mut r = error_response(Status::TOO_MANY_REQUESTS, &msg);
        if secs > 1 {
            let text = String::from_utf8_lossy(&r)
                .replace("Retry-After: 1\r\n", &format!("Retry-After: {secs}\r\n"));
            r = text.into_bytes();
        }
        return Err(r);
    }
    let token = upgrade_token(req, &client.token_cookie);
    if let Some((_, TokenSource::Query)) = &token {
        warn!(target: AUDIT, %peer, "token given in the URL query: URLs end up in logs; prefer the connect command, a header or a cookie");
    }
    if req.path == cp::PATH {
        let protobuf = req.protocols().any(|p| p == cp::SUBPROTOCOL_PROTOBUF)
            && !req.protocols().any(|p| p == cp::SUBPROTOCOL_JSON)
            || matches!(
                query_param(req.query, "format")
                    .or_else(|| query_param(req.query, "cf_protocol"))
                    .as_deref(),
                Some("protobuf")
            );
        let protocol = if protobuf {
            Some(cp::SUBPROTOCOL_PROTOBUF)
        } else if req.protocols().any(|p| p == cp::SUBPROTOCOL_JSON) {
            Some(cp::SUBPROTOCOL_JSON)
        } else {
            None
        };
        let close = protobuf.then(|| {
            Disconnect::INAPPROPRIATE_PROTOCOL
                .with_detail("protobuf is not supported, use centrifuge-json")
        });
        let session = ClientSession::new(
            shared.session_env.clone(),
            client_id(worker.index, conn_id),
            token.map(|(t, _)| t),
            Now::system(),
        );
        return Ok(Admitted::Client {
            app: Box::new(ClientApp {
                session,
                subs: Vec::new(),
                indexed: false,
            }),
            protocol,
            close,
        });
    }
    if !cfg.raw_rooms {
        return Err(error_response(
            Status::NOT_FOUND,
            &format!(
                "raw rooms are off (--raw-rooms off); the client protocol is at {}",
                cp::PATH
            ),
        ));
    }
    let room =
        room_from_path(req.path).map_err(|e| error_response(Status::NOT_FOUND, &e.to_string()))?;
    let can_publish = raw_room_access(worker, room, token.map(|(t, _)| t), peer)?;
    let membership = worker
        .rooms
        .borrow_mut()
        .join(&shared.rooms, worker.index, room, conn_id)
        .map_err(|e| error_response(Status::SERVICE_UNAVAILABLE, &e.to_string()))?;
    Ok(Admitted::Room(RawRoom {
        membership,
        can_publish,
    }))
}

/// With token keys configured, a raw room is a channel: the token's user must be allowed to
/// subscribe to it; publishing needs publish permission. Returns whether it may publish.
fn raw_room_access(
    worker: &Worker,
    room: &str,
    token: Option<String>,
    peer: std::net::IpAddr,
) -> Result<bool, Vec<u8>> {
    let cfg = &worker.shared.app;
    if cfg.try_it_out {
        return Ok(true);
    }
    let user = match token {
        Some(t) => match cfg.verifier.verify_connect(&t, Now::system().unix) {
            Ok(c) => c.registered.sub,
            Err(e) => {
                info!(target: AUDIT, %peer, room, "raw room refused: {e}");
                let msg = match e {
                    TokenError::Expired => "token expired".to_owned(),
                    TokenError::Invalid(why) => format!("invalid token: {why}"),
                };
                return Err(error_response(Status::UNAUTHORIZED, &msg));
            }
        },
        None if cfg.allow_anonymous => String::new(),
        None => {
            return Err(error_response(
                Status::UNAUTHORIZED,
                "a token is required (Authorization: Bearer, the token cookie or ?token=)",
            ));
        }
    };
    let channel = cfg
        .channels
        .resolve(room)
        .map_err(|e| error_response(Status::FORBIDDEN, &e.message))?;
    if let Err(e) = cfg.channels.may_subscribe(&channel, &user) {
        info!(target: AUDIT, %peer, %user, room, "raw room refused: {}", e.message);
        return Err(error_response(Status::FORBIDDEN, &e.message));
    }
    Ok(cfg.channels.may_publish(&channel, &user, true).is_ok())
}

/// A client id: worker, slot and 64 random bits, UUID-shaped like Centrifugo's.
fn client_id(worker: usize, conn: usize) -> String {
    let mut r = [0u8; 8];
    let _ = getrandom::fill(&mut r);
    let r = u64::from_le_bytes(r);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (r >> 32) as u32,
        (r >> 16) as u16,
        worker & 0xfff,
        (r & 0xfff) as u16,
        conn as u64 & 0xffff_ffff_ffff
    )
}

/// The session's view of this worker.
struct ConnHost<'a> {
    worker: &'a Worker,
    conn: usize,
    subs: &'a mut Vec<Membership>,
}

impl ConnHost<'_> {
    fn membership(&self, channel: &str) -> Option<&Membership> {
        self.subs.iter().find(|m| &*m.room == channel)
    }
}

impl Host for ConnHost<'_> {
    fn join(&mut self, channel: &str) -> Result<(), ClientError> {
        let shared = &self.worker.shared;
        let first_here = self.worker.channels.borrow().get(channel).is_none();
        let m = self
            .worker
            .channels
            .borrow_mut()
            .join(&shared.channels, self.worker.index, channel, self.conn)
            .map_err(|e| ClientError::LIMIT_EXCEEDED.with_detail(e))?;
        if first_here {
            // The node listens to the channel before the session reads its position (the
            // Redis engine waits for Redis to confirm; the memory engine returns at once).
            if let Err(e) = shared.engine.node_subscribe(channel) {
                let mut channels = self.worker.channels.borrow_mut();
                channels.leave(&shared.channels, self.worker.index, &m);
                return Err(ClientError::from(e));
            }
        }
        if self.subs.is_empty() {
            self.subs.reserve_exact(1);
        }
        self.subs.push(m);
        WorkerCounters::add(&shared.counters[self.worker.index].subs_added, 1);
        Ok(())
    }

    fn set_position(&mut self, channel: &str, offset: u64) {
        if let Some(m) = self.membership(channel) {
            self.worker.channels.borrow().set_position(m, offset);
        }
    }

    fn leave(&mut self, channel: &str) {
        if let Some(i) = self.subs.iter().position(|m| &*m.room == channel) {
            let m = self.subs.swap_remove(i);
            let shared = &self.worker.shared;
            let last_here = {
                let mut channels = self.worker.channels.borrow_mut();
                channels.leave(&shared.channels, self.worker.index, &m);
                channels.get(&m.room).is_none()
            };
            if last_here {
                shared.engine.node_unsubscribe(&m.room);
            }
            WorkerCounters::add(&shared.counters[self.worker.index].subs_removed, 1);
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
        // Encoded once by the engine: one frame shared by every subscriber on every worker.
        let shared = &self.worker.shared;
        let r = shared.engine.publish(channel, data, info, history, now);
        shared.publish_latency.observe(now.elapsed());
        r.map_err(ClientError::from)
    }

    fn history(
        &mut self,
        channel: &str,
        query: HistoryQuery,
        history: HistoryOptions,
        now: Instant,
    ) -> Result<(Vec<Stored>, StreamPosition), ClientError> {
        self.worker
            .shared
            .engine
            .history(channel, query, history, now)
            .map_err(ClientError::from)
    }

    fn presence_event(&mut self, channel: &str, join: bool, info: &ClientInfo<'_>) {
        self.worker
            .shared
            .engine
            .publish_presence_event(channel, join, info);
    }

    fn presence_add(&mut self, channel: &str, entry: PresenceEntry) -> bool {
        self.worker.shared.engine.add_presence(channel, entry)
    }

    fn presence_remove(&mut self, channel: &str, client: &str) {
        self.worker.shared.engine.remove_presence(channel, client)
    }

    fn presence(&mut self, channel: &str) -> Vec<PresenceEntry> {
        self.worker.shared.engine.presence(channel)
    }

    fn presence_stats(&mut self, channel: &str) -> (usize, usize) {
        self.worker.shared.engine.presence_stats(channel)
    }

    fn user_connected(&mut self, user: &str) -> bool {
        self.worker.shared.users.add(user)
    }

    fn user_disconnected(&mut self, user: &str) {
        self.worker.shared.users.remove(user)
    }

    fn to_sessions(&mut self, cmd: SessionCommand) -> bool {
        self.worker.shared.to_sessions(cmd)
    }
}

impl ClientApp {
    fn host<'a>(worker: &'a Worker, conn: usize, subs: &'a mut Vec<Membership>) -> ConnHost<'a> {
        ConnHost { worker, conn, subs }
    }

    pub fn on_message(&mut self, worker: &Worker, conn: &Conn, text: Option<&[u8]>) {
        match text {
            Some(frame) => {
                let mut host = Self::host(worker, conn.id, &mut self.subs);
                self.session.handle_frame(frame, Now::system(), &mut host);
            }
            None => self.session.handle_binary(),
        }
        self.flush(worker, conn);
    }

    /// A gap the fan-out saw, or a server API command.
    pub fn on_event(&mut self, worker: &Worker, conn: &Conn, event: ConnEvent) {
        let mut host = Self::host(worker, conn.id, &mut self.subs);
        let s = &mut self.session;
        match event {
            ConnEvent::Gap(channel) => s.on_insufficient_state(&channel, &mut host),
            ConnEvent::Drain => s.server_disconnect(Disconnect::SHUTDOWN),
            ConnEvent::Command(cmd) => {
                if !cmd.sessions().matches(s.user(), s.client_id()) {
                    return;
                }
                match &*cmd {
                    SessionCommand::Disconnect(_, d) => s.server_disconnect(d.clone()),
                    SessionCommand::Unsubscribe(_, ch) => s.server_unsubscribe(ch, &mut host),
                    SessionCommand::Subscribe(_, ch) => {
                        s.server_subscribe(ch, Now::system(), &mut host)
                    }
                    SessionCommand::Refresh {
                        expired, expire_at, ..
                    } => s.server_refresh(*expired, *expire_at, Now::system()),
                    SessionCommand::Status(_, status) => s.apply_status(*status, &mut host),
                }
            }
        }
        self.flush(worker, conn);
    }

    pub fn on_timeout(&mut self, worker: &Worker, conn: &Conn) {
        let mut host = Self::host(worker, conn.id, &mut self.subs);
        self.session.handle_timeout(Now::system(), &mut host);
        self.flush(worker, conn);
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.session.poll_timeout()
    }

    /// Sends what the session produced: one text frame, then the Close it decided, if any.
    pub fn flush(&mut self, worker: &Worker, conn: &Conn) {
        if !self.indexed && self.session.is_connected() {
            self.indexed = true;
            worker.index_session(self.session.user(), conn.id);
        }
        if let Some(out) = self.session.take_output() {
            conn.send(worker, server_frame(OpCode::Text, &out));
        }
        if let Some(d) = self.session.disconnect() {
            let (code, reason) = (d.code, d.reason.clone());
            conn.close(
                CloseCode(code),
                &reason,
                false,
                worker.shared.opts.close_timeout,
            );
        }
    }

    pub fn on_closed(&mut self, worker: &Worker, conn_id: usize) {
        if self.indexed {
            worker.unindex_session(self.session.user(), conn_id);
        }
        let mut host = Self::host(worker, conn_id, &mut self.subs);
        self.session.on_closed(&mut host);
    }
}

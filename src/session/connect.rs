//! `connect` and `refresh`: who the connection is, for how long, and its server-side channels.

use std::collections::BTreeMap;

use tracing::{info, warn};

use super::channel::Wants;
use super::subscribe::raw_publications;
use super::{AuthFailures, ClientSession, Host, Now, State};
use crate::auth::{ConnectClaims, Role, TokenError};
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::command::{ConnectRequest, RefreshRequest};
use crate::client_protocol::reply::{ConnectResult, RefreshResult, SubscribeResult};

/// The audit trail: connects, refusals, refreshes, permission denials, forced disconnects.
pub(crate) const AUDIT: &str = "ringcast::audit";

impl ClientSession {
    pub(super) fn on_connect(
        &mut self,
        id: u32,
        r: &ConnectRequest<'_>,
        now: Now,
        host: &mut dyn Host,
    ) {
        if self.state == State::Connected {
            self.close(Disconnect::BAD_REQUEST.with_detail("already connected"));
            return;
        }
        let env = self.env.clone();
        let cfg = &env.cfg;
        let token = r
            .token
            .as_deref()
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .or_else(|| self.upgrade_token.take());
        let claims = match token {
            Some(t) if !cfg.verifier.is_configured() => {
                drop(t);
                info!(target: AUDIT, client = %self.client_id, "connect refused: a token was given but no token key is configured");
                self.close(
                    Disconnect::INVALID_TOKEN
                        .with_detail("no token key is configured on this server"),
                );
                return;
            }
            Some(t) => match cfg.verifier.verify_connect(&t, now.unix) {
                Ok(c) => c,
                Err(TokenError::Expired) => {
                    AuthFailures::count(&env.auth_failures.expired);
                    info!(target: AUDIT, client = %self.client_id, "connect refused: token expired (109)");
                    self.out.error(id, &ClientError::TOKEN_EXPIRED);
                    return;
                }
                Err(TokenError::Invalid(why)) => {
                    AuthFailures::count(&env.auth_failures.invalid);
                    warn!(target: AUDIT, client = %self.client_id, reason = %why, "connect refused: invalid token");
                    self.close(Disconnect::INVALID_TOKEN.with_detail(why));
                    return;
                }
            },
            None if cfg.allow_anonymous => ConnectClaims {
                roles: vec![Role::Guest],
                ..ConnectClaims::default()
            },
            None => {
                AuthFailures::count(&env.auth_failures.missing);
                info!(target: AUDIT, client = %self.client_id, "connect refused: no token and anonymous access is off");
                self.close(Disconnect::BAD_REQUEST.with_detail("a connection token is required"));
                return;
            }
        };
        let user = claims.registered.sub.clone();
        if !host.user_connected(&user) {
            info!(target: AUDIT, client = %self.client_id, %user, "connect refused: user connection limit");
            self.close(Disconnect::CONNECTION_LIMIT.with_detail(format_args!(
                "user already has {} connections",
                cfg.client().user_connection_limit
            )));
            return;
        }
        self.counted = true;
        self.role = if user.is_empty() {
            Role::Guest
        } else {
            claims.role()
        };
        self.token_info = claims.info.clone();
        self.conn_info = self.token_info.clone();
        self.user = user;
        if !self.chat_on_connect(now) {
            return;
        }
        let (expires, ttl) = self.set_expiry(claims.expires_at(), now);

        // Server-side subscriptions: the token's `subs` (or `channels`), the personal channel, the
        // broadcast channel.
        let mut channels: Vec<String> = if claims.subs.is_empty() {
            claims.channels.clone()
        } else {
            claims.subs.keys().cloned().collect()
        };
        let personal = &cfg.client().subscribe_to_user_personal_channel;
        if personal.enabled && !self.user.is_empty() {
            channels.push(
                cfg.channels
                    .personal_channel(&personal.personal_channel_namespace, &self.user),
            );
        }
        let everyone = &cfg.client().broadcast_channel;
        if !everyone.is_empty() {
            channels.push(everyone.clone());
        }
        channels.sort();
        channels.dedup();
        if channels.len() > cfg.client().channel_limit {
            self.close(Disconnect::CHANNEL_LIMIT.with_detail(format_args!(
                "{} server-side channels over the limit of {}",
                channels.len(),
                cfg.client().channel_limit
            )));
            return;
        }
        let default_ns = crate::config::NamespaceOptions::default();
        let mut entered = Vec::with_capacity(channels.len());
        for ch in &channels {
            // A token channel or the personal channel in a namespace the configuration does not
            // define gets default options (no history, no presence): still delivered.
            let resolved = cfg.channels.resolve(ch);
            if let Err(e) = &resolved {
                warn!(client = %self.client_id, user = %self.user, channel = %ch, "server-side channel: {}; default options used", e.message);
            }
            let ns = resolved.as_ref().map_or(&default_ns, |c| c.opts);
            let wants = r
                .subs
                .as_ref()
                .and_then(|m| m.get(ch.as_str()))
                .map(|s| Wants {
                    recoverable: true,
                    recover: s
                        .recover
                        .then(|| (s.offset, s.epoch.as_deref().unwrap_or(""))),
                    ..Wants::default()
                })
                .unwrap_or_default();
            let wants = Wants {
                server_side: true,
                ..wants
            };
            match self.enter_channel(ch, ns, wants, now.at, host) {
                Ok(e) => entered.push(e),
                Err(e) => {
                    self.close(Disconnect::INTERNAL.with_detail(e.message));
                    return;
                }
            }
        }
        let raw: Vec<Vec<&serde_json::value::RawValue>> = entered
            .iter()
            .map(|e| raw_publications(&e.publications))
            .collect();
        let subs: BTreeMap<&str, SubscribeResult<'_>> = channels
            .iter()
            .zip(entered.iter().zip(raw.iter()))
            .map(|(c, (e, p))| {
                (
                    c.as_str(),
                    SubscribeResult {
                        recoverable: e.recoverable,
                        epoch: e.epoch.as_deref().unwrap_or(""),
                        publications: p,
                        recovered: e.recovered,
                        offset: e.offset,
                        positioned: e.positioned,
                        was_recovering: e.was_recovering,
                        ..SubscribeResult::default()
                    },
                )
            })
            .collect();
        let ping = cfg.client().ping_interval.0;
        self.out.reply(
            id,
            "connect",
            &ConnectResult {
                client: &self.client_id,
                version: env.version,
                expires,
                ttl,
                data: None,
                subs,
                ping: ping.as_secs().max(1) as u32,
                pong: true,
            },
        );
        self.state = State::Connected;
        self.next_ping = Some(now.at + ping);
        info!(target: AUDIT, client = %self.client_id, user = %self.user, role = ?self.role, "connected");
    }

    /// Arms the 3005 timer from a token's expiry; returns the reply's `expires` and `ttl`.
    pub(super) fn set_expiry(&mut self, expires_at: Option<u64>, now: Now) -> (bool, u32) {
        match expires_at {
            Some(t) => {
                let grace = self.env.cfg.client().expired_close_delay.0;
                self.expire_close_at = Some(now.instant_of(t) + grace);
                (true, t.saturating_sub(now.unix).min(u32::MAX as u64) as u32)
            }
            None => {
                self.expire_close_at = None;
                (false, 0)
            }
        }
    }

    pub(super) fn on_refresh(&mut self, id: u32, r: &RefreshRequest<'_>, now: Now) {
        if r.token.is_empty() {
            self.out.error(
                id,
                &ClientError::BAD_REQUEST.with_detail("refresh needs a token"),
            );
            return;
        }
        let claims = match self.env.cfg.verifier.verify_connect(&r.token, now.unix) {
            Ok(c) => c,
            Err(TokenError::Expired) => {
                info!(target: AUDIT, client = %self.client_id, user = %self.user, "refresh with an expired token");
                self.close(Disconnect::EXPIRED.with_detail("refresh token expired"));
                return;
            }
            Err(TokenError::Invalid(why)) => {
                warn!(target: AUDIT, client = %self.client_id, user = %self.user, reason = %why, "refresh refused: invalid token");
                self.close(Disconnect::INVALID_TOKEN.with_detail(why));
                return;
            }
        };
        if claims.registered.sub != self.user {
            warn!(target: AUDIT, client = %self.client_id, user = %self.user, token_user = %claims.registered.sub, "refresh refused: token of another user");
            self.close(Disconnect::INVALID_TOKEN.with_detail("refresh token is for another user"));
            return;
        }
        let (expires, ttl) = self.set_expiry(claims.expires_at(), now);
        info!(target: AUDIT, client = %self.client_id, user = %self.user, ttl, "token refreshed");
        let version = self.env.version;
        self.out.reply(
            id,
            "refresh",
            &RefreshResult {
                client: &self.client_id,
                version,
                expires,
                ttl,
            },
        );
    }
}

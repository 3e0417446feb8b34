//! `subscribe`, `unsubscribe` and `sub_refresh`.

use tracing::info;

use super::channel::Wants;
use super::connect::AUDIT;
use super::{ClientSession, Host, Now};
use crate::auth::TokenError;
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::command::{ChannelRequest, SubRefreshRequest, SubscribeRequest};
use crate::client_protocol::reply::{ExpiresResult, SubscribeResult};

impl ClientSession {
    pub(super) fn on_subscribe(
        &mut self,
        id: u32,
        r: &SubscribeRequest<'_>,
        now: Now,
        host: &mut dyn Host,
    ) {
        let env = self.env.clone();
        let cfg = &env.cfg;
        let channel = r.channel.as_ref();
        let resolved = match cfg.channels.resolve(channel) {
            Ok(c) => c,
            Err(e) => return self.out.error(id, &e),
        };
        if self.subs.contains_key(channel) {
            return self.out.error(id, &ClientError::ALREADY_SUBSCRIBED);
        }
        let limit = cfg.client().channel_limit;
        if self.subs.len() >= limit {
            return self.out.error(
                id,
                &ClientError::LIMIT_EXCEEDED
                    .with_detail(format_args!("at most {limit} channels per connection")),
            );
        }
        let mut expires_at = None;
        match r.token.as_deref().filter(|t| !t.is_empty()) {
            Some(token) => match cfg.verifier.verify_subscribe(token, now.unix) {
                Ok(claims) => {
                    if claims.registered.sub != self.user || claims.channel != channel {
                        info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "subscription token for another user or channel");
                        self.close(
                            Disconnect::INVALID_TOKEN
                                .with_detail("subscription token is for another user or channel"),
                        );
                        return;
                    }
                    expires_at = claims.expires_at();
                }
                Err(TokenError::Expired) => {
                    return self.out.error(id, &ClientError::TOKEN_EXPIRED);
                }
                Err(TokenError::Invalid(why)) => {
                    info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, reason = %why, "subscription token refused");
                    return self
                        .out
                        .error(id, &ClientError::PERMISSION_DENIED.with_detail(why));
                }
            },
            None => {
                if let Err(e) = cfg.channels.may_subscribe(&resolved, &self.user) {
                    info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "subscribe denied: {}", e.message);
                    return self.out.error(id, &e);
                }
            }
        }
        if let Some(ns) = env.cfg.chat.room_of(&resolved)
            && let Err(e) = self.chat_may_enter(ns, channel, now)
        {
            info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "subscribe denied: {}", e.message);
            return self.out.error(id, &e);
        }
        let close_at =
            expires_at.map(|t| now.instant_of(t) + cfg.client().expired_sub_close_delay.0);
        let wants = Wants {
            recoverable: r.recoverable || r.recover,
            recover: r
                .recover
                .then(|| (r.offset, r.epoch.as_deref().unwrap_or(""))),
            server_side: false,
            close_at,
        };
        let entered = match self.enter_channel(channel, resolved.opts, wants, now.at, host) {
            Ok(e) => e,
            Err(e) => return self.out.error(id, &e),
        };
        let ttl = expires_at.map_or(0, |t| {
            t.saturating_sub(now.unix).min(u32::MAX as u64) as u32
        });
        let publications = raw_publications(&entered.publications);
        self.out.reply(
            id,
            "subscribe",
            &SubscribeResult {
                expires: expires_at.is_some(),
                ttl,
                recoverable: entered.recoverable,
                epoch: entered.epoch.as_deref().unwrap_or(""),
                publications: &publications,
                recovered: entered.recovered,
                offset: entered.offset,
                positioned: entered.positioned,
                data: None,
                was_recovering: entered.was_recovering,
            },
        );
    }

    pub(super) fn on_unsubscribe(&mut self, id: u32, r: &ChannelRequest<'_>, host: &mut dyn Host) {
        if let Some(sub) = self.subs.remove(r.channel.as_ref()) {
            self.leave_channel(&r.channel, &sub, host);
        }
        self.reply_empty(id, "unsubscribe");
    }

    pub(super) fn on_sub_refresh(&mut self, id: u32, r: &SubRefreshRequest<'_>, now: Now) {
        let channel = r.channel.as_ref();
        if !self.subs.contains_key(channel) {
            return self.out.error(
                id,
                &ClientError::BAD_REQUEST.with_detail("not subscribed to that channel"),
            );
        }
        let env = self.env.clone();
        let claims = match env.cfg.verifier.verify_subscribe(&r.token, now.unix) {
            Ok(c) => c,
            Err(TokenError::Expired) => return self.out.error(id, &ClientError::TOKEN_EXPIRED),
            Err(TokenError::Invalid(why)) => {
                self.close(Disconnect::INVALID_TOKEN.with_detail(why));
                return;
            }
        };
        if claims.registered.sub != self.user || claims.channel != channel {
            self.close(
                Disconnect::INVALID_TOKEN
                    .with_detail("subscription token is for another user or channel"),
            );
            return;
        }
        let expires_at = claims.expires_at();
        let grace = env.cfg.client().expired_sub_close_delay.0;
        if let Some(sub) = self.subs.get_mut(channel) {
            sub.close_at = expires_at.map(|t| now.instant_of(t) + grace);
        }
        self.out.reply(
            id,
            "sub_refresh",
            &ExpiresResult {
                expires: expires_at.is_some(),
                ttl: expires_at.map_or(0, |t| {
                    t.saturating_sub(now.unix).min(u32::MAX as u64) as u32
                }),
            },
        );
    }
}

/// Stored publications (valid JSON objects by construction) as raw JSON for a reply.
pub fn raw_publications(items: &[bytes::Bytes]) -> Vec<&serde_json::value::RawValue> {
    items
        .iter()
        .filter_map(|b| serde_json::from_slice(b).ok())
        .collect()
}

//! What the server API does to a connection: disconnect, unsubscribe, subscribe, refresh —
//! decided here, delivered by the runtime to every session of the user (see `crate::api`).

use tracing::{info, warn};

use super::channel::Wants;
use super::connect::AUDIT;
use super::subscribe::raw_publications;
use super::{ClientSession, Host, Now, State};
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::unsubscribe;
use crate::client_protocol::reply::{ExpiresResult, SubscribeResult, UnsubscribePush};

impl ClientSession {
    /// Closes the connection with `d` (API `disconnect`).
    pub fn server_disconnect(&mut self, d: Disconnect) {
        info!(target: AUDIT, client = %self.client_id, user = %self.user, code = d.code, reason = %d.reason, "disconnected by the server API");
        self.close(d);
    }

    /// Ends a subscription (API `unsubscribe`): an `unsubscribe` push with 2000; nothing when
    /// the session is not in the channel.
    pub fn server_unsubscribe(&mut self, channel: &str, host: &mut dyn Host) {
        let Some(sub) = self.subs.remove(channel) else {
            return;
        };
        self.leave_channel(channel, &sub, host);
        let (code, reason) = unsubscribe::SERVER;
        self.out
            .push(channel, "unsubscribe", &UnsubscribePush { code, reason });
        info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "unsubscribed by the server API");
    }

    /// Subscribes the session to `channel` server-side (API `subscribe`): a `subscribe` push
    /// the SDK reports as a server-side subscription. Already subscribed: nothing. Over the
    /// channel limit: refused with a log line (the API caller already got its answer).
    pub fn server_subscribe(&mut self, channel: &str, now: Now, host: &mut dyn Host) {
        if self.state != State::Connected || self.subs.contains_key(channel) {
            return;
        }
        let env = self.env.clone();
        let limit = env.cfg.client().channel_limit;
        if self.subs.len() >= limit {
            warn!(client = %self.client_id, user = %self.user, channel, "server API subscribe refused: the connection is at its channel limit ({limit})");
            return;
        }
        let default_ns = crate::config::NamespaceOptions::default();
        let resolved = env.cfg.channels.resolve(channel);
        let ns = resolved.as_ref().map_or(&default_ns, |c| c.opts);
        let wants = Wants {
            server_side: true,
            ..Wants::default()
        };
        match self.enter_channel(channel, ns, wants, now.at, host) {
            Ok(e) => {
                let publications = raw_publications(&e.publications);
                self.out.push(
                    channel,
                    "subscribe",
                    &SubscribeResult {
                        recoverable: e.recoverable,
                        epoch: e.epoch.as_deref().unwrap_or(""),
                        publications: &publications,
                        offset: e.offset,
                        positioned: e.positioned,
                        ..SubscribeResult::default()
                    },
                );
                info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "subscribed by the server API");
            }
            Err(e) => {
                warn!(client = %self.client_id, user = %self.user, channel, "server API subscribe failed: {}", e.message)
            }
        }
    }

    /// API `refresh`: `expired` closes with 3005; otherwise the connection's expiry moves to
    /// `expire_at` (unix seconds; None: never) and the client is told with a `refresh` push.
    pub fn server_refresh(&mut self, expired: bool, expire_at: Option<u64>, now: Now) {
        if self.state != State::Connected {
            return;
        }
        if expired {
            self.close(Disconnect::EXPIRED.with_detail("expired by the server API"));
            return;
        }
        let (expires, ttl) = self.set_expiry(expire_at, now);
        self.out
            .push("", "refresh", &ExpiresResult { expires, ttl });
    }
}

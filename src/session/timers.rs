//! The session's timers: no `connect` in time (3502), the server ping and a missing pong
//! (3012), an expired connection (3005), expired subscriptions (unsubscribe 2501 / 3006).

use std::time::Instant;

use super::{ClientSession, Host, Now, State};
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::unsubscribe;
use crate::client_protocol::reply::UnsubscribePush;

impl ClientSession {
    /// When [`ClientSession::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t = match self.state {
            State::Closed => return None,
            State::Connecting { deadline } => Some(deadline),
            State::Connected => None,
        };
        let mut at = |x: Option<Instant>| {
            if let Some(x) = x {
                t = Some(t.map_or(x, |t| t.min(x)));
            }
        };
        at(self.next_ping);
        at(self.pong_deadline);
        at(self.expire_close_at);
        for s in self.subs.values() {
            at(s.close_at);
        }
        t
    }

    pub fn handle_timeout(&mut self, now: Now, host: &mut dyn Host) {
        match self.state {
            State::Closed => return,
            State::Connecting { deadline } => {
                if now.at >= deadline {
                    self.close(Disconnect::STALE.with_detail("no connect command in time"));
                }
                return;
            }
            State::Connected => {}
        }
        if self.pong_deadline.is_some_and(|d| now.at >= d) {
            self.close(Disconnect::NO_PONG);
            return;
        }
        if self.expire_close_at.is_some_and(|d| now.at >= d) {
            self.close(Disconnect::EXPIRED.with_detail("token not refreshed"));
            return;
        }
        if let Some(p) = self.next_ping
            && now.at >= p
        {
            self.out.ping();
            if self.pong_deadline.is_none() {
                self.pong_deadline = Some(now.at + self.env.cfg.client().pong_timeout.0);
            }
            self.next_ping = Some(now.at + self.env.cfg.client().ping_interval.0);
        }
        let expired: Vec<(String, bool)> = self
            .subs
            .iter()
            .filter(|(_, s)| s.close_at.is_some_and(|d| now.at >= d))
            .map(|(c, s)| (c.to_owned(), s.server_side))
            .collect();
        for (ch, server_side) in expired {
            if server_side {
                self.close(Disconnect::SUBSCRIPTION_EXPIRED);
                return;
            }
            if let Some(sub) = self.subs.remove(&ch) {
                self.leave_channel(&ch, &sub, host);
            }
            let (code, reason) = unsubscribe::EXPIRED;
            self.out
                .push(&ch, "unsubscribe", &UnsubscribePush { code, reason });
        }
    }
}

//! Entering and leaving a channel, shared by client subscriptions, server-side ones and the
//! timers: the local subscriber list, the stream position (recovery without gap or duplicate),
//! presence and join/leave pushes.
//!
//! Why recovery has neither gap nor duplicate: the connection joins the worker's subscriber
//! list *before* it reads the channel's top offset `T` under the engine's channel lock. A
//! publication gets its offset and is handed to the workers under that same lock, so it either
//! finished before the read (offset ≤ `T`: it is in the history the reply carries, and the
//! worker drops its live copy because the position is set to `T`) or starts after it (offset
//! > `T`, and this worker is already in the channel's worker set: it arrives live).

use std::time::Instant;

use bytes::Bytes;

use super::{ClientSession, Host, Sub};
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::{ClientError, unsubscribe};
use crate::client_protocol::reply::UnsubscribePush;
use crate::config::NamespaceOptions;
use crate::engine::{HistoryOptions, HistoryQuery};

/// A channel's history settings from its namespace.
pub fn history_options(o: &NamespaceOptions) -> HistoryOptions {
    HistoryOptions {
        size: o.history_size as usize,
        ttl: o.history_ttl.map_or(std::time::Duration::ZERO, |d| d.0),
        meta_ttl: o
            .history_meta_ttl
            .map_or(std::time::Duration::ZERO, |d| d.0),
    }
}

/// What the subscribe reply says about the stream.
#[derive(Debug, Default)]
pub(super) struct Entered {
    pub recoverable: bool,
    pub positioned: bool,
    pub epoch: Option<std::sync::Arc<str>>,
    pub offset: u64,
    pub was_recovering: bool,
    pub recovered: bool,
    /// Recovered publications (JSON objects), oldest first.
    pub publications: Vec<Bytes>,
}

/// What the client asked about its position.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Wants<'a> {
    /// The subscription may be recovered later (`recoverable` in the request).
    pub recoverable: bool,
    /// Recover from this position (`recover`, `offset`, `epoch`).
    pub recover: Option<(u64, &'a str)>,
    /// Subscribed by the server (token, personal channel), not by the client.
    pub server_side: bool,
    /// When the subscription ends unless refreshed.
    pub close_at: Option<Instant>,
}

impl ClientSession {
    /// Joins `channel` and positions the subscription. On error nothing is left joined.
    pub(super) fn enter_channel(
        &mut self,
        channel: &str,
        ns: &NamespaceOptions,
        wants: Wants<'_>,
        now: Instant,
        host: &mut dyn Host,
    ) -> Result<Entered, ClientError> {
        host.join(channel)?;
        let mut entered = Entered::default();
        let history = history_options(ns);
        if history.enabled() {
            let recovery = ns.force_recovery || (ns.allow_recovery && wants.recoverable);
            let limit = self.env.cfg.client().recovery_max_publication_limit as usize;
            let recover = wants.recover.filter(|_| recovery);
            let query = match recover {
                // One more than the limit: more missed than that is "not recovered".
                Some((offset, _)) => HistoryQuery {
                    since: Some(offset),
                    limit: limit + 1,
                    reverse: false,
                },
                None => HistoryQuery::default(),
            };
            let (items, top) = match host.history(channel, query, history, now) {
                Ok(r) => r,
                Err(e) => {
                    host.leave(channel);
                    return Err(e);
                }
            };
            host.set_position(channel, top.offset);
            entered.recoverable = recovery;
            entered.positioned = true;
            if let Some((offset, epoch)) = recover {
                entered.was_recovering = true;
                let same_epoch = epoch == &*top.epoch;
                let whole = match (items.first(), items.last()) {
                    _ if items.len() > limit => false,
                    (None, _) => top.offset == offset,
                    (Some(first), Some(last)) => {
                        first.offset == offset + 1 && last.offset == top.offset
                    }
                    _ => false,
                };
                entered.recovered = same_epoch && whole;
                if same_epoch && items.len() <= limit {
                    // Even when not whole (history expired in between), what is there helps
                    // no one: Centrifugo sends nothing then, so do we.
                    if whole {
                        entered.publications = items.into_iter().map(|i| i.publication).collect();
                    }
                }
            }
            entered.offset = top.offset;
            entered.epoch = Some(top.epoch);
        }
        let visible = self.visible();
        let mut presence = false;
        if ns.presence && visible {
            presence = host.presence_add(channel, self.presence_entry());
        }
        if ns.join_leave
            && visible
            && let Some(info) = self.publisher()
        {
            host.presence_event(channel, true, &info);
        }
        self.subs.insert(
            channel.to_owned(),
            Sub {
                server_side: wants.server_side,
                presence,
                ns_presence: ns.presence,
                join_leave: ns.join_leave,
                close_at: wants.close_at,
            },
        );
        Ok(entered)
    }

    /// Leaves a channel this session was in (the subscription already taken out of `subs`).
    pub(super) fn leave_channel(&self, channel: &str, sub: &Sub, host: &mut dyn Host) {
        host.leave(channel);
        if sub.presence {
            host.presence_remove(channel, &self.client_id);
        }
        if sub.join_leave
            && self.visible()
            && let Some(info) = self.publisher()
        {
            host.presence_event(channel, false, &info);
        }
    }

    /// The worker saw a gap in `channel`'s offsets for this connection (a publication it will
    /// never get): the client must resubscribe and recover instead of skipping silently.
    /// A client subscription gets an `unsubscribe` push with 2500 (the SDK resubscribes), a
    /// server-side one closes the connection with 3010 (the SDK reconnects).
    pub fn on_insufficient_state(&mut self, channel: &str, host: &mut dyn Host) {
        let Some(sub) = self.subs.remove(channel) else {
            return;
        };
        self.leave_channel(channel, &sub, host);
        if sub.server_side {
            self.close(Disconnect::INSUFFICIENT_STATE);
        } else {
            let (code, reason) = unsubscribe::INSUFFICIENT_STATE;
            self.out
                .push(channel, "unsubscribe", &UnsubscribePush { code, reason });
        }
    }
}

//! `history`, `presence` and `presence_stats`: permission from the namespace, answer from the
//! engine (the same whichever worker serves the request).

use tracing::info;

use super::channel::history_options;
use super::connect::AUDIT;
use super::subscribe::raw_publications;
use super::{ClientSession, Host, Now};
use crate::client_protocol::codes::ClientError;
use crate::client_protocol::command::{ChannelRequest, HistoryRequest};
use crate::client_protocol::reply::{
    ClientInfo, HistoryResult, PresenceResult, PresenceStatsResult,
};
use crate::config::NamespaceOptions;
use crate::engine::HistoryQuery;

/// Who may read: subscribers when `for_subscriber`, any client when `for_client` (anonymous
/// ones only with `for_anonymous`).
fn may_read(
    for_client: bool,
    for_subscriber: bool,
    for_anonymous: bool,
    user: &str,
    subscribed: bool,
) -> bool {
    (for_subscriber && subscribed) || (for_client && (!user.is_empty() || for_anonymous))
}

impl ClientSession {
    fn resolve_for_read(
        &mut self,
        id: u32,
        channel: &str,
        what: &str,
        check: impl Fn(&NamespaceOptions) -> (bool, bool, bool, bool),
    ) -> Option<NamespaceOptions> {
        let env = self.env.clone();
        let ns = match env.cfg.channels.resolve(channel) {
            Ok(c) => c.opts.clone(),
            Err(e) => {
                self.out.error(id, &e);
                return None;
            }
        };
        let (enabled, for_client, for_subscriber, for_anonymous) = check(&ns);
        if !enabled {
            self.out.error(
                id,
                &ClientError::NOT_AVAILABLE
                    .with_detail(format_args!("{what} is off for this channel's namespace")),
            );
            return None;
        }
        let subscribed = self.subs.contains_key(channel);
        if !may_read(
            for_client,
            for_subscriber,
            for_anonymous,
            &self.user,
            subscribed,
        ) {
            info!(target: AUDIT, client = %self.client_id, user = %self.user, channel, "{what} denied");
            self.out
                .error(id, &ClientError::PERMISSION_DENIED.with_detail(what));
            return None;
        }
        Some(ns)
    }

    pub(super) fn on_presence(
        &mut self,
        id: u32,
        r: &ChannelRequest<'_>,
        stats: bool,
        host: &mut dyn Host,
    ) {
        let channel = r.channel.as_ref();
        let what = if stats { "presence_stats" } else { "presence" };
        let Some(_) = self.resolve_for_read(id, channel, what, |o| {
            (
                o.presence,
                o.allow_presence_for_client,
                o.allow_presence_for_subscriber,
                o.allow_presence_for_anonymous,
            )
        }) else {
            return;
        };
        if stats {
            let (clients, users) = host.presence_stats(channel);
            self.out.reply(
                id,
                "presence_stats",
                &PresenceStatsResult {
                    num_clients: clients as u32,
                    num_users: users as u32,
                },
            );
            return;
        }
        let entries = host.presence(channel);
        let infos: Vec<Option<Box<serde_json::value::RawValue>>> = entries
            .iter()
            .map(|e| {
                e.conn_info
                    .as_deref()
                    .and_then(|c| serde_json::value::RawValue::from_string(c.to_owned()).ok())
            })
            .collect();
        let presence = entries
            .iter()
            .zip(infos.iter())
            .map(|(e, info)| {
                (
                    &*e.client,
                    ClientInfo {
                        user: &e.user,
                        client: &e.client,
                        conn_info: info.as_deref(),
                        chan_info: None,
                    },
                )
            })
            .collect();
        self.out.reply(id, "presence", &PresenceResult { presence });
    }

    pub(super) fn on_history(
        &mut self,
        id: u32,
        r: &HistoryRequest<'_>,
        now: Now,
        host: &mut dyn Host,
    ) {
        let channel = r.channel.as_ref();
        let Some(ns) = self.resolve_for_read(id, channel, "history", |o| {
            (
                history_options(o).enabled(),
                o.allow_history_for_client,
                o.allow_history_for_subscriber,
                o.allow_history_for_anonymous,
            )
        }) else {
            return;
        };
        let max = self.env.cfg.client().history_max_publication_limit as usize;
        let limit = match r.limit {
            l if l < 0 => max,
            l => (l as usize).min(max),
        };
        let query = HistoryQuery {
            since: r.since.as_ref().map(|s| s.offset),
            limit,
            reverse: r.reverse,
        };
        let (items, top) = match host.history(channel, query, history_options(&ns), now.at) {
            Ok(x) => x,
            Err(e) => return self.out.error(id, &e),
        };
        if let Some(since) = &r.since
            && !since.epoch.is_empty()
            && since.epoch != *top.epoch
        {
            return self.out.error(
                id,
                &ClientError::UNRECOVERABLE_POSITION
                    .with_detail("the channel's epoch changed (history was reset)"),
            );
        }
        let stored: Vec<bytes::Bytes> = items.into_iter().map(|i| i.publication).collect();
        let publications = raw_publications(&stored);
        self.out.reply(
            id,
            "history",
            &HistoryResult {
                publications: &publications,
                epoch: &top.epoch,
                offset: top.offset,
            },
        );
    }
}

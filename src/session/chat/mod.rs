//! Chat in the session: what `crate::chat` decides, carried out on this connection and through
//! the [`Host`]. Only channels of `chat.namespaces` are touched; elsewhere nothing changes.
//!
//! | module | owns |
//! |---|---|
//! | [`publish`] | a publish into a chat room: permissions, mutes, auto-moderation, mentions, DMs |
//! | [`rpc`] | `dm.open`, `reaction.*`, `status.set`, `mod.*` |
//! | this file | bans at connect and subscribe, statuses in presence, notifications |

mod publish;
mod rpc;

use serde_json::value::RawValue;
use tracing::{info, warn};

use super::connect::AUDIT;
use super::{ClientSession, Host, Now};
use crate::chat::Status;
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::ClientError;
use crate::engine::PresenceEntry;

/// `conn_info` with the chat status: the token's `info` object with `"status"` set, or
/// `{"status":…}` (the token's non-object `info` kept under `"info"`). Online and no token
/// info: none.
fn with_status(token_info: Option<&RawValue>, status: Status) -> Option<Box<RawValue>> {
    if status == Status::Online {
        return token_info.map(|i| i.to_owned());
    }
    let mut v = match token_info.map(|i| serde_json::from_str::<serde_json::Value>(i.get())) {
        Some(Ok(serde_json::Value::Object(o))) => serde_json::Value::Object(o),
        Some(Ok(other)) => serde_json::json!({ "info": other }),
        _ => serde_json::json!({}),
    };
    v["status"] = status.name().into();
    RawValue::from_string(v.to_string()).ok()
}

impl ClientSession {
    /// At connect: a banned user is turned away (4501); the user's role and status are noted.
    /// False when the connection must close.
    pub(super) fn chat_on_connect(&mut self, now: Now) -> bool {
        let env = self.env.clone();
        if !env.cfg.chat.enabled() || self.user.is_empty() {
            return true;
        }
        let mut chat = env.chat.lock();
        if let Some(ban) = chat.moderation.banned(&self.user, None, now.unix_ms) {
            info!(target: AUDIT, client = %self.client_id, user = %self.user, "connect refused: banned");
            let d = Disconnect::BANNED.with_detail(format_args!("{}: {}", ban.ends(), ban.reason));
            drop(chat);
            self.close(d);
            return false;
        }
        chat.moderation.saw(&self.user, self.role);
        self.status = chat.status(&self.user);
        drop(chat);
        self.conn_info = with_status(self.token_info.as_deref(), self.status);
        true
    }

    /// Before subscribing to a chat room: a ban from the room refuses it (103).
    pub(super) fn chat_may_enter(
        &self,
        ns: &str,
        channel: &str,
        now: Now,
    ) -> Result<(), ClientError> {
        let env = &self.env;
        let mut chat = env.chat.lock();
        if let Some(ban) = chat
            .moderation
            .banned(&self.user, Some(channel), now.unix_ms)
        {
            return Err(ClientError::PERMISSION_DENIED.with_detail(format_args!(
                "you are banned from {channel} {}: {}",
                ban.ends(),
                ban.reason
            )));
        }
        if env.cfg.chat.dm_namespace.as_deref() == Some(ns) {
            chat.dm_seen(channel, &self.user);
        }
        Ok(())
    }

    /// Whether this connection shows in presence (not when invisible).
    pub(super) fn visible(&self) -> bool {
        self.status != Status::Invisible
    }

    /// A status change (this connection's `status.set`, or another connection of the user):
    /// presence entries carry the new `conn_info.status`; subscribers of channels with
    /// join/leave get a `join` push with it (a `leave` when turning invisible, a `join` when
    /// turning visible again).
    pub fn apply_status(&mut self, status: Status, host: &mut dyn Host) {
        if status == self.status || !self.is_connected() {
            return;
        }
        let was_visible = self.visible();
        self.status = status;
        self.conn_info = with_status(self.token_info.as_deref(), status);
        let visible = self.visible();
        let channels: Vec<(String, bool, bool)> = self
            .subs
            .iter()
            .map(|(c, s)| (c.to_string(), s.ns_presence, s.join_leave))
            .collect();
        for (channel, ns_presence, join_leave) in channels {
            if ns_presence {
                host.presence_remove(&channel, &self.client_id);
                let added = visible && host.presence_add(&channel, self.presence_entry());
                if let Some(sub) = self.subs.get_mut(&channel) {
                    sub.presence = added;
                }
            }
            if join_leave && (visible || was_visible) {
                let info = self.publisher().expect("connected");
                host.presence_event(&channel, visible, &info);
            }
        }
    }

    /// This connection as a presence entry.
    pub(super) fn presence_entry(&self) -> PresenceEntry {
        PresenceEntry {
            client: self.client_id.as_str().into(),
            user: self.user.as_str().into(),
            conn_info: self.conn_info.as_ref().map(|c| c.get().into()),
        }
    }

    /// The chat message stored at `offset` in `channel`'s history (the whole publication:
    /// `data`, `info`), or 107 naming what is not there.
    pub(super) fn message_at(
        &self,
        channel: &str,
        offset: u64,
        now: Now,
        host: &mut dyn Host,
    ) -> Result<serde_json::Value, ClientError> {
        let history = super::channel::history_options(self.env.cfg.channels.resolve(channel)?.opts);
        let query = crate::engine::HistoryQuery {
            since: Some(offset.saturating_sub(1)),
            limit: 1,
            reverse: false,
        };
        let (items, _) = host.history(channel, query, history, now.at)?;
        items
            .into_iter()
            .find(|i| i.offset == offset)
            .and_then(|i| serde_json::from_slice::<serde_json::Value>(&i.publication).ok())
            .filter(|p| p["data"]["type"] == "message")
            .ok_or_else(|| {
                ClientError::BAD_REQUEST.with_detail(format_args!(
                    "no chat message at offset {offset} in {channel}'s history"
                ))
            })
    }

    /// A mention or DM notification: `{type, channel, offset, from, text}` for `user`.
    pub(super) fn notify_message(
        &self,
        kind: &str,
        user: &str,
        (channel, offset, text): (&str, u64, &str),
        now: Now,
        host: &mut dyn Host,
    ) {
        self.notify(
            user,
            &serde_json::json!({"type": kind, "channel": channel, "offset": offset,
                                "from": self.user, "text": text}),
            now,
            host,
        );
    }

    /// A server notification on `user`'s personal channel (mentions, DMs, moderation).
    pub(super) fn notify(
        &self,
        user: &str,
        data: &serde_json::Value,
        now: Now,
        host: &mut dyn Host,
    ) {
        let (channel, history) = crate::chat::personal_target(&self.env.cfg, user);
        let Ok(raw) = RawValue::from_string(data.to_string()) else {
            return;
        };
        if let Err(e) = host.publish(&channel, &raw, None, history, now.at) {
            warn!(%user, channel, "chat notification not published: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_in_conn_info() {
        let obj = RawValue::from_string(r#"{"name":"Bob"}"#.into()).unwrap();
        assert_eq!(
            with_status(Some(&obj), Status::Away).unwrap().get(),
            r#"{"name":"Bob","status":"away"}"#
        );
        assert_eq!(
            with_status(Some(&obj), Status::Online).unwrap().get(),
            r#"{"name":"Bob"}"#
        );
        let s = RawValue::from_string(r#""x""#.into()).unwrap();
        assert_eq!(
            with_status(Some(&s), Status::Busy).unwrap().get(),
            r#"{"info":"x","status":"busy"}"#
        );
        assert_eq!(
            with_status(None, Status::Invisible).unwrap().get(),
            r#"{"status":"invisible"}"#
        );
        assert!(with_status(None, Status::Online).is_none());
    }
}

//! A publish into a chat room: the role may publish (and send DMs, and mention), the user is not
//! muted, the data is a chat message (or an edit or delete of one's own), blocked words and
//! auto-moderation pass; then the normalized message is published and mentioned users and DM
//! recipients are notified on their personal channels.

use serde_json::json;
use serde_json::value::RawValue;
use tracing::info;

use super::super::connect::AUDIT;
use super::super::{ClientSession, Host, Now};
use crate::channels::Channel;
use crate::chat::automod::Verdict;
use crate::chat::message::{ChatPublication, parse};
use crate::chat::permissions::Permission;
use crate::chat::replica::ChatChange;
use crate::client_protocol::codes::ClientError;

impl ClientSession {
    /// Publishes `data` into the chat room `channel` (already resolved, `may_publish` passed).
    pub(in crate::session) fn chat_publish(
        &mut self,
        channel: &str,
        ns: &str,
        resolved: &Channel<'_, '_>,
        data: &RawValue,
        now: Now,
        host: &mut dyn Host,
    ) -> Result<(), ClientError> {
        // The publish permission was checked by the caller, before the channel rules.
        let env = self.env.clone();
        let rules = &env.cfg.chat;
        let dm = rules.dm_namespace.as_deref() == Some(ns);
        if dm {
            rules.permissions.check(ns, self.role, Permission::SendDm)?;
        }
        if let Some(m) = env
            .chat
            .lock()
            .moderation
            .muted(&self.user, channel, now.unix_ms)
        {
            return Err(ClientError::PERMISSION_DENIED.with_detail(format_args!(
                "you are muted {}: {}",
                m.ends(),
                m.reason
            )));
        }
        let mut publication = parse(data.get(), rules.max_text_len)?;
        if let ChatPublication::Message(m) = &publication
            && !m.mentions.is_empty()
        {
            rules
                .permissions
                .check(ns, self.role, Permission::Mention)?;
        }
        match &publication {
            ChatPublication::Edit { offset, .. } | ChatPublication::Delete { offset } => {
                self.may_change(channel, ns, *offset, now, host)?;
            }
            ChatPublication::Message(_) => {}
        }
        if let Some(text) = publication.text_mut() {
            let blocked = rules.blocked.matches(text);
            if blocked && rules.mask_blocked {
                *text = rules.blocked.mask(text);
            }
            let verdict = env.chat.lock().automod.check(
                &self.user,
                text,
                blocked && !rules.mask_blocked,
                now.unix_ms,
            );
            self.automod_verdict(verdict, now, host)?;
        }
        let json = publication.to_json();
        let raw = RawValue::from_string(json).map_err(|_| ClientError::INTERNAL)?;
        let history = super::super::channel::history_options(resolved.opts);
        let pos = host.publish(channel, &raw, self.publisher().as_ref(), history, now.at)?;
        let offset = pos.map_or(0, |p| p.offset);
        if let ChatPublication::Message(m) = &publication {
            self.notify_mentions(resolved, (channel, offset, &m.text), &m.mentions, now, host);
            if dm {
                self.notify_dm(resolved, (channel, offset, &m.text), now, host);
            }
        }
        Ok(())
    }

    /// An edit or delete: of one's own message, or by a role that may mute here.
    fn may_change(
        &self,
        channel: &str,
        ns: &str,
        offset: u64,
        now: Now,
        host: &mut dyn Host,
    ) -> Result<(), ClientError> {
        let p = self.message_at(channel, offset, now, host)?;
        let author = p["info"]["user"].as_str().unwrap_or("");
        if author == self.user && !self.user.is_empty() {
            return Ok(());
        }
        self.env
            .cfg
            .chat
            .permissions
            .check(ns, self.role, Permission::Mute)
            .map_err(|_| {
                ClientError::PERMISSION_DENIED
                    .with_detail("only the author or a moderator may change a message")
            })
    }

    /// Auto-moderation's verdict: a warning or a mute refuses the message, is recorded in the
    /// moderation history and told to the user on their personal channel.
    fn automod_verdict(
        &self,
        v: Verdict,
        now: Now,
        host: &mut dyn Host,
    ) -> Result<(), ClientError> {
        let (violation, mute) = match v {
            Verdict::Pass => return Ok(()),
            Verdict::Warn(x) => (x, None),
            Verdict::Mute(x, ms) => (x, Some(ms)),
        };
        let reason = violation.reason();
        let record =
            self.env
                .chat
                .lock()
                .moderation
                .automatic(&self.user, mute, reason, now.unix_ms);
        self.env.chat.replicate(ChatChange::Moderation {
            user: self.user.clone(),
            record,
        });
        let action = if mute.is_some() { "mute" } else { "warn" };
        info!(target: AUDIT, user = %self.user, action, reason, mute_ms = mute, "auto-moderation");
        self.notify(
            &self.user,
            &json!({"type": "moderation", "action": action, "by": "automod", "reason": reason,
                    "channel": null, "until": mute.map(|ms| now.unix_ms + ms)}),
            now,
            host,
        );
        Err(ClientError::PERMISSION_DENIED.with_detail(match mute {
            Some(ms) => format!("auto-moderation: {reason}; muted for {} s", ms / 1000),
            None => format!("auto-moderation: {reason}; this is a warning"),
        }))
    }

    /// A mention notification for each mentioned user who may read the room (not the author).
    fn notify_mentions(
        &self,
        resolved: &Channel<'_, '_>,
        (channel, offset, text): (&str, u64, &str),
        mentions: &[String],
        now: Now,
        host: &mut dyn Host,
    ) {
        let env = self.env.clone();
        for user in mentions {
            if *user == self.user || env.cfg.channels.may_subscribe(resolved, user).is_err() {
                continue;
            }
            if env
                .chat
                .lock()
                .moderation
                .banned(user, Some(channel), now.unix_ms)
                .is_some()
            {
                continue;
            }
            self.notify_message("mention", user, (channel, offset, text), now, host);
        }
    }

    /// The first message of a DM while the recipient is not in the channel: a notification.
    fn notify_dm(
        &self,
        resolved: &Channel<'_, '_>,
        (channel, offset, text): (&str, u64, &str),
        now: Now,
        host: &mut dyn Host,
    ) {
        let env = self.env.clone();
        let Some(users) = resolved.users else {
            return;
        };
        let present: Vec<String> = host
            .presence(channel)
            .into_iter()
            .map(|e| e.user.to_string())
            .collect();
        for user in env.cfg.channels.limited_users(users) {
            if user == self.user || present.iter().any(|p| p == user) {
                continue;
            }
            if !env.chat.lock().should_notify_dm(channel, user) {
                continue;
            }
            self.notify_message("dm", user, (channel, offset, text), now, host);
        }
    }
}

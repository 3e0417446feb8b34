//! Chat's `rpc` methods: `dm.open`, `reaction.add`, `reaction.remove`, `reaction.list`,
//! `status.set`, `mod.warn|mute|unmute|kick|ban|unban`, `mod.history`. Shapes in PROTOCOL.md.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use serde_json::value::RawValue;
use tracing::info;

use super::super::connect::AUDIT;
use super::super::{ClientSession, Host, Now};
use crate::api::{SessionCommand, Sessions};
use crate::chat::Status;
use crate::chat::moderation::{Action, Actor, Request, Scope};
use crate::chat::permissions::Permission;
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::ClientError;
use crate::config::file::Dur;
use crate::engine::HistoryQuery;

/// Most offsets one `reaction.list` may ask about.
const MAX_LIST: usize = 100;
/// The namespace whose permissions govern global moderation (no channel).
const GLOBAL: &str = "";

type Reply = Result<Option<Box<RawValue>>, ClientError>;

fn params<T: DeserializeOwned>(method: &str, data: Option<&RawValue>) -> Result<T, ClientError> {
    let text = data.map_or("null", |d| d.get());
    serde_json::from_str(text)
        .map_err(|e| ClientError::BAD_REQUEST.with_detail(format_args!("{method}: bad data: {e}")))
}

fn reply(v: serde_json::Value) -> Reply {
    Ok(Some(
        RawValue::from_string(v.to_string()).map_err(|_| ClientError::INTERNAL)?,
    ))
}

fn valid_user(user: &str) -> Result<(), ClientError> {
    let ok = !user.is_empty()
        && user.len() <= 64
        && user
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'@'));
    if ok {
        Ok(())
    } else {
        Err(ClientError::BAD_REQUEST.with_detail(format_args!(
            "{user:?} is not a user name (1–64 of A-Z a-z 0-9 _ - . @)"
        )))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DmOpen {
    user: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct React {
    channel: String,
    offset: u64,
    emoji: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReactionList {
    channel: String,
    offsets: Vec<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusSet {
    status: Status,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Moderate {
    user: String,
    #[serde(default)]
    channel: Option<String>,
    #[serde(default)]
    global: bool,
    #[serde(default)]
    duration: Option<Dur>,
    #[serde(default)]
    reason: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModHistory {
    user: String,
}

impl ClientSession {
    /// A chat `rpc` method, or None when `method` is not one of chat's.
    pub(in crate::session) fn chat_rpc(
        &mut self,
        method: &str,
        data: Option<&RawValue>,
        now: Now,
        host: &mut dyn Host,
    ) -> Option<Reply> {
        if !self.env.cfg.chat.enabled() {
            return None;
        }
        let action = match method {
            "mod.warn" => Some(Action::Warn),
            "mod.mute" => Some(Action::Mute),
            "mod.unmute" => Some(Action::Unmute),
            "mod.kick" => Some(Action::Kick),
            "mod.ban" => Some(Action::Ban),
            "mod.unban" => Some(Action::Unban),
            _ => None,
        };
        Some(match method {
            "dm.open" => params(method, data).and_then(|p| self.dm_open(p)),
            "reaction.add" => params(method, data).and_then(|p| self.react(p, true, now, host)),
            "reaction.remove" => params(method, data).and_then(|p| self.react(p, false, now, host)),
            "reaction.list" => params(method, data).and_then(|p| self.reaction_list(p)),
            "status.set" => params(method, data).and_then(|p| self.status_set(p, host)),
            "mod.history" => params(method, data).and_then(|p| self.mod_history(p)),
            "chat.info" => self.chat_info(),
            _ => match action {
                Some(a) => params(method, data).and_then(|p| self.moderate(a, p, now, host)),
                None => return None,
            },
        })
    }

    fn dm_open(&mut self, p: DmOpen) -> Reply {
        let env = self.env.clone();
        let Some(ns) = env.cfg.chat.dm_namespace.as_deref() else {
            return Err(ClientError::NOT_AVAILABLE
                .with_detail("direct messages are off (chat.dm_namespace)"));
        };
        env.cfg
            .chat
            .permissions
            .check(ns, self.role, Permission::SendDm)?;
        valid_user(&p.user)?;
        if p.user == self.user {
            return Err(ClientError::BAD_REQUEST.with_detail("a DM needs another user"));
        }
        let channel = env.cfg.channels.dm_channel(ns, &self.user, &p.user);
        reply(json!({ "channel": channel }))
    }

    /// The chat room `channel` resolves to, if this user may read it: its namespace.
    fn readable_room(&self, channel: &str, now: Now) -> Result<String, ClientError> {
        let env = self.env.clone();
        let resolved = env.cfg.channels.resolve(channel)?;
        let Some(ns) = super::room_namespace(&env, &resolved) else {
            return Err(
                ClientError::BAD_REQUEST.with_detail(format_args!("{channel} is not a chat room"))
            );
        };
        if !self.subs.contains_key(channel) {
            env.cfg.channels.may_subscribe(&resolved, &self.user)?;
        }
        self.chat_may_enter(ns, channel, now)?;
        Ok(ns.to_owned())
    }

    fn react(&mut self, p: React, add: bool, now: Now, host: &mut dyn Host) -> Reply {
        let env = self.env.clone();
        let ns = self.readable_room(&p.channel, now)?;
        env.cfg
            .chat
            .permissions
            .check(&ns, self.role, Permission::React)?;
        crate::chat::reactions::valid_emoji(&p.emoji)?;
        if let Some(m) = env
            .chat
            .lock()
            .moderation
            .muted(&self.user, &p.channel, now.unix_ms)
        {
            return Err(ClientError::PERMISSION_DENIED.with_detail(format_args!(
                "you are muted {}: {}",
                m.ends(),
                m.reason
            )));
        }
        let history =
            super::super::channel::history_options(env.cfg.channels.resolve(&p.channel)?.opts);
        let query = HistoryQuery {
            since: Some(p.offset.saturating_sub(1)),
            limit: 1,
            reverse: false,
        };
        let (items, _) = host.history(&p.channel, query, history, now.at)?;
        let is_message = items.first().is_some_and(|i| {
            i.offset == p.offset
                && serde_json::from_slice::<serde_json::Value>(&i.publication)
                    .is_ok_and(|v| v["data"]["type"] == "message")
        });
        if !is_message {
            return Err(ClientError::BAD_REQUEST.with_detail(format_args!(
                "no chat message at offset {} in {}'s history",
                p.offset, p.channel
            )));
        }
        let (changed, count) = {
            let mut chat = env.chat.lock();
            if add {
                chat.reactions.add(
                    &p.channel,
                    p.offset,
                    &p.emoji,
                    &self.user,
                    env.cfg.chat.max_reaction_emoji,
                )?
            } else {
                chat.reactions
                    .remove(&p.channel, p.offset, &p.emoji, &self.user)
            }
        };
        if changed {
            let event = json!({"type": "reaction", "op": if add { "add" } else { "remove" },
                               "offset": p.offset, "emoji": p.emoji, "count": count});
            let raw =
                RawValue::from_string(event.to_string()).map_err(|_| ClientError::INTERNAL)?;
            host.publish(&p.channel, &raw, self.publisher().as_ref(), history, now.at)?;
        }
        reply(json!({ "count": count, "changed": changed }))
    }

    fn reaction_list(&mut self, p: ReactionList) -> Reply {
        if p.offsets.len() > MAX_LIST {
            return Err(ClientError::LIMIT_EXCEEDED
                .with_detail(format_args!("at most {MAX_LIST} offsets at once")));
        }
        self.readable_room(&p.channel, super::super::Now::system())?;
        let chat = self.env.chat.lock();
        let mut out = BTreeMap::new();
        for o in p.offsets {
            let counts = chat.reactions.counts(&p.channel, o);
            if !counts.is_empty() {
                let mine: Vec<&String> = counts
                    .keys()
                    .filter(|e| chat.reactions.reacted(&p.channel, o, e, &self.user))
                    .collect();
                out.insert(o.to_string(), json!({"counts": counts, "mine": mine}));
            }
        }
        drop(chat);
        reply(json!({ "reactions": out }))
    }

    fn status_set(&mut self, p: StatusSet, host: &mut dyn Host) -> Reply {
        if self.user.is_empty() {
            return Err(
                ClientError::PERMISSION_DENIED.with_detail("anonymous users have no status")
            );
        }
        self.env.chat.lock().set_status(&self.user, p.status);
        self.apply_status(p.status, host);
        host.to_sessions(SessionCommand::Status(
            Sessions {
                user: self.user.clone(),
                client: None,
                except: vec![self.client_id.clone()],
            },
            p.status,
        ));
        info!(target: AUDIT, client = %self.client_id, user = %self.user, status = p.status.name(), "status set");
        reply(json!({ "status": p.status }))
    }

    fn moderate(&mut self, action: Action, p: Moderate, now: Now, host: &mut dyn Host) -> Reply {
        let env = self.env.clone();
        let (scope, ns) = match (&p.channel, p.global) {
            (Some(_), true) => {
                return Err(ClientError::BAD_REQUEST
                    .with_detail("name a channel or global: true, not both"));
            }
            (None, false) => {
                return Err(ClientError::BAD_REQUEST.with_detail("name a channel or global: true"));
            }
            (None, true) => (Scope::Global, GLOBAL.to_owned()),
            (Some(c), false) => {
                let resolved = env.cfg.channels.resolve(c)?;
                let Some(ns) = super::room_namespace(&env, &resolved) else {
                    return Err(ClientError::BAD_REQUEST
                        .with_detail(format_args!("{c} is not a chat room")));
                };
                (Scope::Channel(c.clone()), ns.to_owned())
            }
        };
        let permission = match action {
            Action::Warn => Permission::Warn,
            Action::Mute | Action::Unmute => Permission::Mute,
            Action::Kick => Permission::Kick,
            Action::Ban => Permission::Ban,
            Action::Unban => Permission::Unban,
        };
        env.cfg.chat.permissions.check(&ns, self.role, permission)?;
        valid_user(&p.user)?;
        let req = Request {
            action,
            user: p.user.clone(),
            scope: scope.clone(),
            duration: p.duration.map(|d| d.0.as_millis() as u64),
            reason: p.reason,
        };
        let actor = Actor {
            user: &self.user,
            role: self.role,
        };
        let decided = env.chat.lock().moderation.apply(actor, req, now.unix_ms)?;
        let r = &decided.record;
        info!(target: AUDIT, moderator = %self.user, user = %p.user, action = action.name(),
              scope = ?r.scope, until = ?r.until, reason = %r.reason, "moderation");
        let to = Sessions {
            user: p.user.clone(),
            client: None,
            except: Vec::new(),
        };
        if decided.remove {
            let cmd = match &scope {
                Scope::Channel(c) => SessionCommand::Unsubscribe(to, c.clone()),
                Scope::Global => {
                    let base = if action == Action::Ban {
                        Disconnect::BANNED
                    } else {
                        Disconnect::KICKED
                    };
                    let until = match r.until {
                        Some(ms) => format!("until {}", crate::chat::moderation::rfc3339(ms)),
                        None if action == Action::Ban => "with no end".into(),
                        None => String::new(),
                    };
                    SessionCommand::Disconnect(
                        to,
                        base.with_detail(format_args!("{until} {}", r.reason).to_string().trim()),
                    )
                }
            };
            host.to_sessions(cmd);
        }
        self.notify(
            &p.user,
            &json!({"type": "moderation", "action": action, "by": self.user,
                    "reason": r.reason, "channel": scope.channel(), "until": r.until}),
            now,
            host,
        );
        reply(json!({ "record": r }))
    }

    /// Who you are here and the rooms to list: what the web page needs to draw itself.
    fn chat_info(&self) -> Reply {
        let rules = &self.env.cfg.chat;
        reply(json!({
            "user": self.user,
            "role": self.role,
            "rooms": rules.rooms,
            "moderator": rules.permissions.allows(GLOBAL, self.role, Permission::Mute),
            "dm": rules.dm_namespace.is_some(),
        }))
    }

    fn mod_history(&mut self, p: ModHistory) -> Reply {
        self.env.cfg.chat.permissions.check(
            GLOBAL,
            self.role,
            Permission::ReadModerationHistory,
        )?;
        let records = self.env.chat.lock().moderation.history(&p.user);
        reply(json!({ "user": p.user, "records": records }))
    }
}

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
use crate::chat::moderate::{GLOBAL, ModHistory, Moderate, valid_user};
use crate::chat::moderation::{Action, Actor};
use crate::chat::permissions::Permission;
use crate::chat::replica::ChatChange;
use crate::client_protocol::codes::ClientError;

/// Most offsets one `reaction.list` may ask about.
const MAX_LIST: usize = 100;

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

/// The session as moderation's effects: commands to every worker, notifications published
/// through this worker's host.
struct SessionEffects<'a, 'h> {
    session: &'a ClientSession,
    host: &'h mut dyn Host,
    now: Now,
}

impl crate::chat::moderate::Effects for SessionEffects<'_, '_> {
    fn to_sessions(&mut self, cmd: SessionCommand) -> bool {
        self.host.to_sessions(cmd)
    }

    fn notify(&mut self, user: &str, data: &serde_json::Value) {
        self.session.notify(user, data, self.now, self.host);
    }
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
        if method == "chat.info" {
            return Some(self.chat_info());
        }
        if !self.env.cfg.chat.enabled() {
            return None;
        }
        let action = crate::chat::moderate::action_of(method);
        Some(match method {
            "dm.open" => params(method, data).and_then(|p| self.dm_open(p)),
            "reaction.add" => params(method, data).and_then(|p| self.react(p, true, now, host)),
            "reaction.remove" => params(method, data).and_then(|p| self.react(p, false, now, host)),
            "reaction.list" => params(method, data).and_then(|p| self.reaction_list(p, now)),
            "status.set" => params(method, data).and_then(|p| self.status_set(p, host)),
            "mod.history" => params(method, data).and_then(|p: ModHistory| self.mod_history(p)),
            _ => match action {
                Some(a) => {
                    params(method, data).and_then(|p: Moderate| self.moderate(a, p, now, host))
                }
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
        // A name with the separator would make a channel more than two users may read.
        valid_user(&self.user).map_err(|_| {
            ClientError::PERMISSION_DENIED.with_detail(
                "your user name cannot name a DM channel (1–64 of A-Z a-z 0-9 _ - . @)",
            )
        })?;
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
        let Some(ns) = env.cfg.chat.room_of(&resolved) else {
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
        self.message_at(&p.channel, p.offset, now, host)?;
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
            env.chat.replicate(ChatChange::Reaction {
                channel: p.channel.clone(),
                offset: p.offset,
                emoji: p.emoji.clone(),
                user: self.user.clone(),
                add,
            });
            let event = json!({"type": "reaction", "op": if add { "add" } else { "remove" },
                               "offset": p.offset, "emoji": p.emoji, "count": count});
            let raw =
                RawValue::from_string(event.to_string()).map_err(|_| ClientError::INTERNAL)?;
            host.publish(&p.channel, &raw, self.publisher().as_ref(), history, now.at)?;
        }
        reply(json!({ "count": count, "changed": changed }))
    }

    fn reaction_list(&mut self, p: ReactionList, now: Now) -> Reply {
        if p.offsets.len() > MAX_LIST {
            return Err(ClientError::LIMIT_EXCEEDED
                .with_detail(format_args!("at most {MAX_LIST} offsets at once")));
        }
        self.readable_room(&p.channel, now)?;
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
        self.env.chat.replicate(ChatChange::Status {
            user: self.user.clone(),
            status: p.status,
        });
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
        let actor = Actor {
            user: &self.user,
            role: self.role,
        };
        let mut fx = SessionEffects {
            session: self,
            host,
            now,
        };
        let record = crate::chat::moderate::execute(
            &env.cfg,
            &env.chat,
            actor,
            action,
            p,
            now.unix_ms,
            &mut fx,
        )?;
        reply(record)
    }

    /// Who you are here and the rooms to list: what the web page needs to draw itself
    /// (answered with chat off too, `"chat": false`, so the page can say so).
    fn chat_info(&self) -> Reply {
        let rules = &self.env.cfg.chat;
        reply(json!({
            "chat": rules.enabled(),
            "user": self.user,
            "role": self.role,
            "rooms": rules.rooms,
            "moderator": rules.permissions.allows(GLOBAL, self.role, Permission::Mute),
            "dm": rules.dm_namespace.is_some(),
        }))
    }

    fn mod_history(&mut self, p: ModHistory) -> Reply {
        reply(crate::chat::moderate::history(
            &self.env.cfg,
            &self.env.chat,
            self.role,
            &p.user,
        )?)
    }
}

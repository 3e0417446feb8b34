//! Carrying out a moderation request, whoever asks: a moderator's `rpc mod.*` on a connection,
//! or a backend's server API `rpc` (as the admin `"api"`). Decides with [`super::moderation`],
//! then acts through [`Effects`]: a kick or a ban closes the user's connections at every worker
//! (or unsubscribes them from the room), and the user is told on their personal channel.

use serde::Deserialize;
use serde_json::json;
use tracing::info;

use super::Chat;
use super::moderation::{Action, Actor, Request, Scope, rfc3339};
use super::permissions::Permission;
use crate::api::{SessionCommand, Sessions};
use crate::auth::Role;
use crate::client_protocol::Disconnect;
use crate::client_protocol::codes::ClientError;
use crate::config::AppConfig;
use crate::config::file::Dur;

const AUDIT: &str = "ringcast::audit";
/// The namespace whose permissions govern global moderation (no channel).
pub const GLOBAL: &str = "";

/// `mod.*` data: `{user, channel | global: true, duration?, reason?}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Moderate {
    pub user: String,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub global: bool,
    #[serde(default)]
    pub duration: Option<Dur>,
    #[serde(default)]
    pub reason: String,
}

/// `mod.history` data.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModHistory {
    pub user: String,
}

/// What carrying out a decision needs from the caller's side of the server.
pub trait Effects {
    /// A command for the user's sessions at every worker.
    fn to_sessions(&mut self, cmd: SessionCommand) -> bool;
    /// A publication on the user's personal channel.
    fn notify(&mut self, user: &str, data: &serde_json::Value);
}

/// The action an rpc method names (`mod.ban` → ban).
pub fn action_of(method: &str) -> Option<Action> {
    Some(match method {
        "mod.warn" => Action::Warn,
        "mod.mute" => Action::Mute,
        "mod.unmute" => Action::Unmute,
        "mod.kick" => Action::Kick,
        "mod.ban" => Action::Ban,
        "mod.unban" => Action::Unban,
        _ => return None,
    })
}

/// A user name as chat accepts it: 1–64 of `A-Z a-z 0-9 _ - . @`.
pub fn valid_user(user: &str) -> Result<(), ClientError> {
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

/// Decides and carries out one moderation request; the answer is `{"record": …}`.
pub fn execute(
    cfg: &AppConfig,
    chat: &Chat,
    actor: Actor<'_>,
    action: Action,
    p: Moderate,
    now_ms: u64,
    fx: &mut dyn Effects,
) -> Result<serde_json::Value, ClientError> {
    if !cfg.chat.enabled() {
        return Err(ClientError::NOT_AVAILABLE.with_detail("chat is off (chat.namespaces)"));
    }
    let (scope, ns) =
        match (&p.channel, p.global) {
            (Some(_), true) => {
                return Err(ClientError::BAD_REQUEST
                    .with_detail("name a channel or global: true, not both"));
            }
            (None, false) => {
                return Err(ClientError::BAD_REQUEST.with_detail("name a channel or global: true"));
            }
            (None, true) => (Scope::Global, GLOBAL.to_owned()),
            (Some(c), false) => {
                let resolved = cfg.channels.resolve(c)?;
                let Some(ns) = cfg.chat.room_of(&resolved) else {
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
    cfg.chat.permissions.check(&ns, actor.role, permission)?;
    valid_user(&p.user)?;
    let req = Request {
        action,
        user: p.user.clone(),
        scope: scope.clone(),
        duration: p.duration.map(|d| d.0.as_millis() as u64),
        reason: p.reason,
    };
    let decided = chat.lock().moderation.apply(actor, req, now_ms)?;
    let replicated = chat.replicate(super::replica::ChatChange::Moderation {
        user: p.user.clone(),
        record: decided.record.clone(),
    });
    let r = &decided.record;
    let mut reached = true;
    info!(target: AUDIT, moderator = %actor.user, user = %p.user, action = action.name(),
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
                    Some(ms) => format!("until {}", rfc3339(ms)),
                    None if action == Action::Ban => "with no end".into(),
                    None => String::new(),
                };
                let reason = format!("{until} {}", r.reason);
                SessionCommand::Disconnect(to, base.with_detail(reason.trim()))
            }
        };
        reached = fx.to_sessions(cmd);
    }
    fx.notify(
        &p.user,
        &json!({"type": "moderation", "action": action, "by": actor.user,
                "reason": r.reason, "channel": scope.channel(), "until": r.until}),
    );
    if !replicated || !reached {
        return Err(ClientError::INTERNAL.with_detail(
            "recorded, but not every node or connection could be told (a full command queue, \
             or the engine unavailable): repeat the request",
        ));
    }
    Ok(json!({ "record": r }))
}

/// A user's moderation history (`read_moderation_history`): `{"user", "records"}`.
pub fn history(
    cfg: &AppConfig,
    chat: &Chat,
    role: Role,
    user: &str,
) -> Result<serde_json::Value, ClientError> {
    cfg.chat
        .permissions
        .check(GLOBAL, role, Permission::ReadModerationHistory)?;
    let records = chat.lock().moderation.history(user);
    Ok(json!({ "user": user, "records": records }))
}

//! Chat state that other nodes must share (with an engine several nodes share): what one node
//! decided — a sanction and its record, a status, a reaction — the others apply as it is, so a
//! user banned through one node is banned at every node. Live sanctions and statuses are also
//! kept in the engine (one entry per mute, ban or status other than online; forgotten when
//! lifted or back online), so a node that starts later turns away whom the others banned and
//! shows the statuses users set elsewhere. Sans-io: the change, how a node applies it, what is kept
//! and how it is restored; the server carries them through the engine.
//!
//! Must not: decide anything (permissions, roles and bounds of a request were checked by the
//! deciding node) or refuse a change because it arrives late.

use serde::{Deserialize, Serialize};

use super::moderation::{Action, Record};
use super::{ChatState, Status};

/// The engine set live sanctions are kept in.
pub const SANCTIONS_SET: &str = "chat.sanctions";
/// The engine set statuses other than online are kept in (by user).
pub const STATUSES_SET: &str = "chat.statuses";

/// One change of chat state, as the deciding node made it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum ChatChange {
    /// A moderation record of `user` (warn, mute, unmute, kick, ban, unban; by a moderator,
    /// the API or auto-moderation).
    Moderation {
        user: String,
        record: Record,
    },
    Status {
        user: String,
        status: Status,
    },
    Reaction {
        channel: String,
        offset: u64,
        emoji: String,
        user: String,
        add: bool,
    },
}

/// What a change means for kept state: the set, the key, and the value to keep (the change
/// itself as JSON) or `None` to forget it. A mute or a ban is kept, an unmute or unban forgets
/// it; a status is kept under its user, online forgets it; `None` for anything else.
pub fn kept_change(change: &ChatChange) -> Option<(&'static str, String, Option<Vec<u8>>)> {
    let json = || serde_json::to_vec(change).expect("a change is JSON");
    match change {
        ChatChange::Moderation { user, record } => {
            let (kind, keep) = match record.action {
                Action::Mute => ("mute", true),
                Action::Ban => ("ban", true),
                Action::Unmute => ("mute", false),
                Action::Unban => ("ban", false),
                Action::Warn | Action::Kick => return None,
            };
            // User names have no `|` (moderate::valid_user); the scope may.
            let key = format!(
                "{kind}|{user}|{}",
                record.scope.channel().unwrap_or_default()
            );
            Some((SANCTIONS_SET, key, keep.then(json)))
        }
        ChatChange::Status { user, status } => Some((
            STATUSES_SET,
            user.clone(),
            (*status != Status::Online).then(json),
        )),
        ChatChange::Reaction { .. } => None,
    }
}

/// Reads kept entries: `install` gets each readable change with its key and says whether it
/// installed it. Returns how many it did and the entries it did not or that cannot be read.
fn restore(
    kept: Vec<(String, Vec<u8>)>,
    what: &str,
    mut install: impl FnMut(&str, ChatChange) -> bool,
) -> (usize, Vec<(String, Vec<u8>)>) {
    let mut installed = 0;
    let mut stale = Vec::new();
    for (key, value) in kept {
        match serde_json::from_slice::<ChatChange>(&value) {
            Ok(change) => {
                if install(&key, change) {
                    installed += 1;
                } else {
                    stale.push((key, value));
                }
            }
            Err(e) => {
                tracing::warn!(%key, "a kept {what} cannot be read, forgotten: {e}");
                stale.push((key, value));
            }
        }
    }
    (installed, stale)
}

impl ChatState {
    /// Installs kept sanctions at start (`now`: unix ms). Returns how many were installed and
    /// the entries (key, value) that ended or cannot be read, for the caller to forget.
    pub fn restore_sanctions(
        &mut self,
        kept: Vec<(String, Vec<u8>)>,
        now: u64,
    ) -> (usize, Vec<(String, Vec<u8>)>) {
        restore(kept, "sanction", |_, change| match change {
            ChatChange::Moderation { user, record } if record.until.is_none_or(|u| u > now) => {
                self.moderation.install(&user, &record);
                true
            }
            _ => false,
        })
    }

    /// Installs kept statuses at start. Returns how many were installed and the entries that
    /// cannot be read, for the caller to forget.
    pub fn restore_statuses(
        &mut self,
        kept: Vec<(String, Vec<u8>)>,
    ) -> (usize, Vec<(String, Vec<u8>)>) {
        restore(kept, "status", |key, change| match change {
            ChatChange::Status { user, status } if user == key => {
                self.set_status(&user, status);
                true
            }
            _ => false,
        })
    }

    /// Applies another node's change. `max_emoji`: `chat.max_reaction_emoji` (a reaction over
    /// this node's bounds is not kept here, logged).
    pub fn apply_remote(&mut self, change: ChatChange, max_emoji: usize) {
        match change {
            ChatChange::Moderation { user, record } => self.moderation.replay(&user, record),
            ChatChange::Status { user, status } => self.set_status(&user, status),
            ChatChange::Reaction {
                channel,
                offset,
                emoji,
                user,
                add: true,
            } => {
                if let Err(e) = self
                    .reactions
                    .add(&channel, offset, &emoji, &user, max_emoji)
                {
                    tracing::warn!(%channel, offset, %user, "another node's reaction not kept here: {}", e.message);
                }
            }
            ChatChange::Reaction {
                channel,
                offset,
                emoji,
                user,
                add: false,
            } => {
                self.reactions.remove(&channel, offset, &emoji, &user);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::chat::ChatRules;
    use crate::chat::moderation::{Action, Actor, Request, Scope};

    const ADMIN: Actor<'static> = Actor {
        user: "root",
        role: Role::Admin,
    };

    fn request(action: Action, scope: Scope, duration: Option<u64>) -> Request {
        Request {
            action,
            user: "eve".into(),
            scope,
            duration,
            reason: "spam".into(),
        }
    }

    /// Decides on node a, sends the change as JSON, applies it on node b.
    fn decide_and_replay(a: &mut ChatState, b: &mut ChatState, req: Request, now: u64) {
        let user = req.user.clone();
        let record = a.moderation.apply(ADMIN, req, now).expect("decided").record;
        let wire = serde_json::to_string(&ChatChange::Moderation { user, record }).unwrap();
        b.apply_remote(serde_json::from_str(&wire).expect("decodes"), 8);
    }

    #[test]
    fn sanctions_decided_on_one_node_hold_on_another() {
        let rules = ChatRules::default();
        let (mut a, mut b) = (ChatState::new(&rules), ChatState::new(&rules));
        let t = 1_000_000;
        decide_and_replay(&mut a, &mut b, request(Action::Ban, Scope::Global, None), t);
        assert!(b.moderation.banned("eve", None, t + 1).is_some());
        let room = Scope::Channel("chat:lobby".into());
        decide_and_replay(&mut a, &mut b, request(Action::Mute, room, Some(60_000)), t);
        let m = b
            .moderation
            .muted("eve", "chat:lobby", t + 1)
            .expect("muted");
        assert_eq!(m.until, Some(t + 60_000));
        assert_eq!(m.by, "root");
        assert!(
            b.moderation
                .muted("eve", "chat:lobby", t + 60_000)
                .is_none()
        );
        decide_and_replay(
            &mut a,
            &mut b,
            request(Action::Unban, Scope::Global, None),
            t,
        );
        assert!(b.moderation.banned("eve", None, t + 1).is_none());
        assert_eq!(b.moderation.history("eve"), a.moderation.history("eve"));
    }

    #[test]
    fn kept_sanctions_restore_what_is_live() {
        let rules = ChatRules::default();
        let mut a = ChatState::new(&rules);
        let mut kept = std::collections::HashMap::new();
        let mut decide = |a: &mut ChatState, req: Request, now: u64| {
            let user = req.user.clone();
            let record = a.moderation.apply(ADMIN, req, now).expect("decided").record;
            if let Some((set, k, v)) = kept_change(&ChatChange::Moderation { user, record }) {
                assert_eq!(set, SANCTIONS_SET);
                match v {
                    Some(v) => kept.insert(k, v),
                    None => kept.remove(&k),
                };
            }
        };
        let lobby = || Scope::Channel("chat:lobby".into());
        decide(&mut a, request(Action::Ban, Scope::Global, None), 10);
        decide(&mut a, request(Action::Mute, lobby(), Some(1_000)), 10);
        decide(&mut a, request(Action::Ban, lobby(), Some(50_000)), 10);
        decide(&mut a, request(Action::Warn, Scope::Global, None), 10);
        decide(&mut a, request(Action::Unban, lobby(), None), 20);
        assert_eq!(
            kept.len(),
            2,
            "the global ban and the mute: {:?}",
            kept.keys()
        );
        kept.insert("ban|x|".into(), b"not json".to_vec());
        let mut b = ChatState::new(&rules);
        let (installed, stale) = b.restore_sanctions(kept.into_iter().collect(), 5_000);
        let mut stale: Vec<String> = stale.into_iter().map(|(k, _)| k).collect();
        stale.sort();
        assert_eq!(installed, 1);
        assert_eq!(
            stale,
            ["ban|x|", "mute|eve|chat:lobby"],
            "ended, unreadable"
        );
        assert!(b.moderation.banned("eve", None, 5_000).is_some());
        assert!(
            b.moderation
                .banned("eve", Some("chat:lobby"), 5_000)
                .is_some(),
            "the global ban"
        );
        assert!(
            b.moderation.history("eve").is_empty(),
            "no history from kept sanctions"
        );
    }

    #[test]
    fn kept_statuses_restore_and_online_is_forgotten() {
        let status = |user: &str, status| ChatChange::Status {
            user: user.into(),
            status,
        };
        let mut kept = std::collections::HashMap::new();
        for change in [
            status("eve", Status::Busy),
            status("bob", Status::Away),
            status("bob", Status::Online),
            status("amy", Status::Invisible),
        ] {
            let (set, key, value) = kept_change(&change).expect("a status is kept");
            assert_eq!(set, STATUSES_SET);
            match value {
                Some(v) => kept.insert(key, v),
                None => kept.remove(&key),
            };
        }
        assert_eq!(kept.len(), 2, "bob is online again: {:?}", kept.keys());
        kept.insert("zed".into(), b"{".to_vec());
        let mut b = ChatState::new(&ChatRules::default());
        let (installed, stale) = b.restore_statuses(kept.into_iter().collect());
        assert_eq!(installed, 2);
        assert_eq!(stale.len(), 1, "the unreadable one");
        assert_eq!(b.status("eve"), Status::Busy);
        assert_eq!(b.status("amy"), Status::Invisible);
        assert_eq!(b.status("bob"), Status::Online);
        let reaction = ChatChange::Reaction {
            channel: "chat:lobby".into(),
            offset: 1,
            emoji: "👍".into(),
            user: "eve".into(),
            add: true,
        };
        assert_eq!(kept_change(&reaction), None, "reactions are not kept");
    }

    #[test]
    fn automatic_mutes_statuses_and_reactions_travel() {
        let rules = ChatRules::default();
        let (mut a, mut b) = (ChatState::new(&rules), ChatState::new(&rules));
        let record = a.moderation.automatic("eve", Some(5_000), "flood", 10);
        b.apply_remote(
            ChatChange::Moderation {
                user: "eve".into(),
                record,
            },
            8,
        );
        assert!(b.moderation.muted("eve", "any:room", 11).is_some());
        b.apply_remote(
            ChatChange::Status {
                user: "eve".into(),
                status: Status::Away,
            },
            8,
        );
        assert_eq!(b.status("eve"), Status::Away);
        let react = |add| ChatChange::Reaction {
            channel: "chat:lobby".into(),
            offset: 3,
            emoji: "👍".into(),
            user: "eve".into(),
            add,
        };
        b.apply_remote(react(true), 8);
        assert_eq!(b.reactions.counts("chat:lobby", 3)["👍"], 1);
        b.apply_remote(react(false), 8);
        assert!(b.reactions.counts("chat:lobby", 3).is_empty());
    }
}

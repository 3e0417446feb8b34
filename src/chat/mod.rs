//! Chat on top of the client protocol (issue 11), sans-io: who may do what, the message shape,
//! mentions, sanctions, auto-moderation, reactions, statuses. The session
//! (`crate::session::chat`) asks these and carries out what they decide.
//!
//! | module | owns |
//! |---|---|
//! | [`permissions`] | roles × permissions, per-namespace overrides, 103 naming the permission |
//! | [`message`] | `{type:"message", text, reply_to?, mentions?}` validation |
//! | [`mentions`] | `@name` parsing (not inside words or addresses) |
//! | [`moderation`] | mutes, bans, kicks, warnings; the moderation history |
//! | [`moderate`] | carrying out a moderation request (from a session or the server API) |
//! | [`automod`] | floods, repeats, blocked words → warnings and escalating mutes |
//! | [`reactions`] | emoji per message, one per user per emoji |
//! | [`blocked`] | the blocked-words list |
//! | [`replica`] | changes other nodes apply (sanctions, statuses, reactions) |

pub mod automod;
pub mod blocked;
pub mod mentions;
pub mod message;
pub mod moderate;
pub mod moderation;
pub mod permissions;
pub mod reactions;
pub mod replica;

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, MutexGuard, OnceLock};

use serde::{Deserialize, Serialize};

use crate::channels::ChannelRules;
use crate::config::file::ChatSection;

/// Most users with a status other than online kept (further ones stay online, logged).
pub const MAX_STATUSES: usize = 100_000;
/// Most DM conversations remembered as "the recipient was told" (then forgotten wholesale).
pub const MAX_DM_NOTIFIED: usize = 100_000;

/// A user's status, carried in presence (`conn_info.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    #[default]
    Online,
    Away,
    Busy,
    /// Absent from presence for others, still receives.
    Invisible,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Online => "online",
            Status::Away => "away",
            Status::Busy => "busy",
            Status::Invisible => "invisible",
        }
    }
}

/// The chat configuration, checked against the channel rules.
#[derive(Debug, Default)]
pub struct ChatRules {
    namespaces: HashSet<String>,
    pub dm_namespace: Option<String>,
    pub max_text_len: usize,
    pub blocked: blocked::BlockedWords,
    /// Mask blocked words instead of refusing the message.
    pub mask_blocked: bool,
    pub max_reaction_emoji: usize,
    /// Rooms to list (`chat.rooms`).
    pub rooms: Vec<String>,
    pub permissions: permissions::PermissionTable,
    pub automod: crate::config::file::AutomodSection,
}

impl ChatRules {
    /// From `[chat]`: every named namespace must exist; the DM namespace must be a chat
    /// namespace that allows user-limited channels. Reads the blocked-words file.
    pub fn new(c: &ChatSection, channels: &ChannelRules) -> Result<Self, String> {
        for ns in &c.namespaces {
            if !channels.has_namespace(ns) {
                return Err(format!(
                    "chat.namespaces: {ns:?} is not in channel.namespaces"
                ));
            }
        }
        let dm_namespace = if c.dm_namespace.is_empty() {
            None
        } else {
            if !c.namespaces.contains(&c.dm_namespace) {
                return Err(format!(
                    "chat.dm_namespace: {:?} must also be in chat.namespaces",
                    c.dm_namespace
                ));
            }
            if !channels.allows_user_limited(&c.dm_namespace) {
                return Err(format!(
                    "chat.dm_namespace: namespace {:?} needs allow_user_limited_channels = true",
                    c.dm_namespace
                ));
            }
            Some(c.dm_namespace.clone())
        };
        let mask_blocked = match c.blocked_words_action.as_str() {
            "refuse" => false,
            "mask" => true,
            other => {
                return Err(format!(
                    "chat.blocked_words_action: {other:?} (refuse or mask)"
                ));
            }
        };
        let blocked = if c.blocked_words_file.is_empty() {
            blocked::BlockedWords::default()
        } else {
            let text = std::fs::read_to_string(&c.blocked_words_file)
                .map_err(|e| format!("chat.blocked_words_file {}: {e}", c.blocked_words_file))?;
            blocked::BlockedWords::parse(&text)
                .map_err(|e| format!("chat.blocked_words_file {}: {e}", c.blocked_words_file))?
        };
        let mut permissions = permissions::PermissionTable::default();
        for (ns, roles) in &c.permissions {
            for (role, perms) in roles {
                permissions
                    .set(ns, role, perms)
                    .map_err(|e| format!("chat.permissions.{ns}: {e}"))?;
            }
        }
        for room in &c.rooms {
            let ns = channels
                .resolve(room)
                .map_err(|e| format!("chat.rooms: {room:?}: {}", e.message))?
                .opts
                .name
                .clone();
            if !c.namespaces.contains(&ns) {
                return Err(format!("chat.rooms: {room:?} is not in a chat namespace"));
            }
        }
        if c.max_text_len == 0 {
            return Err("chat.max_text_len: must be at least 1".into());
        }
        Ok(Self {
            namespaces: c.namespaces.iter().cloned().collect(),
            dm_namespace,
            max_text_len: c.max_text_len,
            blocked,
            mask_blocked,
            max_reaction_emoji: c.max_reaction_emoji.max(1),
            rooms: c.rooms.clone(),
            permissions,
            automod: c.automod.clone(),
        })
    }

    pub fn enabled(&self) -> bool {
        !self.namespaces.is_empty()
    }

    /// Whether channels of `namespace` are chat rooms.
    pub fn is_room(&self, namespace: &str) -> bool {
        self.namespaces.contains(namespace)
    }

    /// The namespace of a resolved channel when it is a chat room (an empty-set check first:
    /// with chat off, nothing is hashed).
    pub fn room_of<'c>(&self, channel: &crate::channels::Channel<'c, '_>) -> Option<&'c str> {
        let ns = channel.opts.name.as_str();
        (self.enabled() && self.is_room(ns)).then_some(ns)
    }
}

/// Where `user`'s notifications go: their personal channel
/// (`client.subscribe_to_user_personal_channel.personal_channel_namespace`) and its history
/// settings (none when its namespace is not configured).
pub fn personal_target(
    cfg: &crate::config::AppConfig,
    user: &str,
) -> (String, crate::engine::HistoryOptions) {
    let personal = &cfg.client().subscribe_to_user_personal_channel;
    let channel = cfg
        .channels
        .personal_channel(&personal.personal_channel_namespace, user);
    let history = cfg
        .channels
        .resolve(&channel)
        .map(|c| crate::session::history_options(c.opts))
        .unwrap_or_default();
    (channel, history)
}

/// What chat remembers while the server runs, shared by every worker (behind one mutex: chat
/// actions are human-rate, the broadcast path never takes it).
#[derive(Debug)]
pub struct ChatState {
    pub moderation: moderation::Moderation,
    pub automod: automod::AutoMod,
    pub reactions: reactions::Reactions,
    statuses: HashMap<String, Status>,
    dm_notified: HashSet<(String, String)>,
    /// Statuses not remembered and DM notification memories cleared, for the bounds.
    statuses_refused: u64,
    dm_notified_cleared: u64,
}

/// Chat's figures for `/metrics`.
#[derive(Debug, Clone, Default)]
pub struct ChatFigures {
    pub mutes: usize,
    pub bans: usize,
    /// (action name, count).
    pub actions: Vec<(&'static str, u64)>,
    /// (bound name, times hit).
    pub bounds: Vec<(&'static str, u64)>,
}

impl ChatState {
    pub fn new(rules: &ChatRules) -> Self {
        Self {
            moderation: moderation::Moderation::default(),
            automod: automod::AutoMod::new(rules.automod.clone()),
            reactions: reactions::Reactions::default(),
            statuses: HashMap::new(),
            dm_notified: HashSet::new(),
            statuses_refused: 0,
            dm_notified_cleared: 0,
        }
    }

    /// The figures `/metrics` shows (live sanctions at `now`, unix ms).
    pub fn figures(&self, now: u64) -> ChatFigures {
        let (mutes, bans) = self.moderation.live_counts(now);
        let m = &self.moderation;
        ChatFigures {
            mutes,
            bans,
            actions: moderation::Action::ALL
                .iter()
                .map(|a| (a.name(), m.actions[*a as usize]))
                .collect(),
            bounds: vec![
                ("sanctions", m.sanctions_refused),
                ("moderation_histories", m.histories_dropped),
                ("reactions", self.reactions.evicted),
                ("automod_users", self.automod.untracked),
                ("statuses", self.statuses_refused),
                ("dm_notifications", self.dm_notified_cleared),
            ],
        }
    }

    pub fn status(&self, user: &str) -> Status {
        self.statuses.get(user).copied().unwrap_or_default()
    }

    pub fn set_status(&mut self, user: &str, status: Status) {
        if status == Status::Online {
            self.statuses.remove(user);
        } else if self.statuses.len() < MAX_STATUSES || self.statuses.contains_key(user) {
            self.statuses.insert(user.to_owned(), status);
        } else {
            self.statuses_refused += 1;
            tracing::warn!(%user, "chat: {MAX_STATUSES} statuses kept; this one not remembered past the connection");
        }
    }

    /// True the first time for a (DM channel, recipient) until the recipient subscribes.
    pub fn should_notify_dm(&mut self, channel: &str, recipient: &str) -> bool {
        if self.dm_notified.len() >= MAX_DM_NOTIFIED {
            tracing::warn!("chat: {MAX_DM_NOTIFIED} DM notifications remembered; forgotten");
            self.dm_notified.clear();
            self.dm_notified_cleared += 1;
        }
        self.dm_notified
            .insert((channel.to_owned(), recipient.to_owned()))
    }

    /// The recipient opened the conversation: the next message there while they are away is
    /// worth a notification again.
    pub fn dm_seen(&mut self, channel: &str, user: &str) {
        self.dm_notified
            .remove(&(channel.to_owned(), user.to_owned()));
    }
}

/// Where changes other nodes must know go (the server's control channel).
/// It returns false when the change could not be sent.
pub type Replicator = Box<dyn Fn(&replica::ChatChange) -> bool + Send + Sync>;

/// The shared chat state and its lock.
pub struct Chat {
    state: Mutex<ChatState>,
    replicator: OnceLock<Replicator>,
}

impl std::fmt::Debug for Chat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chat").field("state", &self.state).finish()
    }
}

impl Chat {
    pub fn new(rules: &ChatRules) -> Self {
        Self {
            state: Mutex::new(ChatState::new(rules)),
            replicator: OnceLock::new(),
        }
    }

    /// Sets where [`Chat::replicate`] sends changes (once; later calls are ignored).
    pub fn replicate_to(&self, f: Replicator) {
        let _ = self.replicator.set(f);
    }

    /// Tells the other nodes about a change this node made (nothing to do without other
    /// nodes); false when they could not be told. Call it without holding [`Chat::lock`].
    pub fn replicate(&self, change: replica::ChatChange) -> bool {
        self.replicator.get().is_none_or(|f| f(&change))
    }

    pub fn lock(&self) -> MutexGuard<'_, ChatState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

//! Sanctions and their history: who is muted or banned, where, until when; who did what to
//! whom and why. Decisions only: the caller carries out a kick or a ban at every worker.
//!
//! Time is an argument (unix milliseconds). Bounded: at most [`MAX_SANCTIONS`] live sanctions
//! (expired ones are swept first; a full store refuses a new one with 106) and
//! [`MAX_HISTORY_PER_USER`] records per user for at most [`MAX_HISTORY_USERS`] users (the user
//! whose history was touched longest ago is forgotten first, counted).

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

use crate::auth::Role;
use crate::client_protocol::codes::ClientError;

pub const MAX_SANCTIONS: usize = 100_000;
pub const MAX_HISTORY_PER_USER: usize = 100;
pub const MAX_HISTORY_USERS: usize = 10_000;
/// Longest reason kept (bytes; cut on a character boundary).
pub const MAX_REASON: usize = 200;

/// Where a sanction applies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum Scope {
    /// Every room (and, for a ban, connecting at all).
    Global,
    Channel(String),
}

impl Scope {
    pub fn channel(&self) -> Option<&str> {
        match self {
            Scope::Global => None,
            Scope::Channel(c) => Some(c),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Warn,
    Mute,
    Unmute,
    Kick,
    Ban,
    Unban,
}

impl Action {
    pub const ALL: [Action; 6] = [
        Action::Warn,
        Action::Mute,
        Action::Unmute,
        Action::Kick,
        Action::Ban,
        Action::Unban,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Action::Warn => "warn",
            Action::Mute => "mute",
            Action::Unmute => "unmute",
            Action::Kick => "kick",
            Action::Ban => "ban",
            Action::Unban => "unban",
        }
    }
}

/// One entry of a user's moderation history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Unix milliseconds.
    pub at: u64,
    /// Who acted (`"automod"` for auto-moderation, `"api"` for the server API).
    pub by: String,
    pub action: Action,
    /// `null` = global, else the channel.
    #[serde(serialize_with = "scope_json", deserialize_with = "scope_from_json")]
    pub scope: Scope,
    pub reason: String,
    /// Unix milliseconds the sanction ends (`null`: no end, or not a lasting sanction).
    pub until: Option<u64>,
}

fn scope_json<S: serde::Serializer>(scope: &Scope, s: S) -> Result<S::Ok, S::Error> {
    match scope {
        Scope::Global => s.serialize_none(),
        Scope::Channel(c) => s.serialize_str(c),
    }
}

fn scope_from_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
    Ok(Option::<String>::deserialize(d)?.map_or(Scope::Global, Scope::Channel))
}

/// A live mute or ban.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanction {
    pub until: Option<u64>,
    pub reason: String,
    pub by: String,
}

impl Sanction {
    fn live(&self, now: u64) -> bool {
        self.until.is_none_or(|u| u > now)
    }

    /// "until 2026-12-02T18:00:00Z" or "with no end".
    pub fn ends(&self) -> String {
        match self.until {
            Some(ms) => format!("until {}", rfc3339(ms)),
            None => "with no end".into(),
        }
    }
}

/// Unix milliseconds as `YYYY-MM-DDTHH:MM:SSZ` (UTC).
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Who acts.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub user: &'a str,
    pub role: Role,
}

/// What a moderator asks for.
#[derive(Debug, Clone)]
pub struct Request {
    pub action: Action,
    pub user: String,
    pub scope: Scope,
    /// Milliseconds; None: no end (mute, ban). Ignored for warn, kick, unmute, unban.
    pub duration: Option<u64>,
    pub reason: String,
}

/// What the caller must carry out after a decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    pub record: Record,
    /// The user's connections must close (global kick or ban) — or, for a channel scope,
    /// leave that channel.
    pub remove: bool,
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut n = max;
        while !s.is_char_boundary(n) {
            n -= 1;
        }
        s.truncate(n);
    }
    s
}

/// The sanctions of a server.
#[derive(Debug, Default)]
pub struct Moderation {
    mutes: HashMap<(String, Scope), Sanction>,
    bans: HashMap<(String, Scope), Sanction>,
    history: HashMap<String, (u64, VecDeque<Record>)>,
    /// The role each user last connected with (bounded like the history): a moderator may not
    /// sanction a moderator or an admin.
    roles: HashMap<String, Role>,
    /// Histories forgotten for the bound (a metric).
    pub histories_dropped: u64,
    /// New sanctions refused because [`MAX_SANCTIONS`] were live (a metric).
    pub sanctions_refused: u64,
    /// Actions recorded, by [`Action`] (in declaration order; automatic ones included).
    pub actions: [u64; 6],
}

fn rank(r: Role) -> u8 {
    match r {
        Role::Guest => 0,
        Role::User => 1,
        Role::Moderator => 2,
        Role::Admin => 3,
    }
}

impl Moderation {
    /// Notes the role a user connected with.
    pub fn saw(&mut self, user: &str, role: Role) {
        if user.is_empty() {
            return;
        }
        if self.roles.len() >= MAX_HISTORY_USERS && !self.roles.contains_key(user) {
            // Forget roles of users not sanctioned: they default to `user` rank again.
            self.roles.retain(|_, r| rank(*r) > rank(Role::User));
            if self.roles.len() >= MAX_HISTORY_USERS {
                return;
            }
        }
        self.roles.insert(user.to_owned(), role);
    }

    /// Whether `actor` may act on `target` at all: not on themselves; a non-admin only on users
    /// of a lower role than their own.
    fn may_target(&self, actor: Actor<'_>, target: &str) -> Result<(), ClientError> {
        if target.is_empty() {
            return Err(ClientError::BAD_REQUEST.with_detail("no user named"));
        }
        if target == actor.user {
            return Err(ClientError::BAD_REQUEST.with_detail("you cannot moderate yourself"));
        }
        let theirs = self.roles.get(target).copied().unwrap_or(Role::User);
        if actor.role != Role::Admin && rank(theirs) >= rank(actor.role) {
            return Err(ClientError::PERMISSION_DENIED
                .with_detail(format_args!("{target} has a role as high as yours")));
        }
        Ok(())
    }

    fn sweep(&mut self, now: u64) {
        self.mutes.retain(|_, s| s.live(now));
        self.bans.retain(|_, s| s.live(now));
    }

    /// Decides a moderation request (the permission to do it was checked by the caller).
    pub fn apply(
        &mut self,
        actor: Actor<'_>,
        req: Request,
        now: u64,
    ) -> Result<Decided, ClientError> {
        self.may_target(actor, &req.user)?;
        let until = match req.action {
            Action::Mute | Action::Ban => req.duration.map(|d| now.saturating_add(d)),
            _ => None,
        };
        let sanction = || Sanction {
            until,
            reason: cut(req.reason.clone(), MAX_REASON),
            by: actor.user.to_owned(),
        };
        let key = (req.user.clone(), req.scope.clone());
        let remove = match req.action {
            Action::Warn => false,
            Action::Kick => true,
            Action::Mute | Action::Ban => {
                if self.mutes.len() + self.bans.len() >= MAX_SANCTIONS {
                    self.sweep(now);
                    if self.mutes.len() + self.bans.len() >= MAX_SANCTIONS {
                        self.sanctions_refused += 1;
                        tracing::warn!(
                            "chat moderation: {MAX_SANCTIONS} live sanctions, a new one refused"
                        );
                        return Err(ClientError::LIMIT_EXCEEDED.with_detail(format_args!(
                            "{MAX_SANCTIONS} live sanctions: lift some first"
                        )));
                    }
                }
                let map = if req.action == Action::Mute {
                    &mut self.mutes
                } else {
                    &mut self.bans
                };
                map.insert(key, sanction());
                req.action == Action::Ban
            }
            Action::Unmute | Action::Unban => {
                let map = if req.action == Action::Unmute {
                    &mut self.mutes
                } else {
                    &mut self.bans
                };
                if map.remove(&key).is_none() {
                    return Err(ClientError::BAD_REQUEST.with_detail(format_args!(
                        "{} is not {} {}",
                        req.user,
                        if req.action == Action::Unmute {
                            "muted"
                        } else {
                            "banned"
                        },
                        match &req.scope {
                            Scope::Global => "globally".to_owned(),
                            Scope::Channel(c) => format!("in {c}"),
                        }
                    )));
                }
                false
            }
        };
        let record = Record {
            at: now,
            by: actor.user.to_owned(),
            action: req.action,
            scope: req.scope,
            reason: cut(req.reason, MAX_REASON),
            until,
        };
        self.remember(&req.user, record.clone());
        Ok(Decided { record, remove })
    }

    /// Carries out what another node decided (its record, as it made it): a mute or a ban is
    /// set with the record's end, an unmute or an unban lifts it; the record joins the user's
    /// history. No permission or role check: the deciding node made them.
    pub fn replay(&mut self, user: &str, record: Record) {
        self.install(user, &record);
        self.remember(user, record);
    }

    /// Sets (mute, ban) or lifts (unmute, unban) the sanction a record made, without history:
    /// what [`Moderation::replay`] does, and a node starting with sanctions kept elsewhere. A
    /// full sanction store refuses a new one as [`Moderation::apply`] does (counted, logged).
    pub fn install(&mut self, user: &str, record: &Record) {
        let key = (user.to_owned(), record.scope.clone());
        match record.action {
            Action::Warn | Action::Kick => {}
            Action::Mute | Action::Ban => {
                if self.mutes.len() + self.bans.len() >= MAX_SANCTIONS {
                    self.sweep(record.at);
                }
                let sanction = Sanction {
                    until: record.until,
                    reason: cut(record.reason.clone(), MAX_REASON),
                    by: record.by.clone(),
                };
                if self.mutes.len() + self.bans.len() >= MAX_SANCTIONS {
                    self.sanctions_refused += 1;
                    tracing::warn!(
                        %user,
                        "chat moderation: {MAX_SANCTIONS} live sanctions, one made elsewhere not kept here"
                    );
                } else if record.action == Action::Mute {
                    self.mutes.insert(key, sanction);
                } else {
                    self.bans.insert(key, sanction);
                }
            }
            Action::Unmute => {
                self.mutes.remove(&key);
            }
            Action::Unban => {
                self.bans.remove(&key);
            }
        }
    }

    /// Adds a record to a user's history (auto-moderation records its own).
    pub fn remember(&mut self, user: &str, record: Record) {
        self.actions[record.action as usize] += 1;
        let now = record.at;
        if !self.history.contains_key(user) && self.history.len() >= MAX_HISTORY_USERS {
            let oldest = self
                .history
                .iter()
                .min_by_key(|(_, (touched, _))| *touched)
                .map(|(u, _)| u.clone());
            if let Some(u) = oldest {
                self.history.remove(&u);
                self.histories_dropped += 1;
                tracing::warn!(user = %u, "chat moderation: history of {MAX_HISTORY_USERS} users kept; the oldest forgotten");
            }
        }
        let (touched, h) = self.history.entry(user.to_owned()).or_default();
        *touched = now;
        if h.len() == MAX_HISTORY_PER_USER {
            h.pop_front();
        }
        h.push_back(record);
    }

    /// Live (mutes, bans) at `now`.
    pub fn live_counts(&self, now: u64) -> (usize, usize) {
        let live =
            |m: &HashMap<(String, Scope), Sanction>| m.values().filter(|s| s.live(now)).count();
        (live(&self.mutes), live(&self.bans))
    }

    /// A user's moderation history, oldest first.
    pub fn history(&self, user: &str) -> Vec<Record> {
        self.history
            .get(user)
            .map(|(_, h)| h.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn live<'a>(
        map: &'a HashMap<(String, Scope), Sanction>,
        user: &str,
        channel: Option<&str>,
        now: u64,
    ) -> Option<&'a Sanction> {
        let global = map
            .get(&(user.to_owned(), Scope::Global))
            .filter(|s| s.live(now));
        global.or_else(|| {
            channel.and_then(|c| {
                map.get(&(user.to_owned(), Scope::Channel(c.to_owned())))
                    .filter(|s| s.live(now))
            })
        })
    }

    /// The mute that stops `user` publishing in `channel` now, if any.
    pub fn muted(&self, user: &str, channel: &str, now: u64) -> Option<&Sanction> {
        Self::live(&self.mutes, user, Some(channel), now)
    }

    /// The ban that keeps `user` out: globally (`channel` None: connecting) or of `channel`.
    pub fn banned(&self, user: &str, channel: Option<&str>, now: u64) -> Option<&Sanction> {
        Self::live(&self.bans, user, channel, now)
    }

    /// Records an automatic sanction (`by` = "automod"); a mute when `mute_ms` is given.
    /// Returns the record (for other nodes).
    pub fn automatic(
        &mut self,
        user: &str,
        mute_ms: Option<u64>,
        reason: &str,
        now: u64,
    ) -> Record {
        let action = if let Some(ms) = mute_ms {
            self.mutes.insert(
                (user.to_owned(), Scope::Global),
                Sanction {
                    until: Some(now + ms),
                    reason: reason.to_owned(),
                    by: "automod".into(),
                },
            );
            Action::Mute
        } else {
            Action::Warn
        };
        let record = Record {
            at: now,
            by: "automod".into(),
            action,
            scope: Scope::Global,
            reason: reason.to_owned(),
            until: mute_ms.map(|ms| now + ms),
        };
        self.remember(user, record.clone());
        record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOD: Actor<'static> = Actor {
        user: "mia",
        role: Role::Moderator,
    };

    fn req(action: Action, user: &str, scope: Scope, duration: Option<u64>) -> Request {
        Request {
            action,
            user: user.into(),
            scope,
            duration,
            reason: "spam".into(),
        }
    }

    #[test]
    fn a_mute_ends_on_time() {
        let mut m = Moderation::default();
        let ch = Scope::Channel("chat:lobby".into());
        m.apply(MOD, req(Action::Mute, "bob", ch, Some(60_000)), 1_000)
            .unwrap();
        assert!(m.muted("bob", "chat:lobby", 1_000).is_some());
        assert!(m.muted("bob", "chat:other", 1_000).is_none(), "one room");
        assert!(m.muted("bob", "chat:lobby", 60_999).is_some());
        assert!(m.muted("bob", "chat:lobby", 61_000).is_none(), "ended");
        let s = Sanction {
            until: Some(1_764_698_400_000),
            reason: String::new(),
            by: String::new(),
        };
        assert_eq!(s.ends(), "until 2025-12-02T18:00:00Z");
        m.apply(MOD, req(Action::Mute, "bob", Scope::Global, None), 0)
            .unwrap();
        assert!(m.muted("bob", "anything", u64::MAX - 1).is_some(), "no end");
        m.apply(MOD, req(Action::Unmute, "bob", Scope::Global, None), 5)
            .unwrap();
        assert!(m.muted("bob", "anything", 6).is_none());
        let e = m
            .apply(MOD, req(Action::Unmute, "bob", Scope::Global, None), 7)
            .unwrap_err();
        assert!(e.message.contains("not muted globally"), "{}", e.message);
    }

    #[test]
    fn bans_kicks_and_who_may_be_targeted() {
        let mut m = Moderation::default();
        let d = m
            .apply(MOD, req(Action::Ban, "eve", Scope::Global, Some(10)), 100)
            .unwrap();
        assert!(d.remove);
        assert_eq!(d.record.until, Some(110));
        assert!(m.banned("eve", None, 105).is_some());
        assert!(
            m.banned("eve", Some("chat:x"), 105).is_some(),
            "global covers rooms"
        );
        assert!(m.banned("eve", None, 110).is_none());
        let d = m
            .apply(MOD, req(Action::Kick, "eve", Scope::Global, None), 200)
            .unwrap();
        assert!(
            d.remove && m.banned("eve", None, 200).is_none(),
            "a kick is not a ban"
        );
        assert!(
            !m.apply(MOD, req(Action::Warn, "eve", Scope::Global, None), 201)
                .unwrap()
                .remove
        );

        assert_eq!(
            m.apply(MOD, req(Action::Warn, "mia", Scope::Global, None), 0)
                .unwrap_err()
                .code,
            107,
            "not yourself"
        );
        m.saw("max", Role::Moderator);
        m.saw("ada", Role::Admin);
        for target in ["max", "ada"] {
            let e = m
                .apply(MOD, req(Action::Mute, target, Scope::Global, None), 0)
                .unwrap_err();
            assert_eq!(e.code, 103, "{target}");
        }
        let admin = Actor {
            user: "ada",
            role: Role::Admin,
        };
        assert!(
            m.apply(admin, req(Action::Mute, "max", Scope::Global, None), 0)
                .is_ok()
        );

        assert_eq!(m.actions[Action::Ban as usize], 1);
        assert_eq!(
            m.live_counts(150),
            (1, 0),
            "max muted, nobody banned any more"
        );
        let h = m.history("eve");
        let actions: Vec<_> = h.iter().map(|r| r.action).collect();
        assert_eq!(actions, [Action::Ban, Action::Kick, Action::Warn]);
        assert_eq!(h[0].by, "mia");
        let json = serde_json::to_string(&h[0]).unwrap();
        assert!(
            json.contains(r#""action":"ban""#) && json.contains(r#""scope":null"#),
            "{json}"
        );
    }

    #[test]
    fn histories_are_bounded() {
        let mut m = Moderation::default();
        for i in 0..MAX_HISTORY_PER_USER as u64 + 5 {
            m.apply(MOD, req(Action::Warn, "bob", Scope::Global, None), i)
                .unwrap();
        }
        let h = m.history("bob");
        assert_eq!(h.len(), MAX_HISTORY_PER_USER);
        assert_eq!(h[0].at, 5, "oldest dropped first");
        for i in 0..MAX_HISTORY_USERS as u64 {
            m.remember(
                &format!("u{i}"),
                Record {
                    at: 1_000 + i,
                    by: "x".into(),
                    action: Action::Warn,
                    scope: Scope::Global,
                    reason: String::new(),
                    until: None,
                },
            );
        }
        assert!(
            m.history("bob").is_empty(),
            "the least recent user forgotten"
        );
        assert_eq!(m.histories_dropped, 1);
        assert_eq!(m.history("u0").len(), 1);
    }
}

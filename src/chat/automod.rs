//! Auto-moderation: floods (more than N messages in T), repeats (the same text K times in a
//! row) and blocked words are violations; each costs reputation (0–100, time restores it),
//! and the reputation after the violation picks the sanction: a warning first, then mutes of
//! escalating length (`chat.automod.mute_steps`).
//!
//! Time is an argument (unix milliseconds). Bounded: at most [`MAX_TRACKED`] users tracked;
//! when full, users at full reputation and quiet for a flood interval are forgotten first, and
//! if none are, the new user is not tracked (counted).

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use crate::config::file::AutomodSection;

pub const MAX_TRACKED: usize = 100_000;
const FULL: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Flood,
    Repeat,
    BlockedWord,
}

impl Violation {
    pub fn reason(self) -> &'static str {
        match self {
            Violation::Flood => "flood: too many messages too fast",
            Violation::Repeat => "the same message repeated",
            Violation::BlockedWord => "a blocked word",
        }
    }
}

/// What auto-moderation decided about one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing wrong.
    Pass,
    /// A violation at good reputation: a warning, the message refused.
    Warn(Violation),
    /// A violation at lowered reputation: muted for this long (ms), the message refused.
    Mute(Violation, u64),
}

#[derive(Debug, Default)]
struct Track {
    /// Times of the last `flood_messages + 1` messages.
    recent: VecDeque<u64>,
    last_text: u64,
    repeats: u32,
    /// Reputation as of `rep_at`.
    reputation: u32,
    rep_at: u64,
}

#[derive(Debug)]
pub struct AutoMod {
    cfg: AutomodSection,
    users: HashMap<String, Track>,
    /// Users not tracked because the table was full (a metric).
    pub untracked: u64,
}

fn hash(text: &str) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl AutoMod {
    pub fn new(cfg: AutomodSection) -> Self {
        Self {
            cfg,
            users: HashMap::new(),
            untracked: 0,
        }
    }

    fn restore_ms(&self) -> u64 {
        (self.cfg.reputation_restore.0.as_millis() as u64).max(1)
    }

    /// Reputation of a track at `now`, with the time since `rep_at` restored.
    fn reputation_at(&self, t: &Track, now: u64) -> u32 {
        let gained = now.saturating_sub(t.rep_at) / self.restore_ms();
        (t.reputation as u64 + gained).min(FULL as u64) as u32
    }

    /// A user's reputation now (100 for users never seen).
    pub fn reputation(&self, user: &str, now: u64) -> u32 {
        self.users
            .get(user)
            .map_or(FULL, |t| self.reputation_at(t, now))
    }

    fn make_room(&mut self, now: u64) -> bool {
        if self.users.len() < MAX_TRACKED {
            return true;
        }
        let quiet = self.cfg.flood_interval.0.as_millis() as u64;
        let restore = self.restore_ms();
        self.users.retain(|_, t| {
            let rep = (t.reputation as u64 + now.saturating_sub(t.rep_at) / restore).min(100);
            rep < FULL as u64
                || t.recent
                    .back()
                    .is_some_and(|at| now.saturating_sub(*at) < quiet)
        });
        self.users.len() < MAX_TRACKED
    }

    /// Judges one message of `user` (`blocked`: it holds a blocked word) and records it.
    pub fn check(&mut self, user: &str, text: &str, blocked: bool, now: u64) -> Verdict {
        if !self.cfg.enabled {
            return Verdict::Pass;
        }
        if !self.users.contains_key(user) && !self.make_room(now) {
            self.untracked += 1;
            tracing::warn!(%user, "auto-moderation: {MAX_TRACKED} users tracked, a new one is not");
            return Verdict::Pass;
        }
        let flood_n = self.cfg.flood_messages.max(1) as usize;
        let window = self.cfg.flood_interval.0.as_millis() as u64;
        let repeat_n = self.cfg.repeat_messages;
        let t = self.users.entry(user.to_owned()).or_insert_with(|| Track {
            reputation: FULL,
            rep_at: now,
            ..Track::default()
        });
        t.recent.push_back(now);
        while t.recent.len() > flood_n + 1 {
            t.recent.pop_front();
        }
        let h = hash(text);
        t.repeats = if t.last_text == h && t.repeats > 0 {
            t.repeats + 1
        } else {
            1
        };
        t.last_text = h;
        // Wall time may step back (NTP): a negative span counts as zero.
        let flood = t.recent.len() > flood_n && now.saturating_sub(t.recent[0]) < window;
        let violation = if blocked {
            Violation::BlockedWord
        } else if flood {
            Violation::Flood
        } else if repeat_n > 0 && t.repeats >= repeat_n {
            Violation::Repeat
        } else {
            return Verdict::Pass;
        };
        // A flood is judged once per burst: start the count again.
        t.recent.clear();
        t.repeats = 0;
        let t = self.users.get(user).expect("tracked above");
        let rep = self
            .reputation_at(t, now)
            .saturating_sub(self.cfg.reputation_penalty);
        let t = self.users.get_mut(user).expect("tracked above");
        t.reputation = rep;
        t.rep_at = now;
        let steps = &self.cfg.mute_steps;
        let step = match rep {
            75.. => None,
            50..=74 => Some(0),
            25..=49 => Some(1),
            _ => Some(2),
        };
        match step.and_then(|i| steps.get(i.min(steps.len().saturating_sub(1)))) {
            Some(d) => Verdict::Mute(violation, d.0.as_millis() as u64),
            None => Verdict::Warn(violation),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn automod() -> AutoMod {
        AutoMod::new(AutomodSection::default())
    }

    #[test]
    fn a_flood_warns_then_mutes_longer_each_time() {
        let mut a = automod();
        let mut verdicts = Vec::new();
        // 4 floods of 11 messages 100 ms apart.
        let mut now = 0;
        for burst in 0..4 {
            for i in 0..11 {
                let v = a.check("bob", &format!("msg {burst} {i}"), false, now);
                now += 100;
                if v != Verdict::Pass {
                    verdicts.push(v);
                }
            }
        }
        assert_eq!(
            verdicts,
            [
                Verdict::Warn(Violation::Flood),
                Verdict::Mute(Violation::Flood, 60_000),
                Verdict::Mute(Violation::Flood, 600_000),
                Verdict::Mute(Violation::Flood, 3_600_000),
            ]
        );
        assert_eq!(a.reputation("bob", now), 0);
        assert_eq!(a.reputation("alice", now), 100);
    }

    #[test]
    fn ten_messages_are_not_a_flood_and_time_restores_reputation() {
        let mut a = automod();
        for i in 0..10 {
            assert_eq!(a.check("bob", &i.to_string(), false, i * 10), Verdict::Pass);
        }
        // The 11th message 10 s after the first: outside the window.
        assert_eq!(a.check("bob", "x", false, 10_000), Verdict::Pass);
        assert_eq!(
            a.check("bob", "bad", true, 20_000),
            Verdict::Warn(Violation::BlockedWord)
        );
        assert_eq!(a.reputation("bob", 20_000), 75);
        assert_eq!(a.reputation("bob", 20_000 + 60_000 * 10), 85);
        assert_eq!(a.reputation("bob", u64::MAX / 2), 100, "capped");
        // Restored: the next violation is a warning again, not a mute.
        assert_eq!(
            a.check("bob", "bad", true, 20_000 + 60_000 * 25),
            Verdict::Warn(Violation::BlockedWord)
        );
    }

    #[test]
    fn the_clock_stepping_back_is_no_panic() {
        let mut a = automod();
        for i in 0..10 {
            assert_eq!(
                a.check("bob", &i.to_string(), false, 1_000_000 + i),
                Verdict::Pass
            );
        }
        // Earlier than every message seen: counted as no time passed (a flood), no underflow.
        assert_ne!(a.check("bob", "late", false, 5), Verdict::Pass);
        assert!(a.reputation("bob", 0) <= 100);
    }

    #[test]
    fn repeats() {
        let mut a = automod();
        assert_eq!(a.check("bob", "buy now", false, 0), Verdict::Pass);
        assert_eq!(a.check("bob", "buy now", false, 5_000), Verdict::Pass);
        assert_eq!(
            a.check("bob", "buy now", false, 10_000),
            Verdict::Warn(Violation::Repeat)
        );
        assert_eq!(
            a.check("bob", "buy now", false, 15_000),
            Verdict::Pass,
            "counted again from one"
        );
        assert_eq!(
            a.check("carol", "buy now", false, 0),
            Verdict::Pass,
            "per user"
        );
        let mut off = AutoMod::new(AutomodSection {
            enabled: false,
            ..AutomodSection::default()
        });
        assert_eq!(off.check("bob", "x", true, 0), Verdict::Pass);
    }
}

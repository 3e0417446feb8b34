//! Reactions: per message (channel, offset), per emoji, the set of users who reacted — one
//! reaction per user per emoji, at most `chat.max_reaction_emoji` distinct emoji per message.
//!
//! Bounded: at most [`MAX_MESSAGES`] messages carry reactions; when full, the message that got
//! its first reaction longest ago loses its reactions (counted, logged).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use crate::client_protocol::codes::ClientError;

pub const MAX_MESSAGES: usize = 100_000;
/// Longest emoji (bytes): a flag or a family sequence fits.
pub const MAX_EMOJI_BYTES: usize = 32;
/// Most users counted per emoji on one message (further reactions refused).
pub const MAX_USERS_PER_EMOJI: usize = 10_000;

type Key = (String, u64);

#[derive(Debug, Default)]
pub struct Reactions {
    messages: HashMap<Key, BTreeMap<String, BTreeSet<String>>>,
    order: VecDeque<Key>,
    /// Messages whose reactions were forgotten for the bound (a metric).
    pub evicted: u64,
}

/// An emoji: 1–32 bytes, no whitespace, no control characters, no ASCII letters or digits
/// (so it is not a word).
pub fn valid_emoji(e: &str) -> Result<(), ClientError> {
    let ok = !e.is_empty()
        && e.len() <= MAX_EMOJI_BYTES
        && e.chars()
            .all(|c| !c.is_whitespace() && !c.is_control() && !c.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ClientError::BAD_REQUEST.with_detail(format_args!(
            "{e:?} is not an emoji (1–{MAX_EMOJI_BYTES} bytes, no letters, digits or spaces)"
        )))
    }
}

impl Reactions {
    /// Adds `user`'s `emoji` to a message; returns (changed, count now).
    pub fn add(
        &mut self,
        channel: &str,
        offset: u64,
        emoji: &str,
        user: &str,
        max_emoji: usize,
    ) -> Result<(bool, usize), ClientError> {
        valid_emoji(emoji)?;
        let key = (channel.to_owned(), offset);
        if !self.messages.contains_key(&key) {
            if self.messages.len() >= MAX_MESSAGES
                && let Some(old) = self.order.pop_front()
            {
                self.messages.remove(&old);
                self.evicted += 1;
                tracing::warn!(channel = %old.0, offset = old.1, "reactions: {MAX_MESSAGES} messages with reactions kept; the oldest forgotten");
            }
            self.order.push_back(key.clone());
        }
        let msg = self.messages.entry(key).or_default();
        if !msg.contains_key(emoji) && msg.len() >= max_emoji {
            return Err(ClientError::LIMIT_EXCEEDED.with_detail(format_args!(
                "a message carries at most {max_emoji} different emoji"
            )));
        }
        let users = msg.entry(emoji.to_owned()).or_default();
        if users.len() >= MAX_USERS_PER_EMOJI && !users.contains(user) {
            return Err(ClientError::LIMIT_EXCEEDED
                .with_detail(format_args!("{MAX_USERS_PER_EMOJI} reactions of one kind")));
        }
        let changed = users.insert(user.to_owned());
        Ok((changed, users.len()))
    }

    /// Removes `user`'s `emoji`; returns (changed, count now).
    pub fn remove(&mut self, channel: &str, offset: u64, emoji: &str, user: &str) -> (bool, usize) {
        let key = (channel.to_owned(), offset);
        let Some(msg) = self.messages.get_mut(&key) else {
            return (false, 0);
        };
        let Some(users) = msg.get_mut(emoji) else {
            return (false, 0);
        };
        let changed = users.remove(user);
        let n = users.len();
        if n == 0 {
            msg.remove(emoji);
        }
        (changed, n)
    }

    /// emoji → count for a message (empty when none).
    pub fn counts(&self, channel: &str, offset: u64) -> BTreeMap<String, usize> {
        self.messages
            .get(&(channel.to_owned(), offset))
            .map(|m| m.iter().map(|(e, u)| (e.clone(), u.len())).collect())
            .unwrap_or_default()
    }

    /// Whether `user` reacted with `emoji`.
    pub fn reacted(&self, channel: &str, offset: u64, emoji: &str, user: &str) -> bool {
        self.messages
            .get(&(channel.to_owned(), offset))
            .and_then(|m| m.get(emoji))
            .is_some_and(|u| u.contains(user))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_reaction_per_user_per_emoji() {
        let mut r = Reactions::default();
        assert_eq!(r.add("c", 1, "👍", "alice", 20).unwrap(), (true, 1));
        assert_eq!(
            r.add("c", 1, "👍", "alice", 20).unwrap(),
            (false, 1),
            "once"
        );
        assert_eq!(r.add("c", 1, "👍", "bob", 20).unwrap(), (true, 2));
        assert_eq!(r.add("c", 1, "🎉", "bob", 20).unwrap(), (true, 1));
        assert_eq!(
            r.add("c", 2, "👍", "bob", 20).unwrap(),
            (true, 1),
            "per message"
        );
        assert_eq!(r.counts("c", 1).get("👍"), Some(&2));
        assert_eq!(r.remove("c", 1, "👍", "alice"), (true, 1));
        assert_eq!(r.remove("c", 1, "👍", "alice"), (false, 1));
        assert_eq!(r.remove("c", 1, "🎉", "bob"), (true, 0));
        assert_eq!(r.counts("c", 1).len(), 1, "empty emoji gone");
        assert!(r.reacted("c", 1, "👍", "bob"));
    }

    #[test]
    fn bounds_and_bad_emoji() {
        let mut r = Reactions::default();
        r.add("c", 1, "👍", "a", 2).unwrap();
        r.add("c", 1, "🎉", "a", 2).unwrap();
        assert_eq!(r.add("c", 1, "😀", "a", 2).unwrap_err().code, 106);
        assert!(
            r.add("c", 1, "👍", "b", 2).is_ok(),
            "an existing emoji still counts"
        );
        for bad in ["", "lol", "a👍", "👍 ", "\u{7}", &"👍".repeat(9)] {
            assert_eq!(
                r.add("c", 1, bad, "a", 20).unwrap_err().code,
                107,
                "{bad:?}"
            );
        }
        for ok in ["👍", "🇫🇷", "👨‍👩‍👧", "❤️"] {
            assert!(valid_emoji(ok).is_ok(), "{ok}");
        }
    }
}

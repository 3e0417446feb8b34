//! A connection's subscriptions: a short list (at most `client.channel_limit`), searched
//! linearly. Per idle connection this costs one small allocation instead of a hash table.

use super::Sub;

#[derive(Default)]
pub(super) struct Subs {
    list: Vec<(Box<str>, Sub)>,
}

impl Subs {
    pub fn contains_key(&self, channel: &str) -> bool {
        self.list.iter().any(|(c, _)| &**c == channel)
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Adds a subscription (the caller checked it is not there yet).
    pub fn insert(&mut self, channel: String, sub: Sub) {
        if self.list.is_empty() {
            self.list.reserve_exact(1);
        }
        self.list.push((channel.into_boxed_str(), sub));
    }

    pub fn remove(&mut self, channel: &str) -> Option<Sub> {
        let i = self.list.iter().position(|(c, _)| &**c == channel)?;
        Some(self.list.swap_remove(i).1)
    }

    pub fn get_mut(&mut self, channel: &str) -> Option<&mut Sub> {
        self.list
            .iter_mut()
            .find(|(c, _)| &**c == channel)
            .map(|(_, s)| s)
    }

    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.list.iter().map(|(c, _)| &**c)
    }

    pub fn values(&self) -> impl Iterator<Item = &Sub> {
        self.list.iter().map(|(_, s)| s)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Sub)> {
        self.list.iter().map(|(c, s)| (&**c, s))
    }

    pub fn drain(&mut self) -> impl Iterator<Item = (Box<str>, Sub)> + '_ {
        self.list.drain(..)
    }
}

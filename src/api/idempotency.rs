//! Publish results remembered by idempotency key, so a retried publish (an HTTP client that
//! timed out, an outbox row replayed after a database failure) is not published twice.
//! Per channel, for a TTL (Centrifugo keeps them 5 minutes), at most `capacity` keys: the
//! oldest are forgotten first (counted). Time is an argument.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant};

use crate::engine::StreamPosition;

/// Centrifugo's window.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub struct Idempotency {
    results: HashMap<(String, String), Option<StreamPosition>>,
    order: VecDeque<(Instant, (String, String))>,
    capacity: usize,
    ttl: Duration,
    /// Keys forgotten before their TTL because the capacity was reached.
    pub evicted: u64,
}

impl Idempotency {
    pub fn new(capacity: usize, ttl: Duration) -> Self {
        Self {
            results: HashMap::new(),
            order: VecDeque::new(),
            capacity: capacity.max(1),
            ttl,
            evicted: 0,
        }
    }

    fn expire(&mut self, now: Instant) {
        while let Some((at, _)) = self.order.front() {
            if now.duration_since(*at) < self.ttl {
                break;
            }
            let (_, key) = self.order.pop_front().expect("checked");
            self.results.remove(&key);
        }
    }

    /// The result of an earlier publish with this key into this channel, if remembered.
    pub fn get(
        &mut self,
        channel: &str,
        key: &str,
        now: Instant,
    ) -> Option<Option<StreamPosition>> {
        self.expire(now);
        self.results
            .get(&(channel.to_owned(), key.to_owned()))
            .cloned()
    }

    pub fn put(&mut self, channel: &str, key: &str, result: Option<StreamPosition>, now: Instant) {
        self.expire(now);
        let k = (channel.to_owned(), key.to_owned());
        if self.results.insert(k.clone(), result).is_some() {
            return;
        }
        if self.order.len() >= self.capacity
            && let Some((_, old)) = self.order.pop_front()
        {
            self.results.remove(&old);
            self.evicted += 1;
            if self.evicted.is_power_of_two() {
                tracing::warn!(
                    capacity = self.capacity,
                    evicted = self.evicted,
                    "idempotency keys forgotten before their TTL: the key store is full"
                );
            }
        }
        self.order.push_back((now, k));
    }

    pub fn len(&self) -> usize {
        self.results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.results.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(offset: u64) -> Option<StreamPosition> {
        Some(StreamPosition {
            offset,
            epoch: "e".into(),
        })
    }

    #[test]
    fn remembered_per_channel_until_the_ttl() {
        let t = Instant::now();
        let mut i = Idempotency::new(10, Duration::from_secs(60));
        i.put("a", "k", pos(3), t);
        assert_eq!(i.get("a", "k", t), Some(pos(3)));
        assert_eq!(i.get("b", "k", t), None, "per channel");
        assert_eq!(i.get("a", "k", t + Duration::from_secs(59)), Some(pos(3)));
        assert_eq!(i.get("a", "k", t + Duration::from_secs(60)), None);
        assert!(i.is_empty());
    }

    #[test]
    fn bounded_oldest_first() {
        let t = Instant::now();
        let mut i = Idempotency::new(2, Duration::from_secs(60));
        i.put("c", "1", pos(1), t);
        i.put("c", "2", pos(2), t);
        i.put("c", "3", pos(3), t);
        assert_eq!(i.len(), 2);
        assert_eq!(i.evicted, 1);
        assert_eq!(i.get("c", "1", t), None);
        assert_eq!(i.get("c", "3", t), Some(pos(3)));
    }
}

//! One channel's history: the last `size` publications, each kept for `ttl`, addressed by
//! offset. Pure data: time is an argument, no locks, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One stored publication: its offset and its encoded JSON object (`{"data":…,"offset":N}`),
/// a slice of the frame every subscriber received (shared, not copied).
#[derive(Debug, Clone)]
pub struct Stored {
    pub offset: u64,
    pub publication: Bytes,
    pub at: Instant,
}

/// The stream of a channel.
#[derive(Debug, Default)]
pub struct History {
    items: VecDeque<Stored>,
    bytes: usize,
}

impl History {
    /// Appends a publication, then drops what is over `size` entries or older than `ttl`.
    pub fn push(&mut self, item: Stored, size: usize, ttl: Duration) {
        self.bytes += item.publication.len();
        let now = item.at;
        self.items.push_back(item);
        while self.items.len() > size {
            self.pop_front();
        }
        self.expire(now, ttl);
    }

    /// Drops publications older than `ttl` at `now`.
    pub fn expire(&mut self, now: Instant, ttl: Duration) {
        while self
            .items
            .front()
            .is_some_and(|i| now.saturating_duration_since(i.at) >= ttl)
        {
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(i) = self.items.pop_front() {
            self.bytes -= i.publication.len();
        }
    }

    pub fn clear(&mut self) {
        self.items.clear();
        self.bytes = 0;
    }

    /// Bytes of publication JSON held (for the memory bound).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Publications after `since` (all if `None`), oldest first, at most `limit`; with
    /// `reverse`, newest first (then `since` is an upper bound: offsets before it).
    pub fn query(&self, since: Option<u64>, limit: usize, reverse: bool) -> Vec<Stored> {
        if reverse {
            self.items
                .iter()
                .rev()
                .filter(|i| since.is_none_or(|s| i.offset < s))
                .take(limit)
                .cloned()
                .collect()
        } else {
            let start = match since {
                // Offsets are contiguous in the deque: index by difference.
                Some(s) => match self.items.front() {
                    Some(f) if s >= f.offset => (s - f.offset + 1) as usize,
                    _ => 0,
                },
                None => 0,
            };
            self.items.iter().skip(start).take(limit).cloned().collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(offset: u64, at: Instant) -> Stored {
        Stored {
            offset,
            publication: Bytes::from(format!("{{\"offset\":{offset}}}")),
            at,
        }
    }

    #[test]
    fn size_and_ttl_bound_the_stream() {
        let t0 = Instant::now();
        let mut h = History::default();
        for o in 1..=5 {
            h.push(
                item(o, t0 + Duration::from_secs(o)),
                3,
                Duration::from_secs(100),
            );
        }
        assert_eq!(h.len(), 3);
        let offs: Vec<u64> = h.query(None, 10, false).iter().map(|i| i.offset).collect();
        assert_eq!(offs, vec![3, 4, 5]);
        h.expire(t0 + Duration::from_secs(104), Duration::from_secs(100));
        assert_eq!(h.query(None, 10, false)[0].offset, 5, "3 and 4 expired");
        h.expire(t0 + Duration::from_secs(200), Duration::from_secs(100));
        assert!(h.is_empty());
        assert_eq!(h.bytes(), 0);
    }

    #[test]
    fn since_limit_reverse() {
        let t0 = Instant::now();
        let mut h = History::default();
        for o in 1..=10 {
            h.push(item(o, t0), 100, Duration::from_secs(100));
        }
        let offs = |v: Vec<Stored>| v.iter().map(|i| i.offset).collect::<Vec<_>>();
        assert_eq!(offs(h.query(Some(7), 10, false)), vec![8, 9, 10]);
        assert_eq!(offs(h.query(Some(2), 3, false)), vec![3, 4, 5]);
        assert_eq!(offs(h.query(Some(10), 3, false)), Vec::<u64>::new());
        assert_eq!(offs(h.query(None, 3, true)), vec![10, 9, 8]);
        assert_eq!(offs(h.query(Some(4), 2, true)), vec![3, 2]);
    }
}

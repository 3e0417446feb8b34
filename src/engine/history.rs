//! One channel's history: the last `size` publications, each kept for `ttl`, addressed by
//! offset. Pure data: time is an argument, no locks, no I/O.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// One stored publication: its offset and its encoded JSON object (`{"data":…,"offset":N}`).
#[derive(Debug, Clone)]
pub struct Stored {
    pub offset: u64,
    pub publication: Bytes,
    pub at: Instant,
}

/// What the stream keeps per publication: 40 bytes beside the JSON (the offset is implied by
/// the position, the time is whole seconds since the stream's first publication).
#[derive(Debug)]
struct Entry {
    publication: Bytes,
    secs: u32,
}

/// The stream of a channel.
#[derive(Debug, Default)]
pub struct History {
    entries: VecDeque<Entry>,
    /// Offset of the front entry.
    first: u64,
    /// Time zero of `Entry::secs`.
    base: Option<Instant>,
    bytes: usize,
}

impl History {
    fn at(&self, e: &Entry) -> Instant {
        self.base.expect("set with the first entry") + Duration::from_secs(e.secs as u64)
    }

    /// Appends a publication (offsets must follow each other; a jump restarts the stream),
    /// then drops what is over `size` entries or older than `ttl` (to the second).
    pub fn push(&mut self, item: Stored, size: usize, ttl: Duration) {
        if self.entries.is_empty() || item.offset != self.first + self.entries.len() as u64 {
            self.clear();
            self.first = item.offset;
            self.base = Some(item.at);
        }
        let base = self.base.expect("set above");
        let secs = item
            .at
            .saturating_duration_since(base)
            .as_secs()
            .min(u32::MAX as u64) as u32;
        if self.entries.len() == self.entries.capacity() {
            // Grow towards `size`, never past it: a full stream holds no spare slots.
            let cap = self.entries.capacity();
            let want = (cap * 2).max(4).min(size.max(1));
            self.entries.reserve_exact(want.saturating_sub(cap).max(1));
        }
        self.bytes += item.publication.len();
        self.entries.push_back(Entry {
            publication: item.publication,
            secs,
        });
        while self.entries.len() > size {
            self.pop_front();
        }
        self.expire(item.at, ttl);
    }

    /// Drops publications older than `ttl` at `now`.
    pub fn expire(&mut self, now: Instant, ttl: Duration) {
        while let Some(e) = self.entries.front() {
            if now.saturating_duration_since(self.at(e)) < ttl {
                break;
            }
            self.pop_front();
        }
    }

    fn pop_front(&mut self) {
        if let Some(e) = self.entries.pop_front() {
            self.bytes -= e.publication.len();
            self.first += 1;
        }
    }

    pub fn clear(&mut self) {
        self.first += self.entries.len() as u64;
        self.entries = VecDeque::new();
        self.bytes = 0;
    }

    /// Bytes of publication JSON held (for the memory bound).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn stored(&self, i: usize, e: &Entry) -> Stored {
        Stored {
            offset: self.first + i as u64,
            publication: e.publication.clone(),
            at: self.at(e),
        }
    }

    /// Publications after `since` (all if `None`), oldest first, at most `limit`; with
    /// `reverse`, newest first (then `since` is an upper bound: offsets before it).
    pub fn query(&self, since: Option<u64>, limit: usize, reverse: bool) -> Vec<Stored> {
        if reverse {
            // Offsets before `since`: indexes below `since - first`.
            let end = match since {
                Some(s) => (s.saturating_sub(self.first) as usize).min(self.entries.len()),
                None => self.entries.len(),
            };
            (0..end)
                .rev()
                .take(limit)
                .map(|i| self.stored(i, &self.entries[i]))
                .collect()
        } else {
            let start = match since {
                Some(s) if s >= self.first => (s - self.first + 1) as usize,
                _ => 0,
            };
            self.entries
                .iter()
                .enumerate()
                .skip(start)
                .take(limit)
                .map(|(i, e)| self.stored(i, e))
                .collect()
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

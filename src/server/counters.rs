//! Counters the workers keep for `/metrics`, without a lock or a shared cache line on the data
//! path: each worker writes only its own [`WorkerCounters`] (one cache line apart from the
//! others, relaxed atomics), the control plane reads them all at scrape time.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// One worker's counters. Gauges are kept as up/down pairs of counters so that every field is
/// only ever added to.
#[derive(Debug, Default)]
#[repr(align(128))]
pub struct WorkerCounters {
    /// Frames queued to connections (deliveries, replies, control frames).
    pub frames_out: AtomicU64,
    /// Bytes written to sockets (TLS records included).
    pub bytes_out: AtomicU64,
    /// Socket sends (each carries every frame queued for its connection: frames ÷ sends is the
    /// coalescing).
    pub sends: AtomicU64,
    /// Bytes read from sockets.
    pub bytes_in: AtomicU64,
    pub raw_opened: AtomicU64,
    pub raw_closed: AtomicU64,
    pub protocol_opened: AtomicU64,
    pub protocol_closed: AtomicU64,
    pub subs_added: AtomicU64,
    pub subs_removed: AtomicU64,
    /// `/files/` answers by status ([`FILE_STATUSES`], the last slot: any other).
    pub file_answers: [AtomicU64; FILE_STATUSES.len() + 1],
    /// File bytes handed to the connections' queues.
    pub file_bytes: AtomicU64,
    /// permessage-deflate work.
    pub compression: super::compression::CompressionCounters,
}

/// The statuses `/files/` answers are counted by.
pub const FILE_STATUSES: [u16; 11] = [200, 204, 206, 304, 400, 403, 404, 405, 416, 431, 503];

impl WorkerCounters {
    pub fn file_answer(&self, status: u16) {
        let i = FILE_STATUSES
            .iter()
            .position(|s| *s == status)
            .unwrap_or(FILE_STATUSES.len());
        Self::add(&self.file_answers[i], 1);
    }
}

impl WorkerCounters {
    /// Adds `n`. Only the owning worker's thread adds to its counters, so this is a plain
    /// load and store, not a locked read-modify-write: a `lock` prefix per delivered frame was
    /// ≈ 1.4 % of the server's CPU in a saturated broadcast (results/fan-out-memory.md).
    #[inline]
    pub fn add(c: &AtomicU64, n: u64) {
        c.store(c.load(Ordering::Relaxed).wrapping_add(n), Ordering::Relaxed);
    }

    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Upper bounds (µs) of the publish latency buckets.
pub const LATENCY_BUCKETS_US: [u64; 12] = [
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000,
];

/// A fixed-bucket histogram of durations with relaxed atomic buckets (no lock), for the time a
/// publish takes from the engine call to its frame in every inbox.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_US.len() + 1],
    sum_ns: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe(&self, d: Duration) {
        let us = d.as_micros() as u64;
        let i = LATENCY_BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(LATENCY_BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// (sum in seconds, count, cumulative buckets as (upper bound in seconds, count)).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let mut cumulative = 0;
        let mut out = Vec::with_capacity(LATENCY_BUCKETS_US.len() + 1);
        for (i, b) in self.buckets.iter().enumerate() {
            cumulative += b.load(Ordering::Relaxed);
            let bound = LATENCY_BUCKETS_US
                .get(i)
                .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
            out.push((bound, cumulative));
        }
        let sum = self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9;
        (sum, cumulative, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let h = LatencyHistogram::default();
        h.observe(Duration::from_micros(3));
        h.observe(Duration::from_micros(7));
        h.observe(Duration::from_secs(1));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 1.00001).abs() < 1e-6);
        assert_eq!(buckets[0], (5e-6, 1));
        assert_eq!(buckets[1], (1e-5, 2));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 3));
    }
}

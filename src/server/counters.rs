//! Counters the workers keep for `/metrics`, without a lock or a shared cache line on the data
//! path: each worker writes only its own [`WorkerCounters`] (one cache line apart from the
//! others, relaxed atomics), the control plane reads them all at scrape time.

use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};
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
    /// How long connections' oldest unsent frames waited for their sends to start.
    pub send_wait: DurationHistogram<SendWaitBuckets>,
    /// How long sends stayed in the kernel (submission to completion): a client that does not
    /// read shows here, not in `send_wait`.
    pub send_flight: DurationHistogram<SendWaitBuckets>,
    /// The worker thread's kernel id, 0 until it runs: `/metrics` reads its CPU time.
    pub thread_id: AtomicI32,
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

/// A histogram's bucket bounds.
pub trait Buckets {
    /// Upper bounds in µs, rising; fewer than [`MAX_BUCKETS`]. A last bucket (+Inf) follows.
    const UPPER_US: &'static [u64];
}

/// The most bounds a [`DurationHistogram`] holds (its storage is a fixed array).
pub const MAX_BUCKETS: usize = 23;

/// The publish latency: from a client's publish command to its frame in every inbox.
#[derive(Debug)]
pub struct PublishBuckets;

impl Buckets for PublishBuckets {
    const UPPER_US: &'static [u64] = &[
        5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 50_000,
    ];
}

/// How long a connection's oldest unsent frame waited for its send to start, and how long sends
/// stayed in the kernel: from microseconds (an idle server) to seconds (a saturated one, a
/// client that does not read).
#[derive(Debug)]
pub struct SendWaitBuckets;

impl Buckets for SendWaitBuckets {
    const UPPER_US: &'static [u64] = &[
        100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000,
        300_000, 500_000, 1_000_000, 2_500_000,
    ];
}

/// A fixed-bucket histogram of durations with relaxed atomic buckets (no lock).
#[derive(Debug)]
pub struct DurationHistogram<B> {
    /// Per bucket (not cumulative); the one after the last bound is +Inf.
    buckets: [AtomicU64; MAX_BUCKETS + 1],
    sum_ns: AtomicU64,
    _bounds: std::marker::PhantomData<B>,
}

impl<B: Buckets> Default for DurationHistogram<B> {
    fn default() -> Self {
        const { assert!(B::UPPER_US.len() <= MAX_BUCKETS) };
        Self {
            buckets: Default::default(),
            sum_ns: AtomicU64::new(0),
            _bounds: std::marker::PhantomData,
        }
    }
}

/// A histogram read at scrape time: (sum in seconds, count, buckets as (upper bound in seconds,
/// count in that bucket alone), the last one +Inf). Per bucket, not cumulative: the OpenMetrics
/// encoder (`encode_histogram`) accumulates them itself.
pub type HistogramSnapshot = (f64, u64, Vec<(f64, u64)>);

impl<B: Buckets> DurationHistogram<B> {
    fn bucket(d: Duration) -> usize {
        let us = d.as_micros() as u64;
        B::UPPER_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(B::UPPER_US.len())
    }

    /// Counts `d`; any thread may.
    pub fn observe(&self, d: Duration) {
        self.buckets[Self::bucket(d)].fetch_add(1, Ordering::Relaxed);
        self.sum_ns
            .fetch_add(d.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Counts `d` without a locked instruction: only for a histogram one thread writes (a
    /// worker's own, like [`WorkerCounters::add`]).
    pub fn observe_own(&self, d: Duration) {
        WorkerCounters::add(&self.buckets[Self::bucket(d)], 1);
        WorkerCounters::add(&self.sum_ns, d.as_nanos() as u64);
    }

    pub fn snapshot(&self) -> HistogramSnapshot {
        Self::snapshot_all([self])
    }

    /// The histograms added together (one per worker).
    pub fn snapshot_all<'a>(all: impl IntoIterator<Item = &'a Self>) -> HistogramSnapshot
    where
        B: 'a,
    {
        let mut counts = [0u64; MAX_BUCKETS + 1];
        let mut sum_ns = 0u64;
        for h in all {
            for (c, b) in counts.iter_mut().zip(&h.buckets) {
                *c += b.load(Ordering::Relaxed);
            }
            sum_ns += h.sum_ns.load(Ordering::Relaxed);
        }
        let n = B::UPPER_US.len();
        // Counts past the bounds all sit in the +Inf slot (index n).
        let out: Vec<(f64, u64)> = counts[..=n]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let bound = B::UPPER_US
                    .get(i)
                    .map_or(f64::INFINITY, |us| *us as f64 / 1e6);
                (bound, *c)
            })
            .collect();
        let count = out.iter().map(|(_, c)| c).sum();
        (sum_ns as f64 / 1e9, count, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_count_each_bucket_alone() {
        let h = DurationHistogram::<PublishBuckets>::default();
        h.observe(Duration::from_micros(3));
        h.observe(Duration::from_micros(7));
        h.observe(Duration::from_secs(1));
        let (sum, count, buckets) = h.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 1.00001).abs() < 1e-6);
        // The encoder accumulates: each bucket holds its own observations only.
        assert_eq!(buckets[0], (5e-6, 1));
        assert_eq!(buckets[1], (1e-5, 1));
        assert_eq!(buckets[2], (2.5e-5, 0));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!(buckets.len(), PublishBuckets::UPPER_US.len() + 1);
    }

    #[test]
    fn worker_histograms_add_up() {
        let a = DurationHistogram::<SendWaitBuckets>::default();
        let b = DurationHistogram::<SendWaitBuckets>::default();
        a.observe_own(Duration::from_micros(100));
        a.observe_own(Duration::from_millis(120));
        b.observe_own(Duration::from_millis(120));
        b.observe_own(Duration::from_secs(10));
        let (sum, count, buckets) = DurationHistogram::snapshot_all([&a, &b]);
        assert_eq!(count, 4);
        assert!((sum - 10.2401).abs() < 1e-9);
        assert_eq!(buckets[0], (1e-4, 1));
        // 120 ms lands at the 150 ms bound, from both workers.
        let at_150ms = buckets
            .iter()
            .find(|(le, _)| (*le - 0.15).abs() < 1e-12)
            .unwrap();
        assert_eq!(at_150ms.1, 2);
        assert_eq!(buckets[buckets.len() - 2], (2.5, 0));
        assert_eq!(buckets.last().unwrap(), &(f64::INFINITY, 1));
        assert_eq!(buckets.iter().map(|(_, c)| c).sum::<u64>(), count);
    }
}

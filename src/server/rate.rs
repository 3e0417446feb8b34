//! Per-connection message rate limit: a token bucket with time passed in (no clock here).
//! Holds `per_minute` tokens at most and refills `per_minute` tokens per minute.

use std::time::Instant;

#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_sec: f64,
    tokens: f64,
    last: Instant,
}

impl TokenBucket {
    /// A bucket of `capacity` tokens (full at start) refilled at `per_sec`.
    pub fn new(capacity: f64, per_sec: f64, now: Instant) -> Self {
        Self {
            capacity,
            per_sec,
            tokens: capacity,
            last: now,
        }
    }

    /// Whether the bucket would be full at `now` (nothing taken recently).
    pub fn is_full(&self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * self.per_sec >= self.capacity
    }

    /// Seconds until one token is back (0 when one is there).
    pub fn wait_secs(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        let tokens = (self.tokens + elapsed * self.per_sec).min(self.capacity);
        if tokens >= 1.0 {
            0.0
        } else {
            (1.0 - tokens) / self.per_sec
        }
    }

    /// `None` when `per_minute` is 0 (no limit).
    pub fn per_minute(per_minute: u32, now: Instant) -> Option<Self> {
        (per_minute > 0).then(|| Self {
            capacity: per_minute as f64,
            per_sec: per_minute as f64 / 60.0,
            tokens: per_minute as f64,
            last: now,
        })
    }

    /// Takes one token; false when the bucket is empty.
    pub fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        self.tokens = (self.tokens + elapsed.as_secs_f64() * self.per_sec).min(self.capacity);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn zero_means_unlimited() {
        assert!(TokenBucket::per_minute(0, Instant::now()).is_none());
    }

    #[test]
    fn burst_then_refill() {
        let t0 = Instant::now();
        let mut b = TokenBucket::per_minute(60, t0).unwrap();
        for i in 0..60 {
            assert!(b.try_take(t0), "message {i}");
        }
        assert!(!b.try_take(t0), "61st message in the same instant");
        assert!(!b.try_take(t0 + Duration::from_millis(900)));
        assert!(
            b.try_take(t0 + Duration::from_millis(1001)),
            "one token per second at 60/min"
        );
        // A long pause refills to capacity, not beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..60 {
            assert!(b.try_take(later));
        }
        assert!(!b.try_take(later));
    }
}

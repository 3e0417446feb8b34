//! Whether to call Redis at all: after a call found Redis unreachable or silent, the next
//! calls fail at once (error 100, "again in …") instead of each holding its worker — and every
//! connection on it — for the engine's timeout. One call at a time tries again, once
//! [`RETRY_AFTER`] has passed since the last failure; its success lets every call through.
//!
//! Sans-io: time comes in as an argument; the engine holds it behind a mutex, asks
//! [`Breaker::admit`] before a call and reports the outcome. Must not: do I/O or decide what
//! counts as a failure (the engine does: the wire, not an error reply).

use std::time::{Duration, Instant};

/// How long after a failure the next attempt is made.
pub const RETRY_AFTER: Duration = Duration::from_secs(1);

/// What the caller may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Call Redis.
    Call,
    /// Call Redis: the first attempt since it failed (others are refused while it runs).
    Try,
    /// Do not call: Redis failed `for_` ago; the next attempt is due in `again_in`.
    Refuse { for_: Duration, again_in: Duration },
}

#[derive(Debug)]
pub struct Breaker {
    /// While Redis is taken as unavailable: since when.
    down_since: Option<Instant>,
    /// No attempt before this (an attempt in flight pushes it past its own timeout).
    next_try: Instant,
    /// The longest a call may take (an attempt's hold).
    timeout: Duration,
    /// Calls refused since the node started.
    pub refused: u64,
}

impl Breaker {
    pub fn new(timeout: Duration, now: Instant) -> Self {
        Self {
            down_since: None,
            next_try: now,
            timeout,
            refused: 0,
        }
    }

    /// Whether Redis is taken as available (for metrics).
    pub fn available(&self) -> bool {
        self.down_since.is_none()
    }

    pub fn admit(&mut self, now: Instant) -> Admit {
        let Some(since) = self.down_since else {
            return Admit::Call;
        };
        if now >= self.next_try {
            // Others wait for this attempt: they are refused until it ended, at the latest
            // when its timeout is up (then the next caller tries).
            self.next_try = now + self.timeout + RETRY_AFTER;
            return Admit::Try;
        }
        self.refused += 1;
        Admit::Refuse {
            for_: now.saturating_duration_since(since),
            again_in: self.next_try - now,
        }
    }

    /// A call reached Redis (an error reply included). True if Redis was down until now.
    pub fn succeeded(&mut self, now: Instant) -> bool {
        self.next_try = now;
        self.down_since.take().is_some()
    }

    /// A call found Redis unreachable or silent. True if it was taken as available until now.
    pub fn failed(&mut self, now: Instant) -> bool {
        self.next_try = now + RETRY_AFTER;
        match self.down_since {
            Some(_) => false,
            None => {
                self.down_since = Some(now);
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TIMEOUT: Duration = Duration::from_secs(2);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn calls_go_through_while_redis_answers() {
        let t0 = Instant::now();
        let mut b = Breaker::new(TIMEOUT, t0);
        for i in 0..10 {
            assert_eq!(b.admit(t0 + ms(i)), Admit::Call);
            assert!(!b.succeeded(t0 + ms(i)));
        }
        assert!(b.available());
        assert_eq!(b.refused, 0);
    }

    #[test]
    fn after_a_failure_calls_are_refused_until_the_retry_is_due() {
        let t0 = Instant::now();
        let mut b = Breaker::new(TIMEOUT, t0);
        assert_eq!(b.admit(t0), Admit::Call);
        assert!(b.failed(t0 + TIMEOUT), "newly down");
        assert!(!b.available());
        let down = t0 + TIMEOUT;
        assert_eq!(
            b.admit(down + ms(300)),
            Admit::Refuse {
                for_: ms(300),
                again_in: ms(700)
            }
        );
        assert!(matches!(
            b.admit(down + ms(999)),
            Admit::Refuse { again_in, .. } if again_in == ms(1)
        ));
        assert_eq!(b.refused, 2);
        assert_eq!(b.admit(down + RETRY_AFTER), Admit::Try);
    }

    #[test]
    fn one_attempt_at_a_time_and_others_refused_while_it_runs() {
        let t0 = Instant::now();
        let mut b = Breaker::new(TIMEOUT, t0);
        b.failed(t0);
        let due = t0 + RETRY_AFTER;
        assert_eq!(b.admit(due), Admit::Try);
        for later in [ms(1), ms(500), TIMEOUT + RETRY_AFTER - ms(1)] {
            assert!(
                matches!(b.admit(due + later), Admit::Refuse { .. }),
                "{later:?} into the attempt"
            );
        }
        // The attempt never reported (its thread stuck past the timeout): the next caller tries.
        assert_eq!(b.admit(due + TIMEOUT + RETRY_AFTER), Admit::Try);
    }

    #[test]
    fn a_failed_attempt_waits_again_and_a_successful_one_lets_all_through() {
        let t0 = Instant::now();
        let mut b = Breaker::new(TIMEOUT, t0);
        b.failed(t0);
        let due = t0 + RETRY_AFTER;
        assert_eq!(b.admit(due), Admit::Try);
        assert!(!b.failed(due + TIMEOUT), "still down, not newly");
        let failed_again = due + TIMEOUT;
        assert!(matches!(
            b.admit(failed_again + ms(10)),
            Admit::Refuse { for_, .. } if for_ == failed_again + ms(10) - t0
        ));
        let due = failed_again + RETRY_AFTER;
        assert_eq!(b.admit(due), Admit::Try);
        assert!(b.succeeded(due + ms(1)), "back up");
        assert!(b.available());
        for i in 0..5 {
            assert_eq!(b.admit(due + ms(2 + i)), Admit::Call);
        }
    }

    #[test]
    fn a_slow_success_after_another_call_failed_counts() {
        // Two calls in flight: one fails (down), the other then answers (Redis is there).
        let t0 = Instant::now();
        let mut b = Breaker::new(TIMEOUT, t0);
        assert_eq!(b.admit(t0), Admit::Call);
        assert_eq!(b.admit(t0), Admit::Call);
        b.failed(t0 + ms(5));
        assert!(b.succeeded(t0 + ms(6)));
        assert_eq!(b.admit(t0 + ms(7)), Admit::Call);
    }
}

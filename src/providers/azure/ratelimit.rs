//! Client-side pacing for ARM's request limits, so that wiform slows down before ARM answers
//! 429 instead of after.
//!
//! ARM throttles with token buckets per subscription and operation class ("Request limits and
//! throttling": reads 250 burst / 25 per s, writes and deletes 200 / 10 per s) and says what is
//! left in `x-ms-ratelimit-remaining-subscription-{reads,writes,deletes}` on every answer. wiform
//! keeps one estimate per (subscription, class): the last remaining count ARM reported, refilled
//! at the learned rate since, minus the requests it has sent and not yet heard back about. A
//! request that would take the estimate below a small reserve is given a later slot instead of
//! being sent now. The refill rate starts at the documented one and is learned from how the
//! remaining count moves, because limits differ (trial subscriptions, the sandbox's scaled ones).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use reqwest::Method;

/// ARM's operation classes, each with its own bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OpClass {
    Reads,
    Writes,
    Deletes,
}

impl OpClass {
    pub fn of(method: &Method) -> Self {
        match *method {
            Method::GET | Method::HEAD => OpClass::Reads,
            Method::DELETE => OpClass::Deletes,
            _ => OpClass::Writes,
        }
    }

    /// The header that reports this class's remaining requests.
    pub fn header(self) -> &'static str {
        match self {
            OpClass::Reads => "x-ms-ratelimit-remaining-subscription-reads",
            OpClass::Writes => "x-ms-ratelimit-remaining-subscription-writes",
            OpClass::Deletes => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }

    /// The documented bucket: (burst, refill per second).
    fn documented(self) -> (f64, f64) {
        match self {
            OpClass::Reads => (250.0, 25.0),
            OpClass::Writes | OpClass::Deletes => (200.0, 10.0),
        }
    }
}

/// Requests kept in hand: pacing starts when the estimate would drop below this.
const RESERVE: f64 = 2.0;
/// The learned refill rate never drops below this (a few requests a minute still go out).
const MIN_REFILL: f64 = 0.05;
/// Shortest interval over which a refill rate is measured.
const MIN_SAMPLE: Duration = Duration::from_millis(250);

#[derive(Debug, Clone)]
struct Bucket {
    capacity: f64,
    refill: f64,
    /// Server's remaining count at `at`, as last reported (or estimated).
    remaining: f64,
    at: Instant,
    /// Requests reserved or in flight whose answer has not come back.
    outstanding: f64,
    /// Nothing is sent before this (a 429's Retry-After).
    blocked_until: Option<Instant>,
    /// First report of the current refill measurement, and answers counted since.
    sample: Option<(Instant, f64)>,
    answered_since_sample: f64,
    /// Has ARM reported this bucket yet? Until it has, the capacity is the documented one.
    reported: bool,
    /// Bumped by every 429: slots handed out before it were planned on a wrong estimate.
    generation: u64,
}

impl Bucket {
    fn new(class: OpClass, now: Instant) -> Self {
        let (capacity, refill) = class.documented();
        Bucket {
            capacity,
            refill,
            remaining: capacity,
            at: now,
            outstanding: 0.0,
            blocked_until: None,
            sample: None,
            answered_since_sample: 0.0,
            reported: false,
            generation: 0,
        }
    }

    /// The server's remaining count now, by the refill estimate.
    fn remaining_now(&self, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.remaining + elapsed * self.refill).min(self.capacity)
    }
}

/// A reservation: when to send, planned on the estimate of one generation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub wait: Duration,
    generation: u64,
}

/// Pacing state for every (subscription, class) seen.
#[derive(Debug, Default)]
pub struct RateLimiter {
    buckets: Mutex<HashMap<(String, OpClass), Bucket>>,
}

impl RateLimiter {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(
        &self,
        subscription: &str,
        class: OpClass,
        now: Instant,
        f: impl FnOnce(&mut Bucket) -> R,
    ) -> R {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry((subscription.to_ascii_lowercase(), class))
            .or_insert_with(|| Bucket::new(class, now));
        f(bucket)
    }

    /// Reserves a slot for one request and says how long to wait before sending it (zero:
    /// now). Every reservation must be matched by [`RateLimiter::answered`] or
    /// [`RateLimiter::abandoned`]. A slot in the future is only good if no 429 came meanwhile:
    /// check with [`RateLimiter::still_valid`] after waiting, and reserve again if not.
    pub fn reserve(&self, subscription: &str, class: OpClass, now: Instant) -> Slot {
        self.with(subscription, class, now, |b| {
            let generation = b.generation;
            // After a 429 the bucket is empty until `at`: slots are counted from then.
            let base = b.at.max(now);
            let available = b.remaining_now(base) - b.outstanding;
            b.outstanding += 1.0;
            let mut wait = base.saturating_duration_since(now);
            if available - 1.0 < RESERVE {
                wait += Duration::from_secs_f64((RESERVE + 1.0 - available) / b.refill);
            }
            if let Some(until) = b.blocked_until {
                wait = wait.max(until.saturating_duration_since(now));
            }
            Slot { wait, generation }
        })
    }

    /// Was `slot` planned with what is known now (no 429 since)?
    pub fn still_valid(&self, subscription: &str, class: OpClass, slot: Slot) -> bool {
        self.with(subscription, class, Instant::now(), |b| {
            b.generation == slot.generation
        })
    }

    /// An answer came back; `remaining` is its rate-limit header, when it had one.
    pub fn answered(
        &self,
        subscription: &str,
        class: OpClass,
        remaining: Option<f64>,
        now: Instant,
    ) {
        self.with(subscription, class, now, |b| {
            b.outstanding = (b.outstanding - 1.0).max(0.0);
            let Some(remaining) = remaining else { return };
            if !b.reported || remaining + 1.0 > b.capacity {
                // Right after an answer the bucket held at least this much, plus the request.
                b.capacity = if b.reported {
                    b.capacity.max(remaining + 1.0)
                } else {
                    remaining + 1.0
                };
                b.reported = true;
            }
            learn_refill(b, remaining, now);
            b.remaining = remaining;
            b.at = now;
        })
    }

    /// A reserved request was never answered (connection failed): its slot is free again.
    pub fn abandoned(&self, subscription: &str, class: OpClass, now: Instant) {
        self.with(subscription, class, now, |b| {
            b.outstanding = (b.outstanding - 1.0).max(0.0);
        })
    }

    /// ARM answered 429: the bucket is empty and nothing goes out before `retry_after`.
    pub fn throttled(
        &self,
        subscription: &str,
        class: OpClass,
        retry_after: Duration,
        now: Instant,
    ) {
        self.with(subscription, class, now, |b| {
            // A 429 means the estimate was too optimistic: lower the rate, once per window
            // (a burst answered 429 many times over is one mistake, not many).
            let new_window = b.blocked_until.is_none_or(|until| until <= now);
            if new_window {
                b.refill = (b.refill * 0.5).max(MIN_REFILL);
            }
            b.generation += 1;
            b.remaining = 0.0;
            b.at = now + retry_after;
            b.blocked_until = Some(
                b.blocked_until
                    .map_or(now + retry_after, |u| u.max(now + retry_after)),
            );
            b.sample = None;
        })
    }

    /// Requests reserved and not yet answered or abandoned (for tests: zero once all is done).
    pub fn outstanding(&self, subscription: &str, class: OpClass) -> f64 {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(&(subscription.to_ascii_lowercase(), class))
            .map_or(0.0, |b| b.outstanding)
    }

    /// The current estimate of (capacity, refill per second) for a bucket, for tests and logs.
    pub fn estimate(&self, subscription: &str, class: OpClass) -> Option<(f64, f64)> {
        let buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        buckets
            .get(&(subscription.to_ascii_lowercase(), class))
            .map(|b| (b.capacity, b.refill))
    }
}

/// Between two reports the server counted the answers in between and refilled the rest:
/// refill ≈ (remaining₂ − remaining₁ + answers) / Δt. Only valid while the bucket was not full
/// (a full bucket hides its refill), so samples near capacity are skipped.
fn learn_refill(b: &mut Bucket, remaining: f64, now: Instant) {
    let near_full = |r: f64| r >= b.capacity * 0.9 - 1.0;
    if near_full(remaining) {
        b.sample = None;
        b.answered_since_sample = 0.0;
        return;
    }
    // This answer's request was counted before the report, so it is one of those in between.
    b.answered_since_sample += 1.0;
    match b.sample {
        Some((start, start_remaining)) if now.duration_since(start) >= MIN_SAMPLE => {
            let dt = now.duration_since(start).as_secs_f64();
            let rate = (remaining - start_remaining + b.answered_since_sample) / dt;
            if rate.is_finite() && rate > 0.0 {
                b.refill = (0.5 * b.refill + 0.5 * rate).max(MIN_REFILL);
            }
            b.sample = Some((now, remaining));
            b.answered_since_sample = 0.0;
        }
        Some(_) => {}
        None => {
            b.sample = Some((now, remaining));
            b.answered_since_sample = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SUB: &str = "sub";

    #[test]
    fn sends_freely_while_the_bucket_has_room() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        for _ in 0..100 {
            assert_eq!(
                limiter.reserve(SUB, OpClass::Reads, now).wait,
                Duration::ZERO
            );
        }
    }

    #[test]
    fn paces_at_the_refill_rate_when_the_bucket_runs_low() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        // ARM reports 5 writes left; the documented refill is 10 per second.
        limiter.reserve(SUB, OpClass::Writes, now);
        limiter.answered(SUB, OpClass::Writes, Some(5.0), now);
        let waits: Vec<Duration> = (0..6)
            .map(|_| limiter.reserve(SUB, OpClass::Writes, now).wait)
            .collect();
        // 5 left, 2 kept in reserve: three go now, then one slot every 100 ms.
        assert_eq!(&waits[..3], &[Duration::ZERO; 3]);
        assert_eq!(waits[3], Duration::from_millis(100));
        assert_eq!(waits[4], Duration::from_millis(200));
        assert_eq!(waits[5], Duration::from_millis(300));
    }

    #[test]
    fn a_429_blocks_until_retry_after_and_lowers_the_rate() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        limiter.reserve(SUB, OpClass::Reads, now);
        limiter.throttled(SUB, OpClass::Reads, Duration::from_secs(3), now);
        let slot = limiter.reserve(SUB, OpClass::Reads, now);
        assert!(slot.wait >= Duration::from_secs(3), "{slot:?}");
        let (_, refill) = limiter.estimate(SUB, OpClass::Reads).unwrap();
        assert!(refill < 25.0);
        // More 429s from the same burst do not compound.
        for _ in 0..50 {
            limiter.throttled(SUB, OpClass::Reads, Duration::from_secs(3), now);
        }
        let (_, after_burst) = limiter.estimate(SUB, OpClass::Reads).unwrap();
        assert_eq!(after_burst, refill);
    }

    #[test]
    fn learns_capacity_and_refill_from_the_headers() {
        let limiter = RateLimiter::new();
        let start = Instant::now();
        // A bucket of 20 refilling at 1 per second (a sandbox scaled to a tenth).
        limiter.reserve(SUB, OpClass::Writes, start);
        limiter.answered(SUB, OpClass::Writes, Some(19.0), start);
        let (capacity, _) = limiter.estimate(SUB, OpClass::Writes).unwrap();
        assert_eq!(capacity, 20.0);
        // Then watch: every second, 2 answers and a refill of 1, so the count drops by 1 a
        // second.
        let mut remaining = 15.0;
        let mut t = start;
        limiter.answered(SUB, OpClass::Writes, Some(remaining), t);
        for _ in 0..10 {
            for _ in 0..2 {
                t += Duration::from_millis(500);
                remaining -= 0.5;
                limiter.reserve(SUB, OpClass::Writes, t);
                limiter.answered(SUB, OpClass::Writes, Some(remaining), t);
            }
        }
        let (_, refill) = limiter.estimate(SUB, OpClass::Writes).unwrap();
        assert!((0.7..1.5).contains(&refill), "learned refill {refill}");
    }

    #[test]
    fn buckets_are_per_subscription_and_class() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        limiter.reserve("a", OpClass::Writes, now);
        limiter.answered("a", OpClass::Writes, Some(0.0), now);
        assert!(limiter.reserve("a", OpClass::Writes, now).wait > Duration::ZERO);
        assert_eq!(
            limiter.reserve("A", OpClass::Reads, now).wait,
            Duration::ZERO
        );
        assert_eq!(
            limiter.reserve("b", OpClass::Writes, now).wait,
            Duration::ZERO
        );
    }

    #[test]
    fn a_429_invalidates_the_slots_planned_before_it() {
        let limiter = RateLimiter::new();
        let now = Instant::now();
        limiter.reserve(SUB, OpClass::Writes, now);
        limiter.answered(SUB, OpClass::Writes, Some(0.0), now);
        let slot = limiter.reserve(SUB, OpClass::Writes, now);
        assert!(slot.wait > Duration::ZERO);
        assert!(limiter.still_valid(SUB, OpClass::Writes, slot));
        limiter.throttled(SUB, OpClass::Writes, Duration::from_secs(1), now);
        assert!(!limiter.still_valid(SUB, OpClass::Writes, slot));
    }
}

//! Pacing for the limits resource providers enforce behind ARM, learned from their 429s.
//!
//! ARM's own buckets announce themselves (`x-ms-ratelimit-remaining-subscription-*`, see
//! [`super::ratelimit`]), but a resource provider may throttle well below them and say nothing
//! until it answers 429. The Managed Identity provider does ("Important considerations and
//! restrictions for federated identity credentials": per subscription 2 create/update, 10 get,
//! 5 list and 2 delete requests per second). Such a 429 still carries ARM's remaining count,
//! which is not zero: that is how it is told apart from ARM's own.
//!
//! Each (subscription, namespace, operation) starts unpaced, so a provider's burst allowance is
//! used in full. Its first 429 turns pacing on at the documented rate (1 per second for
//! providers with none documented), after the 429's `Retry-After`, and the rate then grows by
//! half every second until the next 429. Two 429s bracket an exact measurement: the
//! provider's bucket was empty at both, so the requests it accepted in between are what it
//! refilled, and their count over the interval is its rate. From then on wiform paces at the
//! measured rate and creeps up 1% a second, so that a raised limit is found again. Requests
//! wait in line (first come, first served) and only the first in line sleeps, so a change of
//! rate applies at once to everything queued.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;

/// A provider's operation kinds, each limited on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Operation {
    /// PUT, PATCH, POST.
    Write,
    Delete,
    /// GET of one resource.
    Get,
    /// GET of a collection.
    List,
}

impl Operation {
    /// After `providers/{namespace}`, an ARM path alternates type and name: an odd count of
    /// segments names a collection.
    pub fn of(method: &Method, path: &str) -> Self {
        match *method {
            Method::DELETE => Operation::Delete,
            Method::GET | Method::HEAD => {
                let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
                let after_namespace = segments
                    .iter()
                    .rposition(|s| s.eq_ignore_ascii_case("providers"))
                    .map(|i| segments.len().saturating_sub(i + 2));
                match after_namespace {
                    Some(n) if n % 2 == 0 => Operation::Get,
                    // Subscription- and group-level collections (`resourcegroups`) too.
                    Some(_) => Operation::List,
                    None if segments.len() % 2 == 1 => Operation::List,
                    None => Operation::Get,
                }
            }
            _ => Operation::Write,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Operation::Write => "create/update",
            Operation::Delete => "delete",
            Operation::Get => "get",
            Operation::List => "list",
        }
    }
}

/// The documented per-subscription rate, when there is one.
fn documented_rate(namespace: &str, operation: Operation) -> Option<f64> {
    // "Important considerations and restrictions for federated identity credentials", the
    // Managed Identity provider's throttling table (per subscription).
    namespace
        .eq_ignore_ascii_case("Microsoft.ManagedIdentity")
        .then_some(match operation {
            Operation::Write | Operation::Delete => 2.0,
            Operation::Get => 10.0,
            Operation::List => 5.0,
        })
}

/// The first guess for a provider whose limits are not documented.
const FALLBACK_RATE: f64 = 1.0;
/// Growth per second while probing for the rate (before the first measurement) and after.
const PROBE_GROWTH: f64 = 1.5;
const STEADY_GROWTH: f64 = 1.01;
/// Measurements over less than this are too noisy to trust: the rate is halved instead.
const MIN_MEASUREMENT: Duration = Duration::from_secs(1);
const MIN_RATE: f64 = 0.05;
const MAX_RATE: f64 = 10_000.0;
/// The first in line re-reads the rate at least this often while it waits.
const RECHECK: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No 429 yet: nothing is paced.
    Unlimited,
    /// Paced at a guess that grows until the next 429.
    Probing,
    /// Paced at a measured rate.
    Measured,
}

#[derive(Debug, Clone)]
struct Limit {
    phase: Phase,
    documented: Option<f64>,
    per_second: f64,
    /// The next request may go at this time, not before.
    next_send: Instant,
    /// A 429's Retry-After: nothing goes before this.
    blocked_until: Instant,
    /// When the request whose 429 opened the current measurement was sent.
    window_start: Option<Instant>,
    /// Requests sent since `window_start` and answered with anything but 429.
    accepted: u64,
    grown_at: Instant,
    /// Bumped by every 429 that teaches something: turns taken before it were taken on a
    /// wrong estimate.
    generation: u64,
}

/// What a 429 taught: the rate wiform paces at from now on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Learned {
    pub per_second: f64,
    /// Measured between two 429s (rather than the documented or a guessed rate).
    pub measured: bool,
}

impl Limit {
    fn new(documented: Option<f64>, now: Instant) -> Self {
        Limit {
            phase: Phase::Unlimited,
            documented,
            per_second: documented.unwrap_or(FALLBACK_RATE),
            next_send: now,
            blocked_until: now,
            window_start: None,
            accepted: 0,
            grown_at: now,
            generation: 0,
        }
    }

    fn grow(&mut self, now: Instant) {
        if now <= self.blocked_until || now <= self.grown_at {
            return;
        }
        let factor = match self.phase {
            Phase::Unlimited => return,
            Phase::Probing => PROBE_GROWTH,
            Phase::Measured => STEADY_GROWTH,
        };
        let seconds = now.duration_since(self.grown_at).as_secs_f64();
        self.per_second = (self.per_second * factor.powf(seconds)).min(MAX_RATE);
        self.grown_at = now;
    }

    /// How long the first in line still waits; zero means it goes now (and takes the slot).
    fn take_slot(&mut self, now: Instant) -> Duration {
        if self.phase == Phase::Unlimited {
            return Duration::ZERO;
        }
        self.grow(now);
        let at = self.next_send.max(self.blocked_until);
        if at > now {
            return at - now;
        }
        self.next_send = at.max(now) + Duration::from_secs_f64(1.0 / self.per_second);
        Duration::ZERO
    }

    fn accepted(&mut self, sent_at: Instant) {
        if self.window_start.is_some_and(|start| sent_at >= start) {
            self.accepted += 1;
        }
    }

    fn throttled(
        &mut self,
        sent_at: Instant,
        retry_after: Duration,
        now: Instant,
    ) -> Option<Learned> {
        let resume = now + retry_after;
        // Sent before wiform resumed after the last 429: part of the same overrun.
        if self.window_start.is_some() && sent_at < self.blocked_until {
            self.blocked_until = self.blocked_until.max(resume);
            return None;
        }
        match self.window_start {
            None => {
                self.phase = Phase::Probing;
                self.per_second = self.documented.unwrap_or(FALLBACK_RATE);
            }
            Some(start) => {
                let interval = sent_at.saturating_duration_since(start);
                if interval >= MIN_MEASUREMENT && self.accepted > 0 {
                    self.per_second = self.accepted as f64 / interval.as_secs_f64();
                    self.phase = Phase::Measured;
                } else {
                    self.per_second *= 0.5;
                }
            }
        }
        self.per_second = self.per_second.clamp(MIN_RATE, MAX_RATE);
        self.window_start = Some(sent_at);
        self.accepted = 0;
        self.blocked_until = resume;
        self.next_send = resume;
        self.grown_at = resume;
        self.generation += 1;
        Some(Learned {
            per_second: self.per_second,
            measured: self.phase == Phase::Measured,
        })
    }
}

/// A request's turn in its lane, taken under one generation of the lane's estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Turn(u64);

/// One (subscription, namespace, operation): its limit, and the line of requests waiting for it.
#[derive(Debug)]
struct Lane {
    line: tokio::sync::Mutex<()>,
    limit: Mutex<Limit>,
}

/// Which lane a request is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LaneKey {
    subscription: String,
    namespace: String,
    operation: Operation,
}

impl LaneKey {
    pub fn new(subscription: &str, namespace: &str, operation: Operation) -> Self {
        LaneKey {
            subscription: subscription.to_ascii_lowercase(),
            namespace: namespace.to_ascii_lowercase(),
            operation,
        }
    }

    /// "Microsoft.ManagedIdentity create/update requests in subscription …".
    pub fn describe(&self, namespace: &str) -> String {
        format!(
            "{namespace} {} requests in subscription {}",
            self.operation.describe(),
            self.subscription
        )
    }
}

/// Every provider limit seen.
#[derive(Debug, Default)]
pub struct ProviderLimits {
    lanes: Mutex<HashMap<LaneKey, Arc<Lane>>>,
}

impl ProviderLimits {
    fn lane(&self, key: &LaneKey) -> Arc<Lane> {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .entry(key.clone())
            .or_insert_with(|| {
                Arc::new(Lane {
                    line: tokio::sync::Mutex::new(()),
                    limit: Mutex::new(Limit::new(
                        documented_rate(&key.namespace, key.operation),
                        Instant::now(),
                    )),
                })
            })
            .clone()
    }

    fn with_limit<R>(&self, key: &LaneKey, f: impl FnOnce(&mut Limit) -> R) -> R {
        let lane = self.lane(key);
        let mut limit = lane.limit.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut limit)
    }

    /// Waits for this request's turn; returns the turn and how long it waited. A turn is good
    /// only as long as no 429 taught something new: check with [`ProviderLimits::still_valid`]
    /// right before sending.
    pub async fn pace(&self, key: &LaneKey) -> (Turn, Duration) {
        let lane = self.lane(key);
        let unlimited = || {
            let limit = lane.limit.lock().unwrap_or_else(|p| p.into_inner());
            (limit.phase == Phase::Unlimited).then_some(Turn(limit.generation))
        };
        if let Some(turn) = unlimited() {
            return (turn, Duration::ZERO);
        }
        let started = Instant::now();
        // tokio's mutex is fair: requests take their turn in the order they queued.
        let _turn = lane.line.lock().await;
        loop {
            let (wait, generation) = {
                let mut limit = lane.limit.lock().unwrap_or_else(|p| p.into_inner());
                (limit.take_slot(Instant::now()), limit.generation)
            };
            if wait.is_zero() {
                return (Turn(generation), started.elapsed());
            }
            tokio::time::sleep(wait.min(RECHECK)).await;
        }
    }

    /// Was `turn` taken on what is known now? (A request that got its turn while nothing was
    /// paced, and then waited for a permit while the provider's first 429 came back, must
    /// queue instead of adding to the overrun.)
    pub fn still_valid(&self, key: &LaneKey, turn: Turn) -> bool {
        self.with_limit(key, |l| l.generation == turn.0)
    }

    /// The provider answered a request sent at `sent_at` with anything but 429.
    pub fn accepted(&self, key: &LaneKey, sent_at: Instant) {
        self.with_limit(key, |l| l.accepted(sent_at));
    }

    /// The provider answered 429. Returns the new rate when this 429 taught something (the
    /// others of the same overrun only extend the pause).
    pub fn throttled(
        &self,
        key: &LaneKey,
        sent_at: Instant,
        retry_after: Duration,
        now: Instant,
    ) -> Option<Learned> {
        self.with_limit(key, |l| l.throttled(sent_at, retry_after, now))
    }

    /// The current pacing rate, if pacing is on (for tests and logs).
    pub fn rate(&self, key: &LaneKey) -> Option<f64> {
        self.with_limit(key, |l| {
            (l.phase != Phase::Unlimited).then_some(l.per_second)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn operations_are_told_apart_by_method_and_path() {
        let ids = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities";
        assert_eq!(Operation::of(&Method::GET, ids), Operation::List);
        assert_eq!(
            Operation::of(&Method::GET, &format!("{ids}/id-1")),
            Operation::Get
        );
        assert_eq!(
            Operation::of(
                &Method::GET,
                &format!("{ids}/id-1/federatedIdentityCredentials")
            ),
            Operation::List
        );
        assert_eq!(
            Operation::of(
                &Method::PUT,
                &format!("{ids}/id-1/federatedIdentityCredentials/f")
            ),
            Operation::Write
        );
        assert_eq!(
            Operation::of(&Method::DELETE, &format!("{ids}/id-1")),
            Operation::Delete
        );
        assert_eq!(
            Operation::of(&Method::GET, "/subscriptions/s/resourcegroups"),
            Operation::List
        );
        assert_eq!(
            Operation::of(&Method::GET, "/subscriptions/s/resourcegroups/rg"),
            Operation::Get
        );
    }

    #[test]
    fn nothing_is_paced_before_the_first_429() {
        let now = Instant::now();
        let mut limit = Limit::new(Some(2.0), now);
        for _ in 0..1000 {
            assert_eq!(limit.take_slot(now), Duration::ZERO);
        }
    }

    #[test]
    fn the_first_429_pauses_for_retry_after_then_paces_at_the_documented_rate() {
        let t0 = Instant::now();
        let mut limit = Limit::new(Some(2.0), t0);
        let learned = limit.throttled(t0, secs(1.0), t0).unwrap();
        assert_eq!(
            learned,
            Learned {
                per_second: 2.0,
                measured: false
            }
        );
        assert_eq!(limit.take_slot(t0), secs(1.0));
        let resume = t0 + secs(1.0);
        assert_eq!(limit.take_slot(resume), Duration::ZERO);
        // The next slot is half a second later.
        assert_eq!(limit.take_slot(resume), secs(0.5));
    }

    #[test]
    fn the_429s_of_one_overrun_teach_once() {
        let t0 = Instant::now();
        let mut limit = Limit::new(None, t0);
        assert!(limit.throttled(t0, secs(1.0), t0).is_some());
        // Fifteen more requests were in flight when the first 429 came back.
        for i in 0..15 {
            let sent = t0 + Duration::from_millis(i);
            assert!(
                limit
                    .throttled(sent, secs(1.0), sent + secs(0.02))
                    .is_none()
            );
        }
        assert_eq!(limit.per_second, FALLBACK_RATE);
    }

    #[test]
    fn two_429s_measure_the_rate_the_provider_refills() {
        let t0 = Instant::now();
        let mut limit = Limit::new(Some(2.0), t0);
        limit.throttled(t0, secs(1.0), t0);
        // The provider refills 20 per second: over the next 10 s it accepts 200 requests.
        for i in 0..200 {
            limit.accepted(t0 + secs(1.0 + i as f64 * 0.045));
        }
        // A request sent before the first 429 does not count.
        limit.accepted(t0 - secs(0.01));
        let t1 = t0 + secs(10.0);
        let learned = limit.throttled(t1, secs(1.0), t1 + secs(0.02)).unwrap();
        assert!(learned.measured);
        assert!((learned.per_second - 20.0).abs() < 1e-9, "{learned:?}");
    }

    #[test]
    fn probing_grows_the_rate_until_the_next_429() {
        let t0 = Instant::now();
        let mut limit = Limit::new(Some(2.0), t0);
        limit.throttled(t0, secs(1.0), t0);
        let later = t0 + secs(3.0);
        limit.take_slot(later);
        // Two seconds past the pause: 2 × 1.5².
        assert!(
            (limit.per_second - 4.5).abs() < 1e-6,
            "{}",
            limit.per_second
        );
    }

    #[test]
    fn a_429_too_soon_to_measure_halves_the_rate() {
        let t0 = Instant::now();
        let mut limit = Limit::new(Some(2.0), t0);
        limit.throttled(t0, secs(0.1), t0);
        let soon = t0 + secs(0.5);
        let learned = limit.throttled(soon, secs(0.1), soon).unwrap();
        assert!(!learned.measured);
        assert!(learned.per_second < 2.0);
    }

    #[tokio::test]
    async fn lanes_are_per_subscription_namespace_and_operation() {
        let limits = ProviderLimits::default();
        let writes = LaneKey::new("S", "Microsoft.ManagedIdentity", Operation::Write);
        let now = Instant::now();
        limits.throttled(&writes, now, secs(0.0), now);
        assert_eq!(
            limits.rate(&LaneKey::new(
                "s",
                "microsoft.managedidentity",
                Operation::Write
            )),
            Some(2.0)
        );
        assert_eq!(
            limits.rate(&LaneKey::new(
                "s",
                "Microsoft.ManagedIdentity",
                Operation::List
            )),
            None
        );
        assert_eq!(
            limits.rate(&LaneKey::new(
                "other",
                "Microsoft.ManagedIdentity",
                Operation::Write
            )),
            None
        );
        // An unpaced lane lets requests straight through.
        let list = LaneKey::new("s", "Microsoft.ManagedIdentity", Operation::List);
        let (turn, waited) = limits.pace(&list).await;
        assert_eq!(waited, Duration::ZERO);
        assert!(limits.still_valid(&list, turn));
        // A 429 while the request waited for a permit: its turn is void.
        limits.throttled(&list, now, secs(0.0), now);
        assert!(!limits.still_valid(&list, turn));
    }
}

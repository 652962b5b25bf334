//! ARM's request limits as token buckets ("Request limits and throttling": per subscription,
//! reads 250 / 25 per s, writes 200 / 10 per s, deletes 200 / 10 per s) and the Managed
//! Identity provider's lower limits ("Important considerations and restrictions for federated
//! identity credentials": per subscription create/update 2/s, get 10/s, list 5/s, delete 2/s;
//! per identity 0.25/s). Every ARM answer carries the `x-ms-ratelimit-remaining-subscription-*`
//! header of its class.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Reads,
    Writes,
    Deletes,
}

impl Class {
    pub fn of(method: &axum::http::Method) -> Self {
        match *method {
            axum::http::Method::GET | axum::http::Method::HEAD => Class::Reads,
            axum::http::Method::DELETE => Class::Deletes,
            _ => Class::Writes,
        }
    }

    pub fn header(self) -> &'static str {
        match self {
            Class::Reads => "x-ms-ratelimit-remaining-subscription-reads",
            Class::Writes => "x-ms-ratelimit-remaining-subscription-writes",
            Class::Deletes => "x-ms-ratelimit-remaining-subscription-deletes",
        }
    }

    /// ARM's operation type name in its throttling message.
    fn operation_type(self) -> &'static str {
        match self {
            Class::Reads => "Read",
            Class::Writes => "Write",
            Class::Deletes => "Delete",
        }
    }

    /// ARM's bucket for this class: (burst, refill per second), before scaling.
    pub fn arm_bucket(self) -> (f64, f64) {
        match self {
            Class::Reads => (250.0, 25.0),
            Class::Writes | Class::Deletes => (200.0, 10.0),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    capacity: f64,
    refill_per_s: f64,
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new(capacity: f64, refill_per_s: f64) -> Self {
        Bucket {
            capacity,
            refill_per_s,
            tokens: capacity,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.refill_per_s).min(self.capacity);
        self.at = now;
    }

    /// Takes a token, or says how many seconds until one is there.
    fn take(&mut self, now: Instant) -> Result<(), u64> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - self.tokens) / self.refill_per_s).ceil().max(1.0) as u64)
        }
    }
}

/// A refusal: which limit, and the `Retry-After` seconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Throttled {
    pub retry_after_s: u64,
    pub message: String,
    /// `TooManyRequests` from ARM itself, `TooManyRequests` from the provider as well (the
    /// Managed Identity provider answers with the same code).
    pub code: &'static str,
}

#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// The Managed Identity provider's per-subscription buckets hold this many seconds of refill
/// (the doc gives rates only; some burst is what a token bucket has).
pub const MSI_BURST_SECONDS: f64 = 10.0;
/// The Managed Identity provider's per-identity rate for writes (create/update, delete).
pub const MSI_RESOURCE_WRITE_RATE: f64 = 0.25;

/// The Managed Identity provider's operation kinds and their per-subscription rates, before
/// scaling: create/update 2, get 10, list 5, delete 2 per second.
pub fn msi_rate(method: &axum::http::Method, is_list: bool) -> f64 {
    match *method {
        axum::http::Method::GET | axum::http::Method::HEAD if is_list => 5.0,
        axum::http::Method::GET | axum::http::Method::HEAD => 10.0,
        _ => 2.0,
    }
}

impl Throttle {
    fn take(&self, key: String, capacity: f64, refill: f64) -> (Result<(), u64>, f64) {
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        let bucket = buckets
            .entry(key)
            .or_insert_with(|| Bucket::new(capacity, refill));
        let now = Instant::now();
        let result = bucket.take(now);
        (result, bucket.tokens)
    }

    /// Counts one ARM request of `subscription`. Returns the remaining-count header value, or the
    /// refusal when `enforce` is on and the bucket is empty.
    pub fn arm(
        &self,
        subscription: &str,
        class: Class,
        scale: f64,
        enforce: bool,
    ) -> Result<u64, Throttled> {
        let (capacity, refill) = class.arm_bucket();
        let scale = if scale > 0.0 { scale } else { 1.0 };
        if !enforce {
            return Ok((capacity * scale) as u64);
        }
        let (result, left) = self.take(
            format!("arm/{}/{class:?}", subscription.to_ascii_lowercase()),
            capacity * scale,
            refill * scale,
        );
        match result {
            Ok(()) => Ok(left.floor() as u64),
            Err(retry_after_s) => Err(Throttled {
                retry_after_s,
                code: "TooManyRequests",
                message: format!(
                    "The request is being throttled as the limit has been reached for operation type - {}_Subscription. For more information, see - https://aka.ms/armthrottling",
                    class.operation_type()
                ),
            }),
        }
    }

    /// The Managed Identity provider's limits: per subscription by operation kind, and 0.25 per
    /// second per identity for writes. Buckets hold ten seconds of refill.
    pub fn managed_identity(
        &self,
        subscription: &str,
        identity: Option<&str>,
        method: &axum::http::Method,
        is_list: bool,
        scale: f64,
    ) -> Result<(), Throttled> {
        let scale = if scale > 0.0 { scale } else { 1.0 };
        let rate = msi_rate(method, is_list) * scale;
        let kind = format!("{method}{}", if is_list { "-list" } else { "" });
        let refuse = |retry_after_s| {
            Throttled {
            retry_after_s,
            code: "TooManyRequests",
            message: "Too many requests for the Microsoft.ManagedIdentity resource provider. Retry after the time in the Retry-After header.".into(),
        }
        };
        if let (Err(retry), _) = self.take(
            format!("msi/{}/{kind}", subscription.to_ascii_lowercase()),
            rate * MSI_BURST_SECONDS,
            rate,
        ) {
            return Err(refuse(retry));
        }
        if let Some(identity) = identity
            && !matches!(*method, axum::http::Method::GET | axum::http::Method::HEAD)
        {
            let rate = MSI_RESOURCE_WRITE_RATE * scale;
            if let (Err(retry), _) = self.take(
                format!("msi-resource/{}", identity.to_ascii_lowercase()),
                (rate * MSI_BURST_SECONDS).max(1.0),
                rate,
            ) {
                return Err(refuse(retry));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_over_the_bucket_is_refused_with_retry_after() {
        let throttle = Throttle::default();
        // Scale 0.05: a bucket of 10 writes refilled at 0.5 per second.
        for _ in 0..10 {
            throttle.arm("s", Class::Writes, 0.05, true).unwrap();
        }
        let refused = throttle.arm("s", Class::Writes, 0.05, true).unwrap_err();
        assert_eq!(refused.retry_after_s, 2);
        assert!(refused.message.contains("Write_Subscription"));
        // Other classes and subscriptions have their own buckets.
        assert!(throttle.arm("s", Class::Reads, 0.05, true).is_ok());
        assert!(throttle.arm("t", Class::Writes, 0.05, true).is_ok());
    }

    #[test]
    fn off_means_never_refused() {
        let throttle = Throttle::default();
        for _ in 0..1000 {
            assert_eq!(throttle.arm("s", Class::Writes, 1.0, false), Ok(200));
        }
    }
}

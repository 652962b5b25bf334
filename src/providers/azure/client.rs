//! The HTTP client for ARM and Microsoft Graph: one place that authenticates, paces, retries,
//! pages, polls long-running operations and turns error answers into [`AzureError`]s. The
//! resource modules build [`Request`]s and read [`Response`]s; they never see reqwest.
//!
//! What it survives, and where each rule comes from:
//! - 429 with `Retry-After` (ARM "Request limits and throttling", Graph "throttling guidance"),
//!   and ARM's `x-ms-ratelimit-remaining-*` headers, paced by [`RateLimiter`] before 429 comes;
//! - 5xx, 408, timeouts and dropped connections: exponential backoff with full jitter, bounded
//!   in attempts and total time ("Retry guidance for Azure services");
//! - conditions that clear by themselves (replication delay, a concurrent write, an operation in
//!   progress): retried for a bounded time with a message naming what is awaited ([`Wait`]);
//! - paging (`nextLink`, `@odata.nextLink`) and long-running operations (`Azure-AsyncOperation`,
//!   `Location`, `provisioningState`; "Track asynchronous Azure operations").
//!
//! Tokens come from an azure_core `TokenCredential` (cached per scope by azure_identity and
//! refreshed before expiry). They are never logged: `--verbose` shows each request's method,
//! URL, status, duration and request id, with the Authorization header redacted.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use azure_core::credentials::TokenCredential;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::sync::Semaphore;
use url::Url;

use super::cloud::Endpoints;
use super::error::{ApiFailure, AzureError, AzureErrorKind};
use super::provider_limits::{LaneKey, Operation, ProviderLimits};
use super::ratelimit::{OpClass, RateLimiter};

/// Which service a request goes to (base URL and token scope).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    Arm,
    Graph,
}

/// How hard to try.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts of one request for throttling, server errors and lost connections.
    pub max_attempts: u32,
    /// Total time one request may spend on those retries.
    pub max_elapsed: Duration,
    /// First backoff; doubles each attempt, with full jitter.
    pub base_delay: Duration,
    pub max_delay: Duration,
    /// Longest `Retry-After` honoured as given (longer ones are capped here).
    pub max_retry_after: Duration,
    /// Poll interval of a long-running operation when the service sends no `Retry-After`.
    pub poll_interval: Duration,
    /// Longest a long-running operation is awaited.
    pub max_operation: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            max_elapsed: Duration::from_secs(180),
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            poll_interval: Duration::from_secs(5),
            max_operation: Duration::from_secs(45 * 60),
        }
    }
}

impl RetryPolicy {
    /// Short delays, for tests against the sandbox.
    pub fn fast() -> Self {
        RetryPolicy {
            max_attempts: 12,
            max_elapsed: Duration::from_secs(60),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(5),
            poll_interval: Duration::from_millis(20),
            max_operation: Duration::from_secs(60),
        }
    }
}

/// Settings of an [`AzureClient`].
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// Requests in flight at once, over all services (`--parallelism`).
    pub parallelism: usize,
    /// Lower limits per API namespace (`Microsoft.ManagedIdentity`, `graph`, …), applied under
    /// `parallelism`.
    pub namespace_limits: Vec<(String, usize)>,
    pub retry: RetryPolicy,
    /// Time allowed for one HTTP exchange.
    pub request_timeout: Duration,
    /// Scale of [`Wait`] limits (tests shorten them).
    pub wait_scale: f64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            parallelism: 16,
            // Graph throttles per app and tenant: more concurrency than this only queues there.
            // The Managed Identity provider's limits are rates (2 writes per second per
            // subscription, FIC considerations doc), which the 429 handling paces; wiform
            // already writes one credential at a time per identity.
            namespace_limits: vec![
                ("Microsoft.ManagedIdentity".into(), 16),
                ("graph".into(), 8),
            ],
            retry: RetryPolicy::default(),
            request_timeout: Duration::from_secs(60),
            wait_scale: 1.0,
        }
    }
}

/// A condition that clears by itself, waited out for at most `max`.
#[derive(Debug, Clone)]
pub struct Wait {
    /// The error code (or detail code) that signals it.
    pub code: &'static str,
    /// What wiform waits for, in words: "the new identity to replicate".
    pub waiting_for: String,
    pub max: Duration,
}

impl Wait {
    pub fn new(code: &'static str, waiting_for: impl Into<String>, max: Duration) -> Self {
        Wait {
            code,
            waiting_for: waiting_for.into(),
            max,
        }
    }
}

/// Conditions every request waits out: they mean "not now", never "no".
fn standing_waits() -> Vec<Wait> {
    vec![
        // A second write on the same identity while one runs (FIC considerations doc); wiform
        // serialises its own writes, so this is someone else's.
        Wait::new(
            "ConcurrentFederatedIdentityCredentialsWritesForSingleManagedIdentity",
            "another federated credential write on the same identity to finish",
            Duration::from_secs(120),
        ),
        // AKS: "Another operation (Updating) is in progress" (fact sheet §4).
        Wait::new(
            "OperationNotAllowed",
            "the cluster's running operation to finish",
            Duration::from_secs(30 * 60),
        ),
        Wait::new(
            "AnotherOperationInProgress",
            "the running operation to finish",
            Duration::from_secs(30 * 60),
        ),
        // Graph 409 on concurrent directory writes ("Microsoft Graph error responses").
        Wait::new(
            "Directory_ConcurrencyViolation",
            "a concurrent directory write to finish",
            Duration::from_secs(60),
        ),
    ]
}

/// One request.
#[derive(Debug, Clone)]
pub struct Request {
    pub service: Service,
    pub method: Method,
    /// Path and query below the service's base URL, or an absolute URL (`nextLink`,
    /// operation status URLs).
    pub target: String,
    pub body: Option<Value>,
    pub headers: Vec<(&'static str, String)>,
    /// What this does, naming the object, for errors and logs.
    pub action: String,
    pub waits: Vec<Wait>,
}

impl Request {
    pub fn new(service: Service, method: Method, target: impl Into<String>) -> Self {
        Request {
            service,
            method,
            target: target.into(),
            body: None,
            headers: Vec::new(),
            action: String::new(),
            waits: Vec::new(),
        }
    }

    pub fn arm(method: Method, target: impl Into<String>) -> Self {
        Self::new(Service::Arm, method, target)
    }

    pub fn graph(method: Method, target: impl Into<String>) -> Self {
        Self::new(Service::Graph, method, target)
    }

    pub fn json(mut self, body: Value) -> Self {
        self.body = Some(body);
        self
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    pub fn action(mut self, action: impl Into<String>) -> Self {
        self.action = action.into();
        self
    }

    /// Retries while the service answers `wait.code`, for at most `wait.max`.
    pub fn wait_out(mut self, wait: Wait) -> Self {
        self.waits.push(wait);
        self
    }

    fn describe(&self) -> String {
        if self.action.is_empty() {
            format!("{} {}", self.method, self.target)
        } else {
            self.action.clone()
        }
    }
}

/// A successful answer.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub request_id: Option<String>,
    /// The URL that answered (after following an absolute target).
    pub url: Url,
}

impl Response {
    /// The body as JSON (`Null` when empty).
    pub fn value(&self) -> Value {
        if self.body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&self.body).unwrap_or(Value::Null)
        }
    }

    /// The body as `T`, or an error naming the action and the request id.
    pub fn json<T: DeserializeOwned>(&self, action: &str) -> Result<T, AzureError> {
        serde_json::from_slice(&self.body).map_err(|e| {
            AzureError::invalid_response(
                action,
                format!("the body is not the documented shape: {e}"),
                self.request_id.clone(),
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Something the client is doing that a user may want to see (progress display, logs).
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A condition that clears by itself: retrying after `delay`.
    Waiting {
        action: String,
        waiting_for: String,
        attempt: u32,
        delay: Duration,
    },
    /// Throttled (429): retrying after `delay`.
    Throttled {
        action: String,
        attempt: u32,
        delay: Duration,
    },
    /// A server error or a lost connection: retrying after `delay`.
    Retrying {
        action: String,
        reason: String,
        attempt: u32,
        delay: Duration,
    },
    /// A resource provider throttled below ARM's limits: its requests are paced from now on.
    Limited {
        /// "Microsoft.ManagedIdentity create/update requests in subscription …".
        limit: String,
        per_second: f64,
        /// Measured between two of its 429s (else the documented or a guessed rate).
        measured: bool,
    },
    /// A long-running operation reported its status.
    Polling {
        action: String,
        status: String,
        elapsed: Duration,
    },
}

pub type EventSink = Arc<dyn Fn(&Event) + Send + Sync>;

/// Counts of what the client did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// HTTP requests sent (each attempt counts).
    pub requests: u64,
    /// Of those, answered 429.
    pub throttled: u64,
    /// Retries for any reason.
    pub retries: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    throttled: AtomicU64,
    retries: AtomicU64,
}

/// The client. Cheap to clone; clones share permits, pacing and counters.
#[derive(Clone)]
pub struct AzureClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    credential: Arc<dyn TokenCredential>,
    options: ClientOptions,
    limiter: RateLimiter,
    provider_limits: ProviderLimits,
    permits: Semaphore,
    namespace_permits: Mutex<HashMap<String, Arc<Semaphore>>>,
    counters: Counters,
    events: Option<EventSink>,
}

impl std::fmt::Debug for AzureClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureClient")
            .field("arm", &self.inner.endpoints.arm.as_str())
            .field("graph", &self.inner.endpoints.graph.as_str())
            .finish_non_exhaustive()
    }
}

/// The reqwest client wiform uses for Azure: rustls, the system roots plus the sandbox's CA
/// when set.
pub fn http_client(endpoints: &Endpoints, timeout: Duration) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .user_agent(concat!("wiform/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(timeout);
    if let Some(pem) = &endpoints.extra_ca_pem {
        // One CA or a bundle (the sandbox's, plus a cluster issuer's own for `verify`).
        let cas = reqwest::Certificate::from_pem_bundle(pem.as_bytes())
            .map_err(|e| format!("the sandbox CA is not a PEM certificate: {e}"))?;
        if cas.is_empty() {
            return Err("the sandbox CA holds no PEM certificate".into());
        }
        for ca in cas {
            builder = builder.add_root_certificate(ca);
        }
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// A namespace's permit (when it has a limit) and one of the overall limit.
type Permits<'a> = (
    Option<tokio::sync::OwnedSemaphorePermit>,
    Option<tokio::sync::SemaphorePermit<'a>>,
);

/// What one attempt produced.
enum Attempt {
    Done(Response),
    Failed(ApiFailure, HeaderMap),
    Lost(String),
    /// The credential gave no token (already retried by azure_identity where that helps).
    NoToken(String),
}

impl AzureClient {
    pub fn new(
        endpoints: Endpoints,
        credential: Arc<dyn TokenCredential>,
        options: ClientOptions,
    ) -> Result<Self, AzureError> {
        let http = http_client(&endpoints, options.request_timeout).map_err(|message| {
            AzureError::new(
                "connect to Azure",
                AzureErrorKind::Transport {
                    message,
                    attempts: 0,
                },
            )
        })?;
        let parallelism = options.parallelism.max(1);
        Ok(AzureClient {
            inner: Arc::new(Inner {
                http,
                endpoints,
                credential,
                limiter: RateLimiter::new(),
                provider_limits: ProviderLimits::default(),
                permits: Semaphore::new(parallelism),
                namespace_permits: Mutex::new(HashMap::new()),
                counters: Counters::default(),
                events: None,
                options,
            }),
        })
    }

    /// Reports retries, waits and polls to `sink` (as well as to the log).
    pub fn with_events(self, sink: EventSink) -> Self {
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| Inner {
            http: shared.http.clone(),
            endpoints: shared.endpoints.clone(),
            credential: shared.credential.clone(),
            options: shared.options.clone(),
            limiter: RateLimiter::new(),
            provider_limits: ProviderLimits::default(),
            permits: Semaphore::new(shared.options.parallelism.max(1)),
            namespace_permits: Mutex::new(HashMap::new()),
            counters: Counters::default(),
            events: None,
        });
        AzureClient {
            inner: Arc::new(Inner {
                events: Some(sink),
                ..inner
            }),
        }
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.inner.endpoints
    }

    /// The HTTP client (its trusted CAs include the sandbox's): for the token exchange and
    /// issuer checks of `verify`, which are not ARM or Graph calls.
    pub fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    pub fn stats(&self) -> Stats {
        let c = &self.inner.counters;
        Stats {
            requests: c.requests.load(Ordering::Relaxed),
            throttled: c.throttled.load(Ordering::Relaxed),
            retries: c.retries.load(Ordering::Relaxed),
        }
    }

    /// The current pacing estimate of a subscription's bucket (capacity, refill per second).
    pub fn rate_estimate(&self, subscription: &str, class: OpClass) -> Option<(f64, f64)> {
        self.inner.limiter.estimate(subscription, class)
    }

    /// Requests the pacing of a subscription's bucket counts as sent and not yet answered:
    /// zero when nothing is in flight (a leak here would slow every later request).
    pub fn paced_in_flight(&self, subscription: &str, class: OpClass) -> f64 {
        self.inner.limiter.outstanding(subscription, class)
    }

    fn emit(&self, event: Event) {
        match &event {
            Event::Waiting {
                action,
                waiting_for,
                attempt,
                delay,
            } => tracing::info!(
                "{action}: waiting for {waiting_for} (attempt {attempt}, next in {:.1} s)",
                delay.as_secs_f64()
            ),
            Event::Throttled {
                action,
                attempt,
                delay,
            } => tracing::info!(
                "{action}: throttled by Azure, retrying in {:.1} s (attempt {attempt})",
                delay.as_secs_f64()
            ),
            Event::Retrying {
                action,
                reason,
                attempt,
                delay,
            } => tracing::info!(
                "{action}: {reason}, retrying in {:.1} s (attempt {attempt})",
                delay.as_secs_f64()
            ),
            Event::Polling {
                action,
                status,
                elapsed,
            } => tracing::info!("{action}: {status} after {:.0} s", elapsed.as_secs_f64()),
            Event::Limited {
                limit,
                per_second,
                measured,
            } => tracing::info!(
                "{limit} are throttled by the provider: pacing them at {per_second:.1} per second \
                 ({})",
                if *measured {
                    "measured from its answers"
                } else {
                    "a first guess, to be measured"
                }
            ),
        }
        if let Some(sink) = &self.inner.events {
            sink(&event);
        }
    }

    fn url(&self, request: &Request) -> Result<Url, AzureError> {
        let parsed =
            if request.target.starts_with("https://") || request.target.starts_with("http://") {
                Url::parse(&request.target)
            } else {
                let base = match request.service {
                    Service::Arm => &self.inner.endpoints.arm,
                    Service::Graph => &self.inner.endpoints.graph,
                };
                base.join(request.target.trim_start_matches('/'))
            };
        parsed.map_err(|e| {
            AzureError::invalid_response(
                request.describe(),
                format!("`{}` is not a valid URL: {e}", request.target),
                None,
            )
        })
    }

    fn scope(&self, service: Service) -> &str {
        match service {
            Service::Arm => &self.inner.endpoints.arm_scope,
            Service::Graph => &self.inner.endpoints.graph_scope,
        }
    }

    fn namespace_semaphore(&self, namespace: &str) -> Option<Arc<Semaphore>> {
        let limit = self
            .inner
            .options
            .namespace_limits
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(namespace))
            .map(|(_, l)| (*l).max(1))?;
        let mut map = self
            .inner
            .namespace_permits
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        Some(
            map.entry(namespace.to_ascii_lowercase())
                .or_insert_with(|| Arc::new(Semaphore::new(limit)))
                .clone(),
        )
    }

    /// Holds a permit of the namespace (when it has a limit) and one of the overall limit.
    async fn permits(&self, namespace: &str) -> Permits<'_> {
        let namespace_permit = match self.namespace_semaphore(namespace) {
            Some(semaphore) => semaphore.acquire_owned().await.ok(),
            None => None,
        };
        let permit = self.inner.permits.acquire().await.ok();
        (namespace_permit, permit)
    }

    /// Sends a request; any answer other than 2xx is an error (after the retries it deserves).
    pub async fn send(&self, request: &Request) -> Result<Response, AzureError> {
        self.send_accepting(request, &[]).await
    }

    /// Like [`AzureClient::send`], but a 404 is `None`.
    pub async fn send_optional(&self, request: &Request) -> Result<Option<Response>, AzureError> {
        match self.send_accepting(request, &[404]).await? {
            r if r.status == 404 => Ok(None),
            r => Ok(Some(r)),
        }
    }

    /// Sends a request; the statuses in `accept` are answers, not errors.
    pub async fn send_accepting(
        &self,
        request: &Request,
        accept: &[u16],
    ) -> Result<Response, AzureError> {
        let url = self.url(request)?;
        let policy = &self.inner.options.retry;
        let started = Instant::now();
        // Time spent waiting for a turn under the request limits does not count against the
        // retry budget: a long queue is not a failing service.
        let mut paced = Duration::ZERO;
        let trying = |paced: Duration| started.elapsed().saturating_sub(paced);
        let mut attempt: u32 = 0;
        // Attempts spent on throttling, server errors and lost connections; waits have their
        // own clock.
        let mut plain_retries: u32 = 0;
        let mut wait_started: HashMap<&'static str, Instant> = HashMap::new();
        let standing = standing_waits();
        loop {
            attempt += 1;
            let (outcome, waited_in_line) = self.attempt(request, &url, accept).await;
            paced += waited_in_line;
            let (failure, headers) = match outcome {
                Attempt::Done(response) => return Ok(response),
                Attempt::NoToken(message) => {
                    return Err(AzureError::new(
                        request.describe(),
                        AzureErrorKind::Credential { message },
                    ));
                }
                Attempt::Lost(message) => {
                    plain_retries += 1;
                    if plain_retries >= policy.max_attempts || trying(paced) >= policy.max_elapsed {
                        return Err(AzureError::new(
                            request.describe(),
                            AzureErrorKind::Transport {
                                message,
                                attempts: attempt,
                            },
                        ));
                    }
                    let delay = backoff(policy, plain_retries);
                    self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                    self.emit(Event::Retrying {
                        action: request.describe(),
                        reason: format!("no answer ({message})"),
                        attempt,
                        delay,
                    });
                    tokio::time::sleep(delay).await;
                    continue;
                }
                Attempt::Failed(failure, headers) => (failure, headers),
            };

            // Throttling and server errors: retry within the policy's bounds.
            if is_retryable_status(failure.status) {
                plain_retries += 1;
                let retry_after = retry_after(&headers).map(|d| d.min(policy.max_retry_after));
                let delay = retry_after.unwrap_or_else(|| backoff(policy, plain_retries));
                if plain_retries >= policy.max_attempts
                    || trying(paced) + delay >= policy.max_elapsed
                {
                    let waited_for = if failure.status == 429 {
                        "Azure's request limits to allow more requests"
                    } else {
                        "the service to recover from server errors"
                    };
                    return Err(AzureError::new(
                        request.describe(),
                        AzureErrorKind::GaveUp {
                            waited_for: waited_for.into(),
                            elapsed: started.elapsed(),
                            attempts: attempt,
                            last: failure,
                        },
                    ));
                }
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                if failure.status == 429 {
                    self.emit(Event::Throttled {
                        action: request.describe(),
                        attempt,
                        delay,
                    });
                } else {
                    self.emit(Event::Retrying {
                        action: request.describe(),
                        reason: format!("{} (HTTP {})", failure.code, failure.status),
                        attempt,
                        delay,
                    });
                }
                tokio::time::sleep(delay).await;
                continue;
            }

            // Conditions that clear by themselves.
            let wait = request
                .waits
                .iter()
                .chain(standing.iter())
                .find(|w| failure.has_code(w.code));
            if let Some(wait) = wait {
                let since = *wait_started.entry(wait.code).or_insert_with(Instant::now);
                let max = wait.max.mul_f64(self.inner.options.wait_scale);
                let n = u32::try_from(wait_started.len())
                    .unwrap_or(1)
                    .max(attempt - plain_retries);
                let delay = retry_after(&headers)
                    .map(|d| d.min(policy.max_retry_after))
                    .unwrap_or_else(|| backoff(policy, n));
                if since.elapsed() + delay > max {
                    return Err(AzureError::new(
                        request.describe(),
                        AzureErrorKind::GaveUp {
                            waited_for: wait.waiting_for.clone(),
                            elapsed: since.elapsed(),
                            attempts: attempt,
                            last: failure,
                        },
                    ));
                }
                self.inner.counters.retries.fetch_add(1, Ordering::Relaxed);
                self.emit(Event::Waiting {
                    action: request.describe(),
                    waiting_for: wait.waiting_for.clone(),
                    attempt,
                    delay,
                });
                tokio::time::sleep(delay).await;
                continue;
            }

            return Err(AzureError::api(request.describe(), failure));
        }
    }

    /// One HTTP exchange: pacing, permits, token, send, read, log. Also says how long the
    /// request waited for its turn under the request limits.
    async fn attempt(&self, request: &Request, url: &Url, accept: &[u16]) -> (Attempt, Duration) {
        let pacing = match request.service {
            Service::Arm => subscription_of(url.path()).map(|s| (s, OpClass::of(&request.method))),
            Service::Graph => None,
        };
        let namespace = namespace_of(request.service, url.path());
        let lane = pacing.as_ref().map(|(subscription, _)| {
            LaneKey::new(
                subscription,
                &namespace,
                Operation::of(&request.method, url.path()),
            )
        });
        // The provider's own limit first, without holding permits: requests queued behind it
        // must not keep others (another provider, another operation) from going. Then ARM's,
        // decided once this request holds its permits, so that it sees the answers of every
        // request sent before it (with many queued, deciding earlier would let a whole queue
        // through on an estimate that is already stale).
        let mut paced = Duration::ZERO;
        let permits = loop {
            let turn = match &lane {
                Some(lane) => {
                    let (turn, waited) = self.inner.provider_limits.pace(lane).await;
                    paced += waited;
                    Some(turn)
                }
                None => None,
            };
            let mut permits = self.permits(&namespace).await;
            if let Some((subscription, class)) = &pacing {
                paced += self
                    .arm_pacing(request, url, subscription, *class, &namespace, &mut permits)
                    .await;
            }
            match (&lane, turn) {
                (Some(lane), Some(turn)) if !self.inner.provider_limits.still_valid(lane, turn) => {
                    // The provider answered 429 while this request waited for its permits: it
                    // queues in the provider's line rather than add to the overrun, and gives
                    // back the ARM slot it holds.
                    if let Some((subscription, class)) = &pacing {
                        self.inner
                            .limiter
                            .abandoned(subscription, *class, Instant::now());
                    }
                    drop(permits);
                }
                _ => break permits,
            }
        };

        let sent_at = Instant::now();
        let outcome = self.exchange(request, url, accept).await;

        drop(permits);
        if let (Some((subscription, class)), Some(lane)) = (&pacing, &lane) {
            let now = Instant::now();
            match &outcome {
                Attempt::Lost(_) | Attempt::NoToken(_) => {
                    self.inner.limiter.abandoned(subscription, *class, now)
                }
                Attempt::Done(Response { headers, .. }) | Attempt::Failed(_, headers) => {
                    let remaining = headers
                        .get(class.header())
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<f64>().ok());
                    let throttled = matches!(&outcome, Attempt::Failed(f, _) if f.status == 429);
                    // ARM adds its remaining count to every answer, the provider's 429s too:
                    // a 429 that leaves ARM's bucket with requests to spare is the provider's.
                    let by_provider = throttled && remaining.is_some_and(|r| r >= 1.0);
                    // ARM's own 429 was not counted against its bucket: its header says
                    // nothing about the refill, only that the bucket is empty (below).
                    let report = remaining.filter(|_| !throttled || by_provider);
                    self.inner
                        .limiter
                        .answered(subscription, *class, report, now);
                    if throttled {
                        let wait = retry_after(headers).unwrap_or(Duration::from_secs(1));
                        if by_provider {
                            if let Some(learned) = self
                                .inner
                                .provider_limits
                                .throttled(lane, sent_at, wait, now)
                            {
                                self.emit(Event::Limited {
                                    limit: lane.describe(&namespace),
                                    per_second: learned.per_second,
                                    measured: learned.measured,
                                });
                            }
                        } else {
                            self.inner
                                .limiter
                                .throttled(subscription, *class, wait, now);
                        }
                    } else {
                        self.inner.provider_limits.accepted(lane, sent_at);
                    }
                }
            }
        }
        (outcome, paced)
    }

    /// Waits, when ARM's estimated bucket says so, for a slot; returns how long it waited.
    /// `permits` are given up while waiting and held again after.
    async fn arm_pacing<'a>(
        &'a self,
        request: &Request,
        url: &Url,
        subscription: &str,
        class: OpClass,
        namespace: &str,
        permits: &mut Permits<'a>,
    ) -> Duration {
        let mut waited = Duration::ZERO;
        loop {
            let slot = self
                .inner
                .limiter
                .reserve(subscription, class, Instant::now());
            if slot.wait.is_zero() {
                return waited;
            }
            tracing::debug!(
                "pacing {} {}: {:.2} s to stay under ARM's request limits",
                request.method,
                url,
                slot.wait.as_secs_f64()
            );
            *permits = (None, None);
            let started = Instant::now();
            tokio::time::sleep(slot.wait).await;
            *permits = self.permits(namespace).await;
            waited += started.elapsed();
            if self.inner.limiter.still_valid(subscription, class, slot) {
                return waited;
            }
            // A 429 came while this request waited: its slot was planned on a wrong estimate,
            // so it queues again.
            self.inner
                .limiter
                .abandoned(subscription, class, Instant::now());
        }
    }

    async fn exchange(&self, request: &Request, url: &Url, accept: &[u16]) -> Attempt {
        let token = match self
            .inner
            .credential
            .get_token(&[self.scope(request.service)], None)
            .await
        {
            Ok(token) => token,
            Err(e) => return Attempt::NoToken(credential_message(&e)),
        };
        let mut builder = self
            .inner
            .http
            .request(request.method.clone(), url.clone())
            .bearer_auth(token.token.secret());
        for (name, value) in &request.headers {
            builder = builder.header(*name, value);
        }
        if let Some(body) = &request.body {
            builder = builder.json(body);
        } else if matches!(request.method, Method::POST | Method::PUT | Method::PATCH) {
            builder = builder.header("content-length", "0");
        }
        self.inner.counters.requests.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let sent = builder.send().await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                let message = transport_message(&e);
                tracing::debug!(
                    "{} {} (authorization: Bearer <redacted>) → no answer after {} ms: {message}",
                    request.method,
                    url,
                    started.elapsed().as_millis()
                );
                return Attempt::Lost(message);
            }
        };
        let status = response.status();
        let headers = response.headers().clone();
        let request_id = request_id_of(&headers);
        let body = match response.bytes().await {
            Ok(b) => b.to_vec(),
            Err(e) => {
                return Attempt::Lost(format!("the answer was cut off: {}", transport_message(&e)));
            }
        };
        tracing::debug!(
            "{} {} (authorization: Bearer <redacted>) → {} in {} ms{}",
            request.method,
            url,
            status.as_u16(),
            started.elapsed().as_millis(),
            request_id
                .as_deref()
                .map(|id| format!(", request id {id}"))
                .unwrap_or_default()
        );
        if status == StatusCode::TOO_MANY_REQUESTS {
            self.inner
                .counters
                .throttled
                .fetch_add(1, Ordering::Relaxed);
        }
        if status.is_success() || accept.contains(&status.as_u16()) {
            Attempt::Done(Response {
                status: status.as_u16(),
                headers,
                body,
                request_id,
                url: url.clone(),
            })
        } else {
            Attempt::Failed(
                ApiFailure::parse(status.as_u16(), &body, request_id),
                headers,
            )
        }
    }

    /// How long to wait before the next status poll: the service's `Retry-After` (capped),
    /// else the policy's interval.
    /// A status answer without `Retry-After` keeps the cadence the operation started with
    /// (`previous`).
    fn poll_delay(&self, headers: &HeaderMap, previous: Option<Duration>) -> Duration {
        let policy = &self.inner.options.retry;
        retry_after(headers)
            .map(|d| d.min(policy.max_retry_after))
            .or(previous)
            .unwrap_or(policy.poll_interval)
    }

    /// Every item of a list, following `nextLink` (ARM) or `@odata.nextLink` (Graph) until
    /// there is none.
    pub async fn list<T: DeserializeOwned>(&self, request: &Request) -> Result<Vec<T>, AzureError> {
        let mut items = Vec::new();
        let mut page = request.clone();
        let mut seen = std::collections::HashSet::new();
        loop {
            let response = self.send(&page).await?;
            let body = response.value();
            let Some(values) = body.get("value").and_then(Value::as_array) else {
                return Err(AzureError::invalid_response(
                    request.describe(),
                    "a list answer without `value`",
                    response.request_id,
                ));
            };
            for value in values {
                items.push(serde_json::from_value(value.clone()).map_err(|e| {
                    AzureError::invalid_response(
                        request.describe(),
                        format!("a list item is not the documented shape: {e}"),
                        response.request_id.clone(),
                    )
                })?);
            }
            let next = body
                .get("nextLink")
                .or_else(|| body.get("@odata.nextLink"))
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty());
            match next {
                Some(link) if seen.insert(link.to_string()) => {
                    page = Request {
                        target: link.to_string(),
                        body: None,
                        ..request.clone()
                    };
                }
                Some(link) => {
                    return Err(AzureError::invalid_response(
                        request.describe(),
                        format!("the list repeats its next page link {link}"),
                        response.request_id,
                    ));
                }
                None => return Ok(items),
            }
        }
    }

    /// Sends a request that may start a long-running operation and waits for it to end
    /// ("Track asynchronous Azure operations"): polls `Azure-AsyncOperation` when given, else
    /// `Location`, else the resource's `provisioningState`, at the service's `Retry-After`.
    /// Returns the final resource (a GET of it for PUT and PATCH) or the last answer.
    pub async fn send_long_running(&self, request: &Request) -> Result<Response, AzureError> {
        let first = self.send(request).await?;
        let started = Instant::now();
        let policy = &self.inner.options.retry;
        let action = request.describe();
        let resource_url = first.url.clone();
        let resource_get = get_of(request, resource_url.as_str());
        let async_operation = first.header("azure-asyncoperation").map(str::to_string);
        let location = first.header("location").map(str::to_string);
        let mut delay = self.poll_delay(&first.headers, None);

        if let Some(status_url) = async_operation {
            loop {
                if started.elapsed() > policy.max_operation {
                    return Err(operation_timeout(&action, started, "the operation"));
                }
                tokio::time::sleep(delay).await;
                let poll = get_of(request, &status_url);
                let answer = self.send(&poll).await?;
                let body = answer.value();
                let status = body
                    .get("status")
                    .and_then(Value::as_str)
                    .unwrap_or("InProgress")
                    .to_string();
                self.emit(Event::Polling {
                    action: action.clone(),
                    status: status.clone(),
                    elapsed: started.elapsed(),
                });
                match status.as_str() {
                    "Succeeded" => break,
                    "Failed" | "Canceled" | "Cancelled" => {
                        return Err(operation_failed(&action, &status, &body, answer.request_id));
                    }
                    _ => delay = self.poll_delay(&answer.headers, Some(delay)),
                }
            }
            return match request.method {
                Method::PUT | Method::PATCH => self.send(&resource_get).await,
                _ => Ok(first),
            };
        }

        if first.status == 202
            && let Some(location) = location
        {
            loop {
                if started.elapsed() > policy.max_operation {
                    return Err(operation_timeout(&action, started, "the operation"));
                }
                tokio::time::sleep(delay).await;
                let poll = get_of(request, &location);
                let answer = self.send(&poll).await?;
                if answer.status != 202 {
                    return Ok(answer);
                }
                self.emit(Event::Polling {
                    action: action.clone(),
                    status: "InProgress".into(),
                    elapsed: started.elapsed(),
                });
                delay = self.poll_delay(&answer.headers, Some(delay));
            }
        }

        // No operation URL: the resource's own provisioningState says when it is done.
        let mut current = first;
        loop {
            let body = current.value();
            let state = body
                .pointer("/properties/provisioningState")
                .and_then(Value::as_str)
                .unwrap_or("Succeeded")
                .to_string();
            match state.as_str() {
                "Succeeded" => return Ok(current),
                "Failed" | "Canceled" => {
                    return Err(operation_failed(&action, &state, &body, current.request_id));
                }
                _ if !matches!(request.method, Method::PUT | Method::PATCH) => return Ok(current),
                _ => {}
            }
            if started.elapsed() > policy.max_operation {
                return Err(operation_timeout(&action, started, "provisioningState"));
            }
            self.emit(Event::Polling {
                action: action.clone(),
                status: state,
                elapsed: started.elapsed(),
            });
            tokio::time::sleep(delay).await;
            current = self.send(&resource_get).await?;
            delay = self.poll_delay(&current.headers, Some(delay));
        }
    }
}

/// A GET of `target` on behalf of `request` (operation status, final resource).
fn get_of(request: &Request, target: &str) -> Request {
    Request {
        method: Method::GET,
        target: target.to_string(),
        body: None,
        headers: Vec::new(),
        ..request.clone()
    }
}

fn operation_failed(
    action: &str,
    status: &str,
    body: &Value,
    request_id: Option<String>,
) -> AzureError {
    let error = body.get("error").cloned().unwrap_or(Value::Null);
    let mut failure = ApiFailure::parse(200, error.to_string().as_bytes(), request_id);
    if failure.code == "HttpError" {
        failure.code = format!("Operation{status}");
        failure.message = format!("the operation ended {status}");
    }
    AzureError::api(action, failure)
}

fn operation_timeout(action: &str, started: Instant, what: &str) -> AzureError {
    AzureError::new(
        action,
        AzureErrorKind::GaveUp {
            waited_for: format!("{what} to complete"),
            elapsed: started.elapsed(),
            attempts: 0,
            last: ApiFailure {
                status: 202,
                code: "OperationTimeout".into(),
                message: "the long-running operation was still running".into(),
                target: None,
                details: Vec::new(),
                request_id: None,
            },
        },
    )
}

/// 408, 429 and the 5xx that mean "try again" ("Retry guidance for Azure services").
fn is_retryable_status(status: u16) -> bool {
    matches!(status, 408 | 429 | 500 | 502 | 503 | 504)
}

/// Full-jitter exponential backoff: a random delay in [0, min(max, base·2ⁿ)], at least 1 ms.
fn backoff(policy: &RetryPolicy, attempt: u32) -> Duration {
    let exp = policy
        .base_delay
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(policy.max_delay);
    let jittered = cap.mul_f64(0.5 + fastrand::f64() * 0.5);
    jittered.max(Duration::from_millis(1))
}

/// `Retry-After` in seconds (ARM and Graph send seconds; an HTTP date is not used by either),
/// or Graph's `x-ms-retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(ms) = get("retry-after-ms").or_else(|| get("x-ms-retry-after-ms"))
        && let Ok(ms) = ms.trim().parse::<f64>()
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_secs_f64(ms / 1000.0));
    }
    let seconds = get("retry-after")?.trim().parse::<f64>().ok()?;
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

fn request_id_of(headers: &HeaderMap) -> Option<String> {
    [
        "x-ms-request-id",
        "request-id",
        "x-ms-correlation-request-id",
    ]
    .iter()
    .find_map(|name| headers.get(*name))
    .and_then(|v| v.to_str().ok())
    .map(str::to_string)
}

pub use crate::arm_id::subscription_of;

/// The API namespace a request belongs to: the last `providers/{Namespace}` of an ARM path
/// (`Microsoft.Resources` for resource groups and subscriptions), or `graph`.
pub fn namespace_of(service: Service, path: &str) -> String {
    if service == Service::Graph {
        return "graph".into();
    }
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    parts
        .iter()
        .enumerate()
        .rev()
        .find(|(_, p)| p.eq_ignore_ascii_case("providers"))
        .and_then(|(i, _)| parts.get(i + 1))
        .map(|n| n.to_string())
        .unwrap_or_else(|| "Microsoft.Resources".into())
}

/// A reqwest error in words, without the URL's query (reqwest's Display includes the URL,
/// which is fine, but the source chain says what actually happened).
fn transport_message(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "the answer was cut off"
    } else {
        "the connection failed"
    };
    let mut source = std::error::Error::source(error);
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    match last {
        Some(cause) => format!("{kind}: {cause}"),
        None => kind.to_string(),
    }
}

/// A credential error's message. azure_core's errors carry Entra's answer (code and
/// description), never the secret or assertion that was sent.
fn credential_message(error: &azure_core::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_and_namespaces_come_from_the_path() {
        assert_eq!(
            namespace_of(
                Service::Arm,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/x/federatedIdentityCredentials/y"
            ),
            "Microsoft.ManagedIdentity"
        );
        assert_eq!(
            namespace_of(
                Service::Arm,
                "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a/providers/Microsoft.Authorization/roleAssignments/g"
            ),
            "Microsoft.Authorization"
        );
        assert_eq!(
            namespace_of(Service::Arm, "/subscriptions/s/resourcegroups/rg"),
            "Microsoft.Resources"
        );
        assert_eq!(namespace_of(Service::Graph, "/v1.0/applications"), "graph");
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let policy = RetryPolicy {
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_secs(2),
            ..RetryPolicy::default()
        };
        for _ in 0..50 {
            let first = backoff(&policy, 1);
            assert!(first >= Duration::from_millis(50) && first <= Duration::from_millis(100));
            let late = backoff(&policy, 30);
            assert!(late >= Duration::from_secs(1) && late <= Duration::from_secs(2));
        }
    }

    #[test]
    fn retry_after_reads_seconds_and_milliseconds() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
        headers.insert("retry-after-ms", HeaderValue::from_static("1500"));
        assert_eq!(retry_after(&headers), Some(Duration::from_millis(1500)));
        let mut bad = HeaderMap::new();
        bad.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&bad), None);
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for s in [408, 429, 500, 502, 503, 504] {
            assert!(is_retryable_status(s));
        }
        for s in [400, 401, 403, 404, 409, 412, 501] {
            assert!(!is_retryable_status(s));
        }
    }
}

//! The HTTPS server: accept loop, faults that act before routing (dropped connections,
//! latency, 5xx), authentication, throttling, routing to the emulated APIs, and the log.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::Response;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::http::{Api, ApiError, Request};
use crate::state::Store;
use crate::{App, Options, admin, arm, auth, entra, graph, kube, log, throttle, tls};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::state::StoreError),
    #[error("cannot set up TLS or keys: {0}")]
    Io(#[from] std::io::Error),
    #[error("cannot listen on 127.0.0.1:{port}: {source}")]
    Bind { port: u16, source: std::io::Error },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// A running sandbox. Dropping it stops the server and waits until its state file holds every
/// change made so far.
pub struct Running {
    pub app: Arc<App>,
    pub addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    pub fn base_url(&self) -> &str {
        &self.app.base_url
    }

    pub fn ca_pem(&self) -> &str {
        &self.app.ca_pem
    }

    /// Stops accepting, lets connections in flight end, and waits until the state file holds
    /// every change made so far.
    pub async fn stop(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
        // Off the runtime's threads: the last write of a large state takes a while.
        let app = self.app.clone();
        match tokio::task::spawn_blocking(move || app.store.flush()).await {
            Ok(result) => report_flush(result),
            Err(_) => report_flush(self.app.store.flush()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        // Nothing left to write after `stop`; otherwise (a CLI that ends without stopping its
        // in-process sandbox) this waits for the last write.
        report_flush(self.app.store.flush());
    }
}

/// A state file that cannot be written is told, not fatal: the state is still in memory.
fn report_flush(result: Result<(), crate::state::StoreError>) {
    if let Err(error) = result {
        tracing::warn!("{error}");
    }
}

/// Starts a sandbox on 127.0.0.1 (state, CA and keys under `options.state_dir`, or in memory).
pub async fn start(options: Options) -> Result<Running, StartError> {
    let dir = options.state_dir.clone();
    let store = match &dir {
        Some(dir) => Store::open(&dir.join(crate::client::STATE_FILE))?.in_background()?,
        None => Store::in_memory(crate::state::State::new()),
    };
    let tls = tls::load_or_create(dir.as_deref())?;
    let key = auth::SigningKey::load_or_create(dir.as_deref())?;
    let listener = TcpListener::bind(("127.0.0.1", options.port))
        .await
        .map_err(|source| StartError::Bind {
            port: options.port,
            source,
        })?;
    let addr = listener.local_addr()?;
    let mut client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .add_root_certificate(reqwest::Certificate::from_pem(tls.ca_pem.as_bytes())?);
    for file in &options.trusted_ca_files {
        let pem = std::fs::read(file)?;
        for certificate in reqwest::Certificate::from_pem_bundle(&pem)? {
            client = client.add_root_certificate(certificate);
        }
    }
    let app = Arc::new(App {
        store,
        key,
        faults: RwLock::new(options.faults.clone()),
        base_url: format!("https://127.0.0.1:{}", addr.port()),
        log: log::RequestLog::new(dir.as_ref().map(|d| d.join("requests.jsonl"))),
        throttle: throttle::Throttle::default(),
        fic_writes: Mutex::new(Default::default()),
        http: client.build()?,
        ca_pem: tls.ca_pem.clone(),
        options,
    });
    let (shutdown, mut stopped) = watch::channel(false);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let served = app.clone();
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    let Ok((tcp, _)) = accepted else { continue };
                    let acceptor = acceptor.clone();
                    let app = served.clone();
                    let mut stopped = stopped.clone();
                    tokio::spawn(async move {
                        let Ok(stream) = acceptor.accept(tcp).await else { return };
                        let service = hyper::service::service_fn(move |request| handle(app.clone(), request));
                        let connection = hyper::server::conn::http1::Builder::new()
                            .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
                        tokio::pin!(connection);
                        tokio::select! {
                            _ = connection.as_mut() => {}
                            _ = stopped.changed() => connection.as_mut().graceful_shutdown(),
                        }
                    });
                }
                _ = stopped.changed() => break,
            }
        }
    });
    Ok(Running {
        app,
        addr,
        shutdown,
        task: Some(task),
    })
}

/// The connection is dropped without an answer (the `drop_rate` fault).
#[derive(Debug)]
pub struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the drop_rate fault")
    }
}

impl std::error::Error for Dropped {}

fn api_of(segments: &[String]) -> Api {
    match segments.first().map(|s| s.to_ascii_lowercase()).as_deref() {
        Some("_sandbox") => Api::Admin,
        Some("k8s") | Some("oidc") => Api::Kube,
        Some("v1.0") => Api::Graph,
        Some("subscriptions") | Some("providers") => Api::Arm,
        _ => Api::Entra,
    }
}

/// `PUT userAssignedIdentities`: the method and the last resource type in the path.
fn operation(method: &Method, api: Api, segments: &[String]) -> String {
    const TYPES: &[&str] = &[
        "resourcegroups",
        "userassignedidentities",
        "federatedidentitycredentials",
        "roleassignments",
        "roledefinitions",
        "managedclusters",
        "listclusterusercredential",
        "listclusteradmincredential",
        "operations",
        "applications",
        "serviceprincipals",
        "token",
        "openid-configuration",
        "keys",
        "subscriptions",
        "requests",
        "counters",
        "faults",
    ];
    let kind = segments
        .iter()
        .rev()
        .find(|s| TYPES.contains(&s.to_ascii_lowercase().as_str()))
        .map_or("other", String::as_str);
    let _ = api;
    format!("{method} {kind}")
}

async fn handle(app: Arc<App>, request: hyper::Request<Incoming>) -> Result<Response, Dropped> {
    let started = Instant::now();
    let request_id = uuid::Uuid::new_v4().to_string();
    let (parts, body) = request.into_parts();
    let segments: Vec<String> = parts
        .uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(crate::http::decode_segment)
        .collect();
    let api = api_of(&segments);
    let faults = app.faults();
    let method = parts.method.clone();

    let (drop, fail, jitter) = {
        let mut rng = rand::rng();
        (
            rng.random::<f64>() < faults.drop_rate,
            rng.random::<f64>() < faults.error_rate,
            if faults.jitter_ms > 0 {
                rng.random_range(0..=faults.jitter_ms)
            } else {
                0
            },
        )
    };
    // The sandbox's own endpoints are never faulted.
    let faulted = api != Api::Admin;
    if faulted && drop {
        record(
            &app,
            api,
            &method,
            &segments,
            &request_id,
            0,
            Some("ConnectionDropped".into()),
            started,
        );
        return Err(Dropped);
    }
    if faulted && faults.latency_ms + jitter > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(faults.latency_ms + jitter)).await;
    }

    let mut remaining = None;
    let result = if faulted && fail {
        Err(server_error(api, rand::rng().random::<bool>()))
    } else {
        match admit(
            &app,
            api,
            &faults,
            parts,
            body,
            &segments,
            &request_id,
            &mut remaining,
        )
        .await
        {
            Ok(request) => match api {
                Api::Arm => arm::handle(&app, request).await,
                Api::Graph => graph::handle(&app, request).await,
                Api::Entra => entra::handle(&app, request).await,
                Api::Kube => kube::handle(&app, request).await,
                Api::Admin => admin::handle(&app, request).await,
            },
            Err(error) => Err(error),
        }
    };
    Ok(finish(
        &app,
        api,
        &method,
        &segments,
        &request_id,
        result,
        started,
        remaining,
    ))
}

/// Everything between the wire and a handler: the body (bounded), the caller's token, and ARM's
/// request limits. `remaining` gets the rate-limit header to send back.
#[allow(clippy::too_many_arguments)]
async fn admit(
    app: &App,
    api: Api,
    faults: &crate::Faults,
    parts: axum::http::request::Parts,
    body: Incoming,
    segments: &[String],
    request_id: &str,
    remaining: &mut Option<(&'static str, u64)>,
) -> Result<Request, ApiError> {
    let query = parts
        .uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let limit = app.options.max_body_bytes;
    let body = match http_body_util::Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Err(match api {
                Api::Graph => ApiError::graph(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!("The request body exceeds the maximum size of {limit} bytes."),
                ),
                _ => ApiError::arm(
                    StatusCode::BAD_REQUEST,
                    "InvalidRequestContent",
                    format!(
                        "The request content size exceeds the maximum allowed size of {limit} bytes."
                    ),
                ),
            });
        }
    };
    let mut request = Request {
        method: parts.method,
        segments: segments.to_vec(),
        query,
        headers: parts.headers,
        body,
        base_url: app.base_url.clone(),
        request_id: request_id.to_string(),
        caller: None,
    };
    if matches!(api, Api::Arm | Api::Graph) {
        request.caller = Some(auth::authenticate(
            &app.key,
            &request.headers,
            api,
            &app.tenant_id(),
            &app.base_url,
        )?);
    }
    if api == Api::Arm {
        let class = throttle::Class::of(&request.method);
        let subscription = match segments {
            [s, sub, ..] if s.eq_ignore_ascii_case("subscriptions") => sub.clone(),
            _ => "tenant".to_string(),
        };
        let left = app
            .throttle
            .arm(&subscription, class, faults.throttle_scale, faults.throttle)
            .inspect_err(|_| *remaining = Some((class.header(), 0)))
            .map_err(throttled)?;
        *remaining = Some((class.header(), left));
        if faults.msi_throttle
            && let Some(at) = segments
                .iter()
                .position(|s| s.eq_ignore_ascii_case("Microsoft.ManagedIdentity"))
        {
            let identity = (segments.len() > at + 2).then(|| segments[..at + 3].join("/"));
            let is_list = segments.len() == at + 2 || segments.len() == at + 4;
            app.throttle
                .managed_identity(
                    &subscription,
                    identity.as_deref(),
                    &request.method,
                    is_list,
                    faults.throttle_scale,
                )
                .map_err(throttled)?;
        }
    }
    Ok(request)
}

fn throttled(refusal: throttle::Throttled) -> ApiError {
    ApiError::arm(StatusCode::TOO_MANY_REQUESTS, refusal.code, refusal.message)
        .with_header("Retry-After", refusal.retry_after_s.to_string())
}

fn server_error(api: Api, unavailable: bool) -> ApiError {
    let (status, code, message) = if unavailable {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailable",
            "The service is temporarily unavailable. Please try again later.",
        )
    } else {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalServerError",
            "Encountered internal server error. Please try again later.",
        )
    };
    let error = match api {
        Api::Graph => ApiError::graph(
            status,
            if unavailable {
                "serviceNotAvailable"
            } else {
                "generalException"
            },
            message,
        ),
        Api::Entra => ApiError::oauth(status, "temporarily_unavailable", 90033, message),
        // A Kubernetes `Status` (reason ServiceUnavailable / InternalError), as the API server
        // and its front door answer (k8s.io/apimachinery `StatusReason`).
        Api::Kube => ApiError::kube(
            status,
            if unavailable {
                "ServiceUnavailable"
            } else {
                "InternalError"
            },
            message,
        ),
        _ => ApiError::arm(status, code, message),
    };
    if unavailable {
        error.with_header("Retry-After", "1")
    } else {
        error
    }
}

#[allow(clippy::too_many_arguments)]
fn finish(
    app: &App,
    api: Api,
    method: &Method,
    segments: &[String],
    request_id: &str,
    result: Result<Response, ApiError>,
    started: Instant,
    remaining: Option<(&'static str, u64)>,
) -> Response {
    let (mut response, error_code) = match result {
        Ok(response) => (response, None),
        Err(error) => {
            let code = error.code();
            (error.into_response(request_id), Some(code))
        }
    };
    let headers = response.headers_mut();
    let id = HeaderValue::from_str(request_id).unwrap_or(HeaderValue::from_static("0"));
    match api {
        Api::Arm => {
            headers.insert("x-ms-request-id", id.clone());
            headers.insert("x-ms-correlation-request-id", id);
            if let Some((name, left)) = remaining {
                headers.insert(name, HeaderValue::from(left));
            }
        }
        Api::Graph => {
            headers.insert("request-id", id.clone());
            headers.insert("client-request-id", id);
        }
        Api::Entra => {
            headers.insert("x-ms-request-id", id);
        }
        Api::Kube | Api::Admin => {}
    }
    record(
        app,
        api,
        method,
        segments,
        request_id,
        response.status().as_u16(),
        error_code,
        started,
    );
    response
}

#[allow(clippy::too_many_arguments)]
fn record(
    app: &App,
    api: Api,
    method: &Method,
    segments: &[String],
    request_id: &str,
    status: u16,
    error_code: Option<String>,
    started: Instant,
) {
    if api == Api::Admin {
        return;
    }
    app.log.record(log::Entry {
        at: crate::state::rfc3339(crate::state::now_ms()),
        request_id: request_id.to_string(),
        api: match api {
            Api::Arm => "arm",
            Api::Graph => "graph",
            Api::Entra => "entra",
            Api::Kube => "kube",
            Api::Admin => "admin",
        },
        method: method.to_string(),
        path: format!("/{}", segments.join("/")),
        operation: operation(method, api, segments),
        status,
        error_code,
        duration_ms: started.elapsed().as_millis() as u64,
    });
}

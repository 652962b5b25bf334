//! What every emulated API shares: error envelopes, request ids, paging, api-version checks.

use std::collections::HashMap;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// Which service answers: decides the error envelope and the request-id headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    Arm,
    Graph,
    Entra,
    /// The Kubernetes API of emulated clusters (`/k8s/{cluster}/…`) and their OIDC issuers
    /// (`/oidc/…`).
    Kube,
    Admin,
}

/// An error in the shape the real service uses.
#[derive(Debug, Clone)]
pub enum ApiError {
    /// ARM common-types `ErrorResponse`: `{"error":{"code","message","target"?,"details":[]}}`.
    Arm {
        status: StatusCode,
        code: String,
        message: String,
        target: Option<String>,
        headers: Vec<(String, String)>,
    },
    /// Graph: `{"error":{"code","message","innerError":{"date","request-id","client-request-id"}}}`.
    Graph {
        status: StatusCode,
        code: String,
        message: String,
        details: Option<Value>,
    },
    /// Kubernetes `Status`: `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",
    /// "message","reason","details","code"}`.
    Kube {
        status: StatusCode,
        reason: String,
        message: String,
        details: Option<Value>,
    },
    /// OAuth 2.0 / Entra token endpoint: `{"error","error_description","error_codes",…}`.
    OAuth {
        status: StatusCode,
        error: String,
        code: u32,
        description: String,
    },
}

impl ApiError {
    pub fn arm(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError::Arm {
            status,
            code: code.into(),
            message: message.into(),
            target: None,
            headers: Vec::new(),
        }
    }

    pub fn graph(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        ApiError::Graph {
            status,
            code: code.into(),
            message: message.into(),
            details: None,
        }
    }

    /// An AADSTS error: `description` starts with `AADSTS{code}: `.
    pub fn oauth(
        status: StatusCode,
        error: &str,
        code: u32,
        description: impl Into<String>,
    ) -> Self {
        ApiError::OAuth {
            status,
            error: error.into(),
            code,
            description: description.into(),
        }
    }

    /// A Kubernetes `Status` failure (`reason` as in metav1.StatusReason: NotFound, AlreadyExists,
    /// Conflict, Forbidden, Unauthorized, Invalid, BadRequest, MethodNotAllowed, …).
    pub fn kube(status: StatusCode, reason: &str, message: impl Into<String>) -> Self {
        ApiError::Kube {
            status,
            reason: reason.into(),
            message: message.into(),
            details: None,
        }
    }

    /// `details` of a Kubernetes `Status` (`name`, `kind`, `group`, `causes`).
    pub fn with_kube_details(mut self, value: Value) -> Self {
        if let ApiError::Kube { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    /// Graph `details[]`, which clients match on (e.g. `NoBackingApplicationObject`).
    pub fn with_details(mut self, value: Value) -> Self {
        if let ApiError::Graph { details, .. } = &mut self {
            *details = Some(value);
        }
        self
    }

    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        if let ApiError::Arm { headers, .. } = &mut self {
            headers.push((name.into(), value.into()));
        }
        self
    }

    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Arm { status, .. }
            | ApiError::Graph { status, .. }
            | ApiError::Kube { status, .. }
            | ApiError::OAuth { status, .. } => *status,
        }
    }

    /// The stable error code, for the request log.
    pub fn code(&self) -> String {
        match self {
            ApiError::Arm { code, .. } | ApiError::Graph { code, .. } => code.clone(),
            ApiError::Kube { reason, .. } => reason.clone(),
            ApiError::OAuth { code, .. } => format!("AADSTS{code}"),
        }
    }

    pub fn into_response(self, request_id: &str) -> Response {
        let (status, body, extra) = match self {
            ApiError::Arm {
                status,
                code,
                message,
                target,
                headers,
            } => {
                let mut error = json!({ "code": code, "message": message });
                if let Some(target) = target {
                    error["target"] = Value::String(target);
                }
                (status, json!({ "error": error }), headers)
            }
            ApiError::Graph {
                status,
                code,
                message,
                details,
            } => {
                let mut error = json!({ "code": code, "message": message, "innerError": {
                    "date": crate::state::rfc3339(crate::state::now_ms()).split('.').next().unwrap_or_default(),
                    "request-id": request_id,
                    "client-request-id": request_id,
                }});
                if let Some(details) = details {
                    error["details"] = details;
                }
                (status, json!({ "error": error }), Vec::new())
            }
            ApiError::Kube {
                status,
                reason,
                message,
                details,
            } => {
                let mut body = json!({
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Failure",
                    "message": message,
                    "reason": reason,
                    "code": status.as_u16(),
                });
                if let Some(details) = details {
                    body["details"] = details;
                }
                (status, body, Vec::new())
            }
            ApiError::OAuth {
                status,
                error,
                code,
                description,
            } => {
                let now = crate::state::rfc3339(crate::state::now_ms()).replace('T', " ");
                (
                    status,
                    json!({
                        "error": error,
                        "error_description": format!("AADSTS{code}: {description} Trace ID: {request_id} Correlation ID: {request_id} Timestamp: {now}"),
                        "error_codes": [code],
                        "timestamp": now,
                        "trace_id": request_id,
                        "correlation_id": request_id,
                        "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
                    }),
                    Vec::new(),
                )
            }
        };
        let mut response = json_response(status, &body);
        for (name, value) in extra {
            if let (Ok(name), Ok(value)) = (
                header::HeaderName::try_from(name),
                HeaderValue::try_from(value),
            ) {
                response.headers_mut().insert(name, value);
            }
        }
        response
    }
}

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = (status, serde_json::to_vec(body).unwrap_or_default()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub fn empty(status: StatusCode) -> Response {
    let mut response = Response::new(Body::empty());
    *response.status_mut() = status;
    response
}

pub type ApiResult = Result<Response, ApiError>;

/// A request after routing: what handlers see.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    /// Path without the query, percent-decoded segments.
    pub segments: Vec<String>,
    pub query: HashMap<String, String>,
    pub headers: HeaderMap,
    pub body: bytes::Bytes,
    /// `https://127.0.0.1:PORT`, for building absolute links (`nextLink`, `Azure-AsyncOperation`).
    pub base_url: String,
    pub request_id: String,
    /// The authenticated caller, when the API needs one.
    pub caller: Option<crate::auth::Caller>,
}

impl Request {
    /// The JSON body, or the service's 400 for an unreadable one.
    pub fn json(&self, api: Api) -> Result<Value, ApiError> {
        if self.body.is_empty() {
            return Err(invalid_body(
                api,
                "The request content was invalid and could not be deserialized: the body is empty.",
            ));
        }
        serde_json::from_slice(&self.body).map_err(|e| {
            invalid_body(
                api,
                format!("The request content was invalid and could not be deserialized: '{e}'."),
            )
        })
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> String {
        format!("/{}", self.segments.join("/"))
    }
}

fn invalid_body(api: Api, message: impl Into<String>) -> ApiError {
    match api {
        Api::Graph => ApiError::graph(StatusCode::BAD_REQUEST, "BadRequest", message),
        _ => ApiError::arm(StatusCode::BAD_REQUEST, "InvalidRequestContent", message),
    }
}

/// ARM requires `api-version` and answers unknown ones with the versions it supports
/// (ARM common behaviour: `MissingApiVersionParameter`, `InvalidApiVersionParameter`,
/// `NoRegisteredProviderFound` for a provider namespace).
pub fn check_api_version(
    request: &Request,
    resource_type: &str,
    supported: &[&str],
) -> Result<(), ApiError> {
    match request.query("api-version") {
        None => Err(ApiError::arm(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )),
        Some(version) if supported.contains(&version) => Ok(()),
        Some(version) => Err(ApiError::arm(
            StatusCode::BAD_REQUEST,
            "InvalidApiVersionParameter",
            format!(
                "The api-version '{version}' is invalid. The supported versions are '{}'. The resource type is '{resource_type}'.",
                supported.join(",")
            ),
        )),
    }
}

/// One page of a list, ARM style (`{"value":[…],"nextLink":"…"}`) or Graph style
/// (`{"value":[…],"@odata.nextLink":"…"}`). The continuation is `$skiptoken` = the offset, and the
/// link repeats the request's query, as ARM's `nextLink` carries `api-version`.
pub fn page(request: &Request, items: Vec<Value>, page_size: usize, api: Api) -> Response {
    let top = request
        .query("$top")
        .and_then(|t| t.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .map_or(page_size, |t| t.min(page_size.max(1)));
    let start = request
        .query("$skiptoken")
        .and_then(|t| t.parse::<usize>().ok())
        .unwrap_or(0)
        .min(items.len());
    let end = (start + top.max(1)).min(items.len());
    let value: Vec<Value> = items[start..end].to_vec();
    let mut body = json!({ "value": value });
    if end < items.len() {
        let mut url = url::Url::parse(&format!("{}{}", request.base_url, request.path()))
            .expect("base url is valid");
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in &request.query {
                if !k.eq_ignore_ascii_case("$skiptoken") {
                    pairs.append_pair(k, v);
                }
            }
            pairs.append_pair("$skiptoken", &end.to_string());
        }
        let field = if api == Api::Graph {
            "@odata.nextLink"
        } else {
            "nextLink"
        };
        body[field] = Value::String(url.to_string());
    }
    json_response(StatusCode::OK, &body)
}

/// Percent-decodes one path segment.
pub fn decode_segment(segment: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", segment.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| segment.to_string())
}

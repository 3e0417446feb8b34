//! The control plane's HTTP endpoints: `POST /api/<method>` (and the legacy `POST /api`),
//! `GET /metrics`, `/health`, `/ready`. Requests are bounded: headers within
//! [`HEADER_TIMEOUT`] (a slow-loris client is closed), bodies within [`BODY_TIMEOUT`] and
//! `http_api.max_body_size` (413), at most [`MAX_CONNECTIONS`] connections at once.

use std::cell::RefCell;
use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method as HttpMethod, Request, Response, StatusCode};
use tracing::{info, warn};

use super::host::{ControlHost, survey, survey_nodes};
use super::metrics::{ApiCounters, OutboxFigures};
use crate::api::{Api, Method, Outcome};
use crate::server::ServerShared;

/// Time a client has to send a request's headers (also the keep-alive idle limit).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a client has to send a request's body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// API connections open at once; more are closed at accept.
pub const MAX_CONNECTIONS: usize = 1024;

/// What the endpoints share on the control plane's thread.
pub struct State {
    pub shared: Arc<ServerShared>,
    pub api: RefCell<Api>,
    pub key: String,
    pub max_body: u64,
    pub counters: RefCell<ApiCounters>,
    pub outbox: RefCell<Option<OutboxFigures>>,
}

type Body = Full<Bytes>;

fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn json_error(status: StatusCode, code: u32, message: &str) -> Response<Body> {
    let body = serde_json::json!({"error": {"code": code, "message": message}});
    respond(status, "application/json", body.to_string())
}

/// Compares without leaking where the first difference is.
fn same_key(given: &[u8], key: &[u8]) -> bool {
    given.len() == key.len() && given.iter().zip(key).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
}

/// `X-API-Key: KEY` or `Authorization: apikey KEY`.
fn authorized(req: &Request<Incoming>, key: &str) -> bool {
    if key.is_empty() {
        return true;
    }
    let h = req.headers();
    if let Some(v) = h.get("x-api-key") {
        return same_key(v.as_bytes(), key.as_bytes());
    }
    if let Some(v) = h.get(hyper::header::AUTHORIZATION)
        && let Ok(v) = v.to_str()
        && let Some((scheme, k)) = v.split_once(' ')
        && scheme.eq_ignore_ascii_case("apikey")
    {
        return same_key(k.trim().as_bytes(), key.as_bytes());
    }
    false
}

pub async fn handle(
    req: Request<Incoming>,
    state: Rc<State>,
) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let r = match (method.clone(), path.as_str()) {
        (HttpMethod::GET, "/health") => respond(StatusCode::OK, "text/plain", "ok\n"),
        (HttpMethod::GET, "/ready") => {
            if state.shared.shutting_down.load(Ordering::Acquire) {
                respond(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n")
            } else {
                respond(StatusCode::OK, "text/plain", "ready\n")
            }
        }
        (HttpMethod::GET, "/metrics") => {
            let text = super::metrics::render(
                &state.shared,
                &state.counters.borrow(),
                state.outbox.borrow().as_ref(),
            );
            respond(
                StatusCode::OK,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                text,
            )
        }
        (HttpMethod::POST, p) if p == "/api" || p.starts_with("/api/") => {
            api(req, &state, p.strip_prefix("/api").unwrap_or_default()).await
        }
        (_, p) if p == "/api" || p.starts_with("/api/") => {
            let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, 107, "the API takes POST");
            r.headers_mut()
                .insert(hyper::header::ALLOW, HeaderValue::from_static("POST"));
            r
        }
        _ => respond(
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: POST /api/<method>, GET /metrics, /health, /ready\n",
        ),
    };
    Ok(r)
}

async fn api(req: Request<Incoming>, state: &State, tail: &str) -> Response<Body> {
    if !authorized(&req, &state.key) {
        state.counters.borrow_mut().unauthorized += 1;
        info!(target: "ringcast::audit", "API request refused: missing or wrong API key");
        return json_error(
            StatusCode::UNAUTHORIZED,
            101,
            "unauthorized: send the API key as X-API-Key: KEY or Authorization: apikey KEY",
        );
    }
    let too_large = || {
        state.counters.borrow_mut().too_large += 1;
        json_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            107,
            &format!(
                "request body over {} bytes (http_api.max_body_size)",
                state.max_body
            ),
        )
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.max_body) {
        return too_large();
    }
    let limited = Limited::new(req.into_body(), state.max_body as usize);
    let body = match tokio::time::timeout(BODY_TIMEOUT, limited.collect()).await {
        Err(_) => {
            return json_error(
                StatusCode::REQUEST_TIMEOUT,
                107,
                &format!("request body not received within {BODY_TIMEOUT:?}"),
            );
        }
        Ok(Err(e))
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            return too_large();
        }
        Ok(Err(e)) => {
            return json_error(
                StatusCode::BAD_REQUEST,
                107,
                &format!("reading the body: {e}"),
            );
        }
        Ok(Ok(b)) => b.to_bytes(),
    };
    let name = tail.trim_start_matches('/');
    let (method, legacy) = if name.is_empty() {
        (Api::legacy_method(&body), true)
    } else {
        (Method::parse(name), false)
    };
    // What to survey: this node's workers for `channels` and `info`, the other nodes too for
    // `channels` only.
    let has = |which: fn(Method) -> bool| match method {
        Some(Method::Batch) => Api::batch_has(&body, which),
        Some(m) => which(m),
        None => false,
    };
    let surveyed = if has(Method::needs_survey) {
        let mut s = survey(&state.shared).await;
        if has(|m| m == Method::Channels) {
            s.elsewhere = survey_nodes(&state.shared).await;
        }
        Some(s)
    } else {
        None
    };
    let host = ControlHost(&state.shared);
    let now = (Instant::now(), crate::session::Now::system().unix);
    let outcome: Outcome = {
        let mut api = state.api.borrow_mut();
        if legacy {
            api.call_legacy(&body, &host, surveyed.as_ref(), now)
        } else {
            api.call(method, name, &body, &host, surveyed.as_ref(), now)
        }
    };
    let label = method.map_or("unknown", Method::name).to_owned();
    let result = outcome.error.map_or("ok".to_owned(), |c| c.to_string());
    if let Some(code) = outcome.error {
        warn!(method = %label, code, "API call failed");
    }
    *state
        .counters
        .borrow_mut()
        .calls
        .entry((label, result))
        .or_default() += 1;
    let status = StatusCode::from_u16(outcome.status).unwrap_or(StatusCode::OK);
    respond(status, "application/json", outcome.body)
}

//! Routes, the guard every request passes, and the embedded assets.
//!
//! The guard, in order: only GET and HEAD; at most [`MAX_URI_BYTES`] of path and query
//! (414); no request a browser marks as coming from another site (403: such a page
//! cannot read the answer, but could make the server work); one `Host` header (400), naming the bound address when no token is set (421: a page
//! on another site that rebinds its name to 127.0.0.1 cannot read the API); the access
//! token when one is set (401), taken from `?token=` (then kept in a cookie) or the
//! cookie. Every answer carries a Content-Security-Policy that allows only the
//! page's own scripts.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Value};

use crate::api::{self, ApiError};
use crate::comparison::compare_view;
use crate::data::Database;

/// The longest path and query string served.
pub const MAX_URI_BYTES: usize = 8 * 1024;

/// What the handlers share.
pub struct Shared {
    /// The results database.
    pub db: Database,
    /// `host:port` values a `Host` header may carry; empty when a token guards instead.
    pub allowed_hosts: Vec<String>,
    /// The access token every request must carry, when the server listens beyond loopback.
    pub token: Option<String>,
    /// This machine's name, as runs record their owner (to tell a run whose process ended).
    pub host_name: String,
}

type AppState = Arc<Shared>;

/// The page, its script and style, and the vendored chart library (Apache ECharts
/// 6.1.0, Apache-2.0; its LICENSE and NOTICE lie beside it in `assets/vendor/echarts`).
const ASSETS: [(&str, &str, &[u8]); 5] = [
    ("/", "text/html; charset=utf-8", include_bytes!("../assets/index.html")),
    ("/app.js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("/charts.js", "text/javascript; charset=utf-8", include_bytes!("../assets/charts.js")),
    ("/app.css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    (
        "/vendor/echarts.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/vendor/echarts/echarts.min.js"),
    ),
];

const CSP: &str = "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                   frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// Every route, behind the guard.
pub fn router(shared: AppState) -> Router {
    let mut router = Router::new()
        .route("/api/changes", get(changes))
        .route("/api/experiments", get(experiments))
        .route("/api/runs", get(runs))
        .route("/api/run/{id}", get(run))
        .route("/api/curves", get(curves))
        .route("/api/compare", get(compare));
    for (path, content_type, body) in ASSETS {
        router = router.route(path, get(move || async move { ([(header::CONTENT_TYPE, content_type)], body) }));
    }
    router
        .fallback(|| async { error_response(&ApiError::new(404, "not found")) })
        .layer(middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

async fn guard(State(shared): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::GET && request.method() != Method::HEAD {
        return error_response(&ApiError::new(405, "only GET and HEAD are served"));
    }
    let uri_bytes = request.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if uri_bytes > MAX_URI_BYTES {
        return error_response(&ApiError::new(414, format!("request target over {MAX_URI_BYTES} bytes")));
    }
    // A page of another site may send requests it cannot read (no-cors): they get nothing.
    let fetch_site = request.headers().get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if fetch_site == Some("cross-site") {
        return error_response(&ApiError::new(403, "requests from other sites are refused"));
    }
    if request.headers().get_all(header::HOST).iter().count() > 1 {
        return error_response(&ApiError::new(400, "more than one Host header"));
    }
    let mut set_cookie = None;
    match &shared.token {
        None => {
            let host = request.headers().get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("");
            if !shared.allowed_hosts.iter().any(|allowed| allowed.eq_ignore_ascii_case(host)) {
                return error_response(&ApiError::new(
                    421,
                    format!("this server answers only to {:?}", shared.allowed_hosts),
                ));
            }
        }
        Some(token) => {
            let from_query = query_param(request.uri().query().unwrap_or(""), "token");
            let from_cookie = request
                .headers()
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|c| c.to_str().ok())
                .flat_map(|c| c.split(';'))
                .find_map(|c| c.trim().strip_prefix("mtl_token=").map(str::to_string));
            let carried = from_query.as_deref().or(from_cookie.as_deref());
            if !carried.is_some_and(|c| same_secret(c, token)) {
                return error_response(&ApiError::new(401, "this server needs the access token `mtl ui` printed"));
            }
            if from_query.is_some() {
                set_cookie = Some(format!("mtl_token={token}; Path=/; HttpOnly; SameSite=Strict"));
            }
        }
    }
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(cookie) = set_cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    response
}

/// Compares in time independent of where the strings first differ.
fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn query_param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|pair| pair.strip_prefix(name)?.strip_prefix('=').map(str::to_string))
}

/// Runs a database read off the async workers and turns its result into a response.
async fn answer(read: impl FnOnce() -> Result<Value, ApiError> + Send + 'static) -> Response {
    match tokio::task::spawn_blocking(read).await {
        Ok(Ok(value)) => json_response(StatusCode::OK, &value),
        Ok(Err(e)) => error_response(&e),
        Err(_) => error_response(&ApiError::new(500, "the request failed inside the server")),
    }
}

fn json_response(status: StatusCode, value: &Value) -> Response {
    let body = serde_json::to_string(value).unwrap_or_else(|_| "null".into());
    (status, [(header::CONTENT_TYPE, "application/json")], Body::from(body)).into_response()
}

fn error_response(e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut value = json!({ "error": e.message });
    if let Some(at) = e.at {
        value["at"] = json!(at);
    }
    json_response(status, &value)
}

type Params = Query<HashMap<String, String>>;

async fn changes(State(shared): State<AppState>) -> Response {
    // A database that cannot be read is a state of its own (the page shows why), not a
    // failed poll: the server is up, and the page reads again when the reason changes.
    answer(move || match shared.db.snapshot() {
        Ok(snapshot) => Ok(json!({ "version": snapshot.version })),
        Err(e) if e.status == ApiError::DATABASE => Ok(json!({ "version": format!("unreadable: {}", e.message) })),
        Err(e) => Err(e),
    })
    .await
}

async fn experiments(State(shared): State<AppState>) -> Response {
    answer(move || shared.db.answer("experiments", |runs| Ok(api::experiments(runs, shared.db.path())))).await
}

async fn runs(State(shared): State<AppState>, Query(params): Params) -> Response {
    answer(move || {
        let experiment = params.get("experiment").ok_or_else(|| ApiError::new(400, "runs needs ?experiment="))?;
        let number = |name: &str, default: usize| match params.get(name) {
            None => Ok(default),
            Some(text) => text.parse().map_err(|_| ApiError::new(400, format!("{name}={text:?} is not a count"))),
        };
        let page = api::Page { offset: number("offset", 0)?, limit: number("limit", api::Page::FIRST.limit)? };
        let (filter, sort) = (params.get("where").map(String::as_str), params.get("sort").map(String::as_str));
        api::runs(&shared.db.snapshot()?.runs, experiment, filter, sort, page, &shared.host_name)
    })
    .await
}

async fn run(State(shared): State<AppState>, Path(id): Path<String>) -> Response {
    answer(move || {
        let id: i64 = id.parse().map_err(|_| ApiError::new(400, format!("{id:?} is not a run id")))?;
        let snapshot = shared.db.snapshot()?;
        shared.db.with_store(|store| api::run(&snapshot.runs, store, id, &shared.host_name))
    })
    .await
}

async fn curves(State(shared): State<AppState>, Query(params): Params) -> Response {
    answer(move || {
        let text = params.get("runs").map(String::as_str).unwrap_or("");
        let ids: Vec<i64> = text
            .split(',')
            .filter(|t| !t.trim().is_empty())
            .map(|t| t.trim().parse().map_err(|_| ApiError::new(400, format!("{t:?} is not a run id"))))
            .collect::<Result<_, _>>()?;
        let mean = params.get("mean").is_some_and(|m| m == "1");
        let snapshot = shared.db.snapshot()?;
        shared.db.with_store(|store| api::curves(&snapshot.runs, store, &ids, mean))
    })
    .await
}

async fn compare(State(shared): State<AppState>, Query(params): Params) -> Response {
    answer(move || {
        let experiment = params.get("experiment").ok_or_else(|| ApiError::new(400, "compare needs ?experiment="))?;
        shared.db.answer(&format!("compare {experiment}"), |runs| compare_view(runs, experiment))
    })
    .await
}

//! The FHIR R4 REST transport (<https://hl7.org/fhir/R4/http.html>).
//!
//! Owns: the axum [`Router`] built by [`router`], URL routing to one module per interaction
//! ([`interaction`]), content negotiation ([`negotiate`]), authentication ([`auth`]), request
//! ids, request tracing without patient data, metrics, and the error-to-response mapping
//! ([`error`]). Handlers are thin: they read HTTP, call the service layer, and write HTTP.
//!
//! Does not: touch the store, or decide anything a FHIR rule decides; the service layer
//! ([`concord_hub::Hub`]) does. Tests drive the router with `tower::ServiceExt::oneshot`.

pub mod audit;
pub mod auth;
pub mod error;
pub mod hl7v2;
pub mod interaction;
pub mod negotiate;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use concord_fhir::{Error, RequestContext};
use concord_hub::Hub;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::error::{ApiError, ApiResult};

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    pub hub: Hub,
    /// The authorization server: verifies every request's token and serves `/oauth` and the
    /// discovery documents.
    pub auth: concord_auth::AuthServer,
    /// The public FHIR base URL; derived from the `Host` header when `None`.
    pub base_url: Option<String>,
    /// The largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Renders Prometheus metrics for `/metrics`, when a recorder is installed.
    pub metrics: Option<Arc<dyn Fn() -> String + Send + Sync>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("base_url", &self.base_url)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish()
    }
}

impl AppState {
    /// The FHIR base URL for links and `Location` headers.
    pub fn base(&self, headers: &HeaderMap) -> String {
        if let Some(base) = &self.base_url {
            return base.trim_end_matches('/').to_string();
        }
        let host = headers
            .get(axum::http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("localhost");
        format!("http://{host}/fhir")
    }
}

/// Builds the application: the FHIR API under `/fhir`, and `/healthz`, `/readyz`, `/metrics`.
/// The state every handler shares: one reference count per request, not a clone of each part.
pub(crate) type Shared = Arc<AppState>;

pub fn router(state: AppState) -> Router {
    let state: Shared = Arc::new(state);
    let x_request_id = HeaderName::from_static("x-request-id");
    let https = state
        .base_url
        .as_deref()
        .is_some_and(|b| b.starts_with("https://"));
    Router::new()
        .nest("/fhir", interaction::routes())
        .route("/hl7v2", axum::routing::post(hl7v2::receive))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .merge(state.auth.router())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), auth::require_auth))
        .layer(middleware::from_fn_with_state(state.clone(), audit::record))
        .layer(middleware::from_fn(record_metrics))
        .layer(
            TraceLayer::new_for_http().make_span_with(|request: &Request| {
                // The span names the route template, never the URL: query strings and ids can
                // carry patient data.
                let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str);
                let request_id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
                tracing::info_span!("request", method = %request.method(), route = %route, request_id = %request_id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(x_request_id.clone()))
        .layer(SetRequestIdLayer::new(x_request_id, MakeRequestUuid))
        .layer(concord_auth::SecurityHeaders::new(https))
        .with_state(state)
}

async fn readyz(State(state): State<Shared>, headers: HeaderMap) -> Response {
    let request_id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_string();
    let hub = state.hub.clone();
    let ready = tokio::task::spawn_blocking(move || {
        hub.ready(&RequestContext::system("readiness", request_id))
    })
    .await
    .unwrap_or(false);
    if ready {
        (StatusCode::OK, "ready").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
    }
}

async fn metrics(State(state): State<Shared>) -> Response {
    match &state.metrics {
        Some(render) => (
            [(
                axum::http::header::CONTENT_TYPE,
                "text/plain; version=0.0.4",
            )],
            render(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "metrics are not enabled").into_response(),
    }
}

async fn not_found() -> ApiError {
    ApiError(Error::not_found(
        "there is nothing at this URL; the FHIR API is under /fhir",
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError(Error::new(
        concord_fhir::ErrorKind::MethodNotAllowed,
        "this HTTP method is not allowed on this URL",
    ))
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = request.method().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("concord_http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("concord_http_request_duration_seconds", "method" => method, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Runs a short service-layer call on the async worker itself. For a read by id or version the
/// hand-off to the blocking pool (its queue lock, a wake-up, two thread switches) cost more than
/// the work, one indexed lookup on a reader connection, and profiles of reads showed it.
///
/// Only for calls that never wait long: `concord`'s `open_store` keeps a reader connection for
/// every worker besides those the blocking pool can hold, and the identity links an access
/// decision needs are read without waiting for linking. A panic is answered as [`blocking`]
/// answers one, so the request is still audited.
pub(crate) fn inline<T>(f: impl FnOnce() -> Result<T, Error>) -> ApiResult<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(ApiError),
        Err(_) => {
            tracing::error!("a service call panicked");
            Err(ApiError(Error::internal()))
        }
    }
}

/// Runs a service-layer call on a blocking thread (the store is synchronous).
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> ApiResult<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(result) => result.map_err(ApiError),
        Err(join_error) => {
            tracing::error!(error = %join_error, "a service call panicked or was cancelled");
            Err(ApiError(Error::internal()))
        }
    }
}

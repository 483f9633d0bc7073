//! `GET /metrics`: Prometheus text, from the `metrics` facade the crates record into
//! (requests and latencies here, writer batches and queue, expiry lag, webhook and
//! PIN counters where they happen) plus figures read from the store at scrape time
//! (payments by status and tier, the webhook backlog). Protected by the admin key
//! unless `metrics.public = true`.

use crate::AppState;
use crate::auth::Admin;
use crate::error::{ApiResult, ErrorBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::time::Instant;

/// How often histogram samples are folded into their summaries. The recorder keeps
/// every raw sample until then: without it, a server nobody scraped grew by ~60 bytes
/// per payment (179 MiB after 5 minutes at 6,900 payments/s).
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Installs the process's recorder (once; later calls get the same handle) and the
/// thread that keeps its memory bounded.
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            let kept = handle.clone();
            std::thread::Builder::new()
                .name("pocket-metrics".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_EVERY);
                        kept.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .clone()
}

/// Middleware: counts every request by route template, method and status, and times it.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".to_string());
    let method = request.method().as_str().to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("pocket_http_requests_total", "route" => route.clone(), "method" => method.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("pocket_http_request_duration_seconds", "route" => route, "method" => method)
        .record(started.elapsed().as_secs_f64());
    response
}

async fn render(state: &AppState) -> ApiResult<Response> {
    let figures = state.store.figures().await?;
    for (status, tier, n) in figures.payments {
        metrics::gauge!("pocket_payments", "status" => status, "tier" => tier).set(n as f64);
    }
    metrics::gauge!("pocket_webhook_delivery_backlog").set(figures.delivery_backlog as f64);
    metrics::gauge!("pocket_event_streams_open")
        .set((state.settings.max_streams - state.streams.available_permits()) as f64);
    let text = state
        .metrics
        .as_ref()
        .map(|h| h.render())
        .unwrap_or_default();
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    Ok(r)
}

#[utoipa::path(get, path = "/metrics", tag = "operator",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain"), (status = 401, body = ErrorBody)),
    security(("admin_key" = [])))]
pub async fn metrics(
    State(state): State<AppState>,
    admin: Result<Admin, crate::error::ApiError>,
) -> ApiResult<Response> {
    if !state.settings.metrics_public {
        admin?;
    }
    render(&state).await
}

//! The operations listener: metrics, health, reload. Loopback by default and not authenticated,
//! so it exposes nothing about persons.

use std::sync::Arc;

use actix_web::http::header::CONTENT_TYPE;
use actix_web::{web, HttpResponse};
use serde_json::json;

use super::reload::{ReloadError, Reloader};
use super::state::AppState;
use crate::telemetry::metrics::CONTENT_TYPE as METRICS_CONTENT_TYPE;

/// `GET /metrics`.
pub async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, METRICS_CONTENT_TYPE))
        .body(state.metrics.render())
}

/// `GET /health/live`: the process runs and answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "live"}))
}

/// `GET /health/ready`: a snapshot is loaded and not older than the configured maximum age.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let snapshot = state.store.current();
    let snapshot_id = snapshot.as_ref().map(|s| s.meta.snapshot_id.clone());
    if state.metrics.is_ready() {
        HttpResponse::Ok().json(json!({"status": "ready", "snapshot_id": snapshot_id}))
    } else {
        let why = if snapshot.is_none() {
            "no snapshot loaded"
        } else {
            "the snapshot in use is older than the configured maximum age"
        };
        HttpResponse::ServiceUnavailable()
            .json(json!({"status": "not ready", "reason": why, "snapshot_id": snapshot_id}))
    }
}

/// `POST /admin/snapshot/reload`: load the source's snapshot now. 200 with what is in use;
/// 503 (unavailable, or abandoned after snapshot.reload_timeout_seconds), 422 (refused) or 409
/// (another reload in progress) with the reason, the old snapshot still serving.
pub async fn reload(reloader: web::Data<Arc<Reloader>>) -> HttpResponse {
    // Clients and protocols first: their outcome is reported beside the snapshot's, and a
    // refused file keeps the ones in use without failing the snapshot reload.
    let config = match reloader.reload_config() {
        Ok(()) => json!({"status": "loaded"}),
        Err(error) => json!({"status": "refused", "error": error}),
    };
    match reloader.reload().await {
        Ok(loaded) => HttpResponse::Ok()
            .json(json!({"status": "loaded", "snapshot": loaded, "config": config})),
        Err(error @ ReloadError::Unavailable(_)) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "unavailable", "error": error.to_string(), "config": config})),
        Err(error @ ReloadError::TimedOut(_)) => HttpResponse::ServiceUnavailable()
            .json(json!({"status": "abandoned", "error": error.to_string(), "config": config})),
        Err(error @ ReloadError::InProgress) => HttpResponse::Conflict()
            .json(json!({"status": "in progress", "error": error.to_string(), "config": config})),
        Err(error @ ReloadError::Refused(_)) => HttpResponse::UnprocessableEntity()
            .json(json!({"status": "refused", "error": error.to_string(), "config": config})),
    }
}

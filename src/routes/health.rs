//! `/healthz` (the process answers), `/readyz` (its database and blob store answer), `/metrics`
//! (Prometheus).

use crate::error::{ApiError, ErrorBody, ErrorCode};
use crate::state::AppState;
use actix_web::{HttpResponse, get, web};
use serde_json::json;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(healthz).service(readyz).service(metrics);
}

/// Liveness: the process is up.
#[utoipa::path(tag = "ops", responses((status = 200, description = "up")))]
#[get("/healthz")]
async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Readiness: the database and the blob store answer. A load balancer sends no traffic while
/// this is 503; `details.component` names what is down.
#[utoipa::path(tag = "ops", responses((status = 200, description = "ready"), (status = 503, body = ErrorBody)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.db.ping().await.map_err(|e| {
        ApiError::new(ErrorCode::Unavailable)
            .with_details(json!({"component": "database"}))
            .retry_after(5)
            .with_source(e)
    })?;
    state.blobs.check().await.map_err(|e| {
        ApiError::new(ErrorCode::Unavailable)
            .with_details(json!({"component": "blob_store", "store": state.blobs.kind()}))
            .retry_after(5)
            .with_source(e)
    })?;
    Ok(HttpResponse::Ok().json(json!({
        "status": "ready",
        "database": "ok",
        "blob_store": "ok",
        "blob_store_kind": state.blobs.kind(),
    })))
}

/// Prometheus text exposition.
#[utoipa::path(tag = "ops", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
#[get("/metrics")]
async fn metrics() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::ops::metrics_handle().render())
}

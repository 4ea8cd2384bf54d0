//! `/api/v1/integrations/esign`: the e-signature provider's callback. It is the only way the
//! `e_signature` requirement is met, so it must be authentic and fresh: HMAC-SHA256 over
//! `"{timestamp}.{body}"` with the shared secret, a timestamp within five minutes, and each
//! event id accepted once.
//!
//! `/api/v1/integrations/erp/orders`: the ERP records its order number against a confirmed
//! quote, signed the same way with the ERP secret (which also signs our quote events to it).

use crate::db::{self, deals as repo};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::deals as engine;
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, post, web};
use hmac::{Hmac, Mac};
use sea_orm::TransactionTrait;
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::json;
use sha2::Sha256;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(esign_callback).service(erp_order_callback);
}

const MAX_SKEW_SECS: i64 = 300;

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EsignEvent {
    /// The provider's unique event id (replays are refused).
    pub event_id: String,
    pub deal_id: String,
    pub contract_id: String,
    /// Only `signed` completes the node.
    pub status: String,
}

/// Sign a callback body the way the provider must (also used by tests and client authors).
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    // An HMAC key of any length is valid, so this cannot fail.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn verify(secret: &[u8], req: &HttpRequest, body: &[u8]) -> ApiResult<()> {
    let bad = || ApiError::new(ErrorCode::SignatureInvalid);
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let timestamp: i64 = header("x-fieldproof-timestamp")
        .and_then(|t| t.parse().ok())
        .ok_or_else(bad)?;
    let given = header("x-fieldproof-signature").ok_or_else(bad)?;
    if (db::now().unix_timestamp() - timestamp).abs() > MAX_SKEW_SECS {
        return Err(bad());
    }
    let given = hex::decode(given.trim_start_matches("sha256=")).map_err(|_| bad())?;
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return Err(bad());
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).map_err(|_| bad())
}

/// E-signature provider callback (HMAC-signed). Completes `contract_signed` when the deal is there.
#[utoipa::path(tag = "integrations", request_body = EsignEvent, responses((status = 200), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/integrations/esign")]
async fn esign_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let secret = state
        .settings
        .esign_callback_secret
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::RouteNotFound))?;
    verify(secret.expose_secret().as_bytes(), &req, &body)?;
    let event: EsignEvent = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson).with_details(json!({"reason": e.to_string()}))
    })?;
    if event.status != "signed" {
        return Ok(HttpResponse::Ok().json(json!({"accepted": true, "effect": "none"})));
    }
    let txn = state.db.begin().await?;
    let row = repo::lock(&txn, &event.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let template = engine::template_of(&txn, &row).await?;
    let Some(key) = row.current_node_key.clone() else {
        return Err(ApiError::new(ErrorCode::DealClosed));
    };
    let wants_signature = template.definition.node(&key).is_some_and(|n| {
        n.requirements
            .iter()
            .any(|r| matches!(r, fieldproof_domain::pipeline::Requirement::ESignature))
    });
    if !wants_signature {
        return Err(ApiError::new(ErrorCode::NodeNotCurrent).with_details(json!({"current": key})));
    }
    let run = repo::open_run_of(&txn, &row.id, &key)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let payload = json!({"event_id": event.event_id, "contract_id": event.contract_id});
    repo::insert_record(
        &txn,
        repo::NewRecord {
            deal_id: &row.id,
            node_run_id: &run.id,
            kind: "e_signature",
            actor_id: None,
            payload: payload.clone(),
            dedup_key: Some(format!("esign:{}", event.event_id)),
        },
    )
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::new(ErrorCode::CallbackReplayed)
        } else {
            ApiError::internal(e)
        }
    })?;
    db::audit::append(
        &txn,
        &row.org_id,
        &row.id,
        "e_signature",
        None,
        json!({"node": key, "fact": payload}),
    )
    .await?;
    let row = engine::advance(&state, &txn, row, &template).await?;
    txn.commit().await?;
    Ok(HttpResponse::Ok().json(
        json!({"accepted": true, "current_node": row.current_node_key, "status": row.status}),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ErpOrderEvent {
    /// The `quote_id` of the `quote.confirmed` event.
    pub quote_id: String,
    /// The ERP's sales-order number (1-64 characters).
    pub order_number: String,
}

/// The ERP's callback (HMAC-signed like the e-signature one): record its order number against a
/// confirmed quote. The same number again is accepted (retries); a different one is 409.
#[utoipa::path(tag = "integrations", request_body = ErpOrderEvent, responses((status = 200), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
#[post("/integrations/erp/orders")]
async fn erp_order_callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> ApiResult<HttpResponse> {
    let secret = state
        .settings
        .erp_webhook_secret
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::RouteNotFound))?;
    verify(secret.expose_secret().as_bytes(), &req, &body)?;
    let event: ErpOrderEvent = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson).with_details(json!({"reason": e.to_string()}))
    })?;
    let quote =
        crate::services::quotes::record_erp_order(&state, &event.quote_id, &event.order_number)
            .await?;
    Ok(HttpResponse::Ok().json(json!({"accepted": true, "quote_id": quote.id, "number": quote.number, "erp_order_number": quote.erp_order_number})))
}

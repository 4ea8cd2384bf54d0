//! `/api/v1/devices`: a rep's phone registers the Ed25519 public key its capture manifests are
//! signed with.

use crate::auth::Caller;
use crate::db;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::state::AppState;
use actix_web::{HttpResponse, post, web};
use base64::Engine;
use serde::{Deserialize, Serialize};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(enroll);
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct EnrollRequest {
    /// The phone's stable id (also sent as `device_id` at login).
    pub device_id: String,
    /// Base64 of the 32-byte Ed25519 public key.
    pub public_key: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeviceView {
    pub device_id: String,
    pub public_key: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: time::OffsetDateTime,
}

/// Register this phone's key (201); the same key again is 200; another key for the same device
/// id is 409 (re-enrol under a new device id instead, so old manifests stay verifiable).
#[utoipa::path(tag = "evidence", request_body = EnrollRequest, responses((status = 201, body = DeviceView), (status = 200, body = DeviceView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/devices")]
async fn enroll(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<EnrollRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let device_id = body.device_id.trim();
    if device_id.is_empty() || device_id.len() > 128 {
        return Err(ApiError::invalid_field(
            "device_id",
            "must be 1-128 characters",
            "长度须为 1-128 个字符",
        ));
    }
    let key = base64::engine::general_purpose::STANDARD
        .decode(body.public_key.trim())
        .ok()
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .filter(|k| ed25519_dalek::VerifyingKey::from_bytes(k).is_ok())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "public_key",
                "must be base64 of a 32-byte Ed25519 public key",
                "须为 32 字节 Ed25519 公钥的 base64",
            )
        })?;
    let key_b64 = base64::engine::general_purpose::STANDARD.encode(key);
    if let Some(existing) = db::devices::find(&state.db, &caller.user_id, device_id).await? {
        if existing.public_key == key_b64 {
            return Ok(HttpResponse::Ok().json(DeviceView {
                device_id: existing.device_id,
                public_key: existing.public_key,
                created_at: existing.created_at,
            }));
        }
        return Err(ApiError::new(ErrorCode::Conflict).with_details(
            serde_json::json!({"field": "device_id", "reason": "enrolled with another key"}),
        ));
    }
    let row = db::devices::insert(
        &state.db,
        &caller.org_id,
        &caller.user_id,
        device_id,
        &key_b64,
    )
    .await
    .map_err(|e| {
        if db::is_unique_violation(&e) {
            ApiError::new(ErrorCode::Conflict)
        } else {
            ApiError::internal(e)
        }
    })?;
    Ok(HttpResponse::Created().json(DeviceView {
        device_id: row.device_id,
        public_key: row.public_key,
        created_at: row.created_at,
    }))
}

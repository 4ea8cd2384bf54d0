//! `/api/v1/uploads`: resumable uploads of large evidence files (docs/uploads.md §4), an offset
//! protocol in the spirit of tus 1.0 core + creation. The finished upload is consumed by the
//! evidence endpoint (`upload_id` in `meta`), not here.
//!
//! A PATCH whose body goes past the declared size is refused whole with 413
//! `payload_too_large` (`details.offset`, `size`, `remaining`); nothing of it is kept.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::uploads::{self as service, NewUpload, UploadStatus};
use crate::state::AppState;
use actix_web::http::header::{self, HeaderMap};
use actix_web::{HttpRequest, HttpResponse, patch, post, route, web};
use serde::{Deserialize, Serialize};
use serde_json::json;
use time::OffsetDateTime;

/// The only body type a PATCH accepts.
pub const OFFSET_OCTET_STREAM: &str = "application/offset+octet-stream";
pub const UPLOAD_OFFSET: &str = "Upload-Offset";
pub const UPLOAD_LENGTH: &str = "Upload-Length";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_upload)
        .service(head_upload)
        .service(patch_upload);
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateUploadRequest {
    /// The id the phone made at the shutter; one upload per user and capture.
    pub capture_id: String,
    /// Size of the whole file in bytes, 1..=`FIELDPROOF_MAX_UPLOAD_BYTES`.
    pub size: u64,
    /// Lowercase hex SHA-256 of the whole file.
    pub sha256: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct UploadView {
    pub upload_id: String,
    /// Bytes received so far: send the next PATCH from here.
    pub offset: u64,
    pub size: u64,
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
}

impl From<UploadStatus> for UploadView {
    fn from(s: UploadStatus) -> Self {
        UploadView {
            upload_id: s.upload_id,
            offset: s.offset,
            size: s.size,
            expires_at: s.expires_at,
        }
    }
}

/// Start a resumable upload. The same `capture_id` again returns the same upload with its
/// current offset (200), so a phone that lost the answer resumes.
#[utoipa::path(tag = "uploads", request_body = CreateUploadRequest, responses(
    (status = 201, body = UploadView, description = "created"),
    (status = 200, body = UploadView, description = "this capture's existing upload"),
    (status = 409, body = ErrorBody, description = "this capture has an upload with another size or hash"),
    (status = 413, body = ErrorBody), (status = 422, body = ErrorBody)),
    security(("bearer" = [])))]
#[post("/uploads")]
async fn create_upload(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateUploadRequest>,
) -> ApiResult<HttpResponse> {
    let new = NewUpload::parse(
        &body.capture_id,
        body.size,
        &body.sha256,
        state.settings.max_upload_bytes,
    )?;
    let (status, created) = service::create(&state, &caller, &new, crate::db::now()).await?;
    let mut response = if created {
        HttpResponse::Created()
    } else {
        HttpResponse::Ok()
    };
    Ok(response.json(UploadView::from(status)))
}

/// Where an upload stands: `Upload-Offset` (bytes received) and `Upload-Length` headers.
#[utoipa::path(head, path = "/uploads/{id}", tag = "uploads", params(("id" = String, Path)), responses(
    (status = 200, description = "headers Upload-Offset and Upload-Length; no body"),
    (status = 404, description = "no such upload of yours (or it expired)")),
    security(("bearer" = [])))]
#[route("/uploads/{id}", method = "HEAD")]
async fn head_upload(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<HttpResponse> {
    let status = service::status(&state, &caller, &id).await?;
    Ok(HttpResponse::Ok()
        .insert_header((UPLOAD_OFFSET, status.offset))
        .insert_header((UPLOAD_LENGTH, status.size))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Send the next bytes. `Upload-Offset` must be the current offset (else 409
/// `upload_offset_mismatch` with `details.offset`); the body is
/// `application/offset+octet-stream`. If the connection drops mid-body, the bytes that arrived
/// are kept: HEAD says where to continue.
#[utoipa::path(tag = "uploads", params(("id" = String, Path),
        ("Upload-Offset" = u64, Header, description = "the upload's current offset")),
    request_body(content = Vec<u8>, content_type = "application/offset+octet-stream"),
    responses(
        (status = 204, description = "stored; header Upload-Offset is the new offset"),
        (status = 400, body = ErrorBody, description = "Upload-Offset missing or not a number"),
        (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody, description = "upload_offset_mismatch (details.offset), or the upload was already used"),
        (status = 413, body = ErrorBody, description = "the body goes past the declared size; nothing kept"),
        (status = 415, body = ErrorBody)),
    security(("bearer" = [])))]
#[patch("/uploads/{id}")]
async fn patch_upload(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    require_offset_stream(req.headers())?;
    let claimed = header_u64(req.headers(), UPLOAD_OFFSET)?.ok_or_else(|| {
        ApiError::new(ErrorCode::BadRequest).with_details(json!({"header": UPLOAD_OFFSET}))
    })?;
    let declared_len = header_u64(req.headers(), header::CONTENT_LENGTH.as_str())?;
    // A task of its own, so that a client hanging up (which may drop this handler) cannot cancel
    // storing the bytes that did arrive.
    let task = actix_web::rt::spawn(async move {
        service::receive(&state, &caller, &id, claimed, declared_len, payload).await
    });
    let offset = task
        .await
        .map_err(|e| ApiError::internal(anyhow::anyhow!("upload task failed: {e}")))??;
    Ok(HttpResponse::NoContent()
        .insert_header((UPLOAD_OFFSET, offset))
        .finish())
}

fn require_offset_stream(headers: &HeaderMap) -> ApiResult<()> {
    let matches = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case(OFFSET_OCTET_STREAM));
    if matches {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::UnsupportedMediaType)
            .with_details(json!({"expected": OFFSET_OCTET_STREAM})))
    }
}

fn header_u64(headers: &HeaderMap, name: &str) -> ApiResult<Option<u64>> {
    match headers.get(name) {
        None => Ok(None),
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Some)
            .ok_or_else(|| {
                ApiError::new(ErrorCode::BadRequest)
                    .with_details(json!({"header": name, "reason": "not a byte count"}))
            }),
    }
}

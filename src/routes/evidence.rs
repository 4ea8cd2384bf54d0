//! `/api/v1/.../evidence`: uploads from field devices (multipart, streamed, idempotent by
//! capture id), evidence status, thumbnails, and the supervisors' review queue and decisions.
//! The protocol for client authors is in docs/uploads.md.

use super::PageOf;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::evidence::review::{self, ReviewItem};
use crate::services::evidence::view::current_view;
use crate::services::evidence::{self as intake, Ingested, Upload, UploadMeta, receive};
use crate::state::AppState;
use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(upload)
        .service(get_evidence)
        .service(thumbnail)
        .service(review_queue)
        .service(decide);
}

/// Small parts (meta, manifest, signature) are read whole, up to this size.
const SMALL_PART: usize = 64 * 1024;
const DERIVATIVE_LIMIT: usize = 5 * 1024 * 1024;

fn bad_multipart(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(ErrorCode::BadRequest)
        .with_details(json!({"reason": format!("malformed multipart body: {e}")}))
}

async fn read_part(
    mut field: actix_multipart::Field,
    limit: usize,
    name: &str,
) -> ApiResult<Vec<u8>> {
    let mut out = Vec::new();
    while let Some(chunk) = field.next().await {
        let chunk = chunk.map_err(bad_multipart)?;
        if out.len() + chunk.len() > limit {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .with_details(json!({"part": name, "limit_bytes": limit})));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Upload evidence for the deal's current node (multipart: `meta`, `file`, optional
/// `manifest` + `signature`, optional `derivative`). 201 the first time; the same capture again
/// is 200 with the same body; the same capture id with other bytes is 409.
#[utoipa::path(
    tag = "evidence",
    request_body(content_type = "multipart/form-data", description = "parts: meta (JSON, UploadMeta), file, manifest, signature, derivative; see docs/uploads.md"),
    responses(
        (status = 201, body = intake::view::EvidenceView),
        (status = 200, body = intake::view::EvidenceView, description = "replay of an already stored capture"),
        (status = 409, body = ErrorBody), (status = 413, body = ErrorBody), (status = 415, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[post("/deals/{id}/nodes/{node}/evidence")]
async fn upload(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    req: HttpRequest,
    payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let (deal_id, node) = path.into_inner();
    let limit = state.settings.max_upload_bytes;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit + (DERIVATIVE_LIMIT + 4 * SMALL_PART) as u64) {
        return Err(receive::too_large(limit));
    }
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !is_multipart {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType)
            .with_details(json!({"expected": "multipart/form-data"})));
    }
    let tmp = state.settings.data_dir.join("tmp");
    let mut multipart = Multipart::new(req.headers(), payload);
    let (mut meta, mut manifest_raw, mut signature, mut file, mut derivative) =
        (None, None, None, None, None);
    while let Some(field) = multipart.next().await {
        let field = field.map_err(bad_multipart)?;
        match field.name().unwrap_or_default().to_owned().as_str() {
            "meta" => {
                let raw = read_part(field, SMALL_PART, "meta").await?;
                let parsed: UploadMeta = serde_json::from_slice(&raw).map_err(|e| {
                    ApiError::invalid_field("meta", e.to_string(), "meta 字段不是有效的 JSON")
                })?;
                meta = Some(parsed);
            }
            "manifest" => manifest_raw = Some(read_part(field, SMALL_PART, "manifest").await?),
            "signature" => {
                let raw = read_part(field, SMALL_PART, "signature").await?;
                signature = Some(String::from_utf8_lossy(&raw).trim().to_owned());
            }
            "file" => file = Some(receive::receive(field, &tmp, limit).await?),
            "derivative" => {
                derivative = Some(read_part(field, DERIVATIVE_LIMIT, "derivative").await?)
            }
            _ => {
                read_part(field, DERIVATIVE_LIMIT, "unknown").await?;
            }
        }
    }
    let meta = meta.ok_or_else(|| {
        ApiError::invalid_field("meta", "the meta part is missing", "缺少 meta 字段")
    })?;
    if file.is_none()
        && let Some(upload_id) = &meta.upload_id
        && let Some(replay) =
            replay_of_finished_upload(&state, &caller, upload_id, &meta.capture_id).await?
    {
        return Ok(replay);
    }
    // Only a file put together from the caller's own resumable upload finishes that upload.
    let (file, finished_upload) = match (file, &meta.upload_id) {
        (Some(file), _) => (file, None),
        (None, Some(upload_id)) => (
            assembled_upload(&state, &caller, upload_id, &meta.capture_id, &tmp).await?,
            Some(upload_id.clone()),
        ),
        (None, None) => {
            return Err(ApiError::invalid_field(
                "file",
                "the file part is missing",
                "缺少文件",
            ));
        }
    };
    if matches!(file.format, fieldproof_domain::evidence::Format::Unknown) {
        return Err(receive::unsupported("unknown"));
    }
    let outcome = intake::ingest(
        &state,
        &caller,
        &deal_id,
        &node,
        Upload {
            meta,
            manifest_raw,
            signature,
            file,
            derivative,
        },
    )
    .await?;
    if let Some(upload_id) = finished_upload
        && let Err(e) = crate::services::uploads::finish(&state, &caller, &upload_id).await
    {
        // The evidence is stored; leftover pieces expire with the session.
        tracing::warn!(upload = %upload_id, error = ?e, "finishing the upload session failed");
    }
    Ok(match outcome {
        Ingested::Created(body) => HttpResponse::Created().json(body),
        Ingested::Replayed(body) => HttpResponse::Ok().json(body),
    })
}

/// A finished upload whose answer the phone lost: the evidence exists for its capture, so
/// answer as the first time (or 409 if the bytes differ, or the capture is another user's)
/// without assembling anything again.
async fn replay_of_finished_upload(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    capture_id: &str,
) -> ApiResult<Option<HttpResponse>> {
    // Not a UUID: the intake refuses it with its own error.
    let Some(capture_id) = intake::normal_capture_id(capture_id) else {
        return Ok(None);
    };
    let Some(existing) =
        crate::db::evidence::find_by_capture(&state.db, &caller.org_id, &capture_id).await?
    else {
        return Ok(None);
    };
    let session = crate::db::uploads::find_own(&state.db, caller, upload_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !intake::same_capture(&session.capture_id, &capture_id) {
        return Err(another_capture());
    }
    Ok(Some(
        match intake::replay_or_conflict(existing, caller, &session.sha256)? {
            Ingested::Created(body) => HttpResponse::Created().json(body),
            Ingested::Replayed(body) => HttpResponse::Ok().json(body),
        },
    ))
}

fn another_capture() -> ApiError {
    ApiError::invalid_field(
        "upload_id",
        "the upload belongs to another capture",
        "该上传属于另一次拍摄",
    )
}

/// Put a finished resumable upload together into a temp file, as if it had come in one piece.
async fn assembled_upload(
    state: &AppState,
    caller: &Caller,
    upload_id: &str,
    capture_id: &str,
    dir: &std::path::Path,
) -> ApiResult<receive::ReceivedFile> {
    std::fs::create_dir_all(dir).map_err(ApiError::internal)?;
    let path = tempfile::NamedTempFile::new_in(dir)
        .map_err(ApiError::internal)?
        .into_temp_path();
    let assembled = crate::services::uploads::assemble(state, caller, upload_id, &path).await?;
    if !intake::same_capture(&assembled.capture_id, capture_id) {
        return Err(another_capture());
    }
    let mut head = [0u8; 64];
    let read = {
        use std::io::Read;
        let mut file = std::fs::File::open(&path).map_err(ApiError::internal)?;
        file.read(&mut head).map_err(ApiError::internal)?
    };
    Ok(receive::ReceivedFile {
        format: fieldproof_domain::evidence::sniff(&head[..read]),
        path,
        size: assembled.size,
        sha256_hex: assembled.sha256_hex,
    })
}

/// The evidence with its verdict, checks, and any supervisor decision since.
#[utoipa::path(tag = "evidence", responses((status = 200, body = intake::view::EvidenceView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/evidence/{id}")]
async fn get_evidence(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Value>> {
    let row = review::visible(&state, &caller, &id).await?;
    let mut view = current_view(&row);
    if let Some(obj) = view.as_object_mut() {
        obj.insert(
            "thumbnail_url".into(),
            json!(review::thumbnail_url(&state, &row).await?),
        );
    }
    Ok(web::Json(view))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct SignedQuery {
    pub exp: i64,
    pub sig: String,
}

/// A thumbnail through a short-lived signed URL (folder store; S3 presigns its own).
#[utoipa::path(tag = "evidence", params(SignedQuery), responses((status = 200, content_type = "image/jpeg"), (status = 404, body = ErrorBody)))]
#[get("/evidence/{id}/thumbnail")]
async fn thumbnail(
    state: web::Data<AppState>,
    id: web::Path<String>,
    query: web::Query<SignedQuery>,
) -> ApiResult<HttpResponse> {
    let bytes = review::granted_thumbnail(&state, &id, query.exp, &query.sig).await?;
    Ok(HttpResponse::Ok()
        .content_type("image/jpeg")
        .insert_header((header::CACHE_CONTROL, "private, max-age=600"))
        .body(bytes))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct QueueQuery {
    /// Default: the caller's team (admins: the whole org).
    pub team_id: Option<String>,
    pub rep_id: Option<String>,
    /// Only evidence whose checks include this code (not passing).
    pub check: Option<String>,
    /// Received at or after (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<time::OffsetDateTime>,
    /// Received before (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<time::OffsetDateTime>,
    pub limit: Option<u64>,
    pub cursor: Option<String>,
}

/// Rejected and doubtful evidence waiting for a decision, newest first.
#[utoipa::path(tag = "evidence", params(QueueQuery), responses((status = 200, body = PageOf<ReviewItem>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/reviews")]
async fn review_queue(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<QueueQuery>,
) -> ApiResult<web::Json<PageOf<ReviewItem>>> {
    let query = query.into_inner();
    let limit = query.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery)
            .with_details(json!({"field": "limit", "reason": "must be 1-100"})));
    }
    let page = review::queue(
        &state,
        &caller,
        review::QueueRequest {
            team_id: query.team_id,
            rep_id: query.rep_id,
            check: query.check,
            from: query.from,
            to: query.to,
        },
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    let mut items = Vec::new();
    for row in &page.items {
        items.push(review::item(&state, row).await?);
    }
    Ok(web::Json(PageOf {
        items,
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct DecisionRequest {
    /// approve | reject
    pub decision: String,
    /// Required: why (shown to the rep, kept in the audit trail).
    pub reason: String,
}

/// Decide on evidence waiting for review (supervisors of its team, admins).
#[utoipa::path(tag = "evidence", request_body = DecisionRequest, responses((status = 200, body = intake::view::EvidenceView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/evidence/{id}/review")]
async fn decide(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<DecisionRequest>,
) -> ApiResult<web::Json<Value>> {
    let (approve, reason) = review::parse_decision(&body.decision, &body.reason)?;
    Ok(web::Json(
        review::decide(&state, &caller, &id, approve, &reason).await?,
    ))
}

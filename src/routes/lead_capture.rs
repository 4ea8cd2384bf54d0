//! Lead sources and the public capture endpoint a website form posts to.
//!
//! A source has a key shown once at creation and stored as its SHA-256 (keys are 256 random
//! bits, so a fast hash is enough). `POST /api/v1/capture/leads` needs no login, only the key
//! in `X-Lead-Source-Key`; it is guarded by a small body limit, a honeypot field (`website`:
//! hidden from people, filled by bots; such a submission gets the same 202 and is dropped) and a
//! rate limit per source and client address counted in the database (`db::rate_limits`), so it
//! holds across every instance: an in-process window let a client through N times the limit
//! behind a load balancer of N instances. Every submission already costs a key lookup; the
//! count adds an indexed upsert and a read of the previous window (on SQLite the upsert takes
//! the single writer for a moment, also for a refused submission).

use super::leads::{CreateLeadRequest, invalid_lead};
use crate::auth::Caller;
use crate::db::{self, entities::lead_source, leads as repo};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::leads::{self as service, Origin};
use crate::state::AppState;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use fieldproof_domain::leads::SourceChannel;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::json;
use sha2::{Digest, Sha256};

/// A form submission is small; anything bigger is not a person typing.
pub const MAX_CAPTURE_BYTES: usize = 16 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(create_source)
        .service(list_sources)
        .service(capture);
}

fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateSourceRequest {
    pub name: String,
    /// The channel leads from this source carry, e.g. `website`.
    pub channel: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SourceView {
    pub id: String,
    pub name: String,
    pub channel: String,
    pub active: bool,
    /// Only in the response that created the source: store it in the form's backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
}

/// Create a capture source (admins); the key is in this response only.
#[utoipa::path(tag = "lead-sources", request_body = CreateSourceRequest, responses((status = 201, body = SourceView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/lead-sources")]
async fn create_source(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateSourceRequest>,
) -> ApiResult<HttpResponse> {
    use sea_orm::Set;
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(ApiError::invalid_field(
            "name",
            "1-100 characters",
            "1 到 100 字",
        ));
    }
    let channel = SourceChannel::parse_loose(&body.channel).ok_or_else(|| {
        ApiError::invalid_field("channel", "unknown source channel", "未知的来源渠道")
    })?;
    let key = format!("fpls_{}", hex::encode(rand::random::<[u8; 32]>()));
    let row = repo::insert_source(
        &state.db,
        lead_source::ActiveModel {
            id: Set(db::new_id()),
            org_id: Set(caller.org_id.clone()),
            name: Set(name.to_owned()),
            channel: Set(channel.as_str().to_owned()),
            key_hash: Set(key_hash(&key)),
            active: Set(true),
            created_at: Set(db::now()),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(SourceView {
        id: row.id,
        name: row.name,
        channel: row.channel,
        active: row.active,
        key: Some(key),
    }))
}

#[utoipa::path(tag = "lead-sources", responses((status = 200, body = Vec<SourceView>), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
#[get("/lead-sources")]
async fn list_sources(
    state: web::Data<AppState>,
    caller: Caller,
) -> ApiResult<web::Json<Vec<SourceView>>> {
    if !caller.is_admin() {
        return Err(ApiError::forbidden());
    }
    let rows = repo::sources(&state.db, &caller.org_id).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|r| SourceView {
                id: r.id,
                name: r.name,
                channel: r.channel,
                active: r.active,
                key: None,
            })
            .collect(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CaptureRequest {
    #[serde(flatten)]
    pub lead: CreateLeadRequestSchema,
    /// Honeypot: leave empty (hidden from people in the form).
    #[serde(default)]
    pub website: Option<String>,
}

/// Same fields as `POST /leads` (documentation type for the flattened body).
#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CreateLeadRequestSchema {
    pub company: Option<String>,
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub contact_title: Option<String>,
    pub industry: Option<String>,
    pub annual_purchase_fen: Option<i64>,
    pub province: Option<String>,
    pub city: Option<String>,
    #[serde(default)]
    pub products: Vec<String>,
    pub notes: Option<String>,
}

/// Public: a website form submits a lead with its source key. Always 202 on acceptance (also for
/// a filled honeypot, so bots learn nothing).
#[utoipa::path(tag = "lead-sources", request_body = CaptureRequest, params(("X-Lead-Source-Key" = String, Header, description = "the source's key")), responses((status = 202), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody), (status = 422, body = ErrorBody), (status = 429, body = ErrorBody)))]
#[post("/capture/leads")]
async fn capture(
    state: web::Data<AppState>,
    req: HttpRequest,
    mut payload: web::Payload,
) -> ApiResult<HttpResponse> {
    let key = req
        .headers()
        .get("x-lead-source-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .unwrap_or("");
    if key.is_empty() || key.len() > 200 {
        return Err(ApiError::new(ErrorCode::SourceKeyInvalid));
    }
    let source = repo::source_by_key_hash(&state.reads, &key_hash(key))
        .await?
        .ok_or_else(|| ApiError::new(ErrorCode::SourceKeyInvalid))?;
    // Per source and client address; on PostgreSQL counted in the database so the limit holds
    // across every instance behind the load balancer.
    // Behind a reverse proxy (`trust_forwarded_for`) the client's address, not the proxy's.
    let subject = match crate::routes::quotes::client_ip(&state, &req) {
        Some(ip) => format!("{}|{ip}", source.id),
        None => format!("{}|-", source.id),
    };
    if let Err(retry) = crate::db::rate_limits::hit_shared_or_local(
        &state.db,
        &state.limit_windows,
        "lead_capture",
        &subject,
        state.settings.lead_capture_per_minute,
        crate::db::now(),
    )
    .await?
    {
        return Err(ApiError::new(ErrorCode::RateLimited).retry_after(retry));
    }
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(ErrorCode::BadRequest)
                .with_source(anyhow::anyhow!("reading the form: {e}"))
        })?;
        if body.len() + chunk.len() > MAX_CAPTURE_BYTES {
            return Err(ApiError::new(ErrorCode::PayloadTooLarge)
                .with_details(json!({"limit_bytes": MAX_CAPTURE_BYTES})));
        }
        body.extend_from_slice(&chunk);
    }
    let form: CaptureForm = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(ErrorCode::InvalidJson).with_details(json!({"reason": e.to_string()}))
    })?;
    if form
        .website
        .as_deref()
        .is_some_and(|w| !w.trim().is_empty())
    {
        tracing::info!(source = %source.id, "capture honeypot filled; dropped");
        return Ok(HttpResponse::Accepted().json(json!({"received": true})));
    }
    let channel = SourceChannel::parse_loose(&source.channel).unwrap_or(SourceChannel::Website);
    let mut lead = form.lead;
    // The source decides the channel, not the submitter.
    lead.source = None;
    let draft = lead.into_raw().parse(channel).map_err(invalid_lead)?;
    service::intake(
        &state.lead_dispatcher,
        &source.org_id,
        draft,
        Origin {
            source_id: Some(source.id.clone()),
            import_id: None,
        },
    )
    .await?;
    Ok(HttpResponse::Accepted().json(json!({"received": true})))
}

#[derive(Deserialize)]
struct CaptureForm {
    #[serde(flatten)]
    lead: CreateLeadRequest,
    #[serde(default)]
    website: Option<String>,
}

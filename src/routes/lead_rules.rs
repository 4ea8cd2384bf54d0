//! `/api/v1/lead-rules`: the versioned rule set (read by anyone in the org, saved by admins and
//! managers after validation), and the what-if replay of a draft.

use crate::auth::Caller;
use crate::db::leads as repo;
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::leads::{insight, rules};
use crate::state::AppState;
use actix_web::{HttpResponse, get, post, put, web};
use fieldproof_domain::account::Role;
use fieldproof_domain::leads::RuleSet;
use fieldproof_domain::leads::rules::RuleError;
use serde::Deserialize;
use serde_json::{Value, json};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(what_if)
        .service(get_rules)
        .service(put_rules)
        .service(get_version);
}

fn may_edit(caller: &Caller) -> bool {
    matches!(caller.role, Role::Admin | Role::Manager)
}

fn invalid(errors: Vec<RuleError>) -> ApiError {
    ApiError::new(ErrorCode::RuleSetInvalid).with_details(json!({ "errors": errors }))
}

/// The rule set in force (version 0 = built-in: every available rep).
#[utoipa::path(tag = "lead-rules", responses((status = 200, body = Object)), security(("bearer" = [])))]
#[get("/lead-rules")]
async fn get_rules(state: web::Data<AppState>, caller: Caller) -> ApiResult<web::Json<Value>> {
    let (version, rules) = rules::active(&state.db, &caller.org_id).await?;
    Ok(web::Json(json!({"version": version, "rules": rules})))
}

#[utoipa::path(tag = "lead-rules", responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/lead-rules/versions/{version}")]
async fn get_version(
    state: web::Data<AppState>,
    caller: Caller,
    version: web::Path<i32>,
) -> ApiResult<web::Json<Value>> {
    let row = repo::rules_version(&state.db, &caller.org_id, *version)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(
        json!({"version": row.version, "rules": row.rules, "created_by": row.created_by, "created_at": row.created_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}),
    ))
}

/// Validate and save a new version (the JSON format is in docs/leads.md). Every problem comes
/// back at once, each with its path.
#[utoipa::path(tag = "lead-rules", request_body = Object, responses((status = 201, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[put("/lead-rules")]
async fn put_rules(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Value>,
) -> ApiResult<HttpResponse> {
    if !may_edit(&caller) {
        return Err(ApiError::forbidden());
    }
    let parsed = rules::validate(&state.db, &caller.org_id, &body)
        .await?
        .map_err(invalid)?;
    let version = rules::save(&state.db, &caller.org_id, &caller.user_id, &parsed).await?;
    Ok(HttpResponse::Created().json(json!({"version": version, "rules": parsed})))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct WhatIfRequest {
    /// A draft rule set (same format as `PUT /lead-rules`); not saved.
    #[schema(value_type = Object)]
    pub rules: Value,
    /// Replay the leads of the last N days, 1-90 (default 30).
    pub days: Option<i64>,
}

/// Replay recent leads against a draft: which leads would go elsewhere, and the figures the
/// draft would have produced next to the actual ones.
#[utoipa::path(tag = "lead-rules", request_body = WhatIfRequest, responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/lead-rules/what-if")]
async fn what_if(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<WhatIfRequest>,
) -> ApiResult<web::Json<Value>> {
    if !may_edit(&caller) {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    let days = body.days.unwrap_or(30);
    if !(1..=90).contains(&days) {
        return Err(ApiError::invalid_field("days", "1-90", "须在 1 到 90 之间"));
    }
    let draft: RuleSet = rules::validate(&state.reads, &caller.org_id, &body.rules)
        .await?
        .map_err(invalid)?;
    let (report, skipped) =
        insight::what_if(&state.reads, &caller.org_id, &draft, days, crate::db::now()).await?;
    Ok(web::Json(
        json!({"days": days, "routed_to_existing_owner": skipped, "report": report, "note": "Latency, first response and conversion depend on what people did and cannot be replayed; the replay starts reps with no protected leads and ignores expiries."}),
    ))
}

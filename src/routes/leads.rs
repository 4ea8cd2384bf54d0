//! `/api/v1/leads`: intake, reading (scoped: a protected lead is a 404 for other reps, and the
//! attempt is logged), follow-ups, claims from the pool, conversion, manager reassignment, the
//! decision records and their explanation, and the health figures.

use super::{PageOf, PageQuery};
use crate::auth::Caller;
use crate::db::{self, entities::lead, leads as repo};
use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::services::leads::{self as service, protection};
use crate::state::AppState;
use actix_web::{HttpResponse, get, patch, post, web};
use fieldproof_domain::account::Role;
use fieldproof_domain::leads::SourceChannel;
use fieldproof_domain::leads::assign::RepVerdict;
use fieldproof_domain::leads::health::HealthFigures;
use fieldproof_domain::leads::import::RawLead;
use fieldproof_domain::leads::record::StoredDecision;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Fixed paths before `/leads/{id}` so `health` and `imports` are not taken for ids.
    cfg.service(lead_health)
        .service(super::lead_imports::import_leads)
        .service(super::lead_imports::import_errors)
        .service(list_leads)
        .service(create_lead)
        .service(get_lead)
        .service(patch_lead)
        .service(add_activity)
        .service(claim_lead)
        .service(convert_lead)
        .service(reassign_lead)
        .service(lead_decisions)
        .service(explain_lead)
        .service(access_attempts);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LeadView {
    pub id: String,
    pub company: String,
    pub contact_name: String,
    pub contact_title: String,
    pub phone: Option<String>,
    pub industry: String,
    pub source: String,
    /// Fen (1/100 CNY).
    pub annual_purchase_fen: i64,
    pub seniority: String,
    pub province: String,
    pub city: String,
    pub response_speed: String,
    pub products: Vec<String>,
    pub notes: String,
    /// `pool`, `assigned` or `converted`.
    pub status: String,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    /// `rule`, `existing_owner`, `claim` or `manual`.
    pub assigned_by: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub assigned_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub protection_ends_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_activity_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339::option")]
    pub converted_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl From<lead::Model> for LeadView {
    fn from(l: lead::Model) -> Self {
        LeadView {
            products: serde_json::from_value(l.products).unwrap_or_default(),
            id: l.id,
            company: l.company,
            contact_name: l.contact_name,
            contact_title: l.contact_title,
            phone: l.phone,
            industry: l.industry,
            source: l.source,
            annual_purchase_fen: l.annual_purchase_fen,
            seniority: l.seniority,
            province: l.province,
            city: l.city,
            response_speed: l.response_speed,
            notes: l.notes,
            status: l.status,
            owner_id: l.owner_id,
            team_id: l.team_id,
            customer_id: l.customer_id,
            assigned_by: l.assigned_by,
            assigned_at: l.assigned_at,
            protection_ends_at: l.protection_ends_at,
            first_activity_at: l.first_activity_at,
            converted_at: l.converted_at,
            created_at: l.created_at,
        }
    }
}

/// A lead as submitted (API or capture form). Enum fields take their code or a Chinese name.
#[derive(Deserialize, utoipa::ToSchema, Default)]
pub struct CreateLeadRequest {
    pub company: Option<String>,
    pub contact_name: Option<String>,
    pub phone: Option<String>,
    pub contact_title: Option<String>,
    /// e.g. `manufacturing` or `制造业`.
    pub industry: Option<String>,
    /// e.g. `website`, `referral`, `trade_show`; defaults to the source's channel.
    pub source: Option<String>,
    pub annual_purchase_fen: Option<i64>,
    /// `executive`, `director`, `manager`, `staff`, `unknown` (or guessed from the title).
    pub seniority: Option<String>,
    pub province: Option<String>,
    pub city: Option<String>,
    #[serde(default)]
    pub products: Vec<String>,
    pub notes: Option<String>,
}

impl CreateLeadRequest {
    pub fn into_raw(self) -> RawLead {
        RawLead {
            company: self.company,
            contact_name: self.contact_name,
            phone: self.phone,
            contact_title: self.contact_title,
            industry: self.industry,
            source: self.source,
            annual_purchase_fen: self.annual_purchase_fen,
            seniority: self.seniority,
            province: self.province,
            city: self.city,
            products: self.products,
            notes: self.notes,
        }
    }
}

/// Field errors of a submitted lead as one 422.
pub fn invalid_lead(errors: Vec<fieldproof_domain::leads::import::FieldError>) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed).with_details(json!({ "errors": errors }))
}

/// A lead the caller may see; otherwise 404 (and, for a lead that exists, the attempt is logged).
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: &str,
    action: &str,
) -> ApiResult<lead::Model> {
    if let Some(row) = repo::find_visible(&state.db, caller, id).await? {
        return Ok(row);
    }
    if let Some(row) = repo::find_in_org(&state.db, &caller.org_id, id).await? {
        repo::log_attempt(&state.db, &row, &caller.user_id, action).await?;
        tracing::info!(lead = %row.id, user = %caller.user_id, action, "access to a protected lead refused");
    }
    Err(ApiError::not_found())
}

fn may_manage(caller: &Caller, row: &lead::Model) -> bool {
    caller.is_admin()
        || (caller.leads_team()
            && caller.team_id.is_some()
            && (row.team_id == caller.team_id || row.status == repo::POOL))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ListQuery {
    /// 1–200, default 50.
    pub limit: Option<u64>,
    pub cursor: Option<String>,
    /// `pool`, `assigned` or `converted`.
    pub status: Option<String>,
}

/// Leads the caller may see: their own, the pool, and (managers) their team's.
#[utoipa::path(tag = "leads", params(ListQuery), responses((status = 200, body = PageOf<LeadView>)), security(("bearer" = [])))]
#[get("/leads")]
async fn list_leads(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> ApiResult<web::Json<PageOf<LeadView>>> {
    let q = query.into_inner();
    let page = PageQuery {
        limit: q.limit,
        cursor: q.cursor,
    }
    .parse()?;
    // The read-only pool: on SQLite a listing never waits for, nor holds up, the writer.
    let page = repo::list_visible(&state.reads, &caller, q.status.as_deref(), &page).await?;
    Ok(web::Json(PageOf {
        items: page.items.into_iter().map(LeadView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Create a lead and assign it by the rules at once (or route it to the customer's owner).
#[utoipa::path(tag = "leads", request_body = CreateLeadRequest, responses((status = 201, body = LeadView), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads")]
async fn create_lead(
    state: web::Data<AppState>,
    session: crate::auth::caller::UncheckedSession,
    body: web::Json<CreateLeadRequest>,
) -> ApiResult<HttpResponse> {
    let draft = body
        .into_inner()
        .into_raw()
        .parse(SourceChannel::Other)
        .map_err(invalid_lead)?;
    // The account and session are checked by the dispatcher with the rest of its batch.
    let Some((row, user)) = service::intake_in_session(
        &state.lead_dispatcher,
        &session.user_id,
        &session.session_id,
        draft,
    )
    .await?
    else {
        return Err(ApiError::new(ErrorCode::TokenInvalid));
    };
    let caller = session.checked(user);
    // The creator sees the lead only if it is theirs to see (a rep who typed in a lead that went
    // to a colleague gets an acknowledgement, not the protected contents). The row is the one
    // the batch stored, so no read-back.
    if repo::is_visible_to(&caller, &row) {
        Ok(HttpResponse::Created().json(LeadView::from(row)))
    } else {
        Ok(HttpResponse::Accepted().json(json!({"received": true})))
    }
}

#[utoipa::path(tag = "leads", responses((status = 200, body = LeadView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/{id}")]
async fn get_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<LeadView>> {
    Ok(web::Json(
        visible(&state, &caller, &id, "read").await?.into(),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchLeadRequest {
    pub contact_name: Option<String>,
    pub contact_title: Option<String>,
    pub notes: Option<String>,
}

/// Edit contact details and notes (the owner, or a manager of the lead's team).
#[utoipa::path(tag = "leads", request_body = PatchLeadRequest, responses((status = 200, body = LeadView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[patch("/leads/{id}")]
async fn patch_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<PatchLeadRequest>,
) -> ApiResult<web::Json<LeadView>> {
    use sea_orm::Set;
    let row = visible(&state, &caller, &id, "write").await?;
    if row.owner_id.as_deref() != Some(caller.user_id.as_str()) && !may_manage(&caller, &row) {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    let limit = |field: &str, v: Option<String>, max: usize| -> ApiResult<Option<String>> {
        match v {
            Some(s) if s.chars().count() > max => Err(ApiError::invalid_field(
                field,
                format!("at most {max} characters"),
                format!("不超过 {max} 字"),
            )),
            other => Ok(other.map(|s| s.trim().to_owned())),
        }
    };
    let mut active: lead::ActiveModel = row.into();
    if let Some(v) = limit("contact_name", body.contact_name, 100)? {
        active.contact_name = Set(v);
    }
    if let Some(v) = limit("contact_title", body.contact_title, 100)? {
        active.contact_title = Set(v);
    }
    if let Some(v) = limit("notes", body.notes, 2000)? {
        active.notes = Set(v);
    }
    active.updated_at = Set(db::now());
    Ok(web::Json(repo::save(&state.db, active).await?.into()))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ActivityRequest {
    /// `call`, `visit`, `message` or `note`.
    pub channel: String,
    pub summary: String,
    /// When it happened; defaults to now.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub occurred_at: Option<OffsetDateTime>,
}

/// The owner logs a follow-up; the first one keeps the lead from returning to the pool.
#[utoipa::path(tag = "leads", request_body = ActivityRequest, responses((status = 201), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads/{id}/activities")]
async fn add_activity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ActivityRequest>,
) -> ApiResult<HttpResponse> {
    let row = visible(&state, &caller, &id, "write").await?;
    if row.owner_id.as_deref() != Some(caller.user_id.as_str()) {
        return Err(ApiError::forbidden());
    }
    let body = body.into_inner();
    if !["call", "visit", "message", "note"].contains(&body.channel.as_str()) {
        return Err(ApiError::invalid_field(
            "channel",
            "one of call, visit, message, note",
            "须为 call、visit、message、note 之一",
        ));
    }
    let summary = body.summary.trim();
    if summary.is_empty() || summary.chars().count() > 2000 {
        return Err(ApiError::invalid_field(
            "summary",
            "1-2000 characters",
            "1 到 2000 字",
        ));
    }
    let activity = protection::follow_up(
        &state.db,
        &row,
        &caller.user_id,
        &body.channel,
        summary,
        body.occurred_at.unwrap_or_else(db::now),
    )
    .await?
    .map_err(not_yours)?;
    Ok(HttpResponse::Created()
        .json(json!({"id": activity.id, "lead_id": activity.lead_id, "channel": activity.channel})))
}

/// Take a pool lead (daily cap; not a lead that just expired in your hands; room under capacity).
#[utoipa::path(tag = "leads", responses((status = 200, body = LeadView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads/{id}/claim")]
async fn claim_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<LeadView>> {
    let row = visible(&state, &caller, &id, "claim").await?;
    if caller.role != Role::Rep {
        return Err(ApiError::forbidden());
    }
    let limits = protection::ClaimLimits {
        daily_cap: state.settings.lead_daily_claim_cap,
        protection_hours: state.settings.lead_claim_protection_hours,
        reclaim_block: time::Duration::hours(state.settings.lead_reclaim_block_hours.max(0)),
    };
    match protection::claim(&state.db, &caller, &row.id, limits).await? {
        Ok(_) => {}
        Err(protection::ClaimRefused::NotInPool) => {
            return Err(ApiError::new(ErrorCode::LeadNotInPool));
        }
        Err(protection::ClaimRefused::DailyCap { cap }) => {
            return Err(ApiError::new(ErrorCode::LeadClaimLimit)
                .with_details(json!({"cap": cap, "window_hours": 24})));
        }
        Err(protection::ClaimRefused::ReclaimBlocked { until }) => {
            let until = until
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
            return Err(
                ApiError::new(ErrorCode::LeadReclaimBlocked).with_details(json!({"until": until}))
            );
        }
        Err(protection::ClaimRefused::AtCapacity | protection::ClaimRefused::NoProfile) => {
            return Err(ApiError::new(ErrorCode::RepAtCapacity));
        }
    }
    let row = repo::find(&state.db, &row.id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(web::Json(row.into()))
}

/// The owner converts the lead into a customer they own.
#[utoipa::path(tag = "leads", responses((status = 200, body = LeadView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads/{id}/convert")]
async fn convert_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<LeadView>> {
    let row = visible(&state, &caller, &id, "write").await?;
    if row.owner_id.as_deref() != Some(caller.user_id.as_str()) {
        return Err(ApiError::forbidden());
    }
    if row.status != repo::ASSIGNED {
        return Err(ApiError::new(ErrorCode::Conflict).with_details(json!({"status": row.status})));
    }
    Ok(web::Json(
        protection::convert(&state.db, row, &caller)
            .await?
            .map_err(not_yours)?
            .into(),
    ))
}

/// 409 `lead_not_yours`: the owner's follow-up or conversion found the lead no longer theirs.
fn not_yours(refused: protection::NotYours) -> ApiError {
    ApiError::new(ErrorCode::LeadNotYours).with_details(json!({"status": refused.status}))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReassignRequest {
    pub rep_id: String,
}

/// A manager gives the lead to another rep (possibly of another team: counted as a
/// cross-group move in the health figures).
#[utoipa::path(tag = "leads", request_body = ReassignRequest, responses((status = 200, body = LeadView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/leads/{id}/reassign")]
async fn reassign_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ReassignRequest>,
) -> ApiResult<web::Json<LeadView>> {
    let row = visible(&state, &caller, &id, "write").await?;
    if !may_manage(&caller, &row) {
        return Err(ApiError::forbidden());
    }
    if row.status == repo::CONVERTED {
        return Err(ApiError::new(ErrorCode::Conflict).with_details(json!({"status": row.status})));
    }
    let to = db::users::find_active(&state.db, &body.rep_id)
        .await?
        .filter(|u| u.org_id == caller.org_id && u.role == Role::Rep)
        .ok_or_else(|| ApiError::invalid_field("rep_id", "no such rep", "该销售不存在"))?;
    let saved = protection::reassign(
        &state.db,
        row,
        &caller,
        &to,
        state.settings.lead_claim_protection_hours,
    )
    .await?
    .map_err(|refused| {
        ApiError::new(ErrorCode::Conflict).with_details(json!({"status": refused.status}))
    })?;
    Ok(web::Json(saved.into()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DecisionView {
    pub id: String,
    /// `rule`, `pool`, `existing_owner`, `claim`, `reassign` or `expired`.
    pub kind: String,
    pub rule_set_version: Option<i32>,
    pub rep_id: Option<String>,
    /// Inputs, layers tried, candidates with scores, exclusions (see docs/leads.md).
    #[schema(value_type = Object)]
    pub record: Value,
    #[serde(with = "time::serde::rfc3339")]
    pub decided_at: OffsetDateTime,
}

/// Every decision about the lead, oldest first.
#[utoipa::path(tag = "leads", responses((status = 200, body = Vec<DecisionView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/{id}/decisions")]
async fn lead_decisions(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<DecisionView>>> {
    let row = visible(&state, &caller, &id, "read").await?;
    let rows = repo::decisions_of(&state.db, &row.id).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|d| {
                Ok(DecisionView {
                    record: repo::record_json(&d.record).map_err(ApiError::internal)?,
                    id: d.id,
                    kind: d.kind,
                    rule_set_version: d.rule_set_version,
                    rep_id: d.rep_id,
                    decided_at: d.decided_at,
                })
            })
            .collect::<ApiResult<_>>()?,
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct ExplainQuery {
    /// The rep to explain; defaults to the lead's owner.
    pub rep_id: Option<String>,
}

/// "Why did rep X get this lead (or not)": the rule decision, with that rep's standing.
#[utoipa::path(tag = "leads", params(ExplainQuery), responses((status = 200, body = Object), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/{id}/explain")]
async fn explain_lead(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    query: web::Query<ExplainQuery>,
) -> ApiResult<web::Json<Value>> {
    let row = visible(&state, &caller, &id, "read").await?;
    let decisions = repo::decisions_of(&state.db, &row.id).await?;
    let Some(d) = decisions
        .iter()
        .rev()
        .find(|d| ["rule", "pool", "existing_owner"].contains(&d.kind.as_str()))
    else {
        return Err(ApiError::not_found().with_message(
            "This lead has no assignment decision yet.",
            "该线索尚无分配决策。",
        ));
    };
    let rep_id = query
        .into_inner()
        .rep_id
        .or_else(|| d.rep_id.clone())
        .unwrap_or_default();
    let record = repo::record_json(&d.record).map_err(ApiError::internal)?;
    if d.kind == "existing_owner" {
        let chosen = d.rep_id.as_deref() == Some(rep_id.as_str());
        return Ok(web::Json(json!({
            "lead_id": row.id, "decision_id": d.id, "kind": d.kind, "decided_at": d.decided_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
            "rep_id": rep_id, "verdict": if chosen { "chosen" } else { "not_considered" },
            "existing_owner": record["existing_owner"],
            "summary_en": "The customer already has an owner, so the lead went to them without applying the rules.",
            "summary_zh": "该客户已有负责人，线索直接交给负责人，未经分配规则。",
        })));
    }
    let decision: StoredDecision =
        serde_json::from_value(record["decision"].clone()).map_err(ApiError::internal)?;
    let roster = repo::roster(&state.db, &caller.org_id, &decision.roster)
        .await?
        .unwrap_or_default();
    let rules = service::rules::of_version(
        &state.db,
        &caller.org_id,
        d.rule_set_version.unwrap_or_default(),
    )
    .await?
    .unwrap_or_else(|| fieldproof_domain::leads::RuleSet {
        protection_hours: 24,
        layers: Vec::new(),
    });
    let candidates = decision.candidates(&d.lead_id, &roster);
    let layers = decision.layers(&rules);
    let verdict = decision.verdict_for(&rep_id, &roster, &candidates);
    let layer_name = decision
        .deciding_layer
        .and_then(|i| layers.get(i))
        .map(|l| l.name.clone())
        .unwrap_or_default();
    let (en, zh) = match &verdict {
        RepVerdict::Chosen { candidate } => (
            format!(
                "Chosen at layer \"{layer_name}\": lowest load relative to capacity ({}‰ of {}), then longest wait, among {} candidates.",
                candidate.load_permille,
                candidate.capacity,
                candidates.len()
            ),
            format!(
                "在规则层「{layer_name}」中被选中：在 {} 名候选人中负荷率最低（{}‰，容量 {}），其次等待最久。",
                candidates.len(),
                candidate.load_permille,
                candidate.capacity
            ),
        ),
        RepVerdict::Outranked { candidate, winner } => (
            format!(
                "A candidate at layer \"{layer_name}\" ranked {}: load {}‰ against the winner's {}‰.",
                candidate.rank, candidate.load_permille, winner.load_permille
            ),
            format!(
                "在规则层「{layer_name}」中是候选人，排名第 {}：负荷率 {}‰，中选者为 {}‰。",
                candidate.rank, candidate.load_permille, winner.load_permille
            ),
        ),
        RepVerdict::Excluded { reason } => {
            let why = serde_json::to_string(reason).unwrap_or_default();
            (
                format!("Excluded at layer \"{layer_name}\": {why}."),
                format!("在规则层「{layer_name}」被排除：{why}。"),
            )
        }
        RepVerdict::NotConsidered => (
            "Not considered: not a rep with a profile in this org at the time.".to_owned(),
            "未参与分配：当时不是本组织中设置了销售档案的销售。".to_owned(),
        ),
    };
    Ok(web::Json(json!({
        "lead_id": row.id,
        "decision_id": d.id,
        "kind": d.kind,
        "rule_set_version": d.rule_set_version,
        "decided_at": d.decided_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "outcome": decision.outcome,
        "layers": layers,
        "candidates": candidates.iter().take(20).collect::<Vec<_>>(),
        "candidates_total": candidates.len(),
        "rep_id": rep_id,
        "rep": verdict,
        "summary_en": en,
        "summary_zh": zh,
    })))
}

/// Refused reads and writes of a protected lead (admins and the team's managers).
#[utoipa::path(tag = "leads", responses((status = 200, body = Object), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/{id}/access-attempts")]
async fn access_attempts(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Value>> {
    let row = visible(&state, &caller, &id, "read").await?;
    if !may_manage(&caller, &row) {
        return Err(ApiError::forbidden());
    }
    let items: Vec<Value> = repo::access_attempts(&state.db, &row.id)
        .await?
        .into_iter()
        .map(|a| json!({"user_id": a.user_id, "action": a.action, "at": a.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()}))
        .collect();
    Ok(web::Json(json!({ "items": items })))
}

#[derive(Deserialize, utoipa::IntoParams)]
pub struct HealthQuery {
    /// Defaults to the manager's team; admins may omit it for the whole org.
    pub team_id: Option<String>,
    /// Period start (RFC 3339); defaults to `days` before `to`.
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub from: Option<OffsetDateTime>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub to: Option<OffsetDateTime>,
    /// Length of the period when `from` is not given, 1-366 (default 30).
    pub days: Option<i64>,
}

/// The health figures of one team (or, for admins, the whole org) over a period, with the
/// team and period they cover.
#[derive(Debug)]
pub struct TeamHealth {
    /// `None`: the whole org.
    pub team_id: Option<String>,
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub figures: HealthFigures,
}

/// Health of distribution, for the API and the console alike: admins any team (`team_id`) or
/// the whole org (none); managers and supervisors their own team only (none means theirs, and
/// one without a team sees nothing); everyone else is refused. The period is `[from, to)`,
/// `to` defaulting to now and `from` to `days` (1–366, default 30) before `to`.
pub async fn team_health(
    state: &AppState,
    caller: &Caller,
    team_id: Option<String>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
    days: Option<i64>,
) -> ApiResult<TeamHealth> {
    let own = caller.team_id.as_deref();
    let team = match (&caller.role, team_id) {
        (Role::Admin, team) => team,
        (Role::Manager | Role::Supervisor, None) if own.is_some() => own.map(str::to_owned),
        (Role::Manager | Role::Supervisor, Some(t)) if own == Some(t.as_str()) => Some(t),
        _ => return Err(ApiError::forbidden()),
    };
    // An admin naming a team of no org of theirs gets 404, not a page of zeros.
    if let Some(t) = &team
        && db::teams::find(&state.reads, &caller.org_id, t)
            .await?
            .is_none()
    {
        return Err(ApiError::not_found());
    }
    let days = days.unwrap_or(30);
    if !(1..=366).contains(&days) {
        return Err(ApiError::invalid_field(
            "days",
            "1-366",
            "须在 1 到 366 之间",
        ));
    }
    let to = to.unwrap_or_else(db::now);
    let from = from.unwrap_or(to - time::Duration::days(days));
    let figures =
        service::insight::health_of(&state.reads, &caller.org_id, team.as_deref(), from, to)
            .await?;
    Ok(TeamHealth {
        team_id: team,
        from,
        to,
        figures,
    })
}

/// Health of distribution for a team and period (definitions in docs/leads.md).
#[utoipa::path(tag = "leads", params(HealthQuery), responses((status = 200, body = Object), (status = 403, body = ErrorBody)), security(("bearer" = [])))]
#[get("/leads/health")]
async fn lead_health(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<HealthQuery>,
) -> ApiResult<web::Json<Value>> {
    let q = query.into_inner();
    let health = team_health(&state, &caller, q.team_id, q.from, q.to, q.days).await?;
    let rfc = |t: OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    };
    Ok(web::Json(json!({
        "team_id": health.team_id,
        "from": rfc(health.from),
        "to": rfc(health.to),
        "figures": health.figures,
    })))
}

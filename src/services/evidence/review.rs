//! The supervisor's side: the queue of rejected and doubtful evidence of their teams, and the
//! decision on each. Approving is an override recorded with its reason: the photo then counts
//! for its node and the stage engine re-evaluates; rejecting tells the rep to retake.

use super::view::current_view;
use crate::auth::Caller;
use crate::db::entities::evidence;
use crate::db::{self, deals as deal_repo, evidence as repo};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::services::deals as engine;
use crate::services::notify::{self, Notice};
use crate::state::AppState;
use crate::storage::BlobKey;
use fieldproof_domain::account::Role;
use sea_orm::TransactionTrait;
use serde::Serialize;
use serde_json::{Value, json};
use std::time::Duration;

const THUMB_URL_TTL: Duration = Duration::from_secs(600);

/// Who may see the review queue of a team.
pub fn reviews_team(caller: &Caller, team_id: Option<&str>) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Supervisor | Role::Manager => {
            caller.team_id.is_some() && team_id == caller.team_id.as_deref()
        }
        Role::Rep | Role::Presales | Role::Finance => false,
    }
}

/// Who may decide: supervisors of the evidence's team, and admins.
pub fn decides(caller: &Caller, row: &evidence::Model) -> bool {
    match caller.role {
        Role::Admin => true,
        Role::Supervisor => caller.team_id.is_some() && row.team_id == caller.team_id,
        Role::Manager | Role::Rep | Role::Presales | Role::Finance => false,
    }
}

/// `exp=…&sig=…`: a few minutes' permission to load this evidence's thumbnail, for whoever was
/// shown it (the API's review item, the console's page).
pub fn thumbnail_grant(state: &AppState, evidence_id: &str) -> String {
    let exp = db::now().unix_timestamp() + THUMB_URL_TTL.as_secs() as i64;
    let sig = state.url_signer.sign(&format!("thumb:{evidence_id}:{exp}"));
    format!("exp={exp}&sig={sig}")
}

/// The thumbnail's bytes, if the grant is genuine and fresh; anything else is not found.
pub async fn granted_thumbnail(
    state: &AppState,
    evidence_id: &str,
    exp: i64,
    sig: &str,
) -> ApiResult<Vec<u8>> {
    let fresh = exp >= db::now().unix_timestamp();
    if !fresh
        || !state
            .url_signer
            .verify(&format!("thumb:{evidence_id}:{exp}"), sig)
    {
        return Err(ApiError::not_found());
    }
    let row = repo::find(&state.db, evidence_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let key = row.thumb_key.ok_or_else(ApiError::not_found)?;
    Ok(state
        .blobs
        .get(&BlobKey::parse(key).map_err(ApiError::internal)?)
        .await?)
}

/// A URL the console or phone can load the thumbnail from for a few minutes.
pub async fn thumbnail_url(state: &AppState, row: &evidence::Model) -> ApiResult<Option<String>> {
    let Some(key) = &row.thumb_key else {
        return Ok(None);
    };
    let key = BlobKey::parse(key.clone()).map_err(ApiError::internal)?;
    if let Some(url) = state.blobs.presigned_get(&key, THUMB_URL_TTL).await? {
        return Ok(Some(url));
    }
    Ok(Some(format!(
        "/api/v1/evidence/{}/thumbnail?{}",
        row.id,
        thumbnail_grant(state, &row.id)
    )))
}

/// Evidence the caller may see: in their org, on a deal they can see; otherwise not found.
pub async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<evidence::Model> {
    let row = repo::find(&state.db, id)
        .await?
        .filter(|r| r.org_id == caller.org_id)
        .ok_or_else(ApiError::not_found)?;
    deal_repo::find_visible(&state.db, caller, &row.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(row)
}

/// What a supervisor asks of the queue (API query or console filters).
#[derive(Debug, Default, Clone)]
pub struct QueueRequest {
    /// Default: the caller's team (admins: the whole org).
    pub team_id: Option<String>,
    pub rep_id: Option<String>,
    pub check: Option<String>,
    pub from: Option<time::OffsetDateTime>,
    pub to: Option<time::OffsetDateTime>,
}

/// One page of the review queue, newest first, scoped like every other read: a team the caller
/// does not review is not found.
pub async fn queue(
    state: &AppState,
    caller: &Caller,
    request: QueueRequest,
    cursor: Option<&str>,
    limit: u64,
) -> ApiResult<db::Page<evidence::Model>> {
    let team = request.team_id.clone().or_else(|| {
        if caller.is_admin() {
            None
        } else {
            caller.team_id.clone()
        }
    });
    if !(reviews_team(caller, team.as_deref()) || (caller.is_admin() && team.is_none())) {
        return Err(ApiError::not_found());
    }
    let filter = repo::QueueFilter {
        org_id: caller.org_id.clone(),
        team_id: team,
        rep_id: request.rep_id,
        check: request.check,
        from: request.from,
        to: request.to,
    };
    let mut rows = repo::review_queue(&state.reads, &filter, cursor, limit + 1).await?;
    let more = rows.len() as u64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok(db::Page {
        items: rows,
        next_cursor,
    })
}

/// A decision as the supervisor gave it: `approve` or `reject`, and a reason of 4-2000
/// characters (shown to the rep, kept in the audit trail). Returns (approve, trimmed reason).
pub fn parse_decision(decision: &str, reason: &str) -> ApiResult<(bool, String)> {
    let approve = match decision {
        "approve" => true,
        "reject" => false,
        _ => {
            return Err(ApiError::invalid_field(
                "decision",
                "approve or reject",
                "须为 approve 或 reject",
            ));
        }
    };
    let reason = reason.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 2000 {
        return Err(ApiError::invalid_field(
            "reason",
            "a reason of 4-2000 characters is required",
            "须填写 4-2000 字的理由",
        ));
    }
    Ok((approve, reason.to_owned()))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NearDuplicate {
    pub evidence_id: String,
    pub deal_id: String,
    pub captured_at: Option<String>,
    pub thumbnail_url: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ReviewItem {
    /// The evidence as its uploader saw it (verdict, checks with zh/en messages).
    #[schema(value_type = Object)]
    pub evidence: Value,
    pub uploader_id: String,
    pub thumbnail_url: Option<String>,
    /// From the `outside_site` check, when there is one.
    pub distance_m: Option<f64>,
    pub radius_m: Option<f64>,
    /// The other photo, for near-duplicates.
    pub near_duplicate: Option<NearDuplicate>,
}

fn check_detail<'a>(row: &'a evidence::Model, code: &str) -> Option<&'a Value> {
    row.checks
        .as_array()?
        .iter()
        .find(|c| c.get("code").and_then(Value::as_str) == Some(code))
        .and_then(|c| c.get("detail"))
}

pub async fn item(state: &AppState, row: &evidence::Model) -> ApiResult<ReviewItem> {
    let outside = check_detail(row, "outside_site");
    let near_id = ["duplicate_near", "duplicate_exact"]
        .iter()
        .find_map(|code| {
            row.checks.as_array()?.iter().find(|c| {
                c.get("code").and_then(Value::as_str) == Some(code)
                    && c.get("outcome").and_then(Value::as_str) != Some("pass")
            })
        })
        .and_then(|c| {
            c.get("detail")?
                .get("other_evidence_id")?
                .as_str()
                .map(str::to_owned)
        });
    let near_duplicate = match near_id {
        Some(id) => match repo::find(&state.db, &id)
            .await?
            .filter(|o| o.org_id == row.org_id)
        {
            Some(other) => Some(NearDuplicate {
                evidence_id: other.id.clone(),
                deal_id: other.deal_id.clone(),
                captured_at: other.captured_at.and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                }),
                thumbnail_url: thumbnail_url(state, &other).await?,
            }),
            None => None,
        },
        None => None,
    };
    Ok(ReviewItem {
        evidence: current_view(row),
        uploader_id: row.uploader_id.clone(),
        thumbnail_url: thumbnail_url(state, row).await?,
        distance_m: outside
            .and_then(|d| d.get("distance_m"))
            .and_then(Value::as_f64),
        radius_m: outside
            .and_then(|d| d.get("radius_m"))
            .and_then(Value::as_f64),
        near_duplicate,
    })
}

/// Approve (override, reason required) or reject (the rep is told to retake).
pub async fn decide(
    state: &AppState,
    caller: &Caller,
    evidence_id: &str,
    approve: bool,
    reason: &str,
) -> ApiResult<Value> {
    let row = repo::find(&state.db, evidence_id)
        .await?
        .filter(|r| r.org_id == caller.org_id)
        .ok_or_else(ApiError::not_found)?;
    let deal_visible = deal_repo::find_visible(&state.db, caller, &row.deal_id)
        .await?
        .is_some();
    if !deal_visible {
        return Err(ApiError::not_found());
    }
    if !decides(caller, &row) {
        return Err(ApiError::forbidden());
    }
    let now = db::now();
    let state_name = if approve {
        repo::REVIEW_APPROVED
    } else {
        repo::REVIEW_REJECTED
    };
    let txn = state.db.begin().await?;
    let locked = deal_repo::lock(&txn, &row.deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !repo::decide(&txn, &row.id, state_name, &caller.user_id, reason, now).await? {
        return Err(ApiError::new(ErrorCode::ReviewClosed));
    }
    db::audit::append(
        &txn,
        &row.org_id,
        &row.deal_id,
        if approve { "evidence_approved" } else { "evidence_rejected" },
        Some(&caller.user_id),
        json!({"evidence_id": row.id, "node": row.node_key, "verdict": row.verdict, "reason": reason}),
    )
    .await?;
    if approve {
        // It counts only for the run it was uploaded to, and only while that run is open.
        let run_open = deal_repo::open_run_of(&txn, &row.deal_id, &row.node_key)
            .await?
            .is_some_and(|r| r.id == row.node_run_id);
        if run_open {
            super::record_fact(&txn, &row).await?;
            let template = engine::template_of(&txn, &locked).await?;
            engine::advance(state, &txn, locked, &template).await?;
        }
    } else {
        notify::notify(
            &txn,
            Notice {
                org_id: row.org_id.clone(),
                recipients: vec![row.uploader_id.clone()],
                team_id: None,
                kind: "evidence_rejected".into(),
                title_en: format!(
                    "Please retake: your {} for {} was rejected",
                    row.kind, row.node_key
                ),
                title_zh: format!(
                    "请重新拍摄：您在「{}」环节上传的照片未通过审核",
                    row.node_key
                ),
                body_en: format!("Reason: {reason}"),
                body_zh: format!("原因：{reason}"),
                link: Some(format!("/api/v1/evidence/{}", row.id)),
                dedup_key: Some(format!("evidence-rejected:{}", row.id)),
            },
        )
        .await?;
    }
    txn.commit().await?;
    let row = repo::find(&state.db, evidence_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(current_view(&row))
}

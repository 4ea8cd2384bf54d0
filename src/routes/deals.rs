//! `/api/v1/deals`: deals, the facts recorded on their current node, returns, the activity
//! log and the audit trail. No route sets a node's state: facts go in, the rules decide.

use super::{PageOf, PageQuery};
use crate::auth::Caller;
use crate::db::{self, audit, deals as repo, entities::deal};
use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::services::deals::{self as engine, Fact, NewDeal, ProductLine};
use crate::state::AppState;
use actix_web::{HttpResponse, get, patch, post, web};
use fieldproof_domain::pipeline::{RequirementStatus, Stage, evaluate_node};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(list_deals)
        .service(create_deal)
        .service(get_deal)
        .service(patch_deal)
        .service(record_visit)
        .service(record_checklist)
        .service(record_approval)
        .service(record_override)
        .service(return_deal)
        .service(list_activities)
        .service(create_activity)
        .service(get_audit)
        .service(verify_audit);
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DealSummary {
    pub id: String,
    pub customer_id: String,
    pub title: String,
    pub owner_id: String,
    pub status: String,
    pub current_node: Option<String>,
    pub expected_value_fen: i64,
}

impl From<deal::Model> for DealSummary {
    fn from(d: deal::Model) -> Self {
        DealSummary {
            id: d.id,
            customer_id: d.customer_id,
            title: d.title,
            owner_id: d.owner_id,
            status: d.status,
            current_node: d.current_node_key,
            expected_value_fen: d.expected_value_fen,
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct NodeView {
    pub key: String,
    pub name_en: String,
    pub name_zh: String,
    #[schema(value_type = String)]
    pub stage: Stage,
    /// `passed`, `current` or `pending`.
    pub state: &'static str,
    pub runs: usize,
    pub returns: usize,
    pub stall_after_hours: u32,
    /// For the current node: each requirement and what it still misses.
    #[schema(value_type = Vec<Object>)]
    pub requirements: Vec<RequirementStatus>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DealView {
    pub id: String,
    pub customer_id: String,
    pub site_id: Option<String>,
    pub title: String,
    pub owner_id: String,
    pub team_id: Option<String>,
    pub presales_id: Option<String>,
    pub template_id: String,
    pub template_version: i32,
    pub products: Vec<ProductLine>,
    pub expected_value_fen: i64,
    /// Content hash of the product lines; price approvals are bound to it.
    pub quote_hash: String,
    /// `open` or `won`.
    pub status: String,
    pub current_node: Option<String>,
    /// The booked visit (site, contact, window), once `visit_booked` has its fact.
    pub visit: Option<engine::BookedVisit>,
    pub nodes: Vec<NodeView>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

/// The deal as clients see it: every node of its template with its state, runs and returns,
/// and the current node's requirements (also the console's deal page).
pub async fn deal_view(state: &AppState, row: deal::Model) -> ApiResult<DealView> {
    let template = engine::template_of(&state.db, &row).await?;
    let runs = repo::runs_of(&state.db, &row.id).await?;
    let current = row.current_node_key.clone();
    let current_pos = current
        .as_deref()
        .and_then(|k| template.definition.position(k));
    let mut nodes = Vec::new();
    for (index, node) in template.definition.nodes.iter().enumerate() {
        let runs_here: Vec<_> = runs.iter().filter(|r| r.node_key == node.key).collect();
        let state_name = match current_pos {
            Some(p) if index == p => "current",
            Some(p) if index < p => "passed",
            None if row.status == engine::STATUS_WON => "passed",
            _ => "pending",
        };
        let requirements = match runs_here.iter().find(|r| r.outcome == repo::OPEN) {
            Some(run) if state_name == "current" => {
                let facts = engine::gather_facts(&state.db, &row, run).await?;
                evaluate_node(node, &facts, 1).requirements
            }
            _ => Vec::new(),
        };
        nodes.push(NodeView {
            key: node.key.clone(),
            name_en: node.name_en.clone(),
            name_zh: node.name_zh.clone(),
            stage: node.stage,
            state: state_name,
            runs: runs_here.len(),
            returns: runs_here
                .iter()
                .filter(|r| r.outcome == repo::RETURNED)
                .count(),
            stall_after_hours: node.stall_after_hours,
            requirements,
        });
    }
    let visit = engine::booked_visit(&state.db, &row.id).await?;
    Ok(DealView {
        visit,
        products: engine::products_of(&row),
        id: row.id,
        customer_id: row.customer_id,
        site_id: row.site_id,
        title: row.title,
        owner_id: row.owner_id,
        team_id: row.team_id,
        presales_id: row.presales_id,
        template_id: template.id,
        template_version: template.version,
        expected_value_fen: row.expected_value_fen,
        quote_hash: row.quote_hash,
        status: row.status,
        current_node: row.current_node_key,
        nodes,
        created_at: row.created_at,
    })
}

async fn visible(state: &AppState, caller: &Caller, id: &str) -> ApiResult<deal::Model> {
    repo::find_visible(&state.db, caller, id)
        .await?
        .ok_or_else(ApiError::not_found)
}

#[utoipa::path(tag = "deals", params(PageQuery), responses((status = 200, body = PageOf<DealSummary>)), security(("bearer" = [])))]
#[get("/deals")]
async fn list_deals(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<PageQuery>,
) -> ApiResult<web::Json<PageOf<DealSummary>>> {
    let page = repo::list_visible(&state.reads, &caller, &query.into_inner().parse()?).await?;
    Ok(web::Json(PageOf {
        items: page.items.into_iter().map(DealSummary::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct CreateDealRequest {
    pub customer_id: String,
    pub site_id: Option<String>,
    pub title: String,
    #[serde(default)]
    pub products: Vec<ProductLine>,
    /// The presales engineer assigned (sees the deal, approves `presales_review`).
    pub presales_id: Option<String>,
    /// A pipeline template version; default: the org's latest `default`.
    pub template_id: Option<String>,
}

/// Open a deal on a customer the caller can see; it starts at the template's first node.
#[utoipa::path(tag = "deals", request_body = CreateDealRequest, responses((status = 201, body = DealView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals")]
async fn create_deal(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateDealRequest>,
) -> ApiResult<HttpResponse> {
    let body = body.into_inner();
    let customer = db::customers::find_visible(&state.db, &caller, &body.customer_id)
        .await?
        .ok_or_else(|| ApiError::invalid_field("customer_id", "no such customer", "客户不存在"))?;
    if let Some(site_id) = &body.site_id {
        let sites = db::customers::sites(&state.db, &customer.id).await?;
        if !sites.iter().any(|s| &s.id == site_id) {
            return Err(ApiError::invalid_field(
                "site_id",
                "not a site of this customer",
                "不是该客户的现场",
            ));
        }
    }
    if let Some(presales) = &body.presales_id {
        let user = db::users::find_visible(&state.db, &caller, presales).await?;
        if !user.is_some_and(|u| u.role == fieldproof_domain::account::Role::Presales) {
            return Err(ApiError::invalid_field(
                "presales_id",
                "no such presales engineer",
                "售前工程师不存在",
            ));
        }
    }
    let title = fieldproof_domain::customer::Name::parse(&body.title).map_err(|e| {
        ApiError::invalid_field("title", e.to_string(), "标题不能为空且不超过 200 字")
    })?;
    let owner = (customer.owner_id.clone(), customer.team_id.clone());
    let row = engine::create(
        &state,
        &caller,
        NewDeal {
            customer_id: customer.id,
            site_id: body.site_id,
            title: title.into_string(),
            products: body.products,
            presales_id: body.presales_id,
            template_id: body.template_id,
            owner,
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(deal_view(&state, row).await?))
}

#[utoipa::path(tag = "deals", responses((status = 200, body = DealView), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/deals/{id}")]
async fn get_deal(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<DealView>> {
    let row = visible(&state, &caller, &id).await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct PatchDealRequest {
    /// New product lines. A price change voids price approvals bound to the old lines.
    pub products: Option<Vec<ProductLine>>,
}

#[utoipa::path(tag = "deals", request_body = PatchDealRequest, responses((status = 200, body = DealView), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[patch("/deals/{id}")]
async fn patch_deal(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<PatchDealRequest>,
) -> ApiResult<web::Json<DealView>> {
    let row = match body.into_inner().products {
        Some(products) => engine::change_products(&state, &caller, &id, products).await?,
        None => visible(&state, &caller, &id).await?,
    };
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct VisitRequest {
    pub site_id: String,
    pub contact_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: OffsetDateTime,
}

/// Book the visit (`visit_booking` requirement): a site and contact of the deal's customer and
/// a window of at most 24 h; photos of later nodes are judged against it.
#[utoipa::path(tag = "deals", request_body = VisitRequest, responses((status = 200, body = DealView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/nodes/{node}/visit")]
async fn record_visit(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<VisitRequest>,
) -> ApiResult<web::Json<DealView>> {
    let (id, node) = path.into_inner();
    let row = visible(&state, &caller, &id).await?;
    let body = body.into_inner();
    let window = body.ends_at - body.starts_at;
    if window <= time::Duration::ZERO || window > time::Duration::hours(24) {
        return Err(ApiError::invalid_field(
            "ends_at",
            "the visit window must be 0-24 hours long",
            "拜访时间段须在 0-24 小时之内",
        ));
    }
    let sites = db::customers::sites(&state.db, &row.customer_id).await?;
    if !sites.iter().any(|s| s.id == body.site_id) {
        return Err(ApiError::invalid_field(
            "site_id",
            "not a site of this customer",
            "不是该客户的现场",
        ));
    }
    let contacts = db::customers::contacts(&state.db, &row.customer_id).await?;
    if !contacts.iter().any(|c| c.id == body.contact_id) {
        return Err(ApiError::invalid_field(
            "contact_id",
            "not a contact of this customer",
            "不是该客户的联系人",
        ));
    }
    let fact = Fact::Visit {
        site_id: body.site_id,
        contact_id: body.contact_id,
        starts_at: body.starts_at,
        ends_at: body.ends_at,
    };
    let row = engine::record_fact(&state, &caller, &id, &node, fact).await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ChecklistRequest {
    /// The checklist item key, e.g. `decision_maker`.
    pub item: String,
    /// Required for items that name a person: a contact of the deal's customer.
    pub contact_id: Option<String>,
}

#[utoipa::path(tag = "deals", request_body = ChecklistRequest, responses((status = 200, body = DealView), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/nodes/{node}/checklist")]
async fn record_checklist(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ChecklistRequest>,
) -> ApiResult<web::Json<DealView>> {
    let (id, node) = path.into_inner();
    let row = visible(&state, &caller, &id).await?;
    let body = body.into_inner();
    let contact = match &body.contact_id {
        Some(contact_id) => {
            let contacts = db::customers::contacts(&state.db, &row.customer_id).await?;
            let found = contacts
                .into_iter()
                .find(|c| &c.id == contact_id)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "contact_id",
                        "not a contact of this customer",
                        "不是该客户的联系人",
                    )
                })?;
            Some((found.id, found.seniority))
        }
        None => None,
    };
    let row = engine::record_fact(
        &state,
        &caller,
        &id,
        &node,
        Fact::Checklist {
            item: body.item,
            contact,
        },
    )
    .await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ApprovalRequest {
    pub comment: Option<String>,
}

/// Approve the current node as one of its approver roles. Approvals of a price are bound to
/// the deal's current quote hash.
#[utoipa::path(tag = "deals", request_body = ApprovalRequest, responses((status = 200, body = DealView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/nodes/{node}/approvals")]
async fn record_approval(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ApprovalRequest>,
) -> ApiResult<web::Json<DealView>> {
    let (id, node) = path.into_inner();
    let comment = body.into_inner().comment;
    if comment.as_ref().is_some_and(|c| c.chars().count() > 2000) {
        return Err(ApiError::invalid_field(
            "comment",
            "at most 2000 characters",
            "最多 2000 字",
        ));
    }
    let row = engine::record_fact(&state, &caller, &id, &node, Fact::Approval { comment }).await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReasonRequest {
    pub reason: String,
}

fn parse_reason(raw: &str) -> ApiResult<String> {
    let reason = raw.trim();
    if reason.chars().count() < 4 || reason.chars().count() > 2000 {
        return Err(ApiError::invalid_field(
            "reason",
            "a reason of 4-2000 characters is required",
            "须填写 4-2000 字的理由",
        ));
    }
    Ok(reason.to_owned())
}

/// A supervisor's override of the current node: recorded evidence with a reason. Above the
/// configured deal value (its highest), a second supervisor must override too. Never in place
/// of the quote's proofs (the countersigned price approval, the quote number, the customer's
/// confirmation): 409 `node_not_overridable`.
#[utoipa::path(tag = "deals", request_body = ReasonRequest, responses((status = 200, body = DealView), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/nodes/{node}/overrides")]
async fn record_override(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<(String, String)>,
    body: web::Json<ReasonRequest>,
) -> ApiResult<web::Json<DealView>> {
    let (id, node) = path.into_inner();
    let reason = parse_reason(&body.reason)?;
    let row = engine::record_fact(&state, &caller, &id, &node, Fact::Override { reason }).await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Deserialize, utoipa::ToSchema)]
pub struct ReturnRequest {
    pub reason: String,
    /// An earlier node to go back to; default: redo the current node.
    pub to_node: Option<String>,
}

/// Send the deal back (counted as a return on the node run).
#[utoipa::path(tag = "deals", request_body = ReturnRequest, responses((status = 200, body = DealView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/returns")]
async fn return_deal(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ReturnRequest>,
) -> ApiResult<web::Json<DealView>> {
    let body = body.into_inner();
    let reason = parse_reason(&body.reason)?;
    let row = engine::return_node(&state, &caller, &id, body.to_node.as_deref(), &reason).await?;
    Ok(web::Json(deal_view(&state, row).await?))
}

#[derive(Serialize, Deserialize, utoipa::ToSchema)]
pub struct ActivityView {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub actor_id: String,
    /// visit | call | message | note | upload
    pub channel: String,
    pub summary: String,
    #[serde(with = "time::serde::rfc3339")]
    pub occurred_at: OffsetDateTime,
}

#[utoipa::path(tag = "deals", responses((status = 200, body = Vec<ActivityView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/deals/{id}/activities")]
async fn list_activities(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<ActivityView>>> {
    let row = visible(&state, &caller, &id).await?;
    let rows = repo::activities(&state.db, &row.id, 200).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|a| ActivityView {
                id: a.id,
                actor_id: a.actor_id,
                channel: a.channel,
                summary: a.summary,
                occurred_at: a.occurred_at,
            })
            .collect(),
    ))
}

/// How far ahead of the server's clock an activity's time may be (a phone's clock running fast).
const ACTIVITY_CLOCK_SKEW: time::Duration = time::Duration::minutes(10);

/// Log a visit, call, message, note or upload on a deal.
#[utoipa::path(tag = "deals", request_body = ActivityView, responses((status = 201, body = ActivityView), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)), security(("bearer" = [])))]
#[post("/deals/{id}/activities")]
async fn create_activity(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
    body: web::Json<ActivityView>,
) -> ApiResult<HttpResponse> {
    let row = visible(&state, &caller, &id).await?;
    let body = body.into_inner();
    if !["visit", "call", "message", "note", "upload"].contains(&body.channel.as_str()) {
        return Err(ApiError::invalid_field(
            "channel",
            "visit, call, message, note or upload",
            "须为 visit、call、message、note 或 upload",
        ));
    }
    let summary = body.summary.trim();
    if summary.is_empty() || summary.chars().count() > 4000 {
        return Err(ApiError::invalid_field(
            "summary",
            "1-4000 characters",
            "须为 1-4000 字",
        ));
    }
    // A phone's clock may run a little ahead; an activity dated later than that would head
    // every digest and the deal's history until its date came.
    if body.occurred_at > db::now() + ACTIVITY_CLOCK_SKEW {
        return Err(ApiError::invalid_field(
            "occurred_at",
            "must not be in the future",
            "不能晚于当前时间",
        ));
    }
    let a = repo::insert_activity(
        &state.db,
        repo::NewActivity {
            org_id: &row.org_id,
            deal_id: &row.id,
            actor_id: &caller.user_id,
            channel: &body.channel,
            summary,
            occurred_at: db::stored(body.occurred_at),
        },
    )
    .await?;
    Ok(HttpResponse::Created().json(ActivityView {
        id: a.id,
        actor_id: a.actor_id,
        channel: a.channel,
        summary: a.summary,
        occurred_at: a.occurred_at,
    }))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AuditEventView {
    pub seq: i64,
    pub kind: String,
    pub actor_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub created_at: String,
    pub prev_hash: String,
    pub hash: String,
}

#[utoipa::path(tag = "deals", responses((status = 200, body = Vec<AuditEventView>), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/deals/{id}/audit")]
async fn get_audit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<Vec<AuditEventView>>> {
    let row = visible(&state, &caller, &id).await?;
    let events = audit::list(&state.db, &row.id).await?;
    Ok(web::Json(
        events
            .into_iter()
            .map(|e| AuditEventView {
                payload: serde_json::from_str(&e.payload).unwrap_or(serde_json::Value::Null),
                seq: e.seq,
                kind: e.kind,
                actor_id: e.actor_id,
                created_at: e.created_at,
                prev_hash: e.prev_hash,
                hash: e.hash,
            })
            .collect(),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ChainCheck {
    pub intact: bool,
    pub events: usize,
    pub first_broken: Option<audit::ChainBreak>,
}

/// Recompute the deal's audit hash chain and report the first broken link.
#[utoipa::path(tag = "deals", responses((status = 200, body = ChainCheck), (status = 404, body = ErrorBody)), security(("bearer" = [])))]
#[get("/deals/{id}/audit/verify")]
async fn verify_audit(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<String>,
) -> ApiResult<web::Json<ChainCheck>> {
    let row = visible(&state, &caller, &id).await?;
    let events = audit::list(&state.db, &row.id).await?;
    let first_broken = audit::verify(&events);
    Ok(web::Json(ChainCheck {
        intact: first_broken.is_none(),
        events: events.len(),
        first_broken,
    }))
}

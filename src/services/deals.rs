//! The stage engine's use cases: open a deal, record facts on its current node, and let the
//! pure rules decide whether the node passes. There is deliberately no function here (or
//! anywhere) that sets a node's state: `advance` asks `evaluate_node` and obeys it.

use crate::auth::Caller;
use crate::db::entities::{deal, node_record, node_run};
use crate::db::{self, audit, deals as repo, templates::StoredTemplate};
use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use fieldproof_domain::account::Role;
use fieldproof_domain::pipeline::evaluate::{
    ApprovalFact, ChecklistMark, DocumentFact, OverrideFact, PhotoFact, VisitFact,
};
use fieldproof_domain::pipeline::{
    NodeFacts, NodeTemplate, Requirement, evaluate_node, unmet_not_overridable,
};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseTransaction, Set, TransactionTrait};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const STATUS_OPEN: &str = "open";
pub const STATUS_WON: &str = "won";

/// A product line on a deal; prices in fen.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ProductLine {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_fen: i64,
}

/// Check product lines and return (expected value in fen, content hash of the lines).
/// The hash is what price approvals are bound to: change a price and it changes.
pub fn price_lines(lines: &[ProductLine]) -> ApiResult<(i64, String)> {
    if lines.len() > 500 {
        return Err(ApiError::invalid_field(
            "products",
            "at most 500 lines",
            "最多 500 行",
        ));
    }
    let mut total: i64 = 0;
    for line in lines {
        if line.sku.trim().is_empty() || line.name.trim().is_empty() {
            return Err(ApiError::invalid_field(
                "products",
                "every line needs a sku and a name",
                "每行须有产品编码和名称",
            ));
        }
        if !(1..=1_000_000).contains(&line.quantity)
            || !(0..=fieldproof_domain::customer::Fen::MAX).contains(&line.unit_price_fen)
        {
            return Err(ApiError::invalid_field(
                "products",
                "quantity 1-1000000, unit price 0-10^15 fen",
                "数量须为 1-1000000，单价须为 0-10^15 分",
            ));
        }
        total = line
            .quantity
            .checked_mul(line.unit_price_fen)
            .and_then(|v| total.checked_add(v))
            .filter(|v| *v <= fieldproof_domain::customer::Fen::MAX)
            .ok_or_else(|| ApiError::invalid_field("products", "total too large", "总金额过大"))?;
    }
    let canonical = serde_json::to_string(lines).map_err(ApiError::internal)?;
    Ok((total, hex::encode(Sha256::digest(canonical.as_bytes()))))
}

pub fn products_of(row: &deal::Model) -> Vec<ProductLine> {
    serde_json::from_value(row.products.clone()).unwrap_or_default()
}

/// Who may record ordinary facts (visits, checklist marks) on a deal: its owner, the team's
/// lead, an admin.
pub fn may_work_on(caller: &Caller, row: &deal::Model) -> bool {
    caller.is_admin()
        || row.owner_id == caller.user_id
        || (caller.leads_team() && caller.team_id.is_some() && caller.team_id == row.team_id)
}

pub async fn template_of<C: ConnectionTrait>(
    db: &C,
    row: &deal::Model,
) -> ApiResult<StoredTemplate> {
    db::templates::find(db, &row.org_id, &row.template_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "deal {} lost its template {}",
                row.id,
                row.template_id
            ))
        })
}

pub struct NewDeal {
    pub customer_id: String,
    pub site_id: Option<String>,
    pub title: String,
    pub products: Vec<ProductLine>,
    pub presales_id: Option<String>,
    pub template_id: Option<String>,
    pub owner: (String, Option<String>),
}

pub async fn create(state: &AppState, caller: &Caller, new: NewDeal) -> ApiResult<deal::Model> {
    let (expected_value, quote_hash) = price_lines(&new.products)?;
    let template = match &new.template_id {
        Some(id) => db::templates::find(&state.db, &caller.org_id, id)
            .await?
            .ok_or_else(|| {
                ApiError::invalid_field("template_id", "no such template", "流程模板不存在")
            })?,
        None => db::templates::default_for_org(&state.db, &caller.org_id).await?,
    };
    let first = template.definition.nodes.first().ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!("template {} has no nodes", template.id))
    })?;
    let now = db::now();
    let (owner_id, team_id) = new.owner;
    let txn = state.db.begin().await?;
    let row = repo::insert(
        &txn,
        deal::ActiveModel {
            id: Set(db::new_id()),
            org_id: Set(caller.org_id.clone()),
            customer_id: Set(new.customer_id),
            site_id: Set(new.site_id),
            owner_id: Set(owner_id.clone()),
            team_id: Set(team_id.clone()),
            presales_id: Set(new.presales_id),
            template_id: Set(template.id.clone()),
            title: Set(new.title),
            products: Set(serde_json::to_value(&new.products).map_err(ApiError::internal)?),
            quote_hash: Set(quote_hash),
            expected_value_fen: Set(expected_value),
            peak_value_fen: Set(expected_value),
            status: Set(STATUS_OPEN.to_owned()),
            current_node_key: Set(Some(first.key.clone())),
            created_at: Set(now),
            updated_at: Set(now),
        },
    )
    .await?;
    audit::append(&txn, &row.org_id, &row.id, "deal_created", Some(&caller.user_id), json!({"template_id": template.id, "template_version": template.version, "expected_value_fen": expected_value})).await?;
    enter_node(&txn, &row, first, now).await?;
    txn.commit().await?;
    Ok(row)
}

async fn enter_node(
    txn: &DatabaseTransaction,
    row: &deal::Model,
    node: &NodeTemplate,
    at: time::OffsetDateTime,
) -> ApiResult<node_run::Model> {
    let run = repo::open_run(
        txn,
        repo::NewRun {
            deal_id: &row.id,
            node_key: &node.key,
            owner_id: &row.owner_id,
            team_id: row.team_id.as_deref(),
            entered_at: at,
            stall_after_hours: node.stall_after_hours,
        },
    )
    .await?;
    audit::append(
        txn,
        &row.org_id,
        &row.id,
        "node_entered",
        None,
        json!({"node": node.key, "run": run.run_no}),
    )
    .await?;
    Ok(run)
}

/// Everything proven for one run, read back from what was stored.
pub async fn gather_facts<C: ConnectionTrait>(
    db: &C,
    row: &deal::Model,
    run: &node_run::Model,
) -> ApiResult<NodeFacts> {
    let records = repo::records_of_run(db, &run.id).await?;
    let mut facts = NodeFacts {
        current_quote_hash: Some(row.quote_hash.clone()),
        ..NodeFacts::default()
    };
    for record in &records {
        apply_record(&mut facts, record);
    }
    Ok(facts)
}

fn text(payload: &Value, key: &str) -> String {
    payload
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

fn apply_record(facts: &mut NodeFacts, record: &node_record::Model) {
    let p = &record.payload;
    let actor = record.actor_id.clone().unwrap_or_default();
    match record.kind.as_str() {
        "visit" => {
            facts.visit = Some(VisitFact {
                site_id: text(p, "site_id"),
                contact_id: text(p, "contact_id"),
            });
        }
        "checklist" => facts.checklist.push(ChecklistMark {
            key: text(p, "item"),
            contact_with_seniority: p
                .get("contact_seniority")
                .and_then(Value::as_str)
                .is_some_and(|s| s != "unknown"),
        }),
        "approval" => {
            if let Ok(role) = text(p, "role").parse::<Role>() {
                facts.approvals.push(ApprovalFact {
                    role,
                    user_id: actor,
                    quote_hash: p
                        .get("quote_hash")
                        .and_then(Value::as_str)
                        .map(str::to_owned),
                });
            }
        }
        "override" => facts.overrides.push(OverrideFact {
            user_id: actor,
            reason: text(p, "reason"),
        }),
        "photo" => facts.photos.push(PhotoFact {
            evidence_id: text(p, "evidence_id"),
            sha256: text(p, "sha256"),
            tags: serde_json::from_value(p.get("tags").cloned().unwrap_or_default())
                .unwrap_or_default(),
            phash: p
                .get("phash")
                .and_then(Value::as_str)
                .and_then(|h| u64::from_str_radix(h, 16).ok()),
        }),
        "document" => facts.documents.push(DocumentFact {
            evidence_id: text(p, "evidence_id"),
            customer_signed: p
                .get("customer_signed")
                .and_then(Value::as_bool)
                .unwrap_or(false),
        }),
        "customer_confirmation" => facts.customer_confirmed = true,
        "quote_number" => facts.quote_number = Some(text(p, "number")),
        "e_signature" => facts.e_signature_verified = true,
        _ => {}
    }
}

/// Judged on the highest value the deal has had, not the value of the moment: a value lowered
/// for one override and raised again afterwards would otherwise get a big deal past a node
/// with one supervisor.
fn override_approvers_needed(state: &AppState, row: &deal::Model) -> usize {
    if row.peak_value_fen.max(row.expected_value_fen)
        > state.settings.override_second_approver_above_fen
    {
        2
    } else {
        1
    }
}

/// Re-judge the current node and move on while nodes pass. Called after every recorded fact,
/// inside the same transaction, with the deal row locked.
pub async fn advance(
    state: &AppState,
    txn: &DatabaseTransaction,
    mut row: deal::Model,
    template: &StoredTemplate,
) -> ApiResult<deal::Model> {
    let needed = override_approvers_needed(state, &row);
    loop {
        let Some(key) = row.current_node_key.clone() else {
            return Ok(row);
        };
        let position = template
            .definition
            .position(&key)
            .ok_or_else(|| ApiError::internal(anyhow::anyhow!("node {key} not in template")))?;
        let node = &template.definition.nodes[position];
        let run = repo::open_run_of(txn, &row.id, &key)
            .await?
            .ok_or_else(|| {
                ApiError::internal(anyhow::anyhow!("deal {} has no open run of {key}", row.id))
            })?;
        let facts = gather_facts(txn, &row, &run).await?;
        let evaluation = evaluate_node(node, &facts, needed);
        if !evaluation.passed {
            return Ok(row);
        }
        let now = db::now();
        repo::close_run(
            txn,
            &run.id,
            repo::PASSED,
            evaluation.by_override,
            None,
            now,
        )
        .await?;
        audit::append(txn, &row.org_id, &row.id, "node_passed", None, json!({"node": key, "run": run.run_no, "by_override": evaluation.by_override, "requirements": evaluation.requirements})).await?;
        let next = template.definition.nodes.get(position + 1);
        let mut active: deal::ActiveModel = row.clone().into();
        active.current_node_key = Set(next.map(|n| n.key.clone()));
        active.updated_at = Set(now);
        if next.is_none() {
            active.status = Set(STATUS_WON.to_owned());
        }
        row = active.update(txn).await?;
        match next {
            Some(node) => {
                let run = enter_node(txn, &row, node, now).await?;
                // Moving forward only: a quote already issued or confirmed for the deal's
                // current revision counts on the new run (a return never carries facts).
                crate::services::quotes::carry_facts(txn, &row, node, &run).await?;
            }
            None => {
                audit::append(txn, &row.org_id, &row.id, "deal_completed", None, json!({})).await?;
                return Ok(row);
            }
        }
    }
}

/// A fact to record on the deal's current node.
pub enum Fact {
    Visit {
        site_id: String,
        contact_id: String,
        starts_at: time::OffsetDateTime,
        ends_at: time::OffsetDateTime,
    },
    Checklist {
        item: String,
        contact: Option<(String, String)>,
    },
    Approval {
        comment: Option<String>,
    },
    Override {
        reason: String,
    },
}

fn node_requirements<'a>(template: &'a StoredTemplate, key: &str) -> ApiResult<&'a NodeTemplate> {
    template
        .definition
        .node(key)
        .ok_or_else(ApiError::not_found)
}

/// Lock the deal, check the node is the current one, store the fact, audit it, advance.
pub async fn record_fact(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
    node_key: &str,
    fact: Fact,
) -> ApiResult<deal::Model> {
    let visible = repo::find_visible(&state.db, caller, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let template = template_of(&state.db, &visible).await?;
    let node = node_requirements(&template, node_key)?.clone();
    let txn = state.db.begin().await?;
    let row = repo::lock(&txn, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if row.status != STATUS_OPEN {
        return Err(ApiError::new(ErrorCode::DealClosed));
    }
    if row.current_node_key.as_deref() != Some(node_key) {
        return Err(ApiError::new(ErrorCode::NodeNotCurrent)
            .with_details(json!({"node": node_key, "current": row.current_node_key})));
    }
    let run = repo::open_run_of(&txn, &row.id, node_key)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("no open run")))?;
    let (kind, payload) = match fact {
        Fact::Visit {
            site_id,
            contact_id,
            starts_at,
            ends_at,
        } => {
            if !may_work_on(caller, &row) {
                return Err(ApiError::forbidden());
            }
            // Only the step that books the visit takes one: the latest booking is the window
            // photos are judged against, so a booking at a later step would move it after the
            // photos were taken.
            if !node
                .requirements
                .iter()
                .any(|r| matches!(r, Requirement::VisitBooking))
            {
                return Err(ApiError::invalid_field(
                    "node",
                    "this step does not book a visit",
                    "该环节不登记拜访",
                ));
            }
            (
                "visit",
                json!({"site_id": site_id, "contact_id": contact_id, "starts_at": starts_at.unix_timestamp(), "ends_at": ends_at.unix_timestamp()}),
            )
        }
        Fact::Checklist { item, contact } => {
            if !may_work_on(caller, &row) {
                return Err(ApiError::forbidden());
            }
            let known = node.requirements.iter().any(|r| matches!(r, Requirement::Checklist { items } if items.iter().any(|i| i.key == item)));
            if !known {
                return Err(ApiError::invalid_field(
                    "item",
                    "not an item of this step's checklist",
                    "不是该环节清单中的项目",
                ));
            }
            match contact {
                Some((id, seniority)) => (
                    "checklist",
                    json!({"item": item, "contact_id": id, "contact_seniority": seniority}),
                ),
                None => ("checklist", json!({"item": item})),
            }
        }
        Fact::Approval { comment } => {
            let wanted = node.requirements.iter().find_map(|r| match r {
                Requirement::Approval {
                    roles,
                    bound_to_quote,
                } if roles.contains(&caller.role) => Some(*bound_to_quote),
                _ => None,
            });
            let Some(bound) = wanted else {
                return Err(ApiError::forbidden());
            };
            // An approval is a second pair of eyes: not the deal owner's own (a manager who
            // owns a deal has another manager or an admin approve its price).
            if caller.user_id == row.owner_id {
                return Err(ApiError::forbidden()
                    .with_message(
                        "You own this deal, so someone else must approve it.",
                        "这是您负责的商机，须由他人审批。",
                    )
                    .with_details(json!({"reason": "own_deal"})));
            }
            let quote_hash = bound.then(|| row.quote_hash.clone());
            (
                "approval",
                json!({"role": caller.role.as_str(), "quote_hash": quote_hash, "comment": comment}),
            )
        }
        Fact::Override { reason } => {
            if caller.role != Role::Supervisor {
                return Err(ApiError::forbidden());
            }
            // Refused, not recorded: an override that could never count would sit in the
            // run's record and the audit chain as if it had decided something.
            let facts = gather_facts(&txn, &row, &run).await?;
            let evaluation = evaluate_node(&node, &facts, 1);
            let missing = unmet_not_overridable(&node, &evaluation.requirements);
            if !missing.is_empty() {
                return Err(ApiError::new(ErrorCode::NodeNotOverridable)
                    .with_details(json!({"node": node_key, "requirements": missing})));
            }
            ("override", json!({"reason": reason}))
        }
    };
    repo::insert_record(
        &txn,
        repo::NewRecord {
            deal_id: &row.id,
            node_run_id: &run.id,
            kind,
            actor_id: Some(&caller.user_id),
            payload: payload.clone(),
            dedup_key: None,
        },
    )
    .await?;
    audit::append(
        &txn,
        &row.org_id,
        &row.id,
        kind,
        Some(&caller.user_id),
        json!({"node": node_key, "run": run.run_no, "fact": payload}),
    )
    .await?;
    let row = advance(state, &txn, row, &template).await?;
    txn.commit().await?;
    Ok(row)
}

/// Send the deal back to its current node (a fresh run) or to an earlier one, with a reason.
/// Allowed to the team's lead, an admin, and whoever may approve the current node.
pub async fn return_node(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
    to_node: Option<&str>,
    reason: &str,
) -> ApiResult<deal::Model> {
    let visible = repo::find_visible(&state.db, caller, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let template = template_of(&state.db, &visible).await?;
    let txn = state.db.begin().await?;
    let row = repo::lock(&txn, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let current_key = match (&row.status[..], &row.current_node_key) {
        (STATUS_OPEN, Some(key)) => key.clone(),
        _ => return Err(ApiError::new(ErrorCode::DealClosed)),
    };
    let current_pos = template
        .definition
        .position(&current_key)
        .ok_or_else(ApiError::not_found)?;
    let approver_here = template.definition.nodes[current_pos]
        .requirements
        .iter()
        .any(|r| matches!(r, Requirement::Approval { roles, .. } if roles.contains(&caller.role)));
    let lead = caller.is_admin()
        || (caller.leads_team() && caller.team_id.is_some() && caller.team_id == row.team_id);
    if !(lead || approver_here) {
        return Err(ApiError::forbidden());
    }
    let target_key = to_node.unwrap_or(&current_key).to_owned();
    let target_pos = template
        .definition
        .position(&target_key)
        .filter(|p| *p <= current_pos)
        .ok_or_else(|| {
            ApiError::invalid_field(
                "to_node",
                "must be the current step or an earlier one",
                "只能退回到当前或之前的环节",
            )
        })?;
    let row = send_back(
        &txn,
        row,
        &template,
        current_pos,
        target_pos,
        Some(&caller.user_id),
        reason,
    )
    .await?;
    txn.commit().await?;
    Ok(row)
}

async fn send_back(
    txn: &DatabaseTransaction,
    row: deal::Model,
    template: &StoredTemplate,
    current_pos: usize,
    target_pos: usize,
    actor: Option<&str>,
    reason: &str,
) -> ApiResult<deal::Model> {
    let now = db::now();
    let current_key = &template.definition.nodes[current_pos].key;
    if let Some(run) = repo::open_run_of(txn, &row.id, current_key).await? {
        repo::close_run(txn, &run.id, repo::RETURNED, false, Some(reason), now).await?;
    }
    let target = &template.definition.nodes[target_pos];
    audit::append(
        txn,
        &row.org_id,
        &row.id,
        "node_returned",
        actor,
        json!({"from": current_key, "to": target.key, "reason": reason}),
    )
    .await?;
    let mut active: deal::ActiveModel = row.into();
    active.current_node_key = Set(Some(target.key.clone()));
    active.updated_at = Set(now);
    let row = active.update(txn).await?;
    enter_node(txn, &row, target, now).await?;
    Ok(row)
}

/// Change a deal's product lines. Without a quote, the lines' hash is what price approvals are
/// bound to: a new price changes it, voiding those approvals (and sending the deal back if it
/// had passed them). Once the deal has a quote, the quote's content hash is the binding and
/// the product lines are only the estimate: they change the expected value, not the hash.
pub async fn change_products(
    state: &AppState,
    caller: &Caller,
    deal_id: &str,
    products: Vec<ProductLine>,
) -> ApiResult<deal::Model> {
    let (expected_value, lines_hash) = price_lines(&products)?;
    let visible = repo::find_visible(&state.db, caller, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if !may_work_on(caller, &visible) {
        return Err(ApiError::forbidden());
    }
    let template = template_of(&state.db, &visible).await?;
    let txn = state.db.begin().await?;
    let row = repo::lock(&txn, deal_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if row.status != STATUS_OPEN {
        return Err(ApiError::new(ErrorCode::DealClosed));
    }
    let has_quote = db::quotes::latest_of_deal(&txn, &row.id).await?.is_some();
    let quote_hash = if has_quote {
        row.quote_hash.clone()
    } else {
        lines_hash
    };
    let products_json = serde_json::to_value(&products).map_err(ApiError::internal)?;
    if row.quote_hash == quote_hash && row.products == products_json {
        return Ok(row);
    }
    let old_hash = row.quote_hash.clone();
    let peak = row.peak_value_fen;
    let mut active: deal::ActiveModel = row.into();
    active.products = Set(products_json);
    active.quote_hash = Set(quote_hash.clone());
    if !has_quote {
        active.expected_value_fen = Set(expected_value);
        active.peak_value_fen = Set(peak.max(expected_value));
    }
    active.updated_at = Set(db::now());
    let row = active.update(&txn).await?;
    audit::append(&txn, &row.org_id, &row.id, "price_changed", Some(&caller.user_id), json!({"old_quote_hash": old_hash, "quote_hash": quote_hash, "expected_value_fen": row.expected_value_fen, "bound_to_quote": has_quote})).await?;
    let row = if old_hash == quote_hash {
        row
    } else {
        void_quote_approvals(&txn, row, &template, "price_changed").await?
    };
    txn.commit().await?;
    Ok(row)
}

/// After the deal's quote hash changed: approvals bound to the old hash, its number and the
/// customer's confirmation of it no longer count, so a deal that had already passed the first
/// node asking for any of them goes back to it (a counted return). In the default template that
/// is the price approval; a template without one goes back to the quote number, where the new
/// revision can be issued (without the return it waited at the confirmation for a revision
/// nobody could issue there).
pub async fn void_quote_approvals(
    txn: &DatabaseTransaction,
    row: deal::Model,
    template: &StoredTemplate,
    reason: &str,
) -> ApiResult<deal::Model> {
    let current_pos = row
        .current_node_key
        .as_deref()
        .and_then(|k| template.definition.position(k));
    let bound_pos = template.definition.nodes.iter().position(|n| {
        n.requirements.iter().any(|r| {
            matches!(
                r,
                Requirement::Approval {
                    bound_to_quote: true,
                    ..
                } | Requirement::QuoteNumber
                    | Requirement::CustomerConfirmation
            )
        })
    });
    match (current_pos, bound_pos) {
        (Some(current), Some(bound)) if bound < current => {
            send_back(txn, row, template, current, bound, None, reason).await
        }
        _ => Ok(row),
    }
}

/// The visit booked on a deal (its latest `visit` fact): the window photos are judged against.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BookedVisit {
    pub site_id: String,
    pub contact_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub starts_at: time::OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub ends_at: time::OffsetDateTime,
}

pub async fn booked_visit<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> ApiResult<Option<BookedVisit>> {
    let mut visit = None;
    for record in repo::records_of_deal(db, deal_id, "visit").await? {
        let at = |k: &str| {
            record
                .payload
                .get(k)
                .and_then(Value::as_i64)
                .and_then(|t| time::OffsetDateTime::from_unix_timestamp(t).ok())
        };
        if let (Some(starts_at), Some(ends_at)) = (at("starts_at"), at("ends_at")) {
            visit = Some(BookedVisit {
                site_id: text(&record.payload, "site_id"),
                contact_id: text(&record.payload, "contact_id"),
                starts_at,
                ends_at,
            });
        }
    }
    Ok(visit)
}

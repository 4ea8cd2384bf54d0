//! Lead use cases: intake (API, capture form, CSV), dedup routing, rule-based assignment with
//! its decision record, protection and the pool, health figures and what-if replays.
//!
//! Assignment runs in one transaction per lead whose first statement takes the org's turn
//! (`db::leads::take_turn`), so two processes never read the same loads and both act on them:
//! no lead is assigned twice and no rep is pushed past capacity. The pure decision is
//! `fieldproof_domain::leads::assign`.

pub mod import;
pub mod insight;
pub mod protection;
pub mod rules;

use crate::db::{self, entities::lead, leads as repo};
use crate::services::notify::{self, Notice};
use anyhow::Context;
use fieldproof_domain::leads::assign::{Lead, Outcome};
use fieldproof_domain::leads::import::LeadDraft;
use fieldproof_domain::leads::{LeadTags, Region, ResponseSpeed, company_key, phone_key};
use sea_orm::{ConnectionTrait, DatabaseConnection, Set, TransactionTrait};
use serde_json::json;
use time::{Duration, OffsetDateTime};

/// Where a new lead came from (beyond its source channel).
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub source_id: Option<String>,
    pub import_id: Option<String>,
}

/// The row to insert for a parsed lead; it waits in the pool until assigned.
pub fn new_row(
    org_id: &str,
    draft: LeadDraft,
    origin: &Origin,
    now: OffsetDateTime,
) -> lead::ActiveModel {
    let company = draft.company.into_string();
    lead::ActiveModel {
        id: Set(db::new_id()),
        org_id: Set(org_id.to_owned()),
        company_key: Set(company_key(&company)),
        company: Set(company),
        contact_name: Set(draft.contact_name),
        contact_title: Set(draft.contact_title),
        phone_key: Set(draft.phone.as_deref().and_then(phone_key)),
        phone: Set(draft.phone),
        industry: Set(draft.industry.as_str().to_owned()),
        source: Set(draft.source.as_str().to_owned()),
        annual_purchase_fen: Set(draft.annual_purchase.get()),
        seniority: Set(draft.seniority.as_str().to_owned()),
        province: Set(draft.region.province),
        city: Set(draft.region.city),
        response_speed: Set(ResponseSpeed::Unknown.as_str().to_owned()),
        products: Set(json!(draft.products)),
        notes: Set(draft.notes),
        status: Set(repo::POOL.to_owned()),
        owner_id: Set(None),
        team_id: Set(None),
        customer_id: Set(None),
        source_id: Set(origin.source_id.clone()),
        import_id: Set(origin.import_id.clone()),
        assigned_by: Set(None),
        protection_ends_at: Set(None),
        assigned_at: Set(None),
        first_activity_at: Set(None),
        converted_at: Set(None),
        moved_team: Set(false),
        previous_owner_id: Set(None),
        reclaim_blocked_until: Set(None),
        needs_assignment: Set(true),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

/// Store a new lead and assign it at once. If assignment fails (e.g. the database hiccups) the
/// lead is kept and the background job assigns it later: nothing received is lost.
pub async fn intake(
    db: &DatabaseConnection,
    org_id: &str,
    draft: LeadDraft,
    origin: Origin,
) -> anyhow::Result<lead::Model> {
    use sea_orm::ActiveModelTrait;
    let row = new_row(org_id, draft, &origin, db::now())
        .insert(db)
        .await
        .context("storing the lead")?;
    if let Err(e) = assign_lead(db, &row.id).await {
        tracing::warn!(lead = %row.id, error = %crate::telemetry::cause_chain(&e), "assignment deferred to the background job");
    }
    Ok(repo::find(db, &row.id).await?.unwrap_or(row))
}

/// The lead's tags as rules see them.
pub fn tags_of(row: &lead::Model) -> anyhow::Result<LeadTags> {
    use fieldproof_domain::leads::{Industry, SourceChannel};
    Ok(LeadTags {
        industry: Industry::parse_loose(&row.industry).context("leads.industry")?,
        source: SourceChannel::parse_loose(&row.source).context("leads.source")?,
        annual_purchase: fieldproof_domain::customer::Fen::new(row.annual_purchase_fen)
            .context("leads.annual_purchase_fen")?,
        seniority: row.seniority.parse().context("leads.seniority")?,
        region: Region {
            province: row.province.clone(),
            city: row.city.clone(),
        },
        response_speed: ResponseSpeed::parse_loose(&row.response_speed)
            .context("leads.response_speed")?,
        products: serde_json::from_value(row.products.clone()).unwrap_or_default(),
    })
}

/// Someone who already owns this customer (by normalised company name or phone).
#[derive(Debug, Clone)]
pub struct ExistingOwner {
    pub owner_id: String,
    pub team_id: Option<String>,
    pub customer_id: Option<String>,
    /// `customer` or `lead`, and the id matched.
    pub matched: serde_json::Value,
}

/// Dedup at intake: a customer of the org (company key or a contact's phone), else an open lead
/// someone owns.
pub async fn existing_owner<C: ConnectionTrait>(
    db: &C,
    row: &lead::Model,
) -> anyhow::Result<Option<ExistingOwner>> {
    // Pre-filter by a fragment of the key, then compare keys exactly in memory.
    let fragment: String = row.company_key.chars().take(4).collect();
    if !fragment.is_empty() {
        for c in repo::customers_named_like(db, &row.org_id, &fragment).await? {
            if company_key(&c.name) == row.company_key {
                return Ok(Some(ExistingOwner {
                    owner_id: c.owner_id.clone(),
                    team_id: c.team_id.clone(),
                    customer_id: Some(c.id.clone()),
                    matched: json!({"kind": "customer", "id": c.id, "by": "company"}),
                }));
            }
        }
    }
    if let Some(phone) = &row.phone_key {
        let suffix: String = phone
            .chars()
            .rev()
            .take(4)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        for (stored, customer_id) in
            repo::contacts_with_phone_ending(db, &row.org_id, &suffix).await?
        {
            if stored.as_deref().and_then(phone_key).as_deref() == Some(phone.as_str())
                && let Some(c) = repo::customer(db, &customer_id).await?
            {
                return Ok(Some(ExistingOwner {
                    owner_id: c.owner_id.clone(),
                    team_id: c.team_id.clone(),
                    customer_id: Some(c.id.clone()),
                    matched: json!({"kind": "customer", "id": c.id, "by": "phone"}),
                }));
            }
        }
    }
    if let Some(other) = repo::owned_duplicate(
        db,
        &row.org_id,
        &row.id,
        &row.company_key,
        row.phone_key.as_deref(),
    )
    .await?
        && let Some(owner) = other.owner_id.clone()
    {
        return Ok(Some(ExistingOwner {
            owner_id: owner,
            team_id: other.team_id.clone(),
            customer_id: other.customer_id.clone(),
            matched: json!({"kind": "lead", "id": other.id}),
        }));
    }
    Ok(None)
}

/// What one assignment attempt did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    ToRep {
        rep_id: String,
        decision_id: String,
    },
    Pool {
        decision_id: String,
    },
    /// Already decided (another process, or an earlier call).
    Nothing,
}

/// Decide and apply the assignment of one pool lead, inside the org's turn.
pub async fn assign_lead(db: &DatabaseConnection, lead_id: &str) -> anyhow::Result<Assigned> {
    let Some(peek) = repo::find(db, lead_id).await? else {
        return Ok(Assigned::Nothing);
    };
    if peek.status != repo::POOL || !peek.needs_assignment {
        return Ok(Assigned::Nothing);
    }
    // Reads that do not need the turn happen before it, to keep the serialised part short.
    let existing = existing_owner(db, &peek).await?;
    let response_speed = match existing.as_ref().and_then(|e| e.customer_id.clone()) {
        Some(customer) => {
            ResponseSpeed::from_activity_times(&repo::customer_activity_times(db, &customer).await?)
        }
        None => ResponseSpeed::Unknown,
    };
    let (version, rules) = rules::active(db, &peek.org_id).await?;
    let mut reps = repo::rep_roster(db, &peek.org_id).await?;

    let txn = db.begin().await?;
    repo::take_turn(&txn, &peek.org_id).await?;
    let now = db::now();
    let Some(row) = repo::find(&txn, lead_id).await? else {
        return Ok(Assigned::Nothing);
    };
    if row.status != repo::POOL || !row.needs_assignment {
        return Ok(Assigned::Nothing);
    }
    if row.response_speed != response_speed.as_str() {
        let mut active: lead::ActiveModel = row.clone().into();
        active.response_speed = Set(response_speed.as_str().to_owned());
        repo::save(&txn, active).await?;
    }
    let mut tags = tags_of(&row)?;
    tags.response_speed = response_speed;

    if let Some(owner) = existing
        && db::users::find_active(&txn, &owner.owner_id)
            .await?
            .is_some()
    {
        // Customer continuity beats load balancing: the owner hears about it even when full.
        let hours = rules.protection_hours;
        let ends = now + Duration::hours(i64::from(hours));
        let assigned = repo::assign(
            &txn,
            repo::Assignment {
                lead_id,
                owner_id: &owner.owner_id,
                team_id: owner.team_id.as_deref(),
                assigned_by: "existing_owner",
                at: now,
                protection_ends_at: ends,
                customer_id: owner.customer_id.as_deref(),
            },
        )
        .await?;
        if !assigned {
            return Ok(Assigned::Nothing);
        }
        let decision = repo::insert_decision(&txn, repo::NewDecision {
            org_id: &row.org_id,
            lead_id,
            kind: "existing_owner",
            rule_set_version: None,
            rep_id: Some(&owner.owner_id),
            record: json!({"inputs": {"lead": tags}, "existing_owner": owner.matched, "protection_hours": hours, "protection_ends_at": ends}),
            at: now,
        })
        .await?;
        tell_owner(
            &txn,
            &row,
            &owner.owner_id,
            owner.customer_id.as_deref(),
            ends,
            true,
        )
        .await?;
        txn.commit().await?;
        return Ok(Assigned::ToRep {
            rep_id: owner.owner_id,
            decision_id: decision.id,
        });
    }

    repo::apply_loads(&txn, &row.org_id, now, &mut reps).await?;
    let decision = fieldproof_domain::leads::assign(
        &Lead {
            key: row.id.clone(),
            tags: tags.clone(),
        },
        &reps,
        &rules,
        now,
    );
    let record =
        json!({"inputs": {"lead": tags, "reps_considered": reps.len()}, "decision": decision});
    match &decision.outcome {
        Outcome::Assigned {
            rep_id,
            protection_ends_at,
            ..
        } => {
            let team = reps
                .iter()
                .find(|r| &r.id == rep_id)
                .and_then(|r| r.team_id.clone());
            let assigned = repo::assign(
                &txn,
                repo::Assignment {
                    lead_id,
                    owner_id: rep_id,
                    team_id: team.as_deref(),
                    assigned_by: "rule",
                    at: now,
                    protection_ends_at: *protection_ends_at,
                    customer_id: None,
                },
            )
            .await?;
            if !assigned {
                return Ok(Assigned::Nothing);
            }
            repo::touch_rep_state(&txn, rep_id, now).await?;
            let stored = repo::insert_decision(
                &txn,
                repo::NewDecision {
                    org_id: &row.org_id,
                    lead_id,
                    kind: "rule",
                    rule_set_version: Some(version),
                    rep_id: Some(rep_id),
                    record,
                    at: now,
                },
            )
            .await?;
            tell_owner(&txn, &row, rep_id, None, *protection_ends_at, false).await?;
            txn.commit().await?;
            metrics::counter!("fieldproof_leads_assigned_total", "by" => "rule").increment(1);
            Ok(Assigned::ToRep {
                rep_id: rep_id.clone(),
                decision_id: stored.id,
            })
        }
        Outcome::Pool { reason } => {
            repo::leave_in_pool(&txn, lead_id).await?;
            let stored = repo::insert_decision(
                &txn,
                repo::NewDecision {
                    org_id: &row.org_id,
                    lead_id,
                    kind: "pool",
                    rule_set_version: Some(version),
                    rep_id: None,
                    record,
                    at: now,
                },
            )
            .await?;
            let managers = repo::managers_of_org(&txn, &row.org_id).await?;
            let reason = serde_json::to_value(reason)?
                .as_str()
                .unwrap_or("no_eligible_rep")
                .to_owned();
            notify::notify(
                &txn,
                Notice {
                    org_id: row.org_id.clone(),
                    recipients: managers,
                    team_id: None,
                    kind: "lead_unassigned".into(),
                    title_en: format!("No rep could take the lead \"{}\"", row.company),
                    title_zh: format!("线索「{}」无人可分配，已留在公海", row.company),
                    body_en: format!(
                        "Reason: {reason}. It stays in the pool; assign it or adjust the rules."
                    ),
                    body_zh: format!("原因：{reason}。线索留在公海池，请手动分配或调整规则。"),
                    link: Some(format!("/api/v1/leads/{lead_id}")),
                    dedup_key: Some(format!("lead_unassigned:{lead_id}")),
                },
            )
            .await?;
            txn.commit().await?;
            metrics::counter!("fieldproof_leads_assigned_total", "by" => "pool").increment(1);
            Ok(Assigned::Pool {
                decision_id: stored.id,
            })
        }
    }
}

/// Tell the new owner, with a background summary of the customer so the first call is informed.
pub(super) async fn tell_owner<C: ConnectionTrait>(
    db: &C,
    row: &lead::Model,
    owner: &str,
    customer_id: Option<&str>,
    ends: OffsetDateTime,
    existing: bool,
) -> anyhow::Result<()> {
    let (interactions, open_deals) = match customer_id {
        Some(c) => (
            repo::customer_activity_times(db, c).await?.len(),
            repo::open_deals_of_customer(db, c).await?,
        ),
        None => (0, 0),
    };
    let yuan = row.annual_purchase_fen / 100;
    let ends_text = ends
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (lead_en, lead_zh) = if existing {
        ("New lead for your customer", "您的客户有新线索")
    } else {
        ("New lead assigned to you", "新线索已分配给您")
    };
    notify::notify(db, Notice {
        org_id: row.org_id.clone(),
        recipients: vec![owner.to_owned()],
        team_id: None,
        kind: "lead_assigned".into(),
        title_en: format!("{lead_en}: {}", row.company),
        title_zh: format!("{lead_zh}：{}", row.company),
        body_en: format!(
            "Industry: {}. Estimated annual purchase: {yuan} CNY. Source: {}. Contact: {} {}. Past interactions: {interactions}. Open deals: {open_deals}. Yours exclusively until {ends_text}: follow up before then or it returns to the pool.",
            row.industry, row.source, row.contact_name, row.contact_title
        ),
        body_zh: format!(
            "行业：{}。预估年采购额：{yuan} 元。来源：{}。联系人：{} {}。历史互动：{interactions} 次。进行中商机：{open_deals} 个。保护期至 {ends_text}，期间仅您可见；到期未跟进将退回公海。",
            row.industry, row.source, row.contact_name, row.contact_title
        ),
        link: Some(format!("/api/v1/leads/{}", row.id)),
        dedup_key: Some(format!("lead_assigned:{}:{owner}:{}", row.id, ends.unix_timestamp())),
    })
    .await?;
    Ok(())
}

/// Assign every lead waiting for a decision (imports, deferred intakes), oldest first.
pub async fn assign_pending(db: &DatabaseConnection, batch: u64) -> anyhow::Result<usize> {
    let mut done = 0;
    loop {
        let waiting = repo::awaiting_assignment(db, batch).await?;
        if waiting.is_empty() {
            return Ok(done);
        }
        let mut progressed = false;
        for (id, _org) in waiting {
            match assign_lead(db, &id).await? {
                Assigned::Nothing => {}
                Assigned::ToRep { .. } | Assigned::Pool { .. } => {
                    done += 1;
                    progressed = true;
                }
            }
        }
        if !progressed {
            return Ok(done);
        }
    }
}

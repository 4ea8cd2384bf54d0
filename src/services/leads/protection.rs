//! The protection window and the pool: expiry returns unworked leads (exactly once across
//! instances), claims take pool leads within the daily cap and the reclaim block, the owner's
//! follow-ups stop the clock, managers move leads between reps and teams.

use crate::auth::Caller;
use crate::db::{
    self,
    entities::{lead, lead_activity},
    leads as repo,
};
use crate::services::notify::{self, Notice};
use sea_orm::{DatabaseConnection, DbErr, Set, TransactionTrait};
use serde_json::json;
use time::{Duration, OffsetDateTime};

const BATCH: u64 = 200;

/// One expiry pass at `now`: every lead whose window ended without a follow-up goes back to the
/// pool, its previous owner blocked from reclaiming it for `reclaim_block`. Returns how many this
/// call returned; concurrent callers never return the same lead twice (compare-and-set).
pub async fn expire(
    db: &DatabaseConnection,
    now: OffsetDateTime,
    reclaim_block: Duration,
) -> Result<usize, DbErr> {
    let mut returned = 0;
    // Batch after batch until the scan comes back short (a 100,000-lead import assigned at once
    // expires at once); a batch in which every lead went to another instance also ends this
    // pass: that instance is working through the same list.
    loop {
        let rows = repo::expired_unworked(db, now, BATCH).await?;
        let full = rows.len() as u64 == BATCH;
        let mut this_batch = 0;
        for row in rows {
            if return_one(db, row, now, reclaim_block).await? {
                this_batch += 1;
            }
        }
        returned += this_batch;
        if !full || this_batch == 0 {
            return Ok(returned);
        }
    }
}

/// Return one lead the scan found expired to the pool, with its decision and notice, in one
/// transaction; false when another instance (or a follow-up) got there first.
async fn return_one(
    db: &DatabaseConnection,
    row: lead::Model,
    now: OffsetDateTime,
    reclaim_block: Duration,
) -> Result<bool, DbErr> {
    let txn = db.begin().await?;
    if !repo::return_to_pool(&txn, &row, now, now + reclaim_block).await? {
        return Ok(false);
    }
    let owner = row.owner_id.clone().unwrap_or_default();
    repo::insert_decision(&txn, repo::NewDecision {
        org_id: &row.org_id,
        lead_id: &row.id,
        kind: "expired",
        rule_set_version: None,
        rep_id: Some(&owner),
        record: json!({"previous_owner": owner, "protection_ended_at": row.protection_ends_at, "reclaim_blocked_until": now + reclaim_block}).to_string().into_bytes(),
        at: now,
    })
    .await?;
    let mut recipients = vec![owner.clone()];
    recipients.extend(repo::managers_of_org(&txn, &row.org_id).await?);
    let stamp = row.assigned_at.map_or(0, OffsetDateTime::unix_timestamp);
    notify::notify(
        &txn,
        Notice {
            org_id: row.org_id.clone(),
            recipients,
            team_id: None,
            kind: "lead_expired".into(),
            title_en: format!(
                "Lead \"{}\" returned to the pool: no follow-up in its protection window",
                row.company
            ),
            title_zh: format!("线索「{}」保护期内未跟进，已退回公海", row.company),
            body_en: "Any rep may now claim it, except its previous owner for a while.".into(),
            body_zh: "其他销售现可认领；原负责人在一段时间内不可重新认领。".into(),
            link: Some(format!("/api/v1/leads/{}", row.id)),
            dedup_key: Some(format!("lead_expired:{}:{stamp}", row.id)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// A successful claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub rep_id: String,
    pub decision_id: String,
}

/// Why a claim was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimRefused {
    NotInPool,
    DailyCap { cap: u32 },
    ReclaimBlocked { until: OffsetDateTime },
    AtCapacity,
    NoProfile,
}

pub struct ClaimLimits {
    pub daily_cap: u32,
    pub protection_hours: u32,
    /// How long a rep may not reclaim a lead that expired in their hands.
    pub reclaim_block: Duration,
}

/// A rep takes a pool lead: within their daily cap (a rolling 24 h), not a lead they let expire
/// recently, and only with room under capacity. Runs inside the org's turn like assignment.
pub async fn claim(
    db: &DatabaseConnection,
    caller: &Caller,
    lead_id: &str,
    limits: ClaimLimits,
) -> anyhow::Result<Result<Claimed, ClaimRefused>> {
    let txn = db.begin().await?;
    repo::take_turn(&txn, &caller.org_id).await?;
    let now = db::now();
    let Some(row) = repo::find_in_org(&txn, &caller.org_id, lead_id).await? else {
        return Ok(Err(ClaimRefused::NotInPool));
    };
    if row.status != repo::POOL {
        return Ok(Err(ClaimRefused::NotInPool));
    }
    // Blocked by any expiry in this caller's hands within the block period, found in the
    // lead's decisions: the lead's own `previous_owner_id` names only its last previous owner
    // (it may have expired again since, in someone else's).
    if let Some(expired) =
        repo::last_expiry_in_hands_of(&txn, lead_id, &caller.user_id, now - limits.reclaim_block)
            .await?
    {
        return Ok(Err(ClaimRefused::ReclaimBlocked {
            until: expired + limits.reclaim_block,
        }));
    }
    if repo::claims_since(&txn, &caller.user_id, now - Duration::hours(24)).await?
        >= u64::from(limits.daily_cap)
    {
        return Ok(Err(ClaimRefused::DailyCap {
            cap: limits.daily_cap,
        }));
    }
    let reps = repo::rep_snapshots(&txn, &caller.org_id, now).await?;
    let Some(me) = reps.iter().find(|r| r.id == caller.user_id) else {
        return Ok(Err(ClaimRefused::NoProfile));
    };
    if !me.available || !me.has_room() {
        return Ok(Err(ClaimRefused::AtCapacity));
    }
    let ends = now + Duration::hours(i64::from(limits.protection_hours));
    if !repo::assign(
        &txn,
        repo::Assignment {
            lead_id,
            owner_id: &caller.user_id,
            team_id: caller.team_id.as_deref(),
            assigned_by: "claim",
            at: now,
            protection_ends_at: ends,
            customer_id: None,
        },
    )
    .await?
    {
        return Ok(Err(ClaimRefused::NotInPool));
    }
    repo::touch_rep_state(&txn, &caller.user_id, now).await?;
    let decision = repo::insert_decision(&txn, repo::NewDecision {
        org_id: &caller.org_id,
        lead_id,
        kind: "claim",
        rule_set_version: None,
        rep_id: Some(&caller.user_id),
        record: json!({"claimed_by": caller.user_id, "load_milli": me.load_milli(), "capacity": me.capacity, "protection_ends_at": ends}).to_string().into_bytes(),
        at: now,
    })
    .await?;
    txn.commit().await?;
    Ok(Ok(Claimed {
        rep_id: caller.user_id.clone(),
        decision_id: decision.id,
    }))
}

/// Why the owner's follow-up or conversion was refused: the lead is no longer theirs to work
/// (its window ended unworked, or it was converted, moved or returned to the pool since they
/// read it). `status` is where it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotYours {
    pub status: String,
}

async fn not_yours<C: sea_orm::ConnectionTrait>(db: &C, lead_id: &str) -> Result<NotYours, DbErr> {
    Ok(NotYours {
        status: repo::find(db, lead_id)
            .await?
            .map(|l| l.status)
            .unwrap_or_default(),
    })
}

/// The owner logs a follow-up (call, visit, message, note); the first one stops the expiry.
/// Refused, with nothing written, when the lead is no longer the owner's to work: the check is a
/// compare-and-set on the lead, the transaction's first statement, so an expiry, claim or move
/// racing it either sees the follow-up or makes it fail.
pub async fn follow_up(
    db: &DatabaseConnection,
    row: &lead::Model,
    actor: &str,
    channel: &str,
    summary: &str,
    occurred_at: OffsetDateTime,
) -> Result<Result<lead_activity::Model, NotYours>, DbErr> {
    let txn = db.begin().await?;
    // The time it was logged, not the claimed time: a back-dated note cannot fake a fast response.
    let now = db::now();
    if !repo::mark_followed_up(&txn, &row.id, actor, now).await? {
        return Ok(Err(not_yours(&txn, &row.id).await?));
    }
    let activity = repo::insert_activity(
        &txn,
        lead_activity::ActiveModel {
            id: Set(db::new_id()),
            lead_id: Set(row.id.clone()),
            actor_id: Set(actor.to_owned()),
            channel: Set(channel.to_owned()),
            summary: Set(summary.to_owned()),
            occurred_at: Set(occurred_at),
            created_at: Set(now),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(Ok(activity))
}

/// The owner converts the lead (it becomes a customer they own, if it was not one already).
/// A compare-and-set on the lead comes first: of two racing conversions (a double tap) one
/// creates the customer, the other is refused; so is a lead no longer the owner's to work.
pub async fn convert(
    db: &DatabaseConnection,
    row: lead::Model,
    caller: &Caller,
) -> anyhow::Result<Result<lead::Model, NotYours>> {
    let txn = db.begin().await?;
    let now = db::now();
    if !repo::mark_converted(&txn, &row.id, &caller.user_id, now).await? {
        return Ok(Err(not_yours(&txn, &row.id).await?));
    }
    let customer_id = match row.customer_id.clone() {
        Some(c) => c,
        None => {
            let name = fieldproof_domain::customer::Name::parse(&row.company)?;
            let customer = db::customers::create(
                &txn,
                db::customers::NewCustomer {
                    org_id: row.org_id.clone(),
                    name,
                    industry: row.industry.clone(),
                    annual_purchase: fieldproof_domain::customer::Fen::new(
                        row.annual_purchase_fen,
                    )?,
                    tags: vec![format!("lead:{}", row.source)],
                    owner_id: caller.user_id.clone(),
                    team_id: row.team_id.clone(),
                },
            )
            .await?;
            customer.id
        }
    };
    let converted = repo::find(&txn, &row.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the lead disappeared"))?;
    let mut active: lead::ActiveModel = converted.into();
    active.customer_id = Set(Some(customer_id));
    let saved = repo::save(&txn, active).await?;
    txn.commit().await?;
    Ok(Ok(saved))
}

/// A manager (or admin) gives a lead to another rep; moving it to another team is what the
/// cross-group mis-assignment figure counts.
pub async fn reassign(
    db: &DatabaseConnection,
    row: lead::Model,
    caller: &Caller,
    to: &db::users::User,
    protection_hours: u32,
) -> anyhow::Result<Result<lead::Model, NotYours>> {
    let txn = db.begin().await?;
    repo::take_turn(&txn, &row.org_id).await?;
    // Read again inside the turn (a batch may have assigned it since the caller read it), and
    // lock it: the expiry takes no turn, and without the lock an expiry committing between this
    // read and the update below would leave the lead in the pool with the new owner written
    // over it (the update writes only the columns it changes).
    let row = repo::find_for_update(&txn, &row.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the lead disappeared"))?;
    if row.status == repo::CONVERTED {
        return Ok(Err(NotYours { status: row.status }));
    }
    let now = db::now();
    let moved = row.team_id.is_some() && row.team_id != to.team_id;
    let from = row.owner_id.clone();
    let mut active: lead::ActiveModel = row.clone().into();
    if row.status == repo::POOL {
        active.status = Set(repo::ASSIGNED.to_owned());
        active.assigned_at = Set(Some(now));
        active.assigned_by = Set(Some("manual".into()));
        active.needs_assignment = Set(false);
    }
    active.owner_id = Set(Some(to.id.clone()));
    active.team_id = Set(to.team_id.clone());
    if row.first_team_id.is_none() {
        active.first_team_id = Set(to.team_id.clone());
    }
    active.protection_ends_at = Set(Some(now + Duration::hours(i64::from(protection_hours))));
    active.first_activity_at = Set(None);
    active.moved_team = Set(row.moved_team || moved);
    active.updated_at = Set(now);
    let saved = repo::save(&txn, active).await?;
    repo::touch_rep_state(&txn, &to.id, now).await?;
    if let Some(ends) = saved.protection_ends_at {
        super::tell_owner(
            &txn,
            &saved,
            &to.id,
            saved.customer_id.as_deref(),
            ends,
            false,
        )
        .await?;
    }
    repo::insert_decision(&txn, repo::NewDecision {
        org_id: &row.org_id,
        lead_id: &row.id,
        kind: "reassign",
        rule_set_version: None,
        rep_id: Some(&to.id),
        record: json!({"by": caller.user_id, "from": from, "from_team": row.team_id, "to_team": to.team_id, "moved_team": moved}).to_string().into_bytes(),
        at: now,
    })
    .await?;
    txn.commit().await?;
    Ok(Ok(saved))
}

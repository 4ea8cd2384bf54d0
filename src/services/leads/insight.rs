//! What managers look at: the health figures of a team and period, and the what-if replay of a
//! draft rule set over the last N days. Both are computed by pure functions in
//! `domain::leads::health`; this module only loads the rows.

use crate::db::{self, leads as repo};
use fieldproof_domain::leads::RuleSet;
use fieldproof_domain::leads::assign::Lead;
use fieldproof_domain::leads::health::{
    self, HealthFigures, LeadOutcome, ReplayLead, ReplayReport,
};
use sea_orm::ConnectionTrait;
use time::OffsetDateTime;

/// Figures for leads created in `[from, to)`, of one team or (for admins) the whole org.
pub async fn health_of<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    team_id: Option<&str>,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> anyhow::Result<HealthFigures> {
    let rows = repo::created_between(db, org_id, team_id, from, to).await?;
    let outcomes: Vec<LeadOutcome> = rows
        .iter()
        .map(|r| LeadOutcome {
            created_at: r.created_at,
            assigned_at: r.assigned_at,
            by_rule: r.assigned_by.as_deref() == Some("rule"),
            first_activity_at: r.first_activity_at,
            converted_at: r.converted_at,
            protection_ends_at: r.protection_ends_at,
            moved_team: r.moved_team,
            assignee: r.owner_id.clone(),
        })
        .collect();
    let reps: Vec<(String, u32)> = repo::rep_snapshots(db, org_id, db::now())
        .await?
        .into_iter()
        .filter(|r| team_id.is_none() || r.team_id.as_deref() == team_id)
        .map(|r| (r.id, r.capacity))
        .collect();
    Ok(health::health(&outcomes, &reps))
}

/// Replay the org's leads of the last `days` days against `draft`. Reps start from their current
/// attributes and deal load with no protected leads; leads routed to an existing owner are left
/// out (dedup comes before rules, so no rule set changes them).
pub async fn what_if<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    draft: &RuleSet,
    days: i64,
    now: OffsetDateTime,
) -> anyhow::Result<(ReplayReport, usize)> {
    let (from, to) = health::period(now, days);
    let rows = repo::created_between(db, org_id, None, from, to).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let decisions = repo::rule_decisions_of(db, &ids).await?;
    let mut reps = repo::rep_snapshots(db, org_id, now).await?;
    for r in &mut reps {
        r.protected_leads = 0;
        r.pending_leads = 0;
        r.last_assigned_at = None;
    }
    let mut replay = Vec::new();
    let mut skipped = 0;
    for row in &rows {
        let decision = decisions.get(&row.id);
        if decision.is_some_and(|d| d.kind == "existing_owner") {
            skipped += 1;
            continue;
        }
        let tags = super::tags_of(row)?;
        replay.push(ReplayLead {
            id: row.id.clone(),
            lead: Lead {
                key: row.id.clone(),
                tags,
            },
            created_at: row.created_at,
            actual_rep: decision.and_then(|d| d.rep_id.clone()),
            final_team: row.team_id.clone(),
            moved_team: row.moved_team,
        });
    }
    Ok((health::replay(&replay, &reps, draft, 200), skipped))
}

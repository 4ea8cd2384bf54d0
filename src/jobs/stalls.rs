//! Stall alarms: a node open longer than its limit tells the rep, the team's managers and the
//! deal's presales, once per stall, with a digest of the deal's last three activities.
//!
//! Exactly once across N instances: the alarm is claimed by inserting the run's id into
//! `stall_alarms` (a primary key) in the same transaction that queues the notices; whoever
//! loses the insert sends nothing. The scan takes every overdue run, so alarms missed while no
//! instance was running go out on the next pass.

use crate::db::entities::node_run;
use crate::db::{self, deals as repo};
use crate::services::notify::{self, Notice};
use fieldproof_domain::account::Role;
use sea_orm::{DatabaseConnection, DbErr, EntityTrait, TransactionTrait};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;

pub type Clock = Arc<dyn Fn() -> OffsetDateTime + Send + Sync>;

const BATCH: u64 = 200;

/// One pass: alarm every run stalled by `now`. Returns how many alarms this call sent. A run
/// whose alarm fails is logged and left for the next pass; the others still go out.
pub async fn scan(db: &DatabaseConnection, now: OffsetDateTime) -> Result<usize, DbErr> {
    let mut sent = 0;
    for run in repo::stalled_runs(db, now, BATCH).await? {
        match alarm(db, &run, now).await {
            Ok(true) => sent += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "stall alarm failed; retried next pass")
            }
        }
    }
    Ok(sent)
}

/// Alarm one run the scan listed as stalled, unless it has moved on since (the deal's lock is
/// taken and the run read again: the list is read outside any transaction, and a pass catching
/// up after downtime works through it for a while) or another instance claimed it. True when
/// this call sent the alarm.
pub async fn alarm(
    db: &DatabaseConnection,
    run: &node_run::Model,
    now: OffsetDateTime,
) -> anyhow::Result<bool> {
    let txn = db.begin().await?;
    // The claim first: the transaction's first statement is a write, so on SQLite it waits for
    // the writer instead of failing to upgrade a read, and on PostgreSQL a racing claim of the
    // same run waits for this one's outcome. Dropping the transaction undoes it.
    if !repo::claim_stall_alarm(&txn, &run.id, now).await? {
        return Ok(false);
    }
    let Some(deal) = repo::lock(&txn, &run.deal_id).await? else {
        return Ok(false);
    };
    let still_open = node_run::Entity::find_by_id(run.id.clone())
        .one(&txn)
        .await?
        .is_some_and(|r| r.outcome == repo::OPEN && r.stall_at <= now);
    if !still_open {
        return Ok(false);
    }
    let mut recipients = vec![run.owner_id.clone()];
    if let Some(team) = &deal.team_id {
        recipients.extend(
            db::users::team_members_with_role(&txn, team, Role::Manager)
                .await?
                .into_iter()
                .map(|u| u.id),
        );
    }
    recipients.extend(deal.presales_id.clone());
    let recent = repo::activities(&txn, &deal.id, 3).await?;
    let digest_en = if recent.is_empty() {
        "No activity logged.".to_owned()
    } else {
        recent
            .iter()
            .map(|a| format!("- {} [{}] {}", a.occurred_at.date(), a.channel, a.summary))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let digest_zh = if recent.is_empty() {
        "暂无跟进记录。".to_owned()
    } else {
        digest_en.clone()
    };
    let hours = (now - run.entered_at).whole_hours();
    // The step's names from the deal's template version (its key if the template is gone).
    let (name_en, name_zh) = db::templates::find(&txn, &deal.org_id, &deal.template_id)
        .await?
        .and_then(|t| {
            t.definition
                .node(&run.node_key)
                .map(|n| (n.name_en.clone(), n.name_zh.clone()))
        })
        .unwrap_or_else(|| (run.node_key.clone(), run.node_key.clone()));
    notify::notify(
        &txn,
        Notice {
            org_id: deal.org_id.clone(),
            recipients,
            team_id: deal.team_id.clone(),
            kind: "stall_alarm".into(),
            title_en: format!(
                "Stalled: \"{}\" has been at {name_en} for {hours} h",
                deal.title
            ),
            title_zh: format!("环节停滞：「{}」已在{name_zh}停留 {hours} 小时", deal.title),
            body_en: format!("Last activities:\n{digest_en}"),
            body_zh: format!("最近跟进：\n{digest_zh}"),
            link: Some(format!("/api/v1/deals/{}", deal.id)),
            dedup_key: Some(format!("stall:{}", run.id)),
        },
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

/// Scan every `interval` forever; errors are logged and the next pass retries.
pub fn spawn(
    db: DatabaseConnection,
    interval: Duration,
    clock: Clock,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            match scan(&db, clock()).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(alarms = n, "stall alarms sent"),
                Err(e) => tracing::warn!(error = %e, "stall scan failed"),
            }
            tokio::time::sleep(interval).await;
        }
    })
}

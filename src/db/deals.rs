//! Deals, their node runs, the facts recorded on a run, and the activity log.
//!
//! Scope: admins see the org; the owner and the presales assigned see their deals; managers,
//! supervisors and finance see their team's. Anyone else: not found.

use super::entities::{activity, deal, node_record, node_run};
use super::{Page, PageRequest};
use crate::auth::Caller;
use fieldproof_domain::account::Role;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::Value;
use time::OffsetDateTime;

pub const OPEN: &str = "open";
pub const PASSED: &str = "passed";
pub const RETURNED: &str = "returned";

fn visible_to(caller: &Caller) -> Condition {
    let in_org = Condition::all().add(deal::Column::OrgId.eq(caller.org_id.as_str()));
    if caller.is_admin() {
        return in_org;
    }
    let mut mine = Condition::any()
        .add(deal::Column::OwnerId.eq(caller.user_id.as_str()))
        .add(deal::Column::PresalesId.eq(caller.user_id.as_str()));
    let sees_team = match caller.role {
        Role::Manager | Role::Supervisor | Role::Finance => true,
        Role::Rep | Role::Presales | Role::Admin => false,
    };
    if sees_team && let Some(team) = &caller.team_id {
        mine = mine.add(deal::Column::TeamId.eq(team.as_str()));
    }
    in_org.add(mine)
}

pub async fn find_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> Result<Option<deal::Model>, DbErr> {
    deal::Entity::find_by_id(id.to_owned())
        .filter(visible_to(caller))
        .one(db)
        .await
}

/// A deal by id, unscoped: only for callers that authorised the access another way (a customer
/// link names its quote, and through it one deal).
pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<deal::Model>, DbErr> {
    deal::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Re-read a deal inside a transaction, locking its row (PostgreSQL) so changes to one deal
/// — and its audit chain — are applied one at a time.
pub async fn lock<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<deal::Model>, DbErr> {
    deal::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(db)
        .await
}

pub async fn list_visible<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    page: &PageRequest,
) -> Result<Page<deal::Model>, DbErr> {
    let mut query = deal::Entity::find().filter(visible_to(caller));
    if let Some(after) = &page.after {
        query = query.filter(deal::Column::Id.gt(after.as_str()));
    }
    let rows = query
        .order_by_asc(deal::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |d| d.id.clone()))
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: deal::ActiveModel,
) -> Result<deal::Model, DbErr> {
    row.insert(db).await
}

pub async fn save<C: ConnectionTrait>(
    db: &C,
    row: deal::ActiveModel,
) -> Result<deal::Model, DbErr> {
    row.update(db).await
}

pub struct NewRun<'a> {
    pub deal_id: &'a str,
    pub node_key: &'a str,
    pub owner_id: &'a str,
    pub team_id: Option<&'a str>,
    pub entered_at: OffsetDateTime,
    pub stall_after_hours: u32,
}

pub async fn open_run<C: ConnectionTrait>(
    db: &C,
    new: NewRun<'_>,
) -> Result<node_run::Model, DbErr> {
    let previous = node_run::Entity::find()
        .filter(node_run::Column::DealId.eq(new.deal_id))
        .filter(node_run::Column::NodeKey.eq(new.node_key))
        .count(db)
        .await?;
    let previous = i32::try_from(previous).unwrap_or(i32::MAX - 1);
    node_run::ActiveModel {
        id: Set(super::new_id()),
        deal_id: Set(new.deal_id.to_owned()),
        node_key: Set(new.node_key.to_owned()),
        run_no: Set(previous + 1),
        owner_id: Set(new.owner_id.to_owned()),
        team_id: Set(new.team_id.map(str::to_owned)),
        entered_at: Set(new.entered_at),
        stall_at: Set(new.entered_at + time::Duration::hours(i64::from(new.stall_after_hours))),
        closed_at: Set(None),
        outcome: Set(OPEN.to_owned()),
        by_override: Set(false),
        return_reason: Set(None),
    }
    .insert(db)
    .await
}

/// The open run of a deal's node, if any.
pub async fn open_run_of<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
    node_key: &str,
) -> Result<Option<node_run::Model>, DbErr> {
    node_run::Entity::find()
        .filter(node_run::Column::DealId.eq(deal_id))
        .filter(node_run::Column::NodeKey.eq(node_key))
        .filter(node_run::Column::Outcome.eq(OPEN))
        .one(db)
        .await
}

pub async fn runs_of<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Vec<node_run::Model>, DbErr> {
    node_run::Entity::find()
        .filter(node_run::Column::DealId.eq(deal_id))
        .order_by_asc(node_run::Column::EnteredAt)
        .order_by_asc(node_run::Column::Id)
        .all(db)
        .await
}

pub async fn close_run<C: ConnectionTrait>(
    db: &C,
    run_id: &str,
    outcome: &str,
    by_override: bool,
    return_reason: Option<&str>,
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    node_run::Entity::update_many()
        .col_expr(node_run::Column::Outcome, Expr::value(outcome))
        .col_expr(node_run::Column::ClosedAt, Expr::value(at))
        .col_expr(node_run::Column::ByOverride, Expr::value(by_override))
        .col_expr(
            node_run::Column::ReturnReason,
            Expr::value(return_reason.map(str::to_owned)),
        )
        .filter(node_run::Column::Id.eq(run_id))
        .exec(db)
        .await
        .map(|_| ())
}

pub struct NewRecord<'a> {
    pub deal_id: &'a str,
    pub node_run_id: &'a str,
    pub kind: &'a str,
    pub actor_id: Option<&'a str>,
    pub payload: Value,
    /// Makes a replayed fact (a callback delivered twice) a no-op.
    pub dedup_key: Option<String>,
}

pub async fn insert_record<C: ConnectionTrait>(
    db: &C,
    new: NewRecord<'_>,
) -> Result<node_record::Model, DbErr> {
    node_record::ActiveModel {
        id: Set(super::new_id()),
        deal_id: Set(new.deal_id.to_owned()),
        node_run_id: Set(new.node_run_id.to_owned()),
        kind: Set(new.kind.to_owned()),
        actor_id: Set(new.actor_id.map(str::to_owned)),
        payload: Set(new.payload),
        dedup_key: Set(new.dedup_key),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

pub async fn records_of_run<C: ConnectionTrait>(
    db: &C,
    run_id: &str,
) -> Result<Vec<node_record::Model>, DbErr> {
    node_record::Entity::find()
        .filter(node_record::Column::NodeRunId.eq(run_id))
        .order_by_asc(node_record::Column::CreatedAt)
        .order_by_asc(node_record::Column::Id)
        .all(db)
        .await
}

/// The deal's records of one kind over all its runs, oldest first: one statement, whatever
/// number of runs the deal has been through.
pub async fn records_of_deal<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
    kind: &str,
) -> Result<Vec<node_record::Model>, DbErr> {
    node_record::Entity::find()
        // Through the deal's runs: node_records is indexed by run, not by deal.
        .filter(
            node_record::Column::NodeRunId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(node_run::Column::Id)
                    .from(node_run::Entity)
                    .and_where(node_run::Column::DealId.eq(deal_id))
                    .to_owned(),
            ),
        )
        .filter(node_record::Column::Kind.eq(kind))
        .order_by_asc(node_record::Column::CreatedAt)
        .order_by_asc(node_record::Column::Id)
        .all(db)
        .await
}

pub struct NewActivity<'a> {
    pub org_id: &'a str,
    pub deal_id: &'a str,
    pub actor_id: &'a str,
    pub channel: &'a str,
    pub summary: &'a str,
    pub occurred_at: OffsetDateTime,
}

pub async fn insert_activity<C: ConnectionTrait>(
    db: &C,
    new: NewActivity<'_>,
) -> Result<activity::Model, DbErr> {
    activity::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id.to_owned()),
        deal_id: Set(new.deal_id.to_owned()),
        actor_id: Set(new.actor_id.to_owned()),
        channel: Set(new.channel.to_owned()),
        summary: Set(new.summary.to_owned()),
        occurred_at: Set(new.occurred_at),
        created_at: Set(super::now()),
    }
    .insert(db)
    .await
}

/// A deal's activities, newest first.
pub async fn activities<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
    limit: u64,
) -> Result<Vec<activity::Model>, DbErr> {
    activity::Entity::find()
        .filter(activity::Column::DealId.eq(deal_id))
        .order_by_desc(activity::Column::OccurredAt)
        .order_by_desc(activity::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Node runs of a team entered in `[from, to)`, for the heatmap.
pub async fn team_runs_between<C: ConnectionTrait>(
    db: &C,
    team_id: &str,
    from: OffsetDateTime,
    to: OffsetDateTime,
) -> Result<Vec<node_run::Model>, DbErr> {
    node_run::Entity::find()
        .filter(node_run::Column::TeamId.eq(team_id))
        .filter(node_run::Column::EnteredAt.gte(super::utc(from)))
        .filter(node_run::Column::EnteredAt.lt(super::utc(to)))
        .all(db)
        .await
}

/// Open runs whose stall time has come, oldest first (the scheduler's scan; indexed).
pub async fn stalled_runs<C: ConnectionTrait>(
    db: &C,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<node_run::Model>, DbErr> {
    node_run::Entity::find()
        .filter(node_run::Column::Outcome.eq(OPEN))
        .filter(node_run::Column::StallAt.lte(now))
        .filter(
            node_run::Column::Id.not_in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(super::entities::stall_alarm::Column::NodeRunId)
                    .from(super::entities::stall_alarm::Entity)
                    .to_owned(),
            ),
        )
        .order_by_asc(node_run::Column::StallAt)
        .limit(limit)
        .all(db)
        .await
}

/// Claim the alarm of a stalled run: true for exactly one caller across all instances.
pub async fn claim_stall_alarm<C: ConnectionTrait>(
    db: &C,
    run_id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    use super::entities::stall_alarm;
    let added = stall_alarm::Entity::insert(stall_alarm::ActiveModel {
        node_run_id: Set(run_id.to_owned()),
        created_at: Set(now),
    })
    .on_conflict(
        sea_orm::sea_query::OnConflict::column(stall_alarm::Column::NodeRunId)
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(added == 1)
}

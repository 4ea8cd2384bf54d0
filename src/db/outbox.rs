//! The outbox: messages to send after the transaction that produced them has committed.
//!
//! A row's life: queued (`next_attempt_at` set) → claimed by one worker under a lease →
//! delivered, or re-queued with a later `next_attempt_at`, or given up. `next_attempt_at` is
//! NULL once nothing more will happen, so finished rows fall out of the worker's index scan.
//!
//! Ownership of an attempt is decided by one compare-and-set `UPDATE … WHERE lease is free`:
//! whichever process changes the row (rows_affected == 1) owns the attempt. That needs no
//! `SELECT … FOR UPDATE`, so it is the same code on SQLite and PostgreSQL.

use super::entities::{outbox, team_webhook};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use time::OffsetDateTime;

/// Topic of a chat-robot message; `target_id` is then a `team_webhooks.id`.
pub const TOPIC_TEAM_WEBHOOK: &str = "team_webhook";

pub struct NewOutboxRow {
    pub org_id: String,
    pub topic: &'static str,
    pub target_id: String,
    pub payload: serde_json::Value,
    /// Unique over all rows: queuing the same key again adds nothing.
    pub dedup_key: String,
    /// Rows sharing it are delivered in the order they were queued: one is not sent while an
    /// earlier one is neither delivered nor given up (a quote's ERP events). `None`: no order.
    pub sequence_key: Option<String>,
}

/// Queue a message due now, unless its dedup key is already queued; returns whether it was added.
pub async fn enqueue<C: ConnectionTrait>(db: &C, new: NewOutboxRow) -> Result<bool, DbErr> {
    let now = super::now();
    let row = outbox::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id),
        topic: Set(new.topic.to_owned()),
        target_id: Set(new.target_id),
        payload: Set(new.payload),
        dedup_key: Set(new.dedup_key),
        attempts: Set(0),
        next_attempt_at: Set(Some(now)),
        lease_owner: Set(None),
        lease_until: Set(None),
        delivered_at: Set(None),
        gave_up_at: Set(None),
        last_error: Set(None),
        created_at: Set(now),
        sequence_key: Set(new.sequence_key),
    };
    let added = outbox::Entity::insert(row)
        .on_conflict(
            OnConflict::column(outbox::Column::DedupKey)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(added == 1)
}

/// Rows due at `now` whose lease (if any) has run out: due, not owned, and not behind an
/// unfinished earlier row of their sequence (ids are time-ordered: earlier is smaller).
fn claimable(now: OffsetDateTime) -> Condition {
    use sea_orm::sea_query::{Alias, Query};
    let earlier = Alias::new("earlier");
    let waiting_behind = Query::select()
        .expr(Expr::value(1))
        .from_as(outbox::Entity, earlier.clone())
        .and_where(
            Expr::col((earlier.clone(), outbox::Column::SequenceKey))
                .equals((outbox::Entity, outbox::Column::SequenceKey)),
        )
        .and_where(
            Expr::col((earlier.clone(), outbox::Column::Id))
                .lt(Expr::col((outbox::Entity, outbox::Column::Id))),
        )
        .and_where(Expr::col((earlier.clone(), outbox::Column::DeliveredAt)).is_null())
        .and_where(Expr::col((earlier, outbox::Column::GaveUpAt)).is_null())
        .to_owned();
    // A chat robot that asked to slow down is left alone until its pause ends (other topics'
    // targets are not webhooks and never match).
    let paused_robot = Query::select()
        .expr(Expr::value(1))
        .from(team_webhook::Entity)
        .and_where(
            Expr::col((team_webhook::Entity, team_webhook::Column::Id))
                .equals((outbox::Entity, outbox::Column::TargetId)),
        )
        .and_where(Expr::col((team_webhook::Entity, team_webhook::Column::PausedUntil)).gt(now))
        .to_owned();
    Condition::all()
        .add(Expr::exists(paused_robot).not())
        .add(
            Condition::any()
                .add(outbox::Column::SequenceKey.is_null())
                .add(Expr::exists(waiting_behind).not()),
        )
        .add(outbox::Column::NextAttemptAt.lte(now))
        .add(outbox::Column::DeliveredAt.is_null())
        .add(
            Condition::any()
                .add(outbox::Column::LeaseUntil.is_null())
                .add(outbox::Column::LeaseUntil.lt(now)),
        )
}

/// Ids of rows a worker could claim now, earliest due first. Only a hint: another worker may
/// claim any of them before we do, which [`claim`] detects.
pub async fn due_ids<C: ConnectionTrait>(
    db: &C,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<String>, DbErr> {
    outbox::Entity::find()
        .select_only()
        .column(outbox::Column::Id)
        .filter(claimable(now))
        .order_by_asc(outbox::Column::NextAttemptAt)
        .limit(limit)
        .into_tuple::<String>()
        .all(db)
        .await
}

/// Take the lease on one row and count the attempt; `None` when someone else holds it or it is
/// no longer due. Counting at claim time means a worker that dies mid-send still uses up an
/// attempt, so a message that crashes its sender cannot loop forever.
pub async fn claim<C: ConnectionTrait>(
    db: &C,
    id: &str,
    owner: &str,
    now: OffsetDateTime,
    lease_until: OffsetDateTime,
) -> Result<Option<outbox::Model>, DbErr> {
    let result = outbox::Entity::update_many()
        .col_expr(outbox::Column::LeaseOwner, Expr::value(owner))
        .col_expr(outbox::Column::LeaseUntil, Expr::value(lease_until))
        .col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).add(1),
        )
        .filter(outbox::Column::Id.eq(id))
        .filter(claimable(now))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        return Ok(None);
    }
    outbox::Entity::find_by_id(id.to_owned())
        .filter(outbox::Column::LeaseOwner.eq(owner))
        .one(db)
        .await
}

/// The receiver accepted the message. Not guarded by the lease: if it was sent, it was sent,
/// even by a worker whose lease ran out meanwhile.
pub async fn mark_delivered<C: ConnectionTrait>(
    db: &C,
    id: &str,
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::DeliveredAt, Expr::value(at))
        .col_expr(
            outbox::Column::NextAttemptAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            outbox::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::DeliveredAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// The attempt failed: try again at `next_at`, releasing the lease. Only the lease holder may
/// do this, so a slow worker cannot overwrite a newer owner's outcome. `refund`: the attempt
/// does not count (the receiver only asked us to slow down).
pub async fn schedule_retry<C: ConnectionTrait>(
    db: &C,
    id: &str,
    owner: &str,
    next_at: OffsetDateTime,
    error: &str,
    refund: bool,
) -> Result<(), DbErr> {
    let mut update = outbox::Entity::update_many();
    if refund {
        update = update.col_expr(
            outbox::Column::Attempts,
            Expr::col(outbox::Column::Attempts).sub(1),
        );
    }
    update
        .col_expr(outbox::Column::NextAttemptAt, Expr::value(next_at))
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::LeaseOwner.eq(owner))
        .filter(outbox::Column::DeliveredAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// No more attempts: keep the last error for the operator, drop out of the scan.
pub async fn give_up<C: ConnectionTrait>(
    db: &C,
    id: &str,
    owner: &str,
    at: OffsetDateTime,
    error: &str,
) -> Result<(), DbErr> {
    outbox::Entity::update_many()
        .col_expr(outbox::Column::GaveUpAt, Expr::value(at))
        .col_expr(
            outbox::Column::NextAttemptAt,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<OffsetDateTime>::None),
        )
        .col_expr(outbox::Column::LastError, Expr::value(error))
        .filter(outbox::Column::Id.eq(id))
        .filter(outbox::Column::LeaseOwner.eq(owner))
        .filter(outbox::Column::DeliveredAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// All rows of an org, oldest first (operators' and tests' view of the queue).
pub async fn list_for_org<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
) -> Result<Vec<outbox::Model>, DbErr> {
    outbox::Entity::find()
        .filter(outbox::Column::OrgId.eq(org_id))
        .order_by_asc(outbox::Column::Id)
        .all(db)
        .await
}

//! Resumable upload sessions. A session is its owner's alone: every read a client can trigger is
//! scoped by user and org, and anyone else gets "not found". The received offset only moves by
//! compare-and-set, so two processes taking pieces of one upload at once cannot both advance it.

use super::entities::upload_session;
use crate::auth::Caller;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use time::OffsetDateTime;

pub struct NewSession<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub capture_id: &'a str,
    pub size: i64,
    pub sha256: &'a str,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
}

/// Insert a new session at offset 0. A unique violation means this user already has a session
/// for the capture (see [`find_by_capture`]).
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewSession<'_>,
) -> Result<upload_session::Model, DbErr> {
    upload_session::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id.to_owned()),
        user_id: Set(new.user_id.to_owned()),
        capture_id: Set(new.capture_id.to_owned()),
        size: Set(new.size),
        sha256: Set(new.sha256.to_owned()),
        received: Set(0),
        created_at: Set(new.created_at),
        expires_at: Set(new.expires_at),
        completed_at: Set(None),
    }
    .insert(db)
    .await
}

pub async fn find_by_capture<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    capture_id: &str,
) -> Result<Option<upload_session::Model>, DbErr> {
    upload_session::Entity::find()
        .filter(upload_session::Column::UserId.eq(caller.user_id.as_str()))
        .filter(upload_session::Column::OrgId.eq(caller.org_id.as_str()))
        .filter(upload_session::Column::CaptureId.eq(capture_id))
        .one(db)
        .await
}

/// The caller's own session with this id, whatever its state.
pub async fn find_own<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
) -> Result<Option<upload_session::Model>, DbErr> {
    upload_session::Entity::find_by_id(id.to_owned())
        .filter(upload_session::Column::UserId.eq(caller.user_id.as_str()))
        .filter(upload_session::Column::OrgId.eq(caller.org_id.as_str()))
        .one(db)
        .await
}

pub async fn find<C: ConnectionTrait>(
    db: &C,
    id: &str,
) -> Result<Option<upload_session::Model>, DbErr> {
    upload_session::Entity::find_by_id(id.to_owned())
        .one(db)
        .await
}

/// Move the offset from `from` to `to`, only if it still is `from` and the session is open.
/// False means another request moved it first.
pub async fn advance<C: ConnectionTrait>(
    db: &C,
    id: &str,
    from: i64,
    to: i64,
) -> Result<bool, DbErr> {
    let result = upload_session::Entity::update_many()
        .col_expr(upload_session::Column::Received, Expr::value(to))
        .filter(upload_session::Column::Id.eq(id))
        .filter(upload_session::Column::Received.eq(from))
        .filter(upload_session::Column::CompletedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Mark a session used; false when it was already completed (or is gone).
pub async fn mark_completed<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = upload_session::Entity::update_many()
        .col_expr(upload_session::Column::CompletedAt, Expr::value(at))
        .filter(upload_session::Column::Id.eq(id))
        .filter(upload_session::Column::OrgId.eq(caller.org_id.as_str()))
        .filter(upload_session::Column::UserId.eq(caller.user_id.as_str()))
        .filter(upload_session::Column::CompletedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Up to `limit` sessions whose deadline is before `now`, oldest first.
pub async fn expired<C: ConnectionTrait>(
    db: &C,
    now: OffsetDateTime,
    limit: u64,
) -> Result<Vec<upload_session::Model>, DbErr> {
    upload_session::Entity::find()
        .filter(upload_session::Column::ExpiresAt.lt(now))
        .order_by_asc(upload_session::Column::ExpiresAt)
        .order_by_asc(upload_session::Column::Id)
        .limit(limit)
        .all(db)
        .await
}

/// Close a session that has expired by `now` to further pieces before its pieces are deleted:
/// `advance` refuses a completed session, and the request it refused deletes its own piece.
pub async fn close_expired<C: ConnectionTrait>(
    db: &C,
    id: &str,
    now: OffsetDateTime,
) -> Result<(), DbErr> {
    upload_session::Entity::update_many()
        .col_expr(upload_session::Column::CompletedAt, Expr::value(now))
        .filter(upload_session::Column::Id.eq(id))
        .filter(upload_session::Column::ExpiresAt.lt(now))
        .filter(upload_session::Column::CompletedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Delete a session if it has expired by `now`; false when another process already did (or it
/// has not expired).
pub async fn delete_expired<C: ConnectionTrait>(
    db: &C,
    id: &str,
    now: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = upload_session::Entity::delete_many()
        .filter(upload_session::Column::Id.eq(id))
        .filter(upload_session::Column::ExpiresAt.lt(now))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

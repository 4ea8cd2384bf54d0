//! The in-app inbox: one row per recipient and event, read only by its recipient.
//!
//! Every query filters on the recipient, so another user's notification is simply not found
//! (a 404, never a 403 that would confirm it exists).

use super::entities::notification;
use super::{Page, PageRequest};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use time::OffsetDateTime;

/// One inbox entry to write.
pub struct NewNotification<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub kind: &'a str,
    pub title_en: &'a str,
    pub title_zh: &'a str,
    pub body_en: &'a str,
    pub body_zh: &'a str,
    pub link: Option<&'a str>,
    pub dedup_key: Option<&'a str>,
}

/// Inbox entries in one statement per chunk, each skipped if its `(user_id, dedup_key)` exists:
/// `ON CONFLICT DO NOTHING` instead of check-then-insert, so two concurrent producers of the same
/// event cannot both add it. Returns how many were added.
pub async fn insert_many_unless_duplicate<C: ConnectionTrait>(
    db: &C,
    news: &[NewNotification<'_>],
) -> Result<u64, DbErr> {
    let now = super::now();
    let rows = news
        .iter()
        .map(|new| notification::ActiveModel {
            id: Set(super::new_id()),
            org_id: Set(new.org_id.to_owned()),
            user_id: Set(new.user_id.to_owned()),
            kind: Set(new.kind.to_owned()),
            title_en: Set(new.title_en.to_owned()),
            title_zh: Set(new.title_zh.to_owned()),
            body_en: Set(new.body_en.to_owned()),
            body_zh: Set(new.body_zh.to_owned()),
            link: Set(new.link.map(str::to_owned)),
            dedup_key: Set(new.dedup_key.map(str::to_owned)),
            created_at: Set(now),
            read_at: Set(None),
        })
        .collect();
    super::insert_rows(
        db,
        rows,
        Some(
            OnConflict::columns([notification::Column::UserId, notification::Column::DedupKey])
                .do_nothing()
                .to_owned(),
        ),
    )
    .await
}

/// A user's inbox, newest first: ids are UUIDv7, so id order is creation order and the cursor
/// is the last id of the previous page.
pub async fn list_for_user<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    unread_only: bool,
    page: &PageRequest,
) -> Result<Page<notification::Model>, DbErr> {
    let mut query = notification::Entity::find().filter(notification::Column::UserId.eq(user_id));
    if unread_only {
        query = query.filter(notification::Column::ReadAt.is_null());
    }
    if let Some(before) = &page.after {
        query = query.filter(notification::Column::Id.lt(before.as_str()));
    }
    let rows = query
        .order_by_desc(notification::Column::Id)
        .limit(page.limit + 1)
        .all(db)
        .await?;
    Ok(Page::from_rows(rows, page.limit, |n| n.id.clone()))
}

pub async fn unread_count<C: ConnectionTrait>(db: &C, user_id: &str) -> Result<u64, DbErr> {
    notification::Entity::find()
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::ReadAt.is_null())
        .count(db)
        .await
}

/// Mark one of the user's notifications read (keeping the first read time); `false` when the
/// user has no such notification.
pub async fn mark_read<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let exists = notification::Entity::find_by_id(id.to_owned())
        .filter(notification::Column::UserId.eq(user_id))
        .count(db)
        .await?
        > 0;
    if exists {
        notification::Entity::update_many()
            .col_expr(notification::Column::ReadAt, Expr::value(at))
            .filter(notification::Column::Id.eq(id))
            .filter(notification::Column::UserId.eq(user_id))
            .filter(notification::Column::ReadAt.is_null())
            .exec(db)
            .await?;
    }
    Ok(exists)
}

/// Mark all of the user's unread notifications read; returns how many changed.
pub async fn mark_all_read<C: ConnectionTrait>(
    db: &C,
    user_id: &str,
    at: OffsetDateTime,
) -> Result<u64, DbErr> {
    let result = notification::Entity::update_many()
        .col_expr(notification::Column::ReadAt, Expr::value(at))
        .filter(notification::Column::UserId.eq(user_id))
        .filter(notification::Column::ReadAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

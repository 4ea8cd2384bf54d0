//! Refresh-token sessions. A login starts a family; each refresh marks the presented token used
//! and issues the next one in the same family. Presenting a used token again means it leaked:
//! the whole family is revoked. Tokens are stored as SHA-256 hashes only.

use super::entities::refresh_token;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect,
    Set,
};
use time::OffsetDateTime;

pub struct NewToken<'a> {
    pub user_id: &'a str,
    pub device_id: &'a str,
    pub family_id: &'a str,
    pub token_hash: String,
    pub expires_at: OffsetDateTime,
}

pub async fn insert<C: ConnectionTrait>(db: &C, new: NewToken<'_>) -> Result<(), DbErr> {
    refresh_token::ActiveModel {
        id: Set(super::new_id()),
        user_id: Set(new.user_id.to_owned()),
        device_id: Set(new.device_id.to_owned()),
        family_id: Set(new.family_id.to_owned()),
        token_hash: Set(new.token_hash),
        created_at: Set(super::now()),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub async fn find_by_hash<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<refresh_token::Model>, DbErr> {
    refresh_token::Entity::find()
        .filter(refresh_token::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Lock a token's row until the transaction ends (PostgreSQL; SQLite's one writer serialises
/// transactions anyway).
pub async fn lock<C: ConnectionTrait>(db: &C, id: &str) -> Result<(), DbErr> {
    refresh_token::Entity::find_by_id(id.to_owned())
        .lock_exclusive()
        .one(db)
        .await
        .map(|_| ())
}

/// Mark a token used, only if nobody else did first. Returns false when another request won
/// the race (which is then treated as reuse).
pub async fn mark_used<C: ConnectionTrait>(
    db: &C,
    id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::UsedAt, Expr::value(at))
        .filter(refresh_token::Column::Id.eq(id))
        .filter(refresh_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

/// Whether a token of the family issued after `after` has been used: the client that refreshed
/// at `after` got its answer and moved on.
pub async fn used_since<C: ConnectionTrait>(
    db: &C,
    family_id: &str,
    after: OffsetDateTime,
) -> Result<bool, DbErr> {
    Ok(refresh_token::Entity::find()
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::CreatedAt.gt(after))
        .filter(refresh_token::Column::UsedAt.is_not_null())
        .one(db)
        .await?
        .is_some())
}

/// Revoke the family's tokens issued after `after` and never used (an answer that was lost).
pub async fn revoke_unused_since<C: ConnectionTrait>(
    db: &C,
    family_id: &str,
    after: OffsetDateTime,
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(at))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::CreatedAt.gt(after))
        .filter(refresh_token::Column::UsedAt.is_null())
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

pub async fn revoke_family<C: ConnectionTrait>(
    db: &C,
    family_id: &str,
    at: OffsetDateTime,
) -> Result<(), DbErr> {
    refresh_token::Entity::update_many()
        .col_expr(refresh_token::Column::RevokedAt, Expr::value(at))
        .filter(refresh_token::Column::FamilyId.eq(family_id))
        .filter(refresh_token::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

//! Sessions of the supervisor console. Tokens are stored as SHA-256 hashes only; a session is
//! live while it is neither revoked (logout) nor past its deadline.

use super::entities::console_session;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use time::OffsetDateTime;

pub struct NewSession<'a> {
    pub user_id: &'a str,
    pub token_hash: String,
    pub csrf_token: String,
    pub expires_at: OffsetDateTime,
}

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    new: NewSession<'_>,
) -> Result<console_session::Model, DbErr> {
    console_session::ActiveModel {
        id: Set(super::new_id()),
        token_hash: Set(new.token_hash),
        user_id: Set(new.user_id.to_owned()),
        csrf_token: Set(new.csrf_token),
        created_at: Set(super::now()),
        expires_at: Set(new.expires_at),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

/// The live session with this token hash, if any.
pub async fn find_live<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
    now: OffsetDateTime,
) -> Result<Option<console_session::Model>, DbErr> {
    console_session::Entity::find()
        .filter(console_session::Column::TokenHash.eq(token_hash))
        .filter(console_session::Column::RevokedAt.is_null())
        .filter(console_session::Column::ExpiresAt.gt(now))
        .one(db)
        .await
}

pub async fn revoke<C: ConnectionTrait>(db: &C, id: &str, at: OffsetDateTime) -> Result<(), DbErr> {
    console_session::Entity::update_many()
        .col_expr(console_session::Column::RevokedAt, Expr::value(at))
        .filter(console_session::Column::Id.eq(id))
        .filter(console_session::Column::RevokedAt.is_null())
        .exec(db)
        .await
        .map(|_| ())
}

/// Forget sessions that ended (expired or revoked) before `before`.
pub async fn prune<C: ConnectionTrait>(db: &C, before: OffsetDateTime) -> Result<u64, DbErr> {
    console_session::Entity::delete_many()
        .filter(
            sea_orm::Condition::any()
                .add(console_session::Column::ExpiresAt.lt(before))
                .add(console_session::Column::RevokedAt.lt(before)),
        )
        .exec(db)
        .await
        .map(|r| r.rows_affected)
}

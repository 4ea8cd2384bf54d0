//! Quotes, their numbering counter, customer links and decisions.
//!
//! Callers change a deal's quotes only inside a transaction that has locked the deal row
//! (`deals::lock`), so revisions of one deal are created and issued one at a time.

use super::entities::{quote, quote_counter, quote_decision, quote_link};
use sea_orm::sea_query::{Expr, ExprTrait, OnConflict};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use time::OffsetDateTime;

pub const DRAFT: &str = "draft";
pub const ISSUED: &str = "issued";
pub const SUPERSEDED: &str = "superseded";
pub const CONFIRMED: &str = "confirmed";
pub const DECLINED: &str = "declined";

pub async fn insert<C: ConnectionTrait>(
    db: &C,
    row: quote::ActiveModel,
) -> Result<quote::Model, DbErr> {
    row.insert(db).await
}

pub async fn save<C: ConnectionTrait>(
    db: &C,
    row: quote::ActiveModel,
) -> Result<quote::Model, DbErr> {
    row.update(db).await
}

/// Whether a quote refers to the PDF stored under `key` (the orphan sweep keeps it then).
pub async fn pdf_in_use<C: ConnectionTrait>(db: &C, key: &str) -> Result<bool, DbErr> {
    Ok(quote::Entity::find()
        .filter(quote::Column::PdfKey.eq(key))
        .one(db)
        .await?
        .is_some())
}

pub async fn find<C: ConnectionTrait>(db: &C, id: &str) -> Result<Option<quote::Model>, DbErr> {
    quote::Entity::find_by_id(id.to_owned()).one(db).await
}

/// Every revision of a deal's quote, oldest first.
pub async fn of_deal<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Vec<quote::Model>, DbErr> {
    quote::Entity::find()
        .filter(quote::Column::DealId.eq(deal_id))
        .order_by_asc(quote::Column::Revision)
        .all(db)
        .await
}

/// The newest revision of a deal's quote: the only one that can be edited, issued or confirmed.
pub async fn latest_of_deal<C: ConnectionTrait>(
    db: &C,
    deal_id: &str,
) -> Result<Option<quote::Model>, DbErr> {
    quote::Entity::find()
        .filter(quote::Column::DealId.eq(deal_id))
        .order_by_desc(quote::Column::Revision)
        .one(db)
        .await
}

/// The last number the org's counter gave in `year` (0 before the first), without taking one.
pub async fn last_number<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    year: i32,
) -> Result<i64, DbErr> {
    Ok(quote_counter::Entity::find_by_id((org_id.to_owned(), year))
        .one(db)
        .await?
        .map_or(0, |c| c.last_seq))
}

/// Take the next system number of `(org, year)`: 1, 2, 3… with no gaps.
///
/// The counter row is created if missing (`ON CONFLICT DO NOTHING`, so two first issuers do not
/// collide), then incremented in place. On PostgreSQL the `UPDATE` holds the row lock until the
/// caller's transaction ends, so concurrent issuers in any number of processes queue here, and
/// a rolled-back issue undoes its increment: no number is burnt or given twice. On SQLite the
/// single writer serialises the same way.
pub async fn next_number<C: ConnectionTrait>(
    db: &C,
    org_id: &str,
    year: i32,
) -> Result<i64, DbErr> {
    quote_counter::Entity::insert(quote_counter::ActiveModel {
        org_id: Set(org_id.to_owned()),
        year: Set(year),
        last_seq: Set(0),
    })
    .on_conflict(
        OnConflict::columns([quote_counter::Column::OrgId, quote_counter::Column::Year])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    quote_counter::Entity::update_many()
        .col_expr(
            quote_counter::Column::LastSeq,
            Expr::col(quote_counter::Column::LastSeq).add(1),
        )
        .filter(quote_counter::Column::OrgId.eq(org_id))
        .filter(quote_counter::Column::Year.eq(year))
        .exec(db)
        .await?;
    quote_counter::Entity::find_by_id((org_id.to_owned(), year))
        .one(db)
        .await?
        .map(|c| c.last_seq)
        .ok_or_else(|| DbErr::RecordNotFound("quote counter".into()))
}

pub struct NewLink<'a> {
    pub org_id: &'a str,
    pub quote_id: &'a str,
    pub token_hash: String,
    pub created_by: &'a str,
    pub expires_at: OffsetDateTime,
}

pub async fn insert_link<C: ConnectionTrait>(
    db: &C,
    new: NewLink<'_>,
) -> Result<quote_link::Model, DbErr> {
    quote_link::ActiveModel {
        id: Set(super::new_id()),
        org_id: Set(new.org_id.to_owned()),
        quote_id: Set(new.quote_id.to_owned()),
        token_hash: Set(new.token_hash),
        created_by: Set(new.created_by.to_owned()),
        created_at: Set(super::now()),
        expires_at: Set(new.expires_at),
        used_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
}

pub async fn link_by_token_hash<C: ConnectionTrait>(
    db: &C,
    token_hash: &str,
) -> Result<Option<quote_link::Model>, DbErr> {
    quote_link::Entity::find()
        .filter(quote_link::Column::TokenHash.eq(token_hash))
        .one(db)
        .await
}

/// Revoke a quote's links that are still unused (a new link replaces them).
pub async fn revoke_links<C: ConnectionTrait>(
    db: &C,
    quote_id: &str,
    at: OffsetDateTime,
) -> Result<u64, DbErr> {
    let result = quote_link::Entity::update_many()
        .col_expr(quote_link::Column::RevokedAt, Expr::value(at))
        .filter(quote_link::Column::QuoteId.eq(quote_id))
        .filter(quote_link::Column::RevokedAt.is_null())
        .filter(quote_link::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Spend a link on a decision: true for exactly one caller (compare-and-set on `used_at`).
pub async fn spend_link<C: ConnectionTrait>(
    db: &C,
    link_id: &str,
    at: OffsetDateTime,
) -> Result<bool, DbErr> {
    let result = quote_link::Entity::update_many()
        .col_expr(quote_link::Column::UsedAt, Expr::value(at))
        .filter(quote_link::Column::Id.eq(link_id))
        .filter(quote_link::Column::UsedAt.is_null())
        .filter(quote_link::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
}

pub async fn insert_decision<C: ConnectionTrait>(
    db: &C,
    row: quote_decision::ActiveModel,
) -> Result<quote_decision::Model, DbErr> {
    row.insert(db).await
}

pub async fn decisions_of<C: ConnectionTrait>(
    db: &C,
    quote_id: &str,
) -> Result<Vec<quote_decision::Model>, DbErr> {
    quote_decision::Entity::find()
        .filter(quote_decision::Column::QuoteId.eq(quote_id))
        .order_by_asc(quote_decision::Column::CreatedAt)
        .all(db)
        .await
}

//! Row of `quotes`: one revision of a deal's quote (mirrors the migration; conversions live in
//! `db::quotes`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "quotes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub deal_id: String,
    pub revision: i32,
    pub status: String,
    pub number: Option<String>,
    pub number_year: Option<i32>,
    pub number_seq: Option<i64>,
    pub lines: Json,
    pub currency: String,
    pub tax_rate_bp: i64,
    pub gross_fen: i64,
    pub discount_fen: i64,
    pub subtotal_fen: i64,
    pub tax_fen: i64,
    pub total_fen: i64,
    pub valid_until: String,
    pub expires_at: TimeDateTimeWithTimeZone,
    pub content_hash: String,
    pub pdf_key: Option<String>,
    pub pdf_sha256: Option<String>,
    pub pdf_missing_chars: Option<String>,
    pub created_by: String,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
    pub issued_by: Option<String>,
    pub issued_at: Option<TimeDateTimeWithTimeZone>,
    pub superseded_by: Option<String>,
    pub decision: Option<String>,
    pub decided_at: Option<TimeDateTimeWithTimeZone>,
    pub erp_order_number: Option<String>,
    pub erp_recorded_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

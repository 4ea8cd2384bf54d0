//! Row of `lead_decisions` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "lead_decisions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub lead_id: String,
    pub kind: String,
    pub rule_set_version: Option<i32>,
    pub rep_id: Option<String>,
    /// JSON text, or a zstd frame of it for large records (`db::leads::RecordCodec`,
    /// migration 000026); read with `db::leads::record_json`.
    #[sea_orm(column_type = "Blob")]
    pub record: Vec<u8>,
    pub decided_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

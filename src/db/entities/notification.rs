//! Row of `notifications` (mirrors the migration; conversions live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "notifications")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub user_id: String,
    pub kind: String,
    pub title_en: String,
    pub title_zh: String,
    #[sea_orm(column_type = "Text")]
    pub body_en: String,
    #[sea_orm(column_type = "Text")]
    pub body_zh: String,
    pub link: Option<String>,
    pub dedup_key: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub read_at: Option<TimeDateTimeWithTimeZone>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Row of `deals` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "deals")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub customer_id: String,
    pub site_id: Option<String>,
    pub owner_id: String,
    pub team_id: Option<String>,
    pub presales_id: Option<String>,
    pub template_id: String,
    pub title: String,
    pub products: Json,
    pub quote_hash: String,
    pub expected_value_fen: i64,
    /// The highest `expected_value_fen` the deal has had (the override threshold's measure).
    pub peak_value_fen: i64,
    pub status: String,
    pub current_node_key: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

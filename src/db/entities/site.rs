//! Row of `sites` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sites")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lon: f64,
    pub crs: String,
    pub radius_m: f64,
    pub utc_offset_minutes: i32,
    pub created_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

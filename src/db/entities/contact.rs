//! Row of `contacts` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "contacts")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub customer_id: String,
    pub name: String,
    pub title: String,
    pub seniority: String,
    pub phone: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
    /// `fieldproof_domain::leads::phone_key` of the phone (lead dedup).
    pub phone_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

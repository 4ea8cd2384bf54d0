//! Row of `leads` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "leads")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub company: String,
    pub company_key: String,
    pub contact_name: String,
    pub contact_title: String,
    pub phone: Option<String>,
    pub phone_key: Option<String>,
    pub industry: String,
    pub source: String,
    pub annual_purchase_fen: i64,
    pub seniority: String,
    pub province: String,
    pub city: String,
    pub response_speed: String,
    pub products: Json,
    pub notes: String,
    pub status: String,
    pub owner_id: Option<String>,
    pub team_id: Option<String>,
    /// The team the lead was first assigned to: the one the health figures judge.
    pub first_team_id: Option<String>,
    pub customer_id: Option<String>,
    pub source_id: Option<String>,
    pub import_id: Option<String>,
    pub assigned_by: Option<String>,
    pub protection_ends_at: Option<TimeDateTimeWithTimeZone>,
    pub assigned_at: Option<TimeDateTimeWithTimeZone>,
    pub first_activity_at: Option<TimeDateTimeWithTimeZone>,
    pub converted_at: Option<TimeDateTimeWithTimeZone>,
    pub moved_team: bool,
    pub previous_owner_id: Option<String>,
    pub reclaim_blocked_until: Option<TimeDateTimeWithTimeZone>,
    pub needs_assignment: bool,
    pub created_at: TimeDateTimeWithTimeZone,
    pub updated_at: TimeDateTimeWithTimeZone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Row of `outbox` (mirrors the migration; the state machine lives in `db::outbox`).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub topic: String,
    pub target_id: String,
    pub payload: Json,
    #[sea_orm(unique)]
    pub dedup_key: String,
    pub attempts: i32,
    pub next_attempt_at: Option<TimeDateTimeWithTimeZone>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<TimeDateTimeWithTimeZone>,
    pub delivered_at: Option<TimeDateTimeWithTimeZone>,
    pub gave_up_at: Option<TimeDateTimeWithTimeZone>,
    #[sea_orm(column_type = "Text", nullable)]
    pub last_error: Option<String>,
    pub created_at: TimeDateTimeWithTimeZone,
    /// Rows with the same key are sent in order (see `db::outbox`).
    pub sequence_key: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Row of `evidence` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "evidence")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub org_id: String,
    pub deal_id: String,
    pub node_run_id: String,
    pub node_key: String,
    pub uploader_id: String,
    pub team_id: Option<String>,
    pub device_id: Option<String>,
    pub capture_id: String,
    pub kind: String,
    pub format: String,
    pub sha256: String,
    pub size_bytes: i64,
    pub phash: Option<String>,
    pub blob_key: String,
    pub thumb_key: Option<String>,
    pub tags: Json,
    pub facts: Json,
    pub manifest: Option<Json>,
    pub checks: Json,
    pub verdict: String,
    /// `,code,code,` of every check that did not pass, for filtering the review queue.
    pub findings: String,
    pub rule_set_version: String,
    pub captured_at: Option<TimeDateTimeWithTimeZone>,
    pub capture_lat: Option<f64>,
    pub capture_lon: Option<f64>,
    pub received_at: TimeDateTimeWithTimeZone,
    pub review_state: String,
    pub reviewed_by: Option<String>,
    pub review_reason: Option<String>,
    pub reviewed_at: Option<TimeDateTimeWithTimeZone>,
    pub response: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

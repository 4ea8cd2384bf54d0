//! Row of `evidence_bands` (mirrors the migration; conversions to domain types live in the repositories).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "evidence_bands")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub evidence_id: String,
    pub org_id: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub band: i32,
    /// A 16-bit quarter of the perceptual hash (`PerceptualHash::bands`).
    pub value: i32,
    /// The whole perceptual hash's bits, as a signed 64-bit integer.
    pub phash: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
